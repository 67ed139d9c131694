/**
 * Tests of the linearizability checker. Method: hand-made histories with a known answer
 * (accepted, rejected, and the failing window named); properties over histories simulated
 * from a real linearizable register (always valid; one read changed to a value never written
 * makes them invalid); and small random histories, valid or not, judged against a brute-force
 * search over every order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type Prng, prngFromSeed } from "../lib/prng.js";
import { historyOf, type OpSpec } from "../testkit/histories.js";
import { type HistoryEvent, type Operation, pairOperations } from "./history.js";
import { checkLinearizable, checkLinearizableOperations, type Model } from "./linearizability.js";
import { appendModel, keyedModel, type RegisterValue, registerModel } from "./models.js";

const history = (specs: readonly OpSpec[]) => historyOf(specs, "x");

const register = registerModel();
const check = (specs: readonly OpSpec[], options = {}) =>
  checkLinearizable(history(specs), register, options);

describe("linearizability: registers, by hand", () => {
  it("accepts a sequential history and an empty one", () => {
    assert.equal(check([]).verdict, "valid");
    const result = check([
      { p: 1, f: "read", out: null, call: 0, ret: 1 },
      { p: 1, f: "write", value: 1, call: 2, ret: 3 },
      { p: 2, f: "read", out: 1, call: 4, ret: 5 },
    ]);
    assert.equal(result.verdict, "valid");
    assert.equal(result.checker, "linearizable");
    assert.deepEqual(result.perKey[0]?.linearizedPrefix, [0, 2, 4]);
  });

  it("accepts a read concurrent with a write seeing either value", () => {
    for (const out of [null, 1]) {
      const result = check([
        { p: 1, f: "write", value: 1, call: 0, ret: 10 },
        { p: 2, f: "read", out, call: 2, ret: 5 },
      ]);
      assert.equal(result.verdict, "valid", `read ${out}`);
    }
  });

  it("accepts reads of either of two concurrent writes, in either order", () => {
    const result = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 10 },
      { p: 2, f: "write", value: 2, call: 0, ret: 10 },
      { p: 3, f: "read", out: 2, call: 1, ret: 3 },
      { p: 3, f: "read", out: 1, call: 4, ret: 6 },
    ]);
    assert.equal(result.verdict, "valid");
    // ...but not flipping back: 2 then 1 then 2 needs a third write.
    const flip = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 10 },
      { p: 2, f: "write", value: 2, call: 0, ret: 10 },
      { p: 3, f: "read", out: 2, call: 1, ret: 2 },
      { p: 3, f: "read", out: 1, call: 3, ret: 4 },
      { p: 3, f: "read", out: 2, call: 5, ret: 6 },
    ]);
    assert.equal(flip.verdict, "invalid");
  });

  it("rejects a stale read and names the read, its window and the state", () => {
    const result = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 1, f: "write", value: 2, call: 2, ret: 3 },
      { p: 2, f: "read", out: 1, call: 4, ret: 5 },
    ]);
    assert.equal(result.verdict, "invalid");
    const [anomaly] = result.anomalies;
    assert.equal(anomaly?.kind, "nonlinearizable");
    assert.equal(anomaly?.key, "x");
    assert.deepEqual(anomaly?.events, [4]);
    assert.deepEqual(anomaly?.window, { from: 4, to: 5 });
    assert.match(anomaly?.message ?? "", /p2 read → 1 \[#4\] cannot be linearized/);
    assert.match(anomaly?.message ?? "", /register at 2/);
    const detail = result.perKey[0];
    assert.deepEqual(detail?.linearizedPrefix, [0, 2]);
    assert.equal(detail?.failedOperation, 4);
  });

  it("rejects a lost write and a read of a value never written", () => {
    const lost = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 2, f: "read", out: null, call: 2, ret: 3 },
    ]);
    assert.equal(lost.verdict, "invalid");
    const invented = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 5 },
      { p: 2, f: "read", out: 7, call: 1, ret: 3 },
    ]);
    assert.equal(invented.verdict, "invalid");
    assert.deepEqual(invented.anomalies[0]?.events, [1, 0]);
  });

  it("rejects a CAS that succeeded twice from the same value", () => {
    const base: OpSpec[] = [{ p: 1, f: "write", value: 0, call: 0, ret: 1 }];
    const sequential = check([
      ...base,
      { p: 2, f: "cas", value: [0, 1], call: 2, ret: 3 },
      { p: 3, f: "cas", value: [0, 1], call: 4, ret: 5 },
    ]);
    assert.equal(sequential.verdict, "invalid");
    const concurrent = check([
      ...base,
      { p: 2, f: "cas", value: [0, 1], call: 2, ret: 5 },
      { p: 3, f: "cas", value: [0, 1], call: 3, ret: 6 },
    ]);
    assert.equal(concurrent.verdict, "invalid");
    // A write back to 0 in between makes it fine.
    const rewritten = check([
      ...base,
      { p: 2, f: "cas", value: [0, 1], call: 2, ret: 5 },
      { p: 3, f: "cas", value: [0, 1], call: 3, ret: 6 },
      { p: 4, f: "write", value: 0, call: 3, ret: 6 },
    ]);
    assert.equal(rewritten.verdict, "valid");
  });

  it("counts a counter incremented by CAS", () => {
    const specs: OpSpec[] = [{ p: 0, f: "write", value: 0, call: 0, ret: 1 }];
    for (let n = 0; n < 20; n++)
      specs.push({ p: 1 + (n % 3), f: "cas", value: [n, n + 1], call: 2 + n, ret: 2.5 + n });
    specs.push({ p: 9, f: "read", out: 20, call: 30, ret: 31 });
    assert.equal(check(specs).verdict, "valid");
    specs[specs.length - 1] = { p: 9, f: "read", out: 19, call: 30, ret: 31 };
    assert.equal(check(specs).verdict, "invalid");
  });

  it("drops failed operations and indeterminate reads", () => {
    const result = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 2, f: "write", value: 5, call: 2, ret: 3, type: "fail" },
      { p: 3, f: "read", call: 2, ret: 3, type: "info" },
      { p: 4, f: "cas", value: [7, 8], call: 2, ret: 3, type: "fail" },
      { p: 5, f: "read", out: 1, call: 4, ret: 5 },
    ]);
    assert.equal(result.verdict, "valid");
    assert.equal(result.stats.dropped, 3);
    // A failed write seen by a read is a violation: it did not happen.
    const seen = check([
      { p: 2, f: "write", value: 5, call: 0, ret: 1, type: "fail" },
      { p: 5, f: "read", out: 5, call: 4, ret: 5 },
    ]);
    assert.equal(seen.verdict, "invalid");
  });
});

describe("linearizability: indeterminate operations", () => {
  const writes: OpSpec[] = [
    { p: 1, f: "write", value: 1, call: 0, ret: 1 },
    { p: 2, f: "write", value: 2, call: 2, ret: 3, type: "info" },
  ];

  it("accepts a later read that sees the info write, and one that does not", () => {
    for (const out of [1, 2]) {
      const result = check([...writes, { p: 3, f: "read", out, call: 10, ret: 11 }]);
      assert.equal(result.verdict, "valid", `read ${out}`);
    }
    // Also with no completion at all (the history ended first), seen much later.
    const unfinished = check([
      writes[0] as OpSpec,
      { p: 2, f: "write", value: 2, call: 2 },
      { p: 3, f: "read", out: 1, call: 10, ret: 11 },
      { p: 3, f: "read", out: 2, call: 50, ret: 51 },
    ]);
    assert.equal(unfinished.verdict, "valid");
  });

  it("rejects seeing the info write and then not seeing it", () => {
    const result = check([
      ...writes,
      { p: 3, f: "read", out: 2, call: 10, ret: 11 },
      { p: 3, f: "read", out: 1, call: 12, ret: 13 },
    ]);
    assert.equal(result.verdict, "invalid");
    const anomaly = result.anomalies[0];
    assert.deepEqual(anomaly?.events, [6]);
    assert.match(anomaly?.message ?? "", /read → 1 \[#6\] cannot be linearized/);
    assert.match(anomaly?.message ?? "", /write 2 \(info\)/);
    assert.deepEqual(result.perKey[0]?.linearizedPrefix, [0, 2, 4]);
  });

  it("may apply an info CAS whose compare holds, and never one whose compare fails", () => {
    const base: OpSpec[] = [
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 2, f: "cas", value: [1, 3], call: 2, ret: 3, type: "info" },
    ];
    for (const out of [1, 3])
      assert.equal(check([...base, { p: 3, f: "read", out, call: 5, ret: 6 }]).verdict, "valid");
    const wrongCompare = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 2, f: "cas", value: [2, 3], call: 2, ret: 3, type: "info" },
      { p: 3, f: "read", out: 3, call: 5, ret: 6 },
    ]);
    assert.equal(wrongCompare.verdict, "invalid");
    // Chains of info CASes: 1 → 3 → 4, seen at the end.
    const chain = check([
      ...base,
      { p: 4, f: "cas", value: [3, 4], call: 2, ret: 3, type: "info" },
      { p: 3, f: "read", out: 4, call: 5, ret: 6 },
    ]);
    assert.equal(chain.verdict, "valid");
  });

  it("never needs an info op to finish, however many are pending", () => {
    const specs: OpSpec[] = [{ p: 0, f: "write", value: 0, call: 0, ret: 1 }];
    for (let n = 1; n <= 200; n++) {
      specs.push({ p: 1000 + n, f: "write", value: n, call: n, type: "info" });
      specs.push({ p: 1, f: "read", out: 0, call: n + 0.5, ret: n + 0.6 });
    }
    const result = check(specs);
    assert.equal(result.verdict, "valid");
    assert.ok((result.stats.steps ?? 0) < 5_000, `${result.stats.steps} steps`);
  });
});

describe("linearizability: keys, windows and budgets", () => {
  it("judges each key on its own", () => {
    const result = check([
      { p: 1, f: "write", key: "a", value: 1, call: 0, ret: 1 },
      { p: 2, f: "write", key: "b", value: 1, call: 0, ret: 1 },
      { p: 1, f: "read", key: "a", out: 1, call: 2, ret: 3 },
      { p: 2, f: "read", key: "b", out: null, call: 2, ret: 3 },
      { p: 3, f: "read", key: "c", out: null, call: 2, ret: 3 },
    ]);
    assert.equal(result.verdict, "invalid");
    assert.deepEqual(
      result.perKey.map((detail) => [detail.key, detail.verdict]),
      [
        ["a", "valid"],
        ["b", "invalid"],
        ["c", "valid"],
      ],
    );
    assert.equal(result.anomalies.length, 1);
    assert.equal(result.anomalies[0]?.key, "b");
    assert.equal(result.stats.keysInvalid, 1);
  });

  it("names the failing op and the ops concurrent with it, not the rest", () => {
    const result = check([
      { p: 1, f: "write", value: 1, call: 0, ret: 1 },
      { p: 1, f: "write", value: 2, call: 2, ret: 3 },
      { p: 1, f: "write", value: 3, call: 4, ret: 5 },
      // Concurrent with the bad read: a write of 4 and a read of 3 or 4.
      { p: 2, f: "write", value: 4, call: 6, ret: 12 },
      { p: 3, f: "read", out: 4, call: 7, ret: 13 },
      // The bad read: 2 was overwritten by 3 before it began.
      { p: 4, f: "read", out: 2, call: 8, ret: 10 },
    ]);
    assert.equal(result.verdict, "invalid");
    const anomaly = result.anomalies[0];
    assert.ok(anomaly !== undefined);
    // Invokes: w1 #0, w2 #2, w3 #4, w4 #6, read4 #7, read2 #8.
    assert.equal(anomaly.events[0], 8);
    assert.deepEqual(
      [...anomaly.events].sort((a, b) => a - b),
      [6, 7, 8],
    );
    assert.deepEqual(anomaly.window, { from: 6, to: 13 });
    assert.deepEqual(result.perKey[0]?.linearizedPrefix.slice(0, 3), [0, 2, 4]);
  });

  it("gives up with unknown on a tiny budget, quickly", () => {
    // n concurrent writes, each read by a concurrent read, and a read of a value none wrote:
    // every reachable state must be ruled out before the answer is invalid.
    const pathological = (n: number) => {
      const specs: OpSpec[] = [];
      for (let v = 0; v < n; v++) {
        specs.push({ p: v, f: "write", value: v, call: 0, ret: 100 });
        specs.push({ p: 100 + v, f: "read", out: v, call: 0, ret: 100 });
      }
      specs.push({ p: 999, f: "read", out: 999, call: 50, ret: 60 });
      return specs;
    };
    const result = check(pathological(16), { maxStepsPerKey: 1_000 });
    assert.equal(result.verdict, "unknown");
    assert.equal(result.perKey[0]?.budgetExhausted, "steps");
    assert.equal(result.anomalies.length, 0);
    assert.ok((result.stats.steps ?? 0) <= 1_001);
    const states = check(pathological(16), { maxStatesPerKey: 100 });
    assert.equal(states.verdict, "unknown");
    assert.equal(states.perKey[0]?.budgetExhausted, "states");
    // With room, the memo settles a smaller one.
    const settled = check(pathological(6));
    assert.equal(settled.verdict, "invalid");
    assert.ok((settled.stats.statesExplored ?? 0) > 100);
  });

  it("stops when the caller says so, and leaves the rest unknown", () => {
    let polls = 0;
    const result = check(
      [
        { p: 1, f: "write", key: "a", value: 1, call: 0, ret: 1 },
        { p: 1, f: "write", key: "b", value: 1, call: 2, ret: 3 },
      ],
      { shouldStop: () => ++polls > 1 },
    );
    assert.equal(result.verdict, "unknown");
    assert.deepEqual(
      result.perKey.map((detail) => [detail.key, detail.verdict]),
      [
        ["a", "valid"],
        ["b", "unknown"],
      ],
    );
  });

  it("checks the whole history as one search with a keyed model", () => {
    const specs: OpSpec[] = [
      { p: 1, f: "write", key: "a", value: 1, call: 0, ret: 2 },
      { p: 2, f: "write", key: "b", value: 2, call: 1, ret: 3 },
      { p: 3, f: "read", key: "a", out: 1, call: 4, ret: 5 },
      { p: 4, f: "read", key: "b", out: 2, call: 4, ret: 5 },
    ];
    const whole = checkLinearizable(history(specs), keyedModel(register), { partition: "none" });
    assert.equal(whole.verdict, "valid");
    assert.equal(whole.stats.keys, 1);
    specs[3] = { p: 4, f: "read", key: "b", out: 1, call: 4, ret: 5 };
    assert.equal(
      checkLinearizable(history(specs), keyedModel(register), { partition: "none" }).verdict,
      "invalid",
    );
  });
});

describe("linearizability: lists", () => {
  const list = appendModel();
  it("accepts appends seen in their order and rejects reordering", () => {
    const specs: OpSpec[] = [
      { p: 1, f: "append", value: 1, call: 0, ret: 4 },
      { p: 2, f: "append", value: 2, call: 0, ret: 4 },
      { p: 3, f: "read", out: [2, 1], call: 5, ret: 6 },
    ];
    assert.equal(checkLinearizable(history(specs), list).verdict, "valid");
    specs.push({ p: 3, f: "read", out: [1, 2], call: 7, ret: 8 });
    assert.equal(checkLinearizable(history(specs), list).verdict, "invalid");
  });
});

// ---------------------------------------------------------------------------------------
// Simulated histories: a real register, each op taking effect at one instant in its interval.

interface SimulationOptions {
  readonly processes: number;
  readonly operations: number;
  readonly keys: number;
  /** Share of writes and CASes whose completion is lost (info); half of those took effect. */
  readonly infoRate: number;
}

