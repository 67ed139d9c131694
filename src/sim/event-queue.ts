/**
 * @module The simulator's agenda: a binary min-heap of items ordered by (time, sequence
 * number). The sequence number is assigned at push, so two items due at the same virtual
 * millisecond always come out in the order they were scheduled: ties never depend on heap
 * layout, and the same pushes give the same pops, which is what makes a seed replayable.
 */
import { assert } from "../lib/assert.js";

export interface Scheduled<Item> {
  readonly timeMs: number;
  readonly sequence: number;
  readonly item: Item;
}

function before<Item>(left: Scheduled<Item>, right: Scheduled<Item>): boolean {
  return (
    left.timeMs < right.timeMs || (left.timeMs === right.timeMs && left.sequence < right.sequence)
  );
}

export class EventQueue<Item> {
  readonly #heap: Scheduled<Item>[] = [];
  #sequenceNext = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(timeMs: number, item: Item): number {
    assert(
      Number.isFinite(timeMs) && timeMs >= 0,
      `event time must be finite and >= 0, got ${timeMs}`,
    );
    const entry = { timeMs, sequence: this.#sequenceNext++, item };
    const heap = this.#heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const parentEntry = heap[parent]!;
      if (!before(entry, parentEntry)) break;
      heap[index] = parentEntry;
      index = parent;
    }
    heap[index] = entry;
    return entry.sequence;
  }

  /** The time of the earliest item, or undefined when empty. */
  peekTimeMs(): number | undefined {
    return this.#heap[0]?.timeMs;
  }

  pop(): Scheduled<Item> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      let child = left;
      if (right < heap.length && before(heap[right]!, heap[left]!)) child = right;
      const childEntry = heap[child]!;
      if (!before(childEntry, last)) break;
      heap[index] = childEntry;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}
