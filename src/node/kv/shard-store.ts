/**
 * @module One shard's MVCC key-value store: the deterministic state machine of the shard's
 * Raft group (`ShardStore`), kept in a named sub-database of the node's one LMDB
 * environment (`KvEngine`). Every replica applies the same log to the same state, so
 * results, revisions and events are the same everywhere. Reads (`get`, `scan`, `events`)
 * are synchronous and see every applied command; the service serves them after a ReadIndex.
 *
 * Durability: LMDB runs with `noSync`. Every applied command is already durable in the Raft
 * WAL, and the group's snapshots are files of their own, so LMDB may fall behind in a crash
 * (losing its last transactions) without losing anything: recovery restores the Raft
 * snapshot (ignored when LMDB holds a newer state of the same log) and re-applies the WAL,
 * where the entries LMDB already holds are skipped by index. Each apply is one LMDB
 * transaction that also stores the applied index, so LMDB always holds a prefix of the log.
 * An operating-system crash can leave a `noSync` environment torn; the remedy is to delete
 * the node's `kv` directory, and the node rebuilds it from the Raft snapshot and WAL.
 *
 * Layout of shard `g<groupId>` (binary keys; the first byte names the area; u64 = 8 bytes
 * big-endian, so numbers sort; records are msgpack tuples):
 *
 *   "m"                           meta: [layout, appliedIndex, revision, compactedRevision,
 *                                   leaseCounter, keyCount, leaseCount, dedupOldest, dedupNext]
 *   "k" storedKey                 a key's current state: [value, version, createRevision,
 *                                   modRevision, lease] and, when storedKey is hashed, the key
 *   "e" revision:u64 ordinal:u32  an event (watch history until compacted): [type, revision,
 *                                   key, value, version, createRevision, lease, prevValue,
 *                                   prevVersion, prevCreateRevision, prevModRevision, prevLease]
 *   "l" lease:u64                 a lease: ttlMs
 *   "a" lease:u64 storedKey       a key attached to a lease: the key when hashed, else empty
 *   "r" requestId                 a remembered result (deduplication), see `CompactResult`
 *   "q" sequence:u64              requestId: the order results are forgotten in, oldest first
 *
 * storedKey is the key's UTF-8 bytes, but LMDB keys stop at 1978 bytes and keys may have
 * 4096: a key over 1800 bytes is stored as its first 1800 bytes and the SHA-256 of the
 * whole key. Keys sharing those 1800 bytes thus sit together, in hash order; a scan sorts
 * such a run by the full keys. Every other order is bytewise UTF-8, as the keys'.
 */
import { createHash } from "node:crypto";
import { type Database, open, type RootDatabase, type Transaction } from "lmdb";
import { pack, unpack } from "msgpackr";
import { assert } from "../../lib/assert.js";
import { BrigadeError, isBrigadeError } from "../../lib/errors.js";
import type { GroupStateMachine } from "../raft/raft-group.js";
import { decodeKvCommand } from "./kv-codec.js";
import {
  type Compare,
  filterMatches,
  type KeyValue,
  type KvCommand,
  type KvEvent,
  type KvEventFilter,
  type KvResult,
  kvLimits,
  type ScanPage,
  type ScanRequest,
  type TxnOp,
  type TxnOpResult,
} from "./kv-types.js";

export { decodeKvCommand, encodeKvCommand, validateKvCommand } from "./kv-codec.js";

export interface ShardStoreOptions {
  /**
   * Added to the shard's lease counter (1, 2, ...) to make lease ids. The service passes
   * groupId × 2^24 so that a lease id names its shard. Default 0.
   */
  readonly leaseIdBase: number;
  /**
   * Request ids whose results are remembered to answer a retried command, oldest forgotten
   * first. A client retries within its request timeout (seconds): 10,000 covers that at a
   * few thousand writes per second to one shard, for about 100 bytes each. Default 10,000.
   */
  readonly requestIdsRemembered: number;
  /**
   * Revisions of history automatically kept for watches: when `historyRevisionsKept` × 2
   * revisions are held, the older half is forgotten (in the apply, so on every replica at
   * the same revision). A watch that falls further behind gets Compacted and resyncs.
   * Default 10,000.
   */
  readonly historyRevisionsKept: number;
}

export const shardStoreDefaults: ShardStoreOptions = {
  leaseIdBase: 0,
  requestIdsRemembered: 10_000,
  historyRevisionsKept: 10_000,
};

export interface ShardStats {
  readonly keys: number;
  readonly revision: number;
  readonly compactedRevision: number;
  readonly appliedIndex: number;
  readonly leases: number;
}

/**
 * One LMDB environment per node holding every shard replica's store. At most 4095 shards
 * (`maxDbs`) per node.
 */
export class KvEngine {
  readonly #shards = new Map<number, ShardStore>();

  private constructor(private readonly environment: RootDatabase) {}

  /** Opens (creating if needed) the environment in `directory`. */
  static open(directory: string): KvEngine {
    // noSync: the Raft WAL and snapshots make applied commands durable (see the module doc).
    // useWritemap: a commit then writes its pages in place instead of copying them out,
    // which halves an apply (about 20 to 10 µs for a put's four records). The cost is
    // LMDB's protection against a native bug writing through a wild pointer into the
    // map; like a torn file after a crash, the remedy is a rebuild from the Raft log.
    return new KvEngine(open({ path: directory, maxDbs: 4096, noSync: true, useWritemap: true }));
  }