/** A linearizable history of registers, with the effect order it was generated from. */
function simulateRegisters(random: Prng, options: SimulationOptions): HistoryEvent[] {
  interface SimOp {
    client: number;
    process: number;
    f: string;
    key: string;
    value: unknown;
    out: unknown;
    call: number;
    ret: number;
    effect: number;
    type: "ok" | "fail" | "info";
    last: boolean;
  }
  const ops: SimOp[] = [];
  const clock = new Array<number>(options.processes).fill(0);
  const process = Array.from({ length: options.processes }, (_, i) => i);
  let nextProcess = options.processes;
  let nextValue = 1;
  for (let n = 0; n < options.operations; n++) {
    const client = random.int(options.processes);
    const call = (clock[client] as number) + random.int(3);
    const ret = call + 1 + random.int(10);
    clock[client] = ret;
    const roll = random.float();
    const f = roll < 0.5 ? "read" : roll < 0.8 ? "write" : "cas";
    const lostReply = f !== "read" && random.chance(options.infoRate);
    const tookEffect = !lostReply || random.chance(0.5);
    ops.push({
      client,
      process: process[client] as number,
      f,
      key: `k${random.int(options.keys)}`,
      value: f === "write" ? nextValue++ : null,
      out: undefined,
      call,
      ret,
      effect: tookEffect ? call + random.float() * (ret - call) : Number.POSITIVE_INFINITY,
      type: lostReply ? "info" : "ok",
      last: false,
    });
    // After an info the client goes on as a new process.
    if (lostReply) process[client] = nextProcess++;
  }
  const state = new Map<string, RegisterValue>();
  for (const op of [...ops].sort((a, b) => a.effect - b.effect)) {
    const current = state.get(op.key) ?? null;
    if (op.f === "read") op.out = current;
    else if (op.f === "cas") {
      const expected = random.chance(0.6) ? current : random.int(nextValue);
      op.value = [expected, nextValue++];
      if (expected !== current) {
        if (op.type === "ok") op.type = "fail";
        continue;
      }
    }
    if (op.effect === Number.POSITIVE_INFINITY) continue;
    if (op.f === "write") state.set(op.key, op.value as number);
    if (op.f === "cas") state.set(op.key, (op.value as [number, number])[1]);
  }
  const specs: OpSpec[] = ops.map((op) => ({
    p: op.process,
    f: op.f,
    key: op.key,
    value: op.value ?? null,
    out: op.out,
    call: op.call,
    // Some info ops never complete in the history at all.
    ...(op.type === "info" && random.chance(0.3) ? {} : { ret: op.ret }),
    type: op.type,
  }));
  return history(specs);
}

