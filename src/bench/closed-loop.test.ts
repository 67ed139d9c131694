// Goal: the benchmark's closed loop keeps exactly `inFlight` requests outstanding, counts only
// the measured window and stops on the first failure; method: a fake `send` that answers on
// the next macrotask and records concurrency.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { percentile, runClosedLoop } from "./closed-loop.js";

describe("percentile", () => {
  it("uses the nearest rank", () => {
    const sorted = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(percentile(sorted, 0.5), 5);
    assert.equal(percentile(sorted, 0.99), 10);
    assert.equal(percentile(sorted, 0), 1);
    assert.equal(percentile(new Float64Array(0), 0.5), 0);
  });
});

describe("runClosedLoop", () => {
  it("keeps exactly inFlight requests outstanding and drains at the end", async () => {
    let outstanding = 0;
    let maxOutstanding = 0;
    const result = await runClosedLoop({
      inFlight: 8,
      warmupMs: 10,
      durationMs: 40,
      send: () => {
        outstanding++;
        maxOutstanding = Math.max(maxOutstanding, outstanding);
        return new Promise<void>((resolve) =>
          setImmediate(() => {
            outstanding--;
            resolve();
          }),
        );
      },
    });
    assert.equal(maxOutstanding, 8);
    assert.equal(outstanding, 0);
    assert.equal(result.errors, 0);
    assert.ok(result.ops > 0);
    assert.ok(result.completedTotal >= result.ops);
    assert.equal(result.opsPerSec, result.ops / 0.04);
    assert.ok(result.p50Ms <= result.p99Ms && result.p99Ms <= result.maxMs);
  });

  it("stops at the first failed request and reports it", async () => {
    let sent = 0;
    const result = await runClosedLoop({
      inFlight: 4,
      warmupMs: 0,
      durationMs: 10_000,
      send: () => {
        sent++;
        return sent === 10 ? Promise.reject(new Error("boom")) : Promise.resolve();
      },
    });
    assert.equal(result.errors, 1);
    assert.equal(result.firstError, "boom");
    assert.ok(sent < 20);
  });
});
