// Runs the membership simulation's crash, restart and partition scenarios on many seeds and asserts, per seed, that every live member declares a crashed node dead within the bound derived from the config (and never before the minimum suspicion timeout), that a restarted node rejoins above the incarnation it died at, and that a partition is detected on both sides and healed within its bound.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runMembershipScenario } from "./scenario.js";
import { assertPassed, median, seeds } from "./test-support.js";

describe("swim simulation: crash", () => {
  it("a crashed node is declared dead by every live member within the bound, and nobody else is (40 seeds, 32 nodes)", (t) => {
    const first: number[] = [];
    const suspicion: number[] = [];
    const all: number[] = [];
    for (const seed of seeds(40)) {
      const result = runMembershipScenario("crash", seed);
      assertPassed(result);
      const { bounds } = result.options;
      const { firstDetectionMs, fullDetectionMs } = result.summary;
      assert.ok(firstDetectionMs !== null && fullDetectionMs !== null);
      assert.ok(fullDetectionMs <= bounds.failureMs);
      // A suspicion lasts at least the minimum: nobody can be dead sooner after the first suspicion.
      assert.ok(
        fullDetectionMs - firstDetectionMs >= bounds.suspicionMinMs,
        `seed ${seed}: dead everywhere ${fullDetectionMs - firstDetectionMs} ms after the first suspicion`,
      );
      assert.equal(result.summary.deadEvents, 31, "one member-dead per live member, no more");
      first.push(firstDetectionMs);
      suspicion.push(fullDetectionMs - firstDetectionMs);
      all.push(fullDetectionMs);
    }
    const { suspicionMinMs, suspicionMaxMs } = runMembershipScenario("crash", 1).options.bounds;
    // Independent confirmations (Lifeguard) pull the suspicion toward its minimum, far below the maximum.
    assert.ok(median(suspicion) <= 1.5 * suspicionMinMs, `median ${median(suspicion)} ms`);
    t.diagnostic(
      `first suspicion median ${median(first)} ms; dead everywhere median ${median(all)} ms,` +
        ` max ${Math.max(...all)} ms; suspicion ${suspicionMinMs}..${suspicionMaxMs} ms`,
    );
  });

  it("a restarted node rejoins above the incarnation it was declared dead at (40 seeds, 16 nodes)", () => {
    for (const seed of seeds(40)) {
      const result = runMembershipScenario("restart", seed);
      assertPassed(result);
      assert.ok(result.summary.recoveredMs !== null);
      assert.ok(result.summary.recoveredMs <= result.options.bounds.joinMs);
      assert.ok(result.summary.refutations >= 1, "the new core refuted its own death");
    }
  });
});

describe("swim simulation: partition", () => {
  it("each side declares the other dead, and after the heal everyone sees everyone alive within the bound (24 seeds, 32 nodes)", (t) => {
    const detected: number[] = [];
    let holdMs = 0;
    const healedAtOnce: number[] = [];
    const healedByReconnect: number[] = [];
    for (const seed of seeds(24)) {
      const result = runMembershipScenario("partition", seed);
      assertPassed(result);
      const { bounds, partitionHoldMs } = result.options;
      const { fullDetectionMs, recoveredMs } = result.summary;
      assert.ok(fullDetectionMs !== null && fullDetectionMs <= bounds.failureMs);
      assert.ok(recoveredMs !== null && recoveredMs <= bounds.healMs);
      // 16 × 16 in each direction.
      assert.ok(result.summary.deadEvents >= 2 * 16 * 16);
      detected.push(fullDetectionMs);
      (partitionHoldMs > 0 ? healedByReconnect : healedAtOnce).push(recoveredMs);
      holdMs = Math.max(holdMs, partitionHoldMs);
    }
    assert.equal(healedByReconnect.length, 12, "half the seeds outlast gossip to the dead");
    t.diagnostic(
      `both sides detected: median ${median(detected)} ms, max ${Math.max(...detected)} ms;` +
        ` healed at once: median ${median(healedAtOnce)} ms;` +
        ` healed after ${holdMs / 1000} s more apart (reconnect): median ${median(healedByReconnect)} ms, max ${Math.max(...healedByReconnect)} ms`,
    );
  });
});
