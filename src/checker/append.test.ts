/**
 * Tests of the append checker: hand-made histories for each direct anomaly and for a
 * linearizability violation the direct checks cannot see; and a property: histories of a
 * real list are valid.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { prngFromSeed } from "../lib/prng.js";
import { historyOf, type OpSpec } from "../testkit/histories.js";
import { checkAppend } from "./append.js";

const history = (specs: readonly OpSpec[]) => historyOf(specs, "l");

describe("append checker", () => {
  it("accepts a list read in the order it was appended", () => {
    const result = checkAppend(
      history([
        { p: 1, f: "append", value: 1, call: 0, ret: 1 },
        { p: 2, f: "append", value: 2, call: 2, ret: 6 },
        { p: 3, f: "read", out: [1], call: 3, ret: 4 },
        { p: 4, f: "append", value: 3, call: 2, ret: 3, type: "info" },
        { p: 3, f: "read", out: [1, 2, 3], call: 7, ret: 8 },
      ]),
    );
    assert.equal(result.verdict, "valid", result.summary);
    assert.equal(result.checker, "append");
    assert.equal(result.linearizability.verdict, "valid");
  });

  it("reports unexpected and duplicate elements", () => {
    const result = checkAppend(
      history([
        { p: 1, f: "append", value: 1, call: 0, ret: 1 },
        { p: 3, f: "read", out: [1, 9], call: 2, ret: 3 },
        { p: 3, f: "read", out: [1, 1], call: 4, ret: 5 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    const kinds = result.anomalies.map((anomaly) => anomaly.kind);
    assert.ok(kinds.includes("unexpected-element"));
    assert.ok(kinds.includes("duplicate-element"));
    assert.ok(kinds.includes("nonlinearizable"));
  });

  it("reports two reads that disagree on the order", () => {
    const result = checkAppend(
      history([
        { p: 1, f: "append", value: 1, call: 0, ret: 10 },
        { p: 2, f: "append", value: 2, call: 0, ret: 10 },
        { p: 3, f: "read", out: [1, 2], call: 11, ret: 12 },
        { p: 4, f: "read", out: [2, 1], call: 11, ret: 12 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    const order = result.anomalies.find((anomaly) => anomaly.kind === "incompatible-order");
    assert.ok(order !== undefined);
    assert.deepEqual(order.events, [4, 5]);
  });

  it("reports an acknowledged append missing from the final read", () => {
    const result = checkAppend(
      history([
        { p: 1, f: "append", value: 1, call: 0, ret: 1 },
        { p: 1, f: "append", value: 2, call: 2, ret: 3 },
        { p: 3, f: "read", out: [1], call: 5, ret: 6 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    const lost = result.anomalies.find((anomaly) => anomaly.kind === "lost-append");
    assert.match(lost?.message ?? "", /misses 1 acknowledged append: 2/);
  });

  it("finds a stale read only the linearizability search sees", () => {
    // Each read is a prefix of the last, nothing is lost at the end, yet the second read is
    // older than the first.
    const result = checkAppend(
      history([
        { p: 1, f: "append", value: 1, call: 0, ret: 1 },
        { p: 1, f: "append", value: 2, call: 2, ret: 3 },
        { p: 2, f: "read", out: [1, 2], call: 4, ret: 5 },
        { p: 2, f: "read", out: [1], call: 6, ret: 7 },
        { p: 2, f: "read", out: [1, 2], call: 8, ret: 9 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.anomalies.map((anomaly) => anomaly.kind),
      ["nonlinearizable"],
    );
    assert.equal(result.anomalies[0]?.events[0], 6);
  });

  it("accepts every history of a real list", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 12 }), (seed, processes) => {
        const random = prngFromSeed(seed);
        const specs: OpSpec[] = [];
        const effects: { time: number; key: string; value?: number; spec?: number }[] = [];
        const clock = new Array<number>(processes).fill(0);
        let next = 1;
        for (let n = 0; n < 60; n++) {
          const p = random.int(processes);
          const call = (clock[p] as number) + random.int(3);
          const ret = call + 1 + random.int(8);
          clock[p] = ret;
          const key = `l${random.int(2)}`;
          const effect = call + random.float() * (ret - call);
          if (random.chance(0.6)) {
            const lost = random.chance(0.1);
            specs.push({
              p: lost ? 100 + n : p,
              f: "append",
              key,
              value: next,
              call,
              ret,
              type: lost ? "info" : "ok",
            });
            if (!lost || random.chance(0.5)) effects.push({ time: effect, key, value: next });
            next++;
          } else {
            specs.push({ p, f: "read", key, call, ret, out: [] });
            effects.push({ time: effect, key, spec: specs.length - 1 });
          }
        }
        const lists = new Map<string, number[]>();
        for (const effect of effects.sort((a, b) => a.time - b.time)) {
          const list = lists.get(effect.key) ?? [];
          lists.set(effect.key, list);
          if (effect.value !== undefined) list.push(effect.value);
          else
            specs[effect.spec as number] = {
              ...(specs[effect.spec as number] as OpSpec),
              out: [...list],
            };
        }
        const result = checkAppend(history(specs));
        assert.equal(result.verdict, "valid", result.anomalies[0]?.message);
      }),
      { numRuns: 200 },
    );
  });
});