  /** The store of shard `groupId` (the same one for the same id until it is dropped). */
  shard(groupId: number, options: Partial<ShardStoreOptions> = {}): ShardStore {
    assert(Number.isSafeInteger(groupId) && groupId >= 0, `bad group id ${groupId}`);
    const resolved = { ...shardStoreDefaults, ...options };
    const existing = this.#shards.get(groupId);
    if (existing !== undefined) {
      assert(
        JSON.stringify(existing.options) === JSON.stringify(resolved),
        `shard ${groupId} is open with other options`,
      );
      return existing;
    }
    const store = new ShardStore(this.#database(groupId), resolved);
    this.#shards.set(groupId, store);
    return store;
  }

  /** Deletes shard `groupId`'s data; its store must not be used again. */
  dropShard(groupId: number): void {
    const database = this.#shards.get(groupId)?.database ?? this.#database(groupId);
    database.dropSync();
    this.#shards.delete(groupId);
  }

  close(): Promise<void> {
    this.#shards.clear();
    return this.environment.close();
  }

  #database(groupId: number): Database<Buffer, Buffer> {
    return this.environment.openDB<Buffer, Buffer>(`g${groupId}`, {
      keyEncoding: "binary",
      encoding: "binary",
    });
  }
}

/** Lease ids one shard may grant (ids are `leaseIdBase` + a counter below this). */
export const leaseIdsPerShard = 2 ** 24;

/** Records read between two pauses while an image is built in slices (about 1–2 ms of work). */
const snapshotSliceRecords = 256;

/** The layout above; a store written by another layout is refused, not misread. */
const layoutVersion = 1;
const snapshotMagic = "brigade.kv.shard";
const snapshotFormatVersion = 1;

const area = {
  meta: 0x6d, // m
  key: 0x6b, // k
  event: 0x65, // e
  lease: 0x6c, // l
  attachment: 0x61, // a
  result: 0x72, // r
  queue: 0x71, // q
} as const;

const metaRecordKey = Buffer.from([area.meta]);
/** Keys longer than this are stored hashed (LMDB keys are at most 1978 bytes). */
const storedKeyPrefixBytes = 1800;
const hashedStoredKeyBytes = storedKeyPrefixBytes + 32;
const emptyValue = new Uint8Array(0);

interface ShardMeta {
  appliedIndex: number;
  revision: number;
  /** Events at or below this revision are forgotten. */
  compactedRevision: number;
  leaseCounter: number;
  keyCount: number;
  leaseCount: number;
  /** Sequence numbers of the oldest remembered request id and of the next one. */
  dedupOldest: number;
  dedupNext: number;
}

/** One apply in progress: a draft of the meta, kept if the transaction commits, and its events. */
interface Applying {
  readonly meta: ShardMeta;
  readonly events: KvEvent[];
}

/** A key as a write reads it: where it is stored and its current state. */
interface Slot {
  readonly key: string;
  readonly recordKey: Buffer;
  readonly hashed: boolean;
  readonly kv: KeyValue | null;
}

/**
 * What a remembered result keeps (prev and read key-values are not kept: a duplicate
 * answers with `prev: null` and `kv: null`): ["write", succeeded, revision, deleted | null],
 * ["txn", succeeded, revision, one letter per operation: p put, d delete of nothing,
 * D delete, g get], ["lease", lease, revision, ttlMs].
 */
type CompactResult = [string, boolean | number, number, boolean | number | string | null];

export class ShardStore implements GroupStateMachine {
  #meta: ShardMeta;
  readonly #listeners = new Set<(events: readonly KvEvent[]) => void>();

  constructor(
    readonly database: Database<Buffer, Buffer>,
    readonly options: ShardStoreOptions,
  ) {
    assert(Number.isSafeInteger(options.leaseIdBase) && options.leaseIdBase >= 0);
    assert(Number.isSafeInteger(options.requestIdsRemembered) && options.requestIdsRemembered >= 0);
    assert(Number.isSafeInteger(options.historyRevisionsKept) && options.historyRevisionsKept >= 1);
    this.#meta = this.#loadMeta();
  }

  get revision(): number {
    return this.#meta.revision;
  }

  /** Events at or below this revision are forgotten: a watch must start above it. */
  get compactedRevision(): number {
    return this.#meta.compactedRevision;
  }

  /** The index of the last log entry applied (config entries are not passed here). */
  get appliedIndex(): number {
    return this.#meta.appliedIndex;
  }

  stats(): ShardStats {
    const meta = this.#meta;
    return {
      keys: meta.keyCount,
      revision: meta.revision,
      compactedRevision: meta.compactedRevision,
      appliedIndex: meta.appliedIndex,
      leases: meta.leaseCount,
    };
  }

  // ---- Reads ---------------------------------------------------------------------------

  get(key: string): KeyValue | null {
    const record = this.database.get(keyRecordKey(key));
    return record === undefined ? null : decodeKeyValue(key, record);
  }

