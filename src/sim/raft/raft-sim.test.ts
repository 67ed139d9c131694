// Runs the Raft core under the deterministic simulator (partitions, crashes losing unsynced writes, loss, duplication, reordering) on a bounded set of seeds with every safety property checked after every step; checks replay from the seed, that the checker catches a core that forgets its vote and (under the scripted Figure 8 schedule) one that commits earlier-term entries by counting, and one that answers reads without a quorum round, and that the CLI prints exactly one reproduce line.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runRaftScenario } from "./scenario.js";

const runner = fileURLToPath(new URL("./run.js", import.meta.url));

describe("raft simulation", () => {
  it("3 and 5 nodes under faults: safety after every step, liveness after the heal (seeds 1-40)", () => {
    const sizes = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const result = runRaftScenario(seed);
      sizes.add(result.options.nodeCount);
      assert.deepEqual(result.failures, [], `seed ${seed}`);
      assert.ok(result.summary.acknowledged > 0, `seed ${seed}: no proposal acknowledged`);
      assert.ok(result.summary.livenessMs !== null);
    }
    assert.deepEqual([...sizes].sort(), [3, 5]);
  });

  it("the same seed gives the same trace; another seed another", () => {
    const first = runRaftScenario(7, { keepTrace: true, faultMs: 3_000 });
    const second = runRaftScenario(7, { keepTrace: true, faultMs: 3_000 });
    assert.ok(first.trace.some((line) => line.includes(" crash")));
    assert.equal(first.trace.join("\n"), second.trace.join("\n"));
    assert.notEqual(runRaftScenario(8, { faultMs: 3_000 }).digest, first.digest);
  });

  it("catches a core that forgets its vote across restarts (two leaders in one term)", () => {
    const result = runRaftScenario(205, { defect: "forget-vote" });
    assert.match(
      result.failures.join("\n"),
      /^election safety: n\d and n\d are both leaders of term \d+/m,
    );
    assert.deepEqual(runRaftScenario(205).failures, [], "the same seed passes without the defect");
  });

  it("the figure8 schedule runs the whole Figure 8 sequence and passes (seeds 1-10)", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const result = runRaftScenario(seed, { schedule: "figure8" });
      assert.deepEqual(result.failures, [], `seed ${seed}`);
      assert.equal(result.summary.schedulePhase, "done", `seed ${seed}`);
      assert.ok(result.summary.livenessMs !== null);
    }
  });

  it("the figure8 schedule catches a leader that commits an earlier-term entry by counting", () => {
    const result = runRaftScenario(1, { schedule: "figure8", defect: "commit-previous-term" });
    assert.match(result.failures.join("\n"), /^(state machine safety|leader completeness): /m);
  });

  it("catches a leader that answers reads without confirming leadership (stale read)", () => {
    const result = runRaftScenario(78, { defect: "read-without-quorum" });
    assert.match(result.failures.join("\n"), /^read index: .* \(stale read/m);
    const clean = runRaftScenario(78);
    assert.deepEqual(clean.failures, [], "the same seed passes without the defect");
    assert.ok(clean.summary.readsConfirmed > 0, "reads were confirmed");
  });

  it("the CLI exits 1 with exactly one reproduce line for a failing seed", () => {
    const failed = spawnSync(
      process.execPath,
      [runner, "--seeds", "2", "--first", "204", "--defect", "forget-vote"],
      { encoding: "utf8" },
    );
    assert.equal(failed.status, 1);
    const lines = failed.stdout.split("\n").filter((line) => line.startsWith("reproduce:"));
    assert.deepEqual(lines, ["reproduce: npm run sim:raft -- --seed 205 --defect forget-vote"]);
  });
});