/** Replaces one ok read's result (by its position among ok reads) with `value`. */
function withReadResult(
  events: readonly HistoryEvent[],
  which: number,
  value: unknown,
): HistoryEvent[] | null {
  const reads = pairOperations(events).filter((op) => op.f === "read" && op.type === "ok");
  if (reads.length === 0) return null;
  const target = reads[which % reads.length] as Operation;
  return events.map((event) =>
    event.index === target.completeIndex ? { ...event, value } : event,
  );
}

describe("linearizability: properties", () => {
  const simulation = fc.record({
    seed: fc.integer(),
    processes: fc.integer({ min: 1, max: 8 }),
    operations: fc.integer({ min: 1, max: 150 }),
    keys: fc.integer({ min: 1, max: 3 }),
    infoRate: fc.constantFrom(0, 0.05, 0.3),
  });

  it("accepts every history of a real register", () => {
    fc.assert(
      fc.property(simulation, ({ seed, ...options }) => {
        const events = simulateRegisters(prngFromSeed(seed), options);
        const result = checkLinearizable(events, register);
        assert.equal(result.verdict, "valid", result.anomalies[0]?.message);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects it once one read returns a value never written", () => {
    fc.assert(
      fc.property(simulation, fc.nat(), ({ seed, ...options }, which) => {
        const events = withReadResult(simulateRegisters(prngFromSeed(seed), options), which, 1e9);
        if (events === null) return;
        const result = checkLinearizable(events, register);
        assert.equal(result.verdict, "invalid");
        assert.equal(result.anomalies.length, 1);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects a stale read: a value overwritten before the read began", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const random = prngFromSeed(seed);
        const events = simulateRegisters(random, {
          processes: 4,
          operations: 120,
          keys: 1,
          infoRate: 0.05,
        });
        const ops = pairOperations(events);
        const writes = ops.filter((op) => op.f === "write" && op.type === "ok");
        // w1 done, then w2 called after w1 returned and done before the read: w1's value
        // is stale for the read whatever the order of the rest.
        for (const read of ops.filter((op) => op.f === "read" && op.type === "ok")) {
          const stale = writes.find((w1) =>
            writes.some(
              (w2) =>
                w2.callTime > w1.returnTime &&
                w2.returnTime < read.callTime &&
                w1.returnTime < read.callTime,
            ),
          );
          if (stale === undefined) continue;
          const mutated = events.map((event) =>
            event.index === read.completeIndex ? { ...event, value: stale.input } : event,
          );
          const result = checkLinearizable(mutated, register);
          assert.equal(result.verdict, "invalid");
          return;
        }
      }),
      { numRuns: 100 },
    );
  });

  it("agrees with a brute-force search on small random register histories", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const ops = pairOperations(randomSmallHistory(prngFromSeed(seed), "register"));
        const expected = bruteForce(ops, register);
        const result = checkLinearizableOperations(ops, register);
        assert.equal(result.verdict, expected ? "valid" : "invalid");
        const whole = checkLinearizableOperations(ops, keyedModel(register), {
          partition: "none",
        });
        assert.equal(whole.verdict, result.verdict);
      }),
      { numRuns: 1500 },
    );
  });

  it("agrees with a brute-force search on simulated histories with one read changed", () => {
    // Unique values and many writes nobody reads: what the pruning of unread writes relies on.
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const random = prngFromSeed(seed);
        let events = simulateRegisters(random, {
          processes: 2 + random.int(4),
          operations: 4 + random.int(11),
          keys: 1,
          infoRate: 0.25,
        });
        const before = pairOperations(events);
        const reads = before.filter((op) => op.f === "read" && op.type === "ok");
        const writes = before.filter((op) => op.f === "write");
        if (reads.length > 0 && writes.length > 0 && random.chance(0.6)) {
          const read = random.pick(reads);
          events = withReadResult(events, reads.indexOf(read), random.pick(writes).input) ?? events;
        }
        const ops = pairOperations(events);
        const expected = bruteForce(ops, register) ? "valid" : "invalid";
        assert.equal(checkLinearizableOperations(ops, register).verdict, expected);
        assert.equal(
          checkLinearizableOperations(ops, keyedModel(register), { partition: "none" }).verdict,
          expected,
        );
      }),
      { numRuns: 1500 },
    );
  });

  it("agrees with a brute-force search on small random list histories", () => {
    const list = appendModel();
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const ops = pairOperations(randomSmallHistory(prngFromSeed(seed), "list"));
        const expected = bruteForce(ops, list);
        assert.equal(
          checkLinearizableOperations(ops, list).verdict,
          expected ? "valid" : "invalid",
        );
      }),
      { numRuns: 800 },
    );
  });
});