  /** One page of keys in bytewise order within all of the request's bounds. */
  scan(request: ScanRequest): ScanPage {
    const { limit } = request;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > kvLimits.scanLimitMax)
      throw new BrigadeError("InvalidArgument", `limit must be in 1..${kvLimits.scanLimitMax}`);
    const { lower, lowerExclusive, upper } = scanBounds(request);
    const items: KeyValue[] = [];
    for (const { keyBytes, kv } of this.#keysInOrder(lower, upper)) {
      if (lower !== null) {
        const order = Buffer.compare(keyBytes, lower);
        if (order < 0 || (order === 0 && lowerExclusive)) continue;
      }
      if (upper !== null && Buffer.compare(keyBytes, upper) >= 0) break;
      if (items.length === limit) return { items, more: true };
      items.push(kv);
    }
    return { items, more: false };
  }

  /**
   * Events from `fromRevision` on (all retained ones for 0), oldest first, at most `limit`.
   * Throws Compacted when events at `fromRevision` were already forgotten. Scans every
   * retained event from `fromRevision` on, matching or not.
   */
  events(fromRevision: number, filter: KvEventFilter, limit: number): KvEvent[] {
    const compacted = this.#meta.compactedRevision;
    if (fromRevision > 0 && fromRevision <= compacted)
      throw new BrigadeError(
        "Compacted",
        `events from revision ${fromRevision} were compacted; this shard's history starts at revision ${compacted + 1}`,
      );
    const events: KvEvent[] = [];
    if (limit < 1) return events;
    const range = this.database.getRange({
      start: eventRecordKey(Math.max(fromRevision, compacted + 1), 0),
      end: Buffer.from([area.event + 1]),
    });
    for (const { value } of range) {
      const tuple = unpack(value) as unknown[];
      if (!filterMatches(filter, tuple[2] as string)) continue;
      events.push(eventFromTuple(tuple));
      if (events.length === limit) break;
    }
    return events;
  }

  /**
   * Calls `listener` with the events of every apply that wrote, synchronously once its
   * transaction committed (so reads inside see them). A listener must not throw. Returns
   * the unsubscribe function.
   */
  onEvents(listener: (events: readonly KvEvent[]) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  lease(id: number): { lease: number; ttlMs: number } | null {
    if (!isLeaseId(id)) return null;
    const record = this.database.get(leaseRecordKey(id));
    return record === undefined ? null : { lease: id, ttlMs: unpack(record) as number };
  }

  leases(): { lease: number; ttlMs: number }[] {
    const leases: { lease: number; ttlMs: number }[] = [];
    const range = this.database.getRange({
      start: Buffer.from([area.lease]),
      end: Buffer.from([area.lease + 1]),
    });
    for (const { key, value } of range)
      leases.push({ lease: readU64(key, 1), ttlMs: unpack(value) as number });
    return leases;
  }

  /** The keys attached to `lease`, in bytewise order. */
  leaseKeys(lease: number): string[] {
    if (!isLeaseId(lease)) return [];
    const prefix = leaseRecordKey(lease);
    prefix[0] = area.attachment;
    const keys: { key: string; bytes: Buffer }[] = [];
    let hashed = false;
    for (const { key: recordKey, value } of this.database.getRange({
      start: prefix,
      end: successor(prefix),
    })) {
      if (value.length === 0) {
        const bytes = recordKey.subarray(prefix.length);
        keys.push({ key: bytes.toString("utf8"), bytes });
      } else {
        hashed = true;
        keys.push({ key: value.toString("utf8"), bytes: value });
      }
    }
    if (hashed) keys.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    return keys.map((entry) => entry.key);
  }

  // ---- Applying commands -------------------------------------------------------------

  /**
   * Applies log entry `index` in one LMDB transaction. An entry at or below the applied
   * index is ignored (a restart re-applies the WAL over a newer LMDB state); one that does
   * not decode, or fails a check on the state (an unknown lease), applies as an error
   * result that changes nothing but the applied index, the same on every replica.
   */
  apply(index: number, data: Uint8Array): KvResult {
    assert(Number.isSafeInteger(index) && index > 0, `bad log index ${index}`);
    if (index <= this.#meta.appliedIndex)
      return errorResult(
        "InvalidArgument",
        `entry ${index} was already applied (applied index ${this.#meta.appliedIndex})`,
      );
    const applying: Applying = { meta: { ...this.#meta, appliedIndex: index }, events: [] };
    const result = this.database.transactionSync(() => {
      const result = this.#applyEntry(applying, data);
      this.database.putSync(metaRecordKey, encodeMeta(applying.meta));
      return result;
    });
    this.#meta = applying.meta;
    if (applying.events.length > 0)
      for (const listener of this.#listeners) listener(applying.events);
    return result;
  }

  #applyEntry(applying: Applying, data: Uint8Array): KvResult {
    let command: KvCommand;
    try {
      command = decodeKvCommand(data);
    } catch (error) {
      if (!isBrigadeError(error)) throw error;
      return errorResult("InvalidArgument", `log entry ignored: ${error.message}`);
    }
    switch (command.type) {
      case "compact":
        return this.#compact(applying, command.revision);
      case "lease-expire":
        return this.#endLease(applying, command.lease);
    }
    const remembered = this.database.get(resultRecordKey(command.requestId));
    if (remembered !== undefined) return resultFromCompact(unpack(remembered) as CompactResult);
    let result: KvResult;
    switch (command.type) {
      case "put":
        result = this.#put(applying, command);
        break;
      case "delete":
        result = this.#delete(applying, command);
        break;
      case "txn":
        result = this.#txn(applying, command);
        break;
      case "lease-grant":
        result = this.#grantLease(applying, command.ttlMs);
        break;
      case "lease-revoke":
        result = this.#endLease(applying, command.lease);
        break;
    }
    // An error changed nothing: a retry may succeed once the state allows it.
    if (result.type !== "error") this.#remember(applying, command.requestId, result);
    return result;
  }

  #put(applying: Applying, command: Extract<KvCommand, { type: "put" }>): KvResult {
    const slot = this.#slot(command.key);
    if (command.compare !== null && !compareHolds(command.compare, slot.kv))
      return { type: "write", succeeded: false, revision: applying.meta.revision, prev: slot.kv };
    if (command.lease !== 0 && this.lease(command.lease) === null)
      return leaseNotFound(command.lease);
    this.#writeKey(applying, slot, command.value, command.lease);
    return {
      type: "write",
      succeeded: true,
      revision: this.#finishWrites(applying),
      prev: slot.kv,
    };
  }

  #delete(applying: Applying, command: Extract<KvCommand, { type: "delete" }>): KvResult {
    const slot = this.#slot(command.key);
    if (command.compare !== null && !compareHolds(command.compare, slot.kv)) {
      const revision = applying.meta.revision;
      return { type: "write", succeeded: false, revision, prev: slot.kv, deleted: false };
    }
    const deleted = this.#deleteKey(applying, slot);
    return {
      type: "write",
      succeeded: true,
      revision: this.#finishWrites(applying),
      prev: slot.kv,
      deleted,
    };
  }

  #txn(applying: Applying, command: Extract<KvCommand, { type: "txn" }>): KvResult {
    const succeeded = command.compare.every((compare) =>
      compareHolds(compare, this.#slot(compare.key).kv),
    );
    const ops = succeeded ? command.success : command.failure;
    // Checked before any write, so an unknown lease leaves the whole transaction undone.
    for (const op of ops)
      if (op.op === "put" && op.lease !== 0 && this.lease(op.lease) === null)
        return leaseNotFound(op.lease);
    const results = ops.map((op) => this.#txnOp(applying, op));
    return { type: "txn", succeeded, revision: this.#finishWrites(applying), results };
  }

  #txnOp(applying: Applying, op: TxnOp): TxnOpResult {
    const slot = this.#slot(op.key);
    switch (op.op) {
      case "get":
        return { op: "get", kv: slot.kv };
      case "put":
        this.#writeKey(applying, slot, op.value, op.lease);
        return { op: "put", prev: slot.kv };
      case "delete":
        return { op: "delete", deleted: this.#deleteKey(applying, slot), prev: slot.kv };
    }
  }

  #grantLease(applying: Applying, ttlMs: number): KvResult {
    const meta = applying.meta;
    // Ids are leaseIdBase + counter, and the service gives each shard 2^24 of them.
    if (meta.leaseCounter >= leaseIdsPerShard - 1)
      return {
        type: "error",
        code: "InvalidArgument",
        message: `this shard has granted all ${leaseIdsPerShard - 1} lease ids it has`,
      };
    meta.leaseCounter += 1;
    meta.leaseCount += 1;
    const lease = this.options.leaseIdBase + meta.leaseCounter;
    this.database.putSync(leaseRecordKey(lease), pack(ttlMs));
    return { type: "lease", lease, ttlMs, revision: meta.revision };
  }

  /** Revokes or expires `lease`: deletes it and its keys, at one revision. */
  #endLease(applying: Applying, lease: number): KvResult {
    const found = this.lease(lease);
    if (found === null) return leaseNotFound(lease);
    for (const key of this.leaseKeys(lease)) this.#deleteKey(applying, this.#slot(key));
    this.database.removeSync(leaseRecordKey(lease));
    applying.meta.leaseCount -= 1;
    return { type: "lease", lease, ttlMs: found.ttlMs, revision: this.#finishWrites(applying) };
  }

  /** Forgets events before `revision` (clamped to the current one); never goes back. */
  #compact(applying: Applying, revision: number): KvResult {
    const meta = applying.meta;
    const through = Math.min(revision, meta.revision + 1) - 1;
    if (through > meta.compactedRevision) this.#forgetEvents(applying, through);
    return { type: "write", succeeded: true, revision: meta.revision, prev: null };
  }

  #forgetEvents(applying: Applying, throughRevision: number): void {
    const forgotten = [
      ...this.database.getKeys({
        start: Buffer.from([area.event]),
        end: eventRecordKey(throughRevision + 1, 0),
      }),
    ];
    for (const key of forgotten) this.database.removeSync(key);
    applying.meta.compactedRevision = throughRevision;
  }

  /** Ends a command's writes: one new revision if it wrote, then automatic compaction. */
  #finishWrites(applying: Applying): number {
    const meta = applying.meta;
    if (applying.events.length === 0) return meta.revision;
    meta.revision += 1;
    const kept = this.options.historyRevisionsKept;
    if (meta.revision - meta.compactedRevision >= 2 * kept)
      this.#forgetEvents(applying, meta.revision - kept);
    return meta.revision;
  }

  #slot(key: string): Slot {
    const recordKey = keyRecordKey(key);
    const record = this.database.get(recordKey);
    return {
      key,
      recordKey,
      hashed: recordKey.length === 1 + hashedStoredKeyBytes,
      kv: record === undefined ? null : decodeKeyValue(key, record),
    };
  }

  #writeKey(applying: Applying, slot: Slot, value: Uint8Array, lease: number): void {
    const revision = applying.meta.revision + 1;
    const prev = slot.kv;
    const kv: KeyValue = {
      key: slot.key,
      value,
      version: (prev?.version ?? 0) + 1,
      createRevision: prev?.createRevision ?? revision,
      modRevision: revision,
      lease,
    };
    this.database.putSync(slot.recordKey, encodeKeyValue(kv, slot.hashed));
    if (prev === null) applying.meta.keyCount += 1;
    if (prev !== null && prev.lease !== 0 && prev.lease !== lease)
      this.database.removeSync(attachmentRecordKey(prev.lease, slot.recordKey));
    if (lease !== 0 && prev?.lease !== lease)
      this.database.putSync(
        attachmentRecordKey(lease, slot.recordKey),
        slot.hashed ? Buffer.from(slot.key) : Buffer.alloc(0),
      );
    this.#recordEvent(applying, { type: "put", revision, kv, prev });
  }

  /** Deletes the key if it exists; returns whether it did. */
  #deleteKey(applying: Applying, slot: Slot): boolean {
    const prev = slot.kv;
    if (prev === null) return false;
    const revision = applying.meta.revision + 1;
    this.database.removeSync(slot.recordKey);
    applying.meta.keyCount -= 1;
    if (prev.lease !== 0) this.database.removeSync(attachmentRecordKey(prev.lease, slot.recordKey));
    const kv: KeyValue = {
      key: slot.key,
      value: emptyValue,
      version: 0,
      createRevision: 0,
      modRevision: revision,
      lease: 0,
    };
    this.#recordEvent(applying, { type: "delete", revision, kv, prev });
    return true;
  }

  #recordEvent(applying: Applying, event: KvEvent): void {
    const recordKey = eventRecordKey(event.revision, applying.events.length);
    this.database.putSync(recordKey, pack(eventTuple(event)));
    applying.events.push(event);
  }

  /** Remembers a command's result under its request id, forgetting the oldest beyond the limit. */
  #remember(
    applying: Applying,
    requestId: string,
    result: Exclude<KvResult, { type: "error" }>,
  ): void {
    const meta = applying.meta;
    this.database.putSync(resultRecordKey(requestId), pack(compactResult(result)));
    this.database.putSync(queueRecordKey(meta.dedupNext), Buffer.from(requestId));
    meta.dedupNext += 1;
    while (meta.dedupNext - meta.dedupOldest > this.options.requestIdsRemembered) {
      const oldest = queueRecordKey(meta.dedupOldest);
      const forgotten = this.database.get(oldest);
      assert(forgotten !== undefined, `dedup queue entry ${meta.dedupOldest} is missing`);
      this.database.removeSync(oldest);
      this.database.removeSync(resultRecordKey(forgotten.toString("utf8")));
      meta.dedupOldest += 1;
    }
  }

  #loadMeta(): ShardMeta {
    const record = this.database.get(metaRecordKey);
    if (record === undefined)
      return {
        appliedIndex: 0,
        revision: 0,
        compactedRevision: 0,
        leaseCounter: 0,
        keyCount: 0,
        leaseCount: 0,
        dedupOldest: 0,
        dedupNext: 0,
      };
    const [layout, ...fields] = unpack(record) as number[];
    if (layout !== layoutVersion)
      throw new BrigadeError(
        "DataDirMismatch",
        `shard data has layout ${layout}; this version reads layout ${layoutVersion}`,
      );
    const [
      appliedIndex,
      revision,
      compactedRevision,
      leaseCounter,
      keyCount,
      leaseCount,
      dedupOldest,
      dedupNext,
    ] = fields as [number, number, number, number, number, number, number, number];
    return {
      appliedIndex,
      revision,
      compactedRevision,
      leaseCounter,
      keyCount,
      leaseCount,
      dedupOldest,
      dedupNext,
    };
  }

  /** Keys from `lower` (truncated to the stored prefix) to `upper`, in key order. */
  *#keysInOrder(
    lower: Buffer | null,
    upper: Buffer | null,
    transaction?: Transaction,
  ): Generator<{ keyBytes: Buffer; kv: KeyValue }> {
    const start = withArea(area.key, lower?.subarray(0, storedKeyPrefixBytes) ?? emptyValue);
    let end: Buffer = Buffer.from([area.key + 1]);
    if (upper !== null) {
      // Past a long bound's prefix, so the run of keys sharing it is read whole.
      const bound =
        upper.length <= storedKeyPrefixBytes
          ? upper
          : successor(upper.subarray(0, storedKeyPrefixBytes));
      end = withArea(area.key, bound);
    }
    let run: { keyBytes: Buffer; kv: KeyValue }[] = [];
    for (const { key: recordKey, value } of this.database.getRange({ start, end, transaction })) {
      if (recordKey.length === 1 + hashedStoredKeyBytes) {
        const previous = run[0]?.keyBytes;
        if (previous !== undefined && !sharesStoredPrefix(previous, recordKey)) {
          yield* sortedByKey(run);
          run = [];
        }
        const kv = decodeKeyValue(null, value);
        run.push({ keyBytes: Buffer.from(kv.key), kv });
        continue;
      }
      if (run.length > 0) {
        yield* sortedByKey(run);
        run = [];
      }
      const keyBytes = recordKey.subarray(1);
      yield { keyBytes, kv: decodeKeyValue(keyBytes.toString("utf8"), value) };
    }
    yield* sortedByKey(run);
  }

  // ---- Snapshots -----------------------------------------------------------------------

  /**
   * The whole state as of the applied index, as msgpack of flat arrays (they pack several
   * times faster than arrays of objects): [magic, format, appliedIndex, revision,
   * compactedRevision, leaseCounter, keys, events, leases, results] where keys are
   * [key, value, version, createRevision, modRevision, lease]..., events as their records,
   * leases [lease, ttlMs]... (attachments follow from the keys' leases) and results
   * [requestId, ...CompactResult]... oldest first.
   */
  snapshot(): Uint8Array {
    const slices = this.#imageInSlices();
    let step = slices.next();
    while (!step.done) step = slices.next();
    return step.value;
  }

  /**
   * The same image, built in slices of `snapshotSliceRecords` records with the event loop
   * free between them (a whole shard at once stalls the node: 50 ms for 6,000 keys, 190 ms
   * for 62,000). It reads one LMDB read transaction opened now, so it is the state as of
   * the applied index at the call, whatever is applied meanwhile. The host uses this one.
   */
  async snapshotInSlices(): Promise<Uint8Array> {
    const transaction = this.database.useReadTransaction();
    try {
      const slices = this.#imageInSlices(transaction);
      let step = slices.next();
      while (!step.done) {
        await new Promise((resolve) => setImmediate(resolve));
        step = slices.next();
      }
      return step.value;
    } finally {
      transaction.done();
    }
  }

  /** Builds the image, pausing (yielding) every `snapshotSliceRecords` records read. */
  *#imageInSlices(transaction?: Transaction): Generator<void, Uint8Array> {
    const meta = this.#meta;
    let read = 0;
    const keys: unknown[] = [];
    for (const { kv } of this.#keysInOrder(null, null, transaction)) {
      keys.push(kv.key, kv.value, kv.version, kv.createRevision, kv.modRevision, kv.lease);
      if (++read % snapshotSliceRecords === 0) yield;
    }
    const events: unknown[] = [];
    for (const value of this.#areaValues(area.event, transaction)) {
      for (const field of unpack(value) as unknown[]) events.push(field);
      if (++read % snapshotSliceRecords === 0) yield;
    }
    const leases: unknown[] = [];
    for (const { key, value } of this.#areaEntries(area.lease, transaction))
      leases.push(readU64(key, 1), unpack(value) as number);
    const results: unknown[] = [];
    for (const requestId of this.#areaValues(area.queue, transaction)) {
      const record = this.database.get(resultRecordKey(requestId.toString("utf8")), {
        transaction,
      });
      assert(record !== undefined, "a queued request id has no result");
      results.push(requestId.toString("utf8"), ...(unpack(record) as CompactResult));
      if (++read % snapshotSliceRecords === 0) yield;
    }
    return pack([
      snapshotMagic,
      snapshotFormatVersion,
      meta.appliedIndex,
      meta.revision,
      meta.compactedRevision,
      meta.leaseCounter,
      keys,
      events,
      leases,
      results,
    ]);
  }

  /**
   * Replaces the state with a snapshot's, in one transaction, unless this store already
   * applied the image's index (LMDB is ahead of the Raft snapshot after a restart: the
   * same log, further). A corrupt image throws SnapshotCorrupt and changes nothing.
   * Listeners are not called: a watcher that waits re-reads `events` when its wait ends.
   */
  restore(data: Uint8Array): void {
    const image = decodeImage(data);
    if (image.appliedIndex <= this.#meta.appliedIndex) return;
    const meta: ShardMeta = {
      appliedIndex: image.appliedIndex,
      revision: image.revision,
      compactedRevision: image.compactedRevision,
      leaseCounter: image.leaseCounter,
      keyCount: image.keys.length / keyStride,
      leaseCount: image.leases.length / leaseStride,
      dedupOldest: 0,
      dedupNext: image.results.length / resultStride,
    };
    // Validation throws inside the transaction, which aborts it: all or nothing.
    this.database.transactionSync(() => {
      this.database.clearSync();
      const leaseIds = new Set<number>();
      for (let at = 0; at < image.leases.length; at += leaseStride) {
        const lease = imageInteger(image.leases[at], 1);
        if (leaseIds.has(lease)) throw corrupt(`lease ${lease} appears twice`);
        leaseIds.add(lease);
        this.database.putSync(leaseRecordKey(lease), pack(imageInteger(image.leases[at + 1], 0)));
      }
      let previousKey: Buffer | null = null;
      for (let at = 0; at < image.keys.length; at += keyStride) {
        const kv = imageKeyValue(image.keys, at, meta.revision);
        const keyBytes = Buffer.from(kv.key, "utf8");
        if (previousKey !== null && Buffer.compare(previousKey, keyBytes) >= 0)
          throw corrupt("keys are not in strictly increasing order");
        previousKey = keyBytes;
        if (kv.lease !== 0 && !leaseIds.has(kv.lease))
          throw corrupt(`key ${JSON.stringify(kv.key)} is attached to a missing lease`);
        const recordKey = keyRecordKey(kv.key);
        const hashed = recordKey.length === 1 + hashedStoredKeyBytes;
        this.database.putSync(recordKey, encodeKeyValue(kv, hashed));
        if (kv.lease !== 0)
          this.database.putSync(
            attachmentRecordKey(kv.lease, recordKey),
            hashed ? Buffer.from(kv.key) : Buffer.alloc(0),
          );
      }
      let ordinal = 0;
      let eventRevision = meta.compactedRevision;
      for (let at = 0; at < image.events.length; at += eventStride) {
        const event = imageEvent(image.events, at);
        if (event.revision <= meta.compactedRevision || event.revision > meta.revision)
          throw corrupt(`event at revision ${event.revision} is outside the retained history`);
        if (event.revision < eventRevision) throw corrupt("events are out of order");
        ordinal = event.revision === eventRevision ? ordinal + 1 : 0;
        eventRevision = event.revision;
        this.database.putSync(eventRecordKey(event.revision, ordinal), pack(eventTuple(event)));
      }
      const requestIds = new Set<string>();
      for (let at = 0; at < image.results.length; at += resultStride) {
        const requestId = image.results[at];
        if (typeof requestId !== "string" || requestId.length === 0 || requestIds.has(requestId))
          throw corrupt("a remembered request id is not a unique string");
        requestIds.add(requestId);
        const result = image.results.slice(at + 1, at + resultStride) as CompactResult;
        resultFromCompact(result); // throws SnapshotCorrupt on a malformed result
        this.database.putSync(resultRecordKey(requestId), pack(result));
        this.database.putSync(queueRecordKey(at / resultStride), Buffer.from(requestId));
      }
      this.database.putSync(metaRecordKey, encodeMeta(meta));
    });
    this.#meta = meta;
  }

  *#areaEntries(
    areaByte: number,
    transaction?: Transaction,
  ): Generator<{ key: Buffer; value: Buffer }> {
    const range = this.database.getRange({
      start: Buffer.from([areaByte]),
      end: Buffer.from([areaByte + 1]),
      transaction,
    });
    for (const entry of range) yield entry;
  }

  *#areaValues(areaByte: number, transaction?: Transaction): Generator<Buffer> {
    for (const { value } of this.#areaEntries(areaByte, transaction)) yield value;
  }
}

