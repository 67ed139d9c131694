/** Tests of the bank checker: hand-made histories, one per anomaly. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkBank } from "./bank.js";
import type { HistoryEvent } from "./history.js";

const accounts = ["a0", "a1", "a2"];
const total = 30;

/** A read by process `p` returning `balances`, as two events. */
function read(p: number, at: number, balances: Record<string, unknown>): HistoryEvent[] {
  return [
    { index: 0, type: "invoke", process: p, f: "read", key: "bank", value: null, time: at },
    { index: 0, type: "ok", process: p, f: "read", key: "bank", value: balances, time: at + 1 },
  ];
}

function transfer(p: number, at: number, type: "ok" | "fail" | "info"): HistoryEvent[] {
  const value = { from: "a0", to: "a1", amount: 5 };
  return [
    { index: 0, type: "invoke", process: p, f: "transfer", key: "bank", value, time: at },
    { index: 0, type, process: p, f: "transfer", key: "bank", value, time: at + 1 },
  ];
}

const indexed = (events: HistoryEvent[]) => events.map((event, index) => ({ ...event, index }));

describe("bank checker", () => {
  it("accepts reads that keep the total", () => {
    const result = checkBank(
      indexed([
        ...read(1, 0, { a0: 10, a1: 10, a2: 10 }),
        ...transfer(2, 2, "ok"),
        ...transfer(3, 2, "fail"),
        ...transfer(4, 2, "info"),
        ...read(1, 5, { a0: 0, a1: 20, a2: 10 }),
      ]),
      { accounts, total },
    );
    assert.equal(result.verdict, "valid", result.summary);
    assert.deepEqual(result.stats, {
      reads: 2,
      transfersOk: 1,
      transfersFail: 1,
      transfersInfo: 1,
      anomalies: 0,
    });
  });

  it("reports a wrong total and a negative balance, pointing at the read", () => {
    const result = checkBank(
      indexed([
        ...read(1, 0, { a0: 10, a1: 10, a2: 10 }),
        ...read(1, 2, { a0: 15, a1: 10, a2: 10 }),
        ...read(1, 4, { a0: -5, a1: 25, a2: 10 }),
      ]),
      { accounts, total },
    );
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.anomalies.map((anomaly) => [anomaly.kind, anomaly.events, anomaly.window]),
      [
        ["wrong-total", [2], { from: 2, to: 3 }],
        ["negative-balance", [4], { from: 4, to: 5 }],
      ],
    );
    assert.match(result.anomalies[0]?.message ?? "", /total 35, expected 30/);
  });

  it("reports missing, unknown and malformed accounts", () => {
    const result = checkBank(
      indexed([
        ...read(1, 0, { a0: 10, a1: 20 }),
        ...read(1, 2, { a0: 10, a1: 10, a2: 10, a9: 0 }),
        ...read(1, 4, { a0: 10, a1: 10, a2: Number.NaN }),
      ]),
      { accounts, total },
    );
    assert.deepEqual(
      result.anomalies.map((anomaly) => anomaly.kind),
      ["missing-account", "unknown-account", "malformed-balance"],
    );
    assert.equal(result.verdict, "invalid");
  });

  it("is unknown without a successful read", () => {
    const result = checkBank(indexed(transfer(2, 0, "ok")), { accounts, total });
    assert.equal(result.verdict, "unknown");
  });
});
