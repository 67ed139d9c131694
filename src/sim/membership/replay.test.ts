// Checks that a membership simulation replays exactly from its seed (same trace bytes and digest; other seeds differ), that the checkers fail a deliberately broken core that ignores refutations, and that the CLI then prints exactly one reproduce line that fails again.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runMembershipScenario } from "./scenario.js";

const runner = fileURLToPath(new URL("./run.js", import.meta.url));

describe("swim simulation: replay", () => {
  it("the same seed gives the same trace, byte for byte; another seed another trace", () => {
    const first = runMembershipScenario("crash", 3, { keepTrace: true, nodeCount: 8 });
    const second = runMembershipScenario("crash", 3, { keepTrace: true, nodeCount: 8 });
    const text = first.trace.join("\n");
    assert.ok(text.includes(" crash disk=") && text.includes("event member-dead"), "a real run");
    assert.equal(text, second.trace.join("\n"));
    assert.equal(first.digest, second.digest);
    assert.deepEqual(first.summary, second.summary);
    assert.equal(runMembershipScenario("crash", 3, { nodeCount: 8 }).digest, first.digest);
    const digests = new Set(
      [1, 2, 3, 4, 5].map((seed) => runMembershipScenario("crash", seed, { nodeCount: 8 }).digest),
    );
    assert.equal(digests.size, 5);
  });

  it("catches a core that ignores refutations (suspicions then kill under loss)", () => {
    const result = runMembershipScenario("loss", 1, {
      defect: "ignore-refutations",
      nodeCount: 16,
      runMs: 60_000,
    });
    assert.match(result.failures.join("\n"), /^false positive: n\d+ declared healthy n\d+ dead/m);
  });

  it("the CLI exits 1 with exactly one reproduce line naming a run that fails again", () => {
    const args = ["--scenario", "loss", "--nodes", "16", "--run-ms", "60000"];
    const failed = spawnSync(
      process.execPath,
      [runner, ...args, "--seeds", "3", "--defect", "ignore-refutations"],
      { encoding: "utf8" },
    );
    assert.equal(failed.status, 1, failed.stderr);
    const reproduce = failed.stdout.split("\n").filter((line) => line.startsWith("reproduce:"));
    assert.equal(reproduce.length, 1);
    const match =
      /^reproduce: npm run sim:membership -- --seed (\d+) --scenario loss --nodes 16 --run-ms 60000 --defect ignore-refutations$/.exec(
        reproduce[0]!,
      );
    assert.ok(match, reproduce[0]);
    const again = spawnSync(
      process.execPath,
      [runner, ...args, "--seed", match[1]!, "--defect", "ignore-refutations"],
      { encoding: "utf8" },
    );
    assert.equal(again.status, 1);
    assert.ok(again.stdout.includes(reproduce[0]!));

    const passed = spawnSync(process.execPath, [runner, "--scenario", "restart", "--seeds", "2"], {
      encoding: "utf8",
    });
    assert.equal(passed.status, 0, passed.stdout);
    assert.match(passed.stdout, /^2 run\(s\) passed$/m);
    assert.doesNotMatch(passed.stdout, /reproduce:/);
  });
});
