// Checks Lifeguard's local health score by replaying memberlist's TestAwareness table (deltas applied in order, score clamped to [0, max - 1], timeouts scaled by score + 1) and a random walk that must never leave the bounds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Awareness } from "./awareness.js";

describe("Awareness", () => {
  it("follows memberlist's TestAwareness table (max 8)", () => {
    const table: readonly (readonly [number, number, number])[] = [
      // [delta, score after, 1 s scaled]
      [0, 0, 1000],
      [-1, 0, 1000],
      [-10, 0, 1000],
      [1, 1, 2000],
      [-1, 0, 1000],
      [10, 7, 8000],
      [-1, 6, 7000],
      [-1, 5, 6000],
      [-1, 4, 5000],
      [-1, 3, 4000],
      [-1, 2, 3000],
      [-1, 1, 2000],
      [-1, 0, 1000],
      [-1, 0, 1000],
    ];
    const awareness = new Awareness(8);
    for (const [delta, score, scaledMs] of table) {
      awareness.apply(delta);
      assert.equal(awareness.healthScore, score, `after ${delta}`);
      assert.equal(awareness.scale(1000), scaledMs);
    }
  });

  it("with max 1 (Lifeguard off) never stretches a timeout", () => {
    const awareness = new Awareness(1);
    awareness.apply(5);
    assert.equal(awareness.healthScore, 0);
    assert.equal(awareness.scale(500), 500);
  });

  it("stays within [0, max - 1] whatever deltas arrive", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.array(fc.integer({ min: -20, max: 20 })),
        (max, deltas) => {
          const awareness = new Awareness(max);
          for (const delta of deltas) {
            awareness.apply(delta);
            assert.ok(awareness.healthScore >= 0 && awareness.healthScore <= max - 1);
            assert.equal(awareness.scale(100), 100 * (awareness.healthScore + 1));
          }
        },
      ),
    );
  });
});