// ---- Record keys ---------------------------------------------------------------------------

function isLeaseId(id: number): boolean {
  return Number.isSafeInteger(id) && id > 0;
}

function withArea(areaByte: number, bytes: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(1 + bytes.length);
  key[0] = areaByte;
  key.set(bytes, 1);
  return key;
}

/** See the module doc: a key's UTF-8 bytes, or its first 1800 bytes and its SHA-256. */
function keyRecordKey(key: string): Buffer {
  const bytes = Buffer.from(key, "utf8");
  if (bytes.length <= storedKeyPrefixBytes) return withArea(area.key, bytes);
  const hash = createHash("sha256").update(bytes).digest();
  return withArea(area.key, Buffer.concat([bytes.subarray(0, storedKeyPrefixBytes), hash]));
}

function sharesStoredPrefix(keyBytes: Buffer, recordKey: Buffer): boolean {
  return keyBytes.compare(recordKey, 1, 1 + storedKeyPrefixBytes, 0, storedKeyPrefixBytes) === 0;
}

function writeU64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32BE(Math.floor(value / 2 ** 32), offset);
  target.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(source: Buffer, offset: number): number {
  return source.readUInt32BE(offset) * 2 ** 32 + source.readUInt32BE(offset + 4);
}

function eventRecordKey(revision: number, ordinal: number): Buffer {
  const key = Buffer.allocUnsafe(13);
  key[0] = area.event;
  writeU64(key, 1, revision);
  key.writeUInt32BE(ordinal, 9);
  return key;
}

