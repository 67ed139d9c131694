// Goal: the counter checker names lost and phantom increments, counts indeterminate CASes
// as "may have happened", and cannot pass a history with no successful read.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkCounter } from "./counter.js";
import type { HistoryEvent } from "./history.js";

type Step = [number, "invoke" | "ok" | "fail" | "info", string, unknown];

function history(steps: Step[]): HistoryEvent[] {
  return steps.map(([process, type, f, value], index) => ({
    index,
    type,
    process,
    f,
    key: "counter",
    value,
    time: index,
  }));
}

describe("checkCounter", () => {
  it("accepts a final value between the acknowledged and the possible increments", () => {
    const result = checkCounter(
      history([
        [0, "invoke", "write", 0],
        [0, "ok", "write", 0],
        [1, "invoke", "cas", [0, 1]],
        [1, "ok", "cas", [0, 1]],
        [2, "invoke", "cas", [1, 2]],
        [2, "info", "cas", [1, 2]],
        [3, "invoke", "read", null],
        [3, "ok", "read", 2],
      ]),
    );
    assert.equal(result.verdict, "valid", result.summary);
    assert.equal(result.stats.acknowledged, 1);
    assert.equal(result.stats.possible, 2);
  });

  it("reports a lost increment", () => {
    const result = checkCounter(
      history([
        [1, "invoke", "cas", [0, 1]],
        [1, "ok", "cas", [0, 1]],
        [1, "invoke", "cas", [1, 2]],
        [1, "ok", "cas", [1, 2]],
        [3, "invoke", "read", null],
        [3, "ok", "read", 1],
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.equal(result.anomalies[0]?.kind, "lost-increment");
    assert.deepEqual(result.anomalies[0]?.events, [4]);
  });

  it("reports a phantom increment (a failed CAS that took effect)", () => {
    const result = checkCounter(
      history([
        [1, "invoke", "cas", [0, 1]],
        [1, "ok", "cas", [0, 1]],
        [2, "invoke", "cas", [1, 2]],
        [2, "fail", "cas", [1, 2]],
        [3, "invoke", "read", null],
        [3, "ok", "read", 2],
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.ok(result.anomalies.some((anomaly) => anomaly.kind === "phantom-increment"));
  });

  it("counts only increments acknowledged before the final read began", () => {
    const result = checkCounter(
      history([
        [0, "invoke", "cas", [null, 0]],
        [0, "ok", "cas", [null, 0]],
        [3, "invoke", "read", null],
        [1, "invoke", "cas", [0, 1]],
        [1, "ok", "cas", [0, 1]],
        [3, "ok", "read", 0],
      ]),
    );
    assert.equal(result.verdict, "valid", result.summary);
    assert.equal(result.stats.increments, 1);
  });

  it("is unknown without a successful read", () => {
    const result = checkCounter(
      history([
        [1, "invoke", "cas", [0, 1]],
        [1, "ok", "cas", [0, 1]],
        [3, "invoke", "read", null],
        [3, "fail", "read", null],
      ]),
    );
    assert.equal(result.verdict, "unknown");
  });
});
