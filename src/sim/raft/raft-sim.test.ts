// Runs the Raft core under the deterministic simulator (partitions, crashes losing unsynced writes, loss, duplication, reordering) with snapshots taken every few entries on a log compacted almost up to them (so lagging, restarted and new nodes install snapshots sent in small chunks) and membership changes on the leader (spares added as learners, promoted, voters removed), on a bounded set of seeds with every safety property checked after every step; checks the scenario really exercised snapshots and membership changes, that the static group still runs, replay from the seed, that the checker catches a core that forgets its vote and (under the scripted Figure 8 schedule) one that commits earlier-term entries by counting, and one that answers reads without a quorum round, and that the CLI prints exactly one reproduce line.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runRaftScenario } from "./scenario.js";

const runner = fileURLToPath(new URL("./run.js", import.meta.url));

describe("raft simulation", () => {
  it("3 and 5 founders plus spares, snapshots and membership changes under faults: safety after every step, liveness after the heal (seeds 1-40)", () => {
    const sizes = new Set<number>();
    const totals = {
      installed: 0,
      restored: 0,
      taken: 0,
      add: 0,
      promote: 0,
      remove: 0,
      leaseReads: 0,
    };
    for (let seed = 1; seed <= 40; seed++) {
      const result = runRaftScenario(seed);
      const { summary } = result;
      sizes.add(result.options.nodeCount);
      assert.deepEqual(result.failures, [], `seed ${seed}`);
      assert.ok(summary.acknowledged > 0, `seed ${seed}: no proposal acknowledged`);
      assert.ok(summary.livenessMs !== null);
      assert.ok(result.options.spares > 0 && result.options.snapshotEvery > 0);
      const voters = summary.finalConfig?.voters.length ?? 0;
      assert.ok(voters >= 3 && voters <= 5, `seed ${seed}: ${voters} voters at the end`);
      totals.installed += summary.snapshotsInstalled;
      totals.restored += summary.snapshotsRestored;
      totals.taken += summary.snapshotsTaken;
      totals.add += summary.configChangesApplied.add;
      totals.promote += summary.configChangesApplied.promote;
      totals.remove += summary.configChangesApplied.remove;
      totals.leaseReads += summary.leaseReads;
    }
    assert.deepEqual([...sizes].sort(), [3, 5]);
    // The scenario must exercise what it claims to, or the checks above pass vacuously.
    assert.ok(totals.taken > 0, "no snapshot taken");
    assert.ok(totals.installed > 0, "no snapshot installed from a leader");
    assert.ok(totals.restored > 0, "no restart restored a snapshot");
    assert.ok(totals.add > 0, "no learner added");
    assert.ok(totals.promote > 0, "no learner promoted");
    assert.ok(totals.remove > 0, "no member removed");
    assert.ok(totals.leaseReads > 0, "no read served from a lease");
  });

  it("the static group (no spares, no snapshots, no membership changes) still runs (seeds 1-5)", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const result = runRaftScenario(seed, { spares: 0, snapshotEvery: 0, membership: false });
      assert.deepEqual(result.failures, [], `seed ${seed}`);
      assert.equal(result.options.spares, 0);
      assert.equal(result.summary.snapshotsTaken + result.summary.snapshotsInstalled, 0);
      assert.equal(result.summary.configChangesProposed, 0);
      assert.equal(result.summary.finalConfig?.voters.length, result.options.nodeCount);
    }
  });

  it("the same seed gives the same trace; another seed another", () => {
    const first = runRaftScenario(3, { keepTrace: true, faultMs: 3_000 });
    const second = runRaftScenario(3, { keepTrace: true, faultMs: 3_000 });
    assert.ok(first.trace.some((line) => line.includes(" crash")));
    assert.ok(first.trace.some((line) => line.includes(" event restore from leader ")));
    assert.ok(first.trace.some((line) => line.includes(" event restore from restart ")));
    assert.ok(first.trace.some((line) => line.includes(" change-membership ")));
    assert.equal(first.trace.join("\n"), second.trace.join("\n"));
    assert.notEqual(runRaftScenario(4, { faultMs: 3_000 }).digest, first.digest);
  });

  it("catches a core that forgets its vote across restarts (two leaders in one term)", () => {
    const result = runRaftScenario(904, { defect: "forget-vote" });
    assert.match(
      result.failures.join("\n"),
      /^election safety: n\d and n\d are both leaders of term \d+/m,
    );
    assert.deepEqual(runRaftScenario(904).failures, [], "the same seed passes without the defect");
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
    const result = runRaftScenario(553, { defect: "read-without-quorum" });
    assert.match(result.failures.join("\n"), /^read index: .* \(stale read/m);
    const clean = runRaftScenario(553);
    assert.deepEqual(clean.failures, [], "the same seed passes without the defect");
    assert.ok(clean.summary.readsConfirmed > 0, "reads were confirmed");
  });

  it("catches a leader whose read lease outlives the followers' vote refusal (stale read)", () => {
    const result = runRaftScenario(1016, { nodeCount: 3, defect: "lease-too-long" });
    assert.match(result.failures.join("\n"), /^read index: .* \(stale read/m);
    const clean = runRaftScenario(1016, { nodeCount: 3, config: { leaseReads: true } });
    assert.deepEqual(clean.failures, [], "the same seed passes with correct leases");
    assert.ok(clean.summary.readsConfirmed > 0, "reads were confirmed");
  });

  it("the CLI exits 1 with exactly one reproduce line for a failing seed", () => {
    const failed = spawnSync(
      process.execPath,
      [runner, "--seeds", "2", "--first", "903", "--defect", "forget-vote"],
      { encoding: "utf8" },
    );
    assert.equal(failed.status, 1);
    const lines = failed.stdout.split("\n").filter((line) => line.startsWith("reproduce:"));
    assert.deepEqual(lines, ["reproduce: npm run sim:raft -- --seed 904 --defect forget-vote"]);
  });
});