function leaseRecordKey(lease: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = area.lease;
  writeU64(key, 1, lease);
  return key;
}

function attachmentRecordKey(lease: number, keyRecordKey: Buffer): Buffer {
  const key = Buffer.allocUnsafe(8 + keyRecordKey.length);
  key[0] = area.attachment;
  writeU64(key, 1, lease);
  keyRecordKey.copy(key, 9, 1);
  return key;
}

function resultRecordKey(requestId: string): Buffer {
  return withArea(area.result, Buffer.from(requestId, "utf8"));
}

function queueRecordKey(sequence: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = area.queue;
  writeU64(key, 1, sequence);
  return key;
}

/** The least byte string greater than every string starting with `prefix`. */
function successor(prefix: Buffer): Buffer {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  assert(end > 0, "no successor of a prefix of 0xff bytes");
  const next = Buffer.from(prefix.subarray(0, end));
  next[end - 1]! += 1;
  return next;
}

// ---- Records -------------------------------------------------------------------------------

function encodeMeta(meta: ShardMeta): Buffer {
  return pack([
    layoutVersion,
    meta.appliedIndex,
    meta.revision,
    meta.compactedRevision,
    meta.leaseCounter,
    meta.keyCount,
    meta.leaseCount,
    meta.dedupOldest,
    meta.dedupNext,
  ]);
}

