// Goal: the hybrid logical clock follows the update rules of Kulkarni et al. 2014, stays monotonic,
// and enforces the offset rule without side effects; method: table tests of each rule plus fast-
// check properties over physical clocks that jump both ways.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isBrigadeError } from "../lib/errors.js";
import { compareHlc, type HlcTimestamp, HybridLogicalClock, hlcLogicalMax } from "./hlc.js";

const numRuns = 300;

/** A clock whose physical time the test sets directly. */
function makeClock(options: { physicalMs: number; maxOffsetMs: number }) {
  const physical = { nowMs: options.physicalMs };
  const clock = new HybridLogicalClock({
    physicalNowMs: () => physical.nowMs,
    maxOffsetMs: options.maxOffsetMs,
  });
  return { clock, physical };
}

function stamp(wallMs: number, logical: number): HlcTimestamp {
  return { wallMs, logical };
}

describe("compareHlc", () => {
  const cases: [HlcTimestamp, HlcTimestamp, -1 | 0 | 1][] = [
    [stamp(1, 0), stamp(1, 0), 0],
    [stamp(1, 5), stamp(2, 0), -1], // wall time dominates the counter
    [stamp(2, 0), stamp(1, 9), 1],
    [stamp(7, 1), stamp(7, 2), -1],
    [stamp(7, 3), stamp(7, 2), 1],
  ];
  for (const [a, b, expected] of cases) {
    it(`(${a.wallMs},${a.logical}) vs (${b.wallMs},${b.logical}) is ${expected}`, () => {
      assert.equal(compareHlc(a, b), expected);
      assert.equal(compareHlc(b, a), -expected || 0);
    });
  }
});

describe("HybridLogicalClock.now", () => {
  it("follows physical time and counts events within one millisecond", () => {
    const { clock, physical } = makeClock({ physicalMs: 100, maxOffsetMs: 50 });
    assert.deepStrictEqual(clock.peek(), stamp(0, 0));
    assert.deepStrictEqual(clock.now(), stamp(100, 0));
    assert.deepStrictEqual(clock.now(), stamp(100, 1)); // same ms: c + 1
    physical.nowMs = 101.9; // fractions are floored
    assert.deepStrictEqual(clock.now(), stamp(101, 0)); // pt moved past l: c resets
    physical.nowMs = 90; // physical clock stepped back: l holds, c counts
    assert.deepStrictEqual(clock.now(), stamp(101, 1));
    assert.deepStrictEqual(clock.peek(), stamp(101, 1));
  });

  it("is strictly increasing and l = max(pt seen) for any physical clock, even one that jumps back", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 1_000 }), { minLength: 1, maxLength: 60, size: "medium" }),
        (readings) => {
          const { clock, physical } = makeClock({ physicalMs: 0, maxOffsetMs: 0 });
          let previous = clock.peek();
          let physicalMaxMs = 0;
          for (const reading of readings) {
            physical.nowMs = reading;
            physicalMaxMs = Math.max(physicalMaxMs, reading);
            const next = clock.now();
            assert.equal(compareHlc(previous, next), -1);
            assert.equal(next.wallMs, physicalMaxMs);
            assert.equal(next.logical, next.wallMs === previous.wallMs ? previous.logical + 1 : 0);
            assert.deepStrictEqual(clock.peek(), next);
            previous = next;
          }
        },
      ),
      { numRuns },
    );
  });
});

describe("HybridLogicalClock.update", () => {
  // Each row puts the clock at `local` with physical time `physicalMs`, receives `remote`,
  // and names the paper's case that supplies l.
  const cases: {
    readonly name: string;
    readonly local: HlcTimestamp;
    readonly physicalMs: number;
    readonly remote: HlcTimestamp;
    readonly expected: HlcTimestamp;
  }[] = [
    {
      name: "l = l' = l.m: c = max(c, c.m) + 1",
      local: stamp(100, 3),
      physicalMs: 90,
      remote: stamp(100, 7),
      expected: stamp(100, 8),
    },
    {
      name: "l = l' = l.m with the local counter larger",
      local: stamp(100, 9),
      physicalMs: 90,
      remote: stamp(100, 2),
      expected: stamp(100, 10),
    },
    {
      name: "l = l' only: c = c + 1",
      local: stamp(100, 3),
      physicalMs: 90,
      remote: stamp(95, 40),
      expected: stamp(100, 4),
    },
    {
      name: "l = l.m only: c = c.m + 1",
      local: stamp(100, 3),
      physicalMs: 105,
      remote: stamp(110, 6),
      expected: stamp(110, 7),
    },
    {
      name: "l = pt: c = 0",
      local: stamp(100, 3),
      physicalMs: 120,
      remote: stamp(110, 6),
      expected: stamp(120, 0),
    },
  ];
  for (const row of cases) {
    it(row.name, () => {
      const { clock, physical } = makeClock({ physicalMs: row.local.wallMs, maxOffsetMs: 50 });
      // Reach `local`: adopt it from a remote one tick behind, at physical time below it.
      clock.update(stamp(row.local.wallMs, row.local.logical - 1));
      assert.deepStrictEqual(clock.peek(), row.local);
      physical.nowMs = row.physicalMs;
      assert.deepStrictEqual(clock.update(row.remote), row.expected);
      assert.deepStrictEqual(clock.peek(), row.expected);
    });
  }

  it("returns a timestamp above both the previous local one and the remote one", () => {
    const actionArb = fc.record({
      advanceMs: fc.integer({ min: -20, max: 20 }),
      remote: fc.option(
        fc.record({ aheadMs: fc.integer({ min: -40, max: 30 }), logical: fc.nat({ max: 5 }) }),
      ),
    });
    fc.assert(
      fc.property(
        fc.array(actionArb, { minLength: 1, maxLength: 60, size: "medium" }),
        (actions) => {
          const { clock, physical } = makeClock({ physicalMs: 1_000, maxOffsetMs: 30 });
          for (const action of actions) {
            physical.nowMs = Math.max(0, physical.nowMs + action.advanceMs);
            const previous = clock.peek();
            if (action.remote === null) {
              assert.equal(compareHlc(previous, clock.now()), -1);
              continue;
            }
            const remote = stamp(
              Math.max(0, physical.nowMs + action.remote.aheadMs),
              action.remote.logical,
            );
            const next = clock.update(remote);
            assert.equal(compareHlc(previous, next), -1);
            assert.equal(compareHlc(remote, next), -1);
            assert.equal(next.wallMs, Math.max(previous.wallMs, remote.wallMs, physical.nowMs));
          }
          assert.equal(clock.rejectedCount, 0);
        },
      ),
      { numRuns },
    );
  });
});

