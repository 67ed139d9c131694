// Runs the membership simulation's loss and slow-node scenarios on several seeds and asserts that nobody healthy is ever declared dead (5 % loss for three minutes; one CPU-starved node for two minutes), and compares the slow node's suspicions with Lifeguard on and off on the same seeds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runMembershipScenario } from "./scenario.js";
import { assertPassed, seeds } from "./test-support.js";

describe("swim simulation: message loss", () => {
  it("with 5 % loss and no crash, nobody is declared dead in 3 minutes (8 seeds, 32 nodes)", (t) => {
    let suspicions = 0;
    let refutations = 0;
    for (const seed of seeds(8)) {
      const result = runMembershipScenario("loss", seed);
      assertPassed(result);
      assert.equal(result.options.network.lossProbability, 0.05);
      assert.equal(result.summary.deadEvents, 0);
      suspicions += result.summary.suspicionsRaised;
      refutations += result.summary.refutations;
    }
    // The loss was real: probes did fail and suspicions were refuted, not avoided.
    assert.ok(suspicions > 0 && refutations > 0);
    t.diagnostic(`${suspicions} suspicions raised, ${refutations} refutations, 0 deaths`);
  });
});

describe("swim simulation: message loss at 64 nodes", () => {
  it("seed 11: with 5 % loss at 64 nodes, a member that missed a refutation hears it again and kills nobody", () =>
    assertPassed(runMembershipScenario("loss", 11, { nodeCount: 64 })));
});

describe("swim simulation: a CPU-starved node", () => {
  it("does not get healthy nodes declared dead by healthy nodes (10 seeds, 32 nodes, 2 minutes)", (t) => {
    let raised = 0;
    for (const seed of seeds(10)) {
      const result = runMembershipScenario("slow", seed);
      assertPassed(result);
      assert.equal(result.summary.falsePositives, 0);
      raised += result.summary.suspicionsRaised;
    }
    t.diagnostic(`the slow node raised ${raised} suspicions in 10 runs (Lifeguard on)`);
  });

  it("raises far fewer suspicions with Lifeguard than without it (same 4 seeds)", (t) => {
    const raised = (lifeguard: boolean) =>
      seeds(4).reduce(
        (sum, seed) =>
          sum + runMembershipScenario("slow", seed, { lifeguard }).summary.suspicionsRaised,
        0,
      );
    const on = raised(true);
    const off = raised(false);
    assert.ok(on * 10 < off, `Lifeguard on ${on}, off ${off}`);
    t.diagnostic(`suspicions raised by the slow node: Lifeguard on ${on}, off ${off}`);
  });

  it("seed 181: a slow node's suspecter that missed the refutation is told again and kills nobody", () =>
    assertPassed(runMembershipScenario("slow", 181)));
});