function encodeKeyValue(kv: KeyValue, hashed: boolean): Buffer {
  const record: unknown[] = [kv.value, kv.version, kv.createRevision, kv.modRevision, kv.lease];
  if (hashed) record.push(kv.key);
  return pack(record);
}

/** `key` null: the record's own (stored with hashed keys). */
function decodeKeyValue(key: string | null, record: Buffer): KeyValue {
  const [value, version, createRevision, modRevision, lease, fullKey] = unpack(record) as [
    Uint8Array,
    number,
    number,
    number,
    number,
    string | undefined,
  ];
  const resolved = key ?? fullKey;
  assert(resolved !== undefined, "a hashed key's record lacks the key");
  return { key: resolved, value, version, createRevision, modRevision, lease };
}

function sortedByKey<T extends { keyBytes: Buffer }>(run: T[]): T[] {
  return run.sort((a, b) => Buffer.compare(a.keyBytes, b.keyBytes));
}

function eventTuple(event: KvEvent): unknown[] {
  const { kv, prev } = event;
  return [
    event.type,
    event.revision,
    kv.key,
    kv.value,
    kv.version,
    kv.createRevision,
    kv.lease,
    prev?.value ?? null,
    prev?.version ?? 0,
    prev?.createRevision ?? 0,
    prev?.modRevision ?? 0,
    prev?.lease ?? 0,
  ];
}

