// Checks the agenda's ordering contract, earliest time first and ties in push order, against a sort-based oracle on seeded random pushes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../lib/prng.js";
import { EventQueue } from "./event-queue.js";

describe("EventQueue", () => {
  it("pops by time, and items at the same time in push order", () => {
    const queue = new EventQueue<string>();
    queue.push(5, "c");
    queue.push(1, "a");
    queue.push(5, "d");
    queue.push(1, "b");
    queue.push(0, "first");
    const order: string[] = [];
    for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) order.push(entry.item);
    assert.deepEqual(order, ["first", "a", "b", "c", "d"]);
    assert.equal(queue.peekTimeMs(), undefined);
  });

  it("agrees with a stable sort on 2000 random pushes with many ties, interleaved with pops", () => {
    const prng = prngFromSeed(7);
    const queue = new EventQueue<number>();
    const oracle: { timeMs: number; index: number }[] = [];
    const popped: number[] = [];
    const expected: number[] = [];
    for (let index = 0; index < 2000; index++) {
      const timeMs = prng.int(50);
      queue.push(timeMs, index);
      oracle.push({ timeMs, index });
      if (prng.chance(0.3)) {
        oracle.sort((left, right) => left.timeMs - right.timeMs || left.index - right.index);
        expected.push(oracle.shift()!.index);
        popped.push(queue.pop()!.item);
      }
    }
    oracle.sort((left, right) => left.timeMs - right.timeMs || left.index - right.index);
    expected.push(...oracle.map((entry) => entry.index));
    for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) popped.push(entry.item);
    assert.deepEqual(popped, expected);
  });
});
