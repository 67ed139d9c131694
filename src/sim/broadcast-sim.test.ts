// Runs the reliable broadcast under the seeded simulator with faults on 40 seeds and asserts every property holds, that the faults really happened, and that the same checker fails deliberately broken variants of the protocol and the CLI then prints one replayable seed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type BroadcastScenarioResult, runBroadcastScenario } from "./broadcast/scenario.js";

const seeds = Array.from({ length: 40 }, (_, index) => index + 1);
const runner = fileURLToPath(new URL("./broadcast/run.js", import.meta.url));

function count(results: readonly BroadcastScenarioResult[], pattern: RegExp): number {
  return results.reduce(
    (sum, result) => sum + result.trace.filter((line) => pattern.test(line)).length,
    0,
  );
}

describe("reliable broadcast under simulation", () => {
  it("delivers every accepted broadcast everywhere, exactly once, on 40 faulty seeds", () => {
    const results = seeds.map((seed) => runBroadcastScenario(seed));
    for (const result of results) {
      assert.deepEqual(
        result.failures,
        [],
        `seed ${result.options.seed}: ${result.failures.join("; ")}`,
      );
      assert.ok(result.summary.livenessMs !== null);
      assert.equal(
        result.summary.deliveries >= result.summary.accepted * result.options.nodeCount,
        true,
      );
    }
    // The runs were not easy ones: every fault kind really happened somewhere.
    const faults = {
      crashes: results.reduce((sum, result) => sum + result.summary.crashes, 0),
      crashesDuringWrite: count(results, / crash \(during write/),
      tornWrites: count(results, / crash.*torn=[1-9]/),
      tornTailsSkipped: count(results, /"damagedBytes":[1-9]/),
      partitions: count(results, / - partition /),
      partitionDrops: count(results, / dropped partition | drop .* partition /),
      losses: count(results, / dropped loss /),
      duplicates: count(results, / recv \S+ \(dup\) /),
      crashedInFlight: count(results, / target-crashed /),
      linkDrops: count(results, / link-down /),
      notAccepted: results.reduce(
        (sum, result) => sum + result.summary.started - result.summary.accepted,
        0,
      ),
    };
    for (const [name, value] of Object.entries(faults))
      assert.ok(value > 0, `no ${name} in 40 seeds`);
  });

  it("catches the no-retransmit defect (lost messages are never resent)", () => {
    const failing = seeds.filter(
      (seed) =>
        runBroadcastScenario(seed, { defect: "no-retransmit", keepTrace: false }).failures.length >
        0,
    );
    assert.ok(failing.length >= 10, `only ${failing.length} of 40 seeds caught it`);
    const failures = runBroadcastScenario(failing[0]!, { defect: "no-retransmit" }).failures.join(
      "\n",
    );
    assert.match(failures, /^(validity|agreement|liveness):/m);
  });

  it("catches the no-sync-before-ack defect (a crash forgets an acked delivery, which then repeats)", () => {
    const failing = seeds.filter(
      (seed) =>
        runBroadcastScenario(seed, { defect: "no-sync-before-ack", keepTrace: false }).failures
          .length > 0,
    );
    assert.ok(failing.length >= 1, "no seed caught it");
    const failures = runBroadcastScenario(failing[0]!, {
      defect: "no-sync-before-ack",
    }).failures.join("\n");
    assert.match(failures, /^integrity: n\d+ delivered \S+ twice/m);
  });

  it("the CLI exits 1 with exactly one reproduce line naming a seed that fails again", () => {
    const failed = spawnSync(
      process.execPath,
      [runner, "--seeds", "10", "--defect", "no-retransmit"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(failed.status, 1, failed.stderr);
    const reproduce = failed.stdout.split("\n").filter((line) => line.startsWith("reproduce:"));
    assert.equal(reproduce.length, 1);
    const match = /^reproduce: npm run sim:broadcast -- --seed (\d+) --defect no-retransmit$/.exec(
      reproduce[0]!,
    );
    assert.ok(match, reproduce[0]);
    const again = spawnSync(
      process.execPath,
      [runner, "--seed", match[1]!, "--defect", "no-retransmit"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(again.status, 1);
    assert.ok(again.stdout.includes(reproduce[0]!));

    const passed = spawnSync(process.execPath, [runner, "--seeds", "3"], { encoding: "utf8" });
    assert.equal(passed.status, 0, passed.stdout);
    assert.match(passed.stdout, /^3 seed\(s\) passed$/m);
    assert.doesNotMatch(passed.stdout, /reproduce:/);
  });
});
