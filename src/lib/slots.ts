/**
 * @module Where a key lives: a keyspace's keys hash to a fixed space of slots, and each shard
 * owns a contiguous range of slots. Only the part of a key inside its first non-empty
 * `{...}` is hashed (a hash tag, as in Redis Cluster), so `{flight-123}:4A` and
 * `{flight-123}:manifest` share a slot and therefore a shard and its transactions. Pure: the
 * client library computes the same slot as every node.
 */
import { fnv1a32 } from "./fnv1a.js";

/** Slots per keyspace. Fixed, so a key's slot never changes; shards split the range. */
export const slotCount = 4096;

/** The part of `key` that is hashed: the first non-empty `{tag}`, or the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const utf8 = new TextEncoder();

export function slotOf(key: string): number {
  return fnv1a32(utf8.encode(hashTag(key))) % slotCount;
}

/** The shard owning `slot` when `shards` split the slots into equal contiguous ranges. */
export function shardOfSlot(slot: number, shards: number): number {
  return Math.floor((slot * shards) / slotCount);
}

/** Slots [first, last] owned by shard `shard` of `shards` (the inverse of `shardOfSlot`). */
export function slotRange(shard: number, shards: number): readonly [number, number] {
  const first = Math.ceil((shard * slotCount) / shards);
  const last = Math.ceil(((shard + 1) * slotCount) / shards) - 1;
  return [first, last];
}

export function shardOfKey(key: string, shards: number): number {
  return shardOfSlot(slotOf(key), shards);
}
