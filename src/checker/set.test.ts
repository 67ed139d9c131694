/**
 * Tests of the set checker: hand-made histories, one per anomaly, each pointing at the right
 * read; and a property: any history of a real set (adds taking effect somewhere in their
 * interval, some replies lost) is valid.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { prngFromSeed } from "../lib/prng.js";
import { historyOf, type OpSpec } from "../testkit/histories.js";
import { checkSet } from "./set.js";

const history = (specs: readonly OpSpec[]) => historyOf(specs, "set");

describe("set checker", () => {
  it("accepts a history where every acknowledged add is read", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1 },
        { p: 2, f: "add", value: 2, call: 0, ret: 5 },
        // Concurrent with add 2: may or may not see it.
        { p: 3, f: "read", out: [1], call: 2, ret: 3 },
        { p: 1, f: "add", value: 3, call: 2, ret: 3, type: "info" },
        { p: 4, f: "add", value: 4, call: 2, ret: 3, type: "fail" },
        { p: 3, f: "read", out: [1, 2, 3], call: 10, ret: 11 },
      ]),
    );
    assert.equal(result.verdict, "valid", result.summary);
    assert.equal(result.checker, "set");
    assert.deepEqual(result.stats, {
      keys: 1,
      attempted: 4,
      acknowledged: 2,
      lost: 0,
      recovered: 1,
      reads: 2,
      readsMissingAdds: 0,
      readsWithUnexpected: 0,
      readsWithDuplicates: 0,
    });
  });

  it("reports an add acknowledged before a read began and missing from it", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1 },
        { p: 1, f: "add", value: 2, call: 2, ret: 3 },
        { p: 2, f: "read", out: [1], call: 4, ret: 5 },
        { p: 2, f: "read", out: [1, 2], call: 6, ret: 7 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.equal(result.anomalies.length, 1);
    const [anomaly] = result.anomalies;
    assert.equal(anomaly?.kind, "lost-add");
    // The read (invoke #4) and the add it misses (#2).
    assert.deepEqual(anomaly?.events, [4, 2]);
    assert.deepEqual(anomaly?.window, { from: 2, to: 5 });
    assert.equal(result.stats.lost, 1);
  });

  it("reports acknowledged adds missing from the final read, not ones racing it", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1 },
        { p: 1, f: "add", value: 2, call: 2, ret: 3 },
        { p: 3, f: "add", value: 3, call: 2, ret: 9 },
        { p: 2, f: "read", out: [1], call: 5, ret: 10 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.equal(result.anomalies.length, 1);
    assert.match(result.anomalies[0]?.message ?? "", /final read .* misses 1 acknowledged add: 2$/);
  });

  it("reports a failed add whose element appears, and an indeterminate add seen then lost", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1, type: "fail" },
        { p: 3, f: "add", value: 2, call: 0, ret: 1, type: "info" },
        { p: 2, f: "read", out: [1, 2], call: 2, ret: 3 },
        { p: 2, f: "read", out: [], call: 4, ret: 5 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.anomalies.map((anomaly) => anomaly.kind),
      ["failed-add-present", "lost-element"],
    );
    assert.match(result.anomalies[1]?.message ?? "", /misses 2, which the earlier read/);
  });

  it("reports elements nobody added, and duplicates", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1 },
        { p: 2, f: "read", out: [1, 7], call: 2, ret: 3 },
        { p: 2, f: "read", out: [1, 1], call: 4, ret: 5 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.anomalies.map((anomaly) => [anomaly.kind, anomaly.events]),
      [
        ["unexpected-element", [2]],
        ["duplicate-element", [4]],
      ],
    );
  });

  it("checks each key's set on its own", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", key: "a", value: 1, call: 0, ret: 1 },
        { p: 2, f: "add", key: "b", value: 1, call: 0, ret: 1 },
        { p: 1, f: "read", key: "a", out: [1], call: 2, ret: 3 },
        { p: 2, f: "read", key: "b", out: [], call: 2, ret: 3 },
      ]),
    );
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.anomalies.map((anomaly) => anomaly.key),
      ["b"],
    );
  });

  it("is unknown with acknowledged adds and no successful read", () => {
    const result = checkSet(
      history([
        { p: 1, f: "add", value: 1, call: 0, ret: 1 },
        { p: 2, f: "read", call: 2, ret: 3, type: "fail" },
      ]),
    );
    assert.equal(result.verdict, "unknown");
  });

  it("accepts every history of a real set", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 6 }), (seed, processes) => {
        const random = prngFromSeed(seed);
        const specs: OpSpec[] = [];
        const clock = new Array<number>(processes).fill(0);
        const effects: { time: number; value?: number; spec?: number }[] = [];
        let next = 1;
        for (let n = 0; n < 60; n++) {
          const p = random.int(processes);
          const call = (clock[p] as number) + random.int(3);
          const ret = call + 1 + random.int(8);
          clock[p] = ret;
          const effect = call + random.float() * (ret - call);
          if (random.chance(0.7)) {
            const lost = random.chance(0.1);
            const applied = !lost || random.chance(0.5);
            specs.push({
              p: lost ? 100 + n : p,
              f: "add",
              value: next,
              call,
              ret,
              type: lost ? "info" : "ok",
            });
            if (applied) effects.push({ time: effect, value: next });
            next++;
          } else {
            specs.push({ p, f: "read", call, ret, out: [] });
            effects.push({ time: effect, spec: specs.length - 1 });
          }
        }
        // A final read after everything.
        const end = Math.max(...clock) + 100;
        specs.push({ p: 0, f: "read", call: end, ret: end + 1, out: [] });
        effects.push({ time: end, spec: specs.length - 1 });
        const contents: number[] = [];
        for (const effect of effects.sort((a, b) => a.time - b.time)) {
          if (effect.value !== undefined) contents.push(effect.value);
          else
            specs[effect.spec as number] = {
              ...(specs[effect.spec as number] as OpSpec),
              out: [...contents],
            };
        }
        const result = checkSet(history(specs));
        assert.equal(result.verdict, "valid", result.anomalies[0]?.message);
      }),
      { numRuns: 200 },
    );
  });
});