/**
 * Up to 3 clients doing up to 3 operations each, with tied times, repeated values, and ok,
 * info and fail completions at random: mostly not linearizable, often just so.
 */
function randomSmallHistory(random: Prng, kind: "register" | "list"): HistoryEvent[] {
  const specs: OpSpec[] = [];
  const clients = 1 + random.int(3);
  let nextProcess = clients;
  let nextElement = 1;
  const values = [null, 1, 2, 3];
  for (let client = 0; client < clients; client++) {
    let process = client;
    let time = random.int(3);
    const count = 1 + random.int(3);
    for (let n = 0; n < count; n++) {
      const call = time + random.int(3);
      const ret = call + random.int(5);
      time = ret === call ? ret + 1 : ret;
      const roll = random.float();
      const type = roll < 0.7 ? "ok" : roll < 0.85 ? "info" : "fail";
      let spec: OpSpec;
      if (kind === "register") {
        const f = random.pick(["read", "read", "write", "cas"]);
        spec =
          f === "read"
            ? { p: process, f, out: random.pick(values), call, ret, type }
            : f === "write"
              ? { p: process, f, value: 1 + random.int(3), call, ret, type }
              : {
                  p: process,
                  f,
                  value: [random.pick(values), 1 + random.int(3)],
                  call,
                  ret,
                  type,
                };
      } else if (random.chance(0.5)) {
        spec = { p: process, f: "append", value: nextElement++, call, ret, type };
      } else {
        const out: number[] = [];
        for (let e = 1; e <= 4; e++) if (random.chance(0.5)) out.push(e);
        if (random.chance(0.3)) out.reverse();
        spec = { p: process, f: "read", out, call, ret, type };
      }
      // An info op sometimes never completes; the client goes on as a new process.
      if (type === "info" && random.chance(0.3)) {
        const { ret: _omitted, ...open } = spec;
        specs.push(open);
      } else specs.push(spec);
      if (type === "info") process = nextProcess++;
    }
  }
  return history(specs);
}

/**
 * Every order of the ok operations (with any subset of the info ones slotted in) that keeps
 * real-time order: a before b whenever a returned before b was called. Exact memo only.
 */
function bruteForce<State>(ops: readonly Operation[], model: Model<State>): boolean {
  const candidates = ops.filter(
    (op) => op.type === "ok" || (op.type === "info" && op.f !== "read"),
  );
  const okMask = candidates.reduce((mask, op, i) => (op.type === "ok" ? mask | (1 << i) : mask), 0);
  const seen = new Set<string>();
  const search = (used: number, state: State): boolean => {
    if ((used & okMask) === okMask) return true;
    const memo = `${used}|${model.key(state)}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    for (let i = 0; i < candidates.length; i++) {
      if (used & (1 << i)) continue;
      const op = candidates[i] as Operation;
      const blocked = candidates.some(
        (other, j) =>
          j !== i &&
          !(used & (1 << j)) &&
          other.type === "ok" &&
          Math.max(other.returnTime, other.callTime) < op.callTime,
      );
      if (blocked) continue;
      const result = model.step(state, op);
      if (result.ok && search(used | (1 << i), result.state)) return true;
    }
    return false;
  };
  return search(0, model.init());
}
