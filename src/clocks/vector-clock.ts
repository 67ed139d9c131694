/**
 * @module Vector clocks (Fidge 1988, Mattern 1989) as immutable plain data. Unlike Lamport
 * clocks they characterise causality exactly: `compare(a, b) === "before"` if and only if the
 * event stamped `a` happened before the one stamped `b`, and `"concurrent"` means neither
 * could have influenced the other. Brigade uses them where concurrency must be *detected*,
 * e.g. sibling versions in the AP keyspace.
 *
 * Representation: a frozen record from node id to a positive count. A missing entry means 0
 * and zero entries are never stored, so two equal clocks are also structurally equal
 * (`assert.deepStrictEqual`, `encode`). Every function returns a new clock.
 *
 * Pure: no I/O, no clock, no randomness.
 */
import { assert } from "../lib/assert.js";
import { BrigadeError } from "../lib/errors.js";

export type VectorClock = Readonly<Record<string, number>>;

export type Ordering = "before" | "after" | "equal" | "concurrent";

/**
 * Most entries `parse` accepts from untrusted input. One entry per node that ever wrote, and
 * `prune` drops departed nodes, so a live clock stays at cluster size; a clock with thousands
 * of entries is corrupt or hostile, and every entry costs every later merge and compare.
 */
export const vectorClockEntriesMax = 1024;

/** The clock of a process before its first event. */
export const emptyVectorClock: VectorClock = Object.freeze({});

/** The count for `nodeId` (0 when absent). Reads own properties only, so ids such as
 * `"__proto__"` or `"constructor"` are ordinary node ids. */
export function get(vc: VectorClock, nodeId: string): number {
  return Object.hasOwn(vc, nodeId) ? (vc[nodeId] ?? 0) : 0;
}

/** Local or send event at `nodeId`: that node's entry plus one. */
export function increment(vc: VectorClock, nodeId: string): VectorClock {
  const next = get(vc, nodeId) + 1;
  assert(Number.isSafeInteger(next), `vector clock entry overflow for ${nodeId}`);
  return build(
    Object.entries(vc)
      .filter(([id]) => id !== nodeId)
      .concat([[nodeId, next]]),
  );
}

/** Pointwise maximum: the clock of an event that has seen everything `a` and `b` have. */
export function merge(a: VectorClock, b: VectorClock): VectorClock {
  const merged = new Map<string, number>();
  for (const [id, count] of Object.entries(a)) merged.set(id, count);
  for (const [id, count] of Object.entries(b)) merged.set(id, Math.max(merged.get(id) ?? 0, count));
  return build(merged);
}

/** How the event stamped `a` relates to the one stamped `b` in happened-before. */
export function compare(a: VectorClock, b: VectorClock): Ordering {
  let aHasMore = false;
  let bHasMore = false;
  for (const id of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const countA = get(a, id);
    const countB = get(b, id);
    if (countA > countB) aHasMore = true;
    else if (countB > countA) bHasMore = true;
    if (aHasMore && bHasMore) return "concurrent";
  }
  if (aHasMore) return "after";
  if (bHasMore) return "before";
  return "equal";
}

/** True when the event stamped `a` happened strictly before the one stamped `b`. */
export function happenedBefore(a: VectorClock, b: VectorClock): boolean {
  return compare(a, b) === "before";
}

/**
 * Drops the entries of nodes not in `keepNodes`, e.g. nodes that left the cluster for good.
 *
 * **Gotchas**: pruning loses information. Two clocks compare correctly afterwards only if
 * both were pruned to the same set and no event of a dropped node is still in flight.
 */
export function prune(vc: VectorClock, keepNodes: Iterable<string>): VectorClock {
  const keep = new Set(keepNodes);
  return build(Object.entries(vc).filter(([id]) => keep.has(id)));
}

/** Canonical JSON (entries sorted by node id): equal clocks give equal strings. */
export function encode(vc: VectorClock): string {
  return JSON.stringify(sortedEntries(vc));
}

/** For logs and test failures, e.g. `{a:2, b:1}`. Deterministic, not meant to be parsed. */
export function format(vc: VectorClock): string {
  return `{${sortedEntries(vc)
    .map(([id, count]) => `${id}:${count}`)
    .join(", ")}}`;
}

/**
 * Validates a clock from untrusted input (a decoded message, a record literal) and returns
 * it in canonical form, dropping zero entries. Throws `InvalidArgument` when it is not a
 * plain record of safe non-negative integers or has more than `vectorClockEntriesMax` entries.
 */
export function parse(value: unknown): VectorClock {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("a vector clock must be a record from node id to count");
  }
  const entries = Object.entries(value);
  if (entries.length > vectorClockEntriesMax) {
    throw invalid(`vector clock has ${entries.length} entries, more than ${vectorClockEntriesMax}`);
  }
  for (const [id, count] of entries) {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw invalid(`vector clock entry ${JSON.stringify(id)} must be a safe integer >= 0`);
    }
  }
  return build(entries);
}

function invalid(message: string): BrigadeError {
  return new BrigadeError("InvalidArgument", message, { retriable: false });
}

function sortedEntries(vc: VectorClock): [string, number][] {
  return Object.entries(vc).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/** The single constructor of clocks: sorted, zero-free, frozen. `Object.fromEntries` defines
 * own data properties, so a node id of `"__proto__"` cannot change the prototype. */
function build(entries: Iterable<readonly [string, number]>): VectorClock {
  const kept = [...entries].filter(([, count]) => count !== 0);
  kept.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  for (const [id, count] of kept) {
    assert(Number.isSafeInteger(count) && count > 0, `bad vector clock entry ${id}=${count}`);
  }
  return Object.freeze(Object.fromEntries(kept));
}