describe("HybridLogicalClock offset rule", () => {
  it("rejects a remote timestamp too far ahead, counts it, leaves state unchanged; accepts one exactly at the bound", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 1_000_000 }),
        fc.nat({ max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.nat({ max: 100 }),
        fc.nat({ max: 5 }),
        (physicalMs, maxOffsetMs, excessMs, logical, eventsBefore) => {
          const { clock } = makeClock({ physicalMs, maxOffsetMs });
          for (let index = 0; index < eventsBefore; index++) clock.now();
          const before = clock.peek();

          const tooFar = stamp(physicalMs + maxOffsetMs + excessMs, logical);
          assert.throws(
            () => clock.update(tooFar),
            (error: unknown) =>
              isBrigadeError(error, "ClockOffsetExceeded") && error.retriable === false,
          );
          assert.equal(clock.rejectedCount, 1);
          assert.strictEqual(clock.peek(), before, "a rejected update must not change the clock");

          const atBound = stamp(physicalMs + maxOffsetMs, logical);
          const accepted = clock.update(atBound);
          assert.equal(compareHlc(atBound, accepted), -1);
          assert.equal(compareHlc(before, accepted), -1);
          assert.equal(accepted.wallMs, atBound.wallMs);
          assert.equal(clock.rejectedCount, 1);
        },
      ),
      { numRuns },
    );
  });

  it("a rejected update leaves the next now() exactly where it would have been", () => {
    const { clock } = makeClock({ physicalMs: 500, maxOffsetMs: 100 });
    clock.now();
    assert.throws(() => clock.update(stamp(601, 0)));
    assert.deepStrictEqual(clock.now(), stamp(500, 1));
  });
});

describe("HybridLogicalClock input validation", () => {
  const malformed: unknown[] = [
    null,
    undefined,
    42,
    {},
    { wallMs: 10 },
    { wallMs: -1, logical: 0 },
    { wallMs: 10.5, logical: 0 },
    { wallMs: Number.NaN, logical: 0 },
    { wallMs: Number.POSITIVE_INFINITY, logical: 0 },
    { wallMs: Number.MAX_SAFE_INTEGER + 1, logical: 0 },
    { wallMs: "10", logical: 0 },
    { wallMs: 10, logical: -1 },
    { wallMs: 10, logical: 0.5 },
    { wallMs: 10, logical: hlcLogicalMax + 1 },
  ];
  for (const remote of malformed) {
    it(`rejects ${JSON.stringify(remote) ?? String(remote)} with InvalidArgument, state unchanged`, () => {
      const { clock } = makeClock({ physicalMs: 100, maxOffsetMs: 1_000 });
      const before = clock.now();
      assert.throws(
        () => clock.update(remote as HlcTimestamp),
        (error: unknown) => isBrigadeError(error, "InvalidArgument") && !error.retriable,
      );
      assert.strictEqual(clock.peek(), before);
      assert.equal(clock.rejectedCount, 0, "malformed is not the same as too far ahead");
    });
  }

  it("refuses a bad maxOffsetMs with InvalidConfig", () => {
    for (const maxOffsetMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new HybridLogicalClock({ physicalNowMs: () => 0, maxOffsetMs }),
        (error: unknown) => isBrigadeError(error, "InvalidConfig"),
      );
    }
  });

  it("carries into wallMs instead of passing hlcLogicalMax", () => {
    const { clock } = makeClock({ physicalMs: 100, maxOffsetMs: 0 });
    assert.deepStrictEqual(clock.update(stamp(100, hlcLogicalMax)), stamp(101, 0));
    assert.deepStrictEqual(clock.now(), stamp(101, 1));
  });
});
