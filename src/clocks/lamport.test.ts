// Goal: the Lamport clock obeys its laws (ticks by one, receive is max + 1, peek is free, bad input
// is refused); method: fast-check runs random operation sequences against a one-line model.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AssertionError } from "../lib/assert.js";
import { isBrigadeError } from "../lib/errors.js";
import { LamportClock } from "./lamport.js";

const numRuns = 200;

type Operation =
  | { readonly type: "now" }
  | { readonly type: "update"; readonly received: number }
  | { readonly type: "peek" };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.constant({ type: "now" } as const),
  fc.constant({ type: "peek" } as const),
  fc.record({ type: fc.constant("update" as const), received: fc.nat({ max: 1_000 }) }),
);

describe("LamportClock", () => {
  it("starts at 0 and now() ticks by exactly one", () => {
    const clock = new LamportClock();
    assert.equal(clock.peek(), 0);
    assert.equal(clock.now(), 1);
    assert.equal(clock.now(), 2);
    assert.equal(clock.peek(), 2);
  });

  it("update() returns max(local, received) + 1", () => {
    const clock = new LamportClock();
    assert.equal(clock.update(10), 11); // remote ahead: jump past it
    assert.equal(clock.update(3), 12); // remote behind: still tick
    assert.equal(clock.update(12), 13); // equal: tick once past both
  });

  it("resumes from a persisted initial time", () => {
    const clock = new LamportClock(41);
    assert.equal(clock.now(), 42);
    assert.throws(() => new LamportClock(-1), AssertionError);
  });

  it("matches the model on random operation sequences; every issued value is new and larger", () => {
    fc.assert(
      fc.property(fc.array(operationArb, { maxLength: 50, size: "medium" }), (operations) => {
        const clock = new LamportClock();
        let model = 0;
        for (const operation of operations) {
          const before = clock.peek();
          switch (operation.type) {
            case "now":
              model += 1;
              assert.equal(clock.now(), model);
              break;
            case "update": {
              model = Math.max(model, operation.received) + 1;
              const value = clock.update(operation.received);
              assert.equal(value, model);
              assert.ok(value > operation.received && value > before);
              break;
            }
            case "peek":
              assert.equal(clock.peek(), model);
              assert.equal(clock.peek(), before, "peek must not advance");
              break;
          }
        }
      }),
      { numRuns },
    );
  });

  it("refuses malformed received values with InvalidArgument and keeps its state", () => {
    const clock = new LamportClock(5);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER]) {
      assert.throws(
        () => clock.update(bad),
        (error: unknown) => isBrigadeError(error, "InvalidArgument") && !error.retriable,
        `update(${bad})`,
      );
    }
    assert.throws(
      () => clock.update("7" as unknown as number),
      (error: unknown) => isBrigadeError(error, "InvalidArgument"),
    );
    assert.equal(clock.peek(), 5);
  });
});
