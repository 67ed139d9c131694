// Goal: vector clocks form a join-semilattice under merge and compare agrees with the pointwise
// definition of happened-before; method: fast-check properties over small clocks drawn from a node
// pool that includes prototype-like ids.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isBrigadeError } from "../lib/errors.js";
import * as vc from "./vector-clock.js";

const numRuns = 300;

/** Includes ids that are Object.prototype members, which a naive `record[id]` would misread. */
const nodePool = ["a", "b", "c", "d", "10", "2", "__proto__", "constructor", "toString"] as const;
const nodeArb = fc.constantFrom(...nodePool);

/** Entries are built by hand and go through `parse`, the same path as a decoded message. */
const clockArb: fc.Arbitrary<vc.VectorClock> = fc
  .array(fc.tuple(nodeArb, fc.nat({ max: 4 })), { maxLength: 6 })
  .map((entries) => vc.parse(Object.fromEntries(entries)));

const flipped = {
  before: "after",
  after: "before",
  equal: "equal",
  concurrent: "concurrent",
} as const;

/** The textbook definition, over every node either clock mentions. */
function oracleCompare(a: vc.VectorClock, b: vc.VectorClock): vc.Ordering {
  const ids = new Set([...Object.keys(a), ...Object.keys(b)]);
  const aLessOrEqual = [...ids].every((id) => vc.get(a, id) <= vc.get(b, id));
  const bLessOrEqual = [...ids].every((id) => vc.get(b, id) <= vc.get(a, id));
  if (aLessOrEqual && bLessOrEqual) return "equal";
  if (aLessOrEqual) return "before";
  if (bLessOrEqual) return "after";
  return "concurrent";
}

describe("vector clock merge", () => {
  it("is commutative", () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        assert.deepStrictEqual(vc.merge(a, b), vc.merge(b, a));
      }),
      { numRuns },
    );
  });

  it("is associative", () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        assert.deepStrictEqual(vc.merge(vc.merge(a, b), c), vc.merge(a, vc.merge(b, c)));
      }),
      { numRuns },
    );
  });

  it("is idempotent and has the empty clock as identity", () => {
    fc.assert(
      fc.property(clockArb, (a) => {
        assert.deepStrictEqual(vc.merge(a, a), a);
        assert.deepStrictEqual(vc.merge(a, vc.emptyVectorClock), a);
      }),
      { numRuns },
    );
  });

  it("is the least upper bound: both inputs are before or equal to it", () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const merged = vc.merge(a, b);
        assert.ok(["before", "equal"].includes(vc.compare(a, merged)));
        assert.ok(["before", "equal"].includes(vc.compare(b, merged)));
        for (const id of nodePool) {
          assert.equal(vc.get(merged, id), Math.max(vc.get(a, id), vc.get(b, id)));
        }
      }),
      { numRuns },
    );
  });
});

describe("vector clock compare", () => {
  it("agrees with the pointwise oracle", () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        assert.equal(vc.compare(a, b), oracleCompare(a, b));
      }),
      { numRuns },
    );
  });

  it("is antisymmetric: swapping the arguments swaps before and after", () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        assert.equal(vc.compare(b, a), flipped[vc.compare(a, b)]);
        assert.equal(vc.happenedBefore(a, b), vc.compare(b, a) === "after");
      }),
      { numRuns },
    );
  });

  it("says equal exactly when the clocks are structurally equal and encode the same", () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const equal = vc.compare(a, b) === "equal";
        assert.equal(equal, vc.encode(a) === vc.encode(b));
        if (equal) assert.deepStrictEqual(a, b);
        else assert.notDeepStrictEqual(a, b);
      }),
      { numRuns },
    );
  });

  it("treats zero entries as missing", () => {
    assert.equal(vc.compare({ a: 0, b: 1 }, { b: 1 }), "equal");
    assert.equal(vc.compare({ a: 0 }, vc.emptyVectorClock), "equal");
  });
});

describe("vector clock increment", () => {
  it("advances exactly one entry by one, giving a later clock", () => {
    fc.assert(
      fc.property(clockArb, nodeArb, (a, id) => {
        const next = vc.increment(a, id);
        assert.equal(vc.compare(a, next), "before");
        for (const other of nodePool) {
          assert.equal(vc.get(next, other), vc.get(a, other) + (other === id ? 1 : 0));
        }
      }),
      { numRuns },
    );
  });

  it("keeps prototype-like node ids as ordinary own entries", () => {
    const clock = vc.increment(vc.increment(vc.emptyVectorClock, "__proto__"), "__proto__");
    assert.equal(vc.get(clock, "__proto__"), 2);
    assert.equal(Object.getPrototypeOf(clock), Object.prototype);
    assert.deepStrictEqual(Object.keys(clock), ["__proto__"]);
    assert.equal(vc.get(vc.emptyVectorClock, "constructor"), 0);
  });

  it("returns frozen clocks and never mutates its input", () => {
    const a = vc.parse({ a: 1 });
    const next = vc.increment(a, "a");
    assert.ok(Object.isFrozen(next));
    assert.deepStrictEqual(a, { a: 1 });
  });
});

describe("vector clock prune", () => {
  it("keeps only the given nodes, with their counts unchanged", () => {
    fc.assert(
      fc.property(clockArb, fc.uniqueArray(nodeArb), (a, keep) => {
        const pruned = vc.prune(a, keep);
        for (const id of Object.keys(pruned))
          assert.ok(keep.includes(id as (typeof nodePool)[number]));
        for (const id of nodePool) {
          assert.equal(vc.get(pruned, id), keep.includes(id) ? vc.get(a, id) : 0);
        }
        assert.ok(["before", "equal"].includes(vc.compare(pruned, a)));
      }),
      { numRuns },
    );
  });
});

describe("vector clock encode, format and parse", () => {
  it("encodes deterministically whatever the insertion order, and drops zeros", () => {
    const one = vc.parse({ b: 1, a: 2, c: 0 });
    const two = vc.parse({ a: 2, b: 1 });
    assert.equal(vc.encode(one), '[["a",2],["b",1]]');
    assert.equal(vc.encode(one), vc.encode(two));
    assert.equal(vc.format(one), "{a:2, b:1}");
    assert.equal(vc.format(vc.emptyVectorClock), "{}");
  });

  it("refuses malformed input with InvalidArgument", () => {
    const tooMany = Object.fromEntries(
      Array.from({ length: vc.vectorClockEntriesMax + 1 }, (_, index) => [`n${index}`, 1]),
    );
    for (const bad of [
      null,
      3,
      "a",
      [],
      { a: -1 },
      { a: 1.5 },
      { a: Number.NaN },
      { a: "1" },
      tooMany,
    ]) {
      assert.throws(
        () => vc.parse(bad),
        (error: unknown) => isBrigadeError(error, "InvalidArgument"),
        JSON.stringify(bad),
      );
    }
  });
});