const eventStride = 12;

function eventFromTuple(tuple: readonly unknown[]): KvEvent {
  const [type, revision, key, value, version, createRevision, lease] = tuple as [
    "put" | "delete",
    number,
    string,
    Uint8Array,
    number,
    number,
    number,
  ];
  const prevValue = tuple[7] as Uint8Array | null;
  const prev: KeyValue | null =
    prevValue === null
      ? null
      : {
          key,
          value: prevValue,
          version: tuple[8] as number,
          createRevision: tuple[9] as number,
          modRevision: tuple[10] as number,
          lease: tuple[11] as number,
        };
  return {
    type,
    revision,
    kv: { key, value, version, createRevision, modRevision: revision, lease },
    prev,
  };
}

function compactResult(result: Exclude<KvResult, { type: "error" }>): CompactResult {
  switch (result.type) {
    case "write":
      return ["write", result.succeeded, result.revision, result.deleted ?? null];
    case "txn": {
      const letters = result.results.map((op) =>
        op.op === "put" ? "p" : op.op === "get" ? "g" : op.deleted ? "D" : "d",
      );
      return ["txn", result.succeeded, result.revision, letters.join("")];
    }
    case "lease":
      return ["lease", result.lease, result.revision, result.ttlMs];
  }
}

/** A remembered result, answered again (marked duplicate) to a retried command. */
function resultFromCompact(compact: CompactResult): KvResult {
  const [type, first, revision, last] = compact;
  if (!Number.isSafeInteger(revision)) throw corrupt("a remembered result has no revision");
  if (type === "write" && typeof first === "boolean") {
    if (last === null) return { type, succeeded: first, revision, prev: null, duplicate: true };
    if (typeof last === "boolean")
      return { type, succeeded: first, revision, prev: null, deleted: last, duplicate: true };
  }
  if (type === "txn" && typeof first === "boolean" && typeof last === "string") {
    const results = [...last].map((letter): TxnOpResult => {
      if (letter === "p") return { op: "put", prev: null };
      if (letter === "g") return { op: "get", kv: null };
      if (letter === "d" || letter === "D")
        return { op: "delete", deleted: letter === "D", prev: null };
      throw corrupt(`unknown operation ${JSON.stringify(letter)} in a remembered result`);
    });
    return { type, succeeded: first, revision, results, duplicate: true };
  }
  if (type === "lease" && typeof first === "number" && typeof last === "number")
    return { type, lease: first, ttlMs: last, revision, duplicate: true };
  throw corrupt("a remembered result is malformed");
}

