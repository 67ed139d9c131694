// Checks the Lifeguard suspicion timeout math against memberlist's formulas (util.go suspicionTimeout, suspicion.go remainingSuspicionTime) with memberlist's own test tables plus a property test against a transcription of its Go code, and the confirmation rules of one Suspicion.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Suspicion, suspicionTimeoutMinMs, suspicionTimeoutMs } from "./suspicion.js";

/**
 * memberlist util.go suspicionTimeout, in ms. Go converts nodeScale*1000 to an integer
 * Duration (truncating) before multiplying, so it can be up to `mult` ms below ours, which
 * floors only the final product.
 */
function memberlistSuspicionTimeoutMs(mult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return (mult * Math.trunc(nodeScale * 1000) * intervalMs) / 1000;
}

/** memberlist suspicion.go remainingSuspicionTime with elapsed = 0 and newSuspicion's k < 1 case. */
function memberlistRemainingMs(n: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = maxMs / 1000 - frac * (maxMs / 1000 - minMs / 1000);
  return Math.max(minMs, Math.floor(1000 * raw));
}

describe("suspicionTimeoutMinMs", () => {
  it("matches memberlist's TestUtil_SuspicionTimeout table (mult 3, 1 s interval, divided by 3)", () => {
    // memberlist expects 1698 for n=50 and 2698 for n=500 from its truncated Duration math;
    // the unrounded values are 1698.97 and 2698.97, which ours floors after multiplying.
    const table: readonly (readonly [number, number])[] = [
      [5, 1000],
      [10, 1000],
      [50, 1698],
      [100, 2000],
      [500, 2698],
      [1000, 3000],
    ];
    for (const [n, expected] of table) {
      assert.equal(Math.floor(suspicionTimeoutMinMs(3, n, 1000) / 3), expected, `n=${n}`);
    }
  });

  it("is suspicionMult * max(1, log10(n)) * interval, exactly, for the cluster sizes we run", () => {
    const table: readonly (readonly [number, number, number])[] = [
      // [n, LAN (mult 4, 1 s), WAN (mult 6, 5 s)]
      [0, 4000, 30_000],
      [1, 4000, 30_000],
      [3, 4000, 30_000],
      [10, 4000, 30_000],
      [11, 4165, 31_241],
      [16, 4816, 36_123],
      [32, 6020, 45_154],
      [64, 7224, 54_185],
      [100, 8000, 60_000],
      [256, 9632, 72_247],
      [1000, 12_000, 90_000],
    ];
    for (const [n, lan, wan] of table) {
      assert.equal(suspicionTimeoutMinMs(4, n, 1000), lan, `lan n=${n}`);
      assert.equal(suspicionTimeoutMinMs(6, n, 5000), wan, `wan n=${n}`);
    }
  });

  it("agrees with memberlist's Go formula within its truncation (< mult ms) for any n", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 60_000 }),
        (mult, n, intervalMs) => {
          const ours = suspicionTimeoutMinMs(mult, n, intervalMs);
          const theirs = memberlistSuspicionTimeoutMs(mult, n, intervalMs);
          assert.ok(
            ours >= Math.floor(theirs) && ours - theirs < mult * (intervalMs / 1000) + 1,
            `mult=${mult} n=${n} interval=${intervalMs}: ours ${ours}, memberlist ${theirs}`,
          );
        },
      ),
    );
  });
});

describe("suspicionTimeoutMs", () => {
  it("matches memberlist's TestSuspicion_remainingSuspicionTime table (k=3, 2 s..30 s)", () => {
    const table: readonly (readonly [number, number])[] = [
      [0, 30_000],
      [1, 16_000],
      [2, 7810],
      [3, 2000],
      [4, 2000], // more confirmations than expected never go below the minimum
      [5, 2000],
    ];
    for (const [confirmations, expected] of table) {
      const timeout = suspicionTimeoutMs({
        confirmations,
        confirmationsExpected: 3,
        minMs: 2000,
        maxMs: 30_000,
      });
      assert.equal(timeout, expected, `c=${confirmations}`);
    }
  });

  it("uses the minimum when no confirmations are expected (a tiny cluster)", () => {
    for (const confirmations of [0, 1, 5]) {
      const timeout = suspicionTimeoutMs({
        confirmations,
        confirmationsExpected: 0,
        minMs: 4000,
        maxMs: 24_000,
      });
      assert.equal(timeout, 4000);
    }
  });

  it("equals memberlist's remainingSuspicionTime (±1 ms of float rounding), within [min, max], shrinking with confirmations", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 10 }),
        (confirmations, k, minMs, maxMult) => {
          const maxMs = minMs * maxMult;
          const options = { confirmationsExpected: k, minMs, maxMs };
          const timeout = suspicionTimeoutMs({ confirmations, ...options });
          const reference = memberlistRemainingMs(confirmations, k, minMs, maxMs);
          assert.ok(Math.abs(timeout - reference) <= 1, `${timeout} vs memberlist ${reference}`);
          assert.ok(timeout >= minMs && timeout <= maxMs);
          const next = suspicionTimeoutMs({ confirmations: confirmations + 1, ...options });
          assert.ok(next <= timeout, "a confirmation never lengthens the timeout");
        },
      ),
    );
  });
});

describe("Suspicion", () => {
  it("counts only new, independent confirmations, at most the expected number", () => {
    const suspicion = new Suspicion(1000, "b", 2000, 30_000, 3);
    assert.equal(suspicion.deadlineMs(), 31_000, "no confirmation: the maximum");
    assert.equal(suspicion.confirm("b"), false, "the member who raised it does not confirm it");
    assert.equal(suspicion.confirm("c"), true);
    assert.equal(suspicion.confirm("c"), false, "the same member twice counts once");
    assert.equal(suspicion.confirmations, 1);
    assert.equal(suspicion.deadlineMs(), 1000 + 16_000);
    assert.equal(suspicion.confirm("d"), true);
    assert.equal(suspicion.deadlineMs(), 1000 + 7810);
    assert.equal(suspicion.confirm("e"), true);
    assert.equal(suspicion.deadlineMs(), 1000 + 2000, "k confirmations: the minimum");
    assert.equal(suspicion.confirm("f"), false, "beyond k, nothing is worth re-gossiping");
    assert.equal(suspicion.confirmations, 3);
  });

  it("expects nothing in a tiny cluster: the timer is the minimum and confirm is a no-op", () => {
    const suspicion = new Suspicion(0, "b", 4000, 24_000, 0);
    assert.equal(suspicion.confirm("c"), false);
    assert.equal(suspicion.deadlineMs(), 4000);
  });
});
