/**
 * @module Lamport logical clock (Lamport 1978, "Time, Clocks, and the Ordering of Events in a
 * Distributed System"). If event e happened before f then `clock(e) < clock(f)`; the converse
 * does not hold, so use vector clocks to decide causality and this only for a cheap total
 * order (ties broken by node id).
 *
 * Pure: no I/O, no physical clock, no randomness.
 */
import { assert } from "../lib/assert.js";
import { BrigadeError } from "../lib/errors.js";

/**
 * A Lamport clock for one process.
 *
 * **When to use**: to order events cheaply where causality only has to be respected, not
 * detected (log sequence tie-breaks, "last writer wins" within one logical epoch).
 *
 * **Gotchas**: values from peers are untrusted input. A peer that sends a value near
 * `Number.MAX_SAFE_INTEGER` is rejected with `InvalidArgument` rather than allowed to push
 * this clock past the range where `+ 1` is exact.
 *
 * **Example**
 * ```ts
 * const clock = new LamportClock();
 * const sent = clock.now();        // 1, attach to the outgoing message
 * clock.update(7);                 // 8, on receiving a message stamped 7
 * ```
 */
export class LamportClock {
  #time: number;

  /** `initialTime` restores a value persisted before a restart; it must not go backwards. */
  constructor(initialTime = 0) {
    assert(isClockValue(initialTime), `initial Lamport time must be a safe integer >= 0`);
    this.#time = initialTime;
  }

  /** Local or send event: advances by one and returns the new value. */
  now(): number {
    assert(this.#time < Number.MAX_SAFE_INTEGER, "Lamport clock overflow");
    this.#time += 1;
    return this.#time;
  }

  /** Receive event: `max(local, received) + 1`. Throws `InvalidArgument` for a malformed value. */
  update(received: number): number {
    if (!isClockValue(received)) {
      throw new BrigadeError(
        "InvalidArgument",
        `Lamport timestamp must be a safe integer in [0, ${Number.MAX_SAFE_INTEGER}), got ${String(received)}`,
        { retriable: false },
      );
    }
    this.#time = Math.max(this.#time, received) + 1;
    return this.#time;
  }

  /** The last value issued (0 before the first event), without advancing. */
  peek(): number {
    return this.#time;
  }
}

/** Integer, non-negative, and small enough that adding one stays exact. */
function isClockValue(value: unknown): value is number {
  return (
    Number.isSafeInteger(value) &&
    (value as number) >= 0 &&
    (value as number) < Number.MAX_SAFE_INTEGER
  );
}