function errorResult(code: "NotFound" | "InvalidArgument", message: string): KvResult {
  return { type: "error", code, message };
}

function leaseNotFound(lease: number): KvResult {
  return errorResult("NotFound", `lease ${lease} does not exist (expired or revoked)`);
}

// ---- Conditions and scan bounds -------------------------------------------------------------

/** A compare against a key's state; a missing key has zeros and no value (only "!=" a value holds). */
function compareHolds(compare: Compare, kv: KeyValue | null): boolean {
  let order: number;
  if (compare.target === "value") {
    if (kv === null) return compare.op === "!=";
    order = Buffer.compare(kv.value, compare.operand as Uint8Array);
  } else {
    order = Math.sign((kv === null ? 0 : kv[compare.target]) - (compare.operand as number));
  }
  switch (compare.op) {
    case "==":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case ">":
      return order > 0;
  }
}

/** The tightest of the request's bounds, as UTF-8 bytes. */
function scanBounds(request: ScanRequest): {
  lower: Buffer | null;
  lowerExclusive: boolean;
  upper: Buffer | null;
} {
  let lower: Buffer | null = null;
  let lowerExclusive = false;
  const raise = (bound: string | null, exclusive: boolean) => {
    if (bound === null) return;
    const bytes = Buffer.from(bound, "utf8");
    const order = lower === null ? 1 : Buffer.compare(bytes, lower);
    if (order > 0 || (order === 0 && exclusive)) {
      lower = bytes;
      lowerExclusive = exclusive;
    }
  };
  raise(request.prefix, false);
  raise(request.start, false);
  raise(request.after, true);
  let upper: Buffer | null = request.end === null ? null : Buffer.from(request.end, "utf8");
  if (request.prefix !== null && request.prefix.length > 0) {
    const prefixEnd = successor(Buffer.from(request.prefix, "utf8"));
    if (upper === null || Buffer.compare(prefixEnd, upper) < 0) upper = prefixEnd;
  }
  return { lower, lowerExclusive, upper };
}

// ---- Snapshot images -----------------------------------------------------------------------

const keyStride = 6;
const leaseStride = 2;
const resultStride = 5;

interface Image {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactedRevision: number;
  readonly leaseCounter: number;
  readonly keys: readonly unknown[];
  readonly events: readonly unknown[];
  readonly leases: readonly unknown[];
  readonly results: readonly unknown[];
}

function corrupt(message: string): BrigadeError {
  return new BrigadeError("SnapshotCorrupt", `kv shard snapshot: ${message}`);
}

/** The image's header and arrays; their fields are checked as they are loaded. */
function decodeImage(data: Uint8Array): Image {
  let decoded: unknown;
  try {
    decoded = unpack(data);
  } catch (error) {
    throw new BrigadeError("SnapshotCorrupt", "kv shard snapshot: not msgpack", { cause: error });
  }
  if (!Array.isArray(decoded) || decoded[0] !== snapshotMagic)
    throw corrupt("not a kv shard image");
  if (decoded[1] !== snapshotFormatVersion)
    throw corrupt(`format ${decoded[1]}; this version reads ${snapshotFormatVersion}`);
  const [
    ,
    ,
    appliedIndex,
    revision,
    compactedRevision,
    leaseCounter,
    keys,
    events,
    leases,
    results,
  ] = decoded;
  const image = {
    appliedIndex: imageInteger(appliedIndex, 0),
    revision: imageInteger(revision, 0),
    compactedRevision: imageInteger(compactedRevision, 0),
    leaseCounter: imageInteger(leaseCounter, 0),
    keys: imageArray(keys, keyStride),
    events: imageArray(events, eventStride),
    leases: imageArray(leases, leaseStride),
    results: imageArray(results, resultStride),
  };
  if (image.compactedRevision > image.revision) throw corrupt("compacted past its revision");
  return image;
}

function imageInteger(value: unknown, min: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min)
    throw corrupt(`expected an integer >= ${min}, found ${JSON.stringify(value)}`);
  return value as number;
}

function imageArray(value: unknown, stride: number): readonly unknown[] {
  if (!Array.isArray(value) || value.length % stride !== 0)
    throw corrupt(`expected an array of ${stride}-field entries`);
  return value;
}

function imageKey(value: unknown): string {
  if (typeof value !== "string" || value.length === 0) throw corrupt("a key is not a string");
  return value;
}

function imageBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw corrupt("a value is not bytes");
  return value;
}

function imageKeyValue(fields: readonly unknown[], at: number, revision: number): KeyValue {
  const kv: KeyValue = {
    key: imageKey(fields[at]),
    value: imageBytes(fields[at + 1]),
    version: imageInteger(fields[at + 2], 1),
    createRevision: imageInteger(fields[at + 3], 1),
    modRevision: imageInteger(fields[at + 4], 1),
    lease: imageInteger(fields[at + 5], 0),
  };
  if (kv.createRevision > kv.modRevision || kv.modRevision > revision)
    throw corrupt(`key ${JSON.stringify(kv.key)} has impossible revisions`);
  return kv;
}

function imageEvent(fields: readonly unknown[], at: number): KvEvent {
  const tuple = fields.slice(at, at + eventStride);
  if (tuple[0] !== "put" && tuple[0] !== "delete") throw corrupt("an event has no type");
  imageInteger(tuple[1], 1);
  imageKey(tuple[2]);
  imageBytes(tuple[3]);
  for (const field of [4, 5, 6, 8, 9, 10, 11]) imageInteger(tuple[field], 0);
  if (tuple[7] !== null) imageBytes(tuple[7]);
  return eventFromTuple(tuple);
}
