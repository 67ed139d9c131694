/**
 * @module The node's durable write-ahead log (issue 4 "Consensus" §2): one WAL per node,
 * shared by every Raft group on it, so one fsync covers a batch however many groups wrote.
 *
 * Layout. A directory of segment files named by the sequence number of their first record,
 * zero-padded to 20 digits so that name order is sequence order (`00000000000000000001.wal`).
 * Each segment is records back to back in the format of `wal-record.ts` (length, CRC32C, type,
 * group id, payload). Sequence numbers start at 1 and grow by one per record, across groups
 * and segments; they are not stored, they follow from the file name and record position.
 * Files in the directory that do not match the pattern are ignored.
 *
 * Durability contract. `append(records)` resolves only after the records are written AND a
 * completed fdatasync (or fsync, see `syncMethod`) covers them; a new segment's directory entry
 * is fsynced before anything in it is acknowledged. So an acknowledged record survives a
 * process crash and a power loss (on a disk that honours flushes). An unacknowledged append
 * may survive whole, in part (a prefix of its records) or not at all; appends are never
 * reordered, so whatever survives is a prefix of the append order.
 *
 * Group commit. Appends queue up while a write+fsync is in flight; when it finishes, ONE
 * write and ONE fsync carry everything that queued meanwhile (up to `batchBytesMax`). When
 * idle, the first append starts a batch once the code that issued it yields (a microtask), so
 * appends issued in the same synchronous run share it. Nothing waits on a timer: a lone appender
 * pays one write + one fsync, and N concurrent appenders pay about one fsync per round.
 *
 * Failure. If a write or an fsync fails, the WAL stops for good: that batch, every queued
 * append and every later one reject with "WalFailed". Retrying an fsync is not safe: Linux may
 * have dropped the dirty pages and a second fsync then "succeeds" without the data
 * (PostgreSQL's "fsyncgate", 2018). The owner must close, reopen (which recovers from what is
 * really on disk) and rejoin.
 *
 * Recovery (`WriteAheadLog.open`). Every segment is read and checked in order:
 * - a bad record (length out of range, past the end of the file, checksum mismatch, unknown
 *   type) in the LAST segment with no valid record anywhere after it is a torn tail: the
 *   interrupted last write. It is truncated away (ftruncate + fdatasync) and appends continue
 *   right after the last good record;
 * - a bad record anywhere else (a segment that is not the last, or followed by a valid record),
 *   or segments whose sequence numbers do not chain up, stops recovery with a
 *   `WalCorruptError` naming the file and the byte offset. Nothing is ever skipped silently:
 *   acknowledged records may be behind the damage.
 * Then `replay()` yields the surviving records in sequence order.
 *
 * Limits: every one is in `WalConfig`, with its default and reason; exceeding one is a typed
 * error ("RecordTooLarge", "BatchTooLarge", "WalOverloaded"). See docs/wal.md.
 *
 * Never: two WAL instances (or processes) on one directory. The node's data directory lock
 * (`node/data-dir.ts`) is what keeps a second process off it.
 */
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { assert } from "../lib/assert.js";
import { BrigadeError } from "../lib/errors.js";
import { syncDirectory, writeFully } from "./durable-fs.js";
import { WalCorruptError } from "./storage-errors.js";
import {
  decodeRecordAt,
  encodedRecordBytes,
  encodeRecord,
  findValidRecordAfter,
  scanSegment,
  type WalRecord,
  type WalRecordInput,
  walRecordHeaderBytes,
} from "./wal-record.js";

const MiB = 1024 * 1024;

/** How a batch is made durable. */
export type WalSyncMethod = "datasync" | "fsync";

export interface WalConfig {
  /**
   * A segment is sealed and a new one started before a batch would take it past this size.
   * Deletion works on whole segments, and recovery reads one segment into memory at a time,
   * so this trades deletion granularity against file count. Default 64 MiB (etcd's
   * `SegmentSizeBytes`). Must be at least `batchBytesMax`, so a batch always fits an empty
   * segment and no segment ever exceeds this size.
   */
  readonly segmentBytesMax: number;
  /**
   * Largest encoded record (13-byte header + payload); larger ones are refused with
   * "RecordTooLarge". Bounds the memory one record takes at recovery and the time one append
   * holds a batch. Default 16 MiB: 16x the Raft message limit, room for a batch of entries.
   * Recovery also uses it to reject implausible lengths, so never LOWER it on a WAL that
   * holds larger records: they would read as damage.
   */
  readonly recordBytesMax: number;
  /**
   * Largest single write+fsync, and so the largest one `append` call (else "BatchTooLarge").
   * Appends that queue behind a big batch wait for all of it: 16 MiB at ~200 MB/s of
   * sequential disk bandwidth is ~80 ms. Default 16 MiB; must be at least `recordBytesMax`.
   */
  readonly batchBytesMax: number;
  /**
   * Appends waiting for the next batch. More means the disk is not keeping up: appends are
   * refused with "WalOverloaded" (retriable) so that callers back off instead of queueing
   * without bound. Default 4096: 32 appends for each of 128 Raft groups.
   */
  readonly pendingAppendsMax: number;
  /**
   * Bytes of appends waiting for the next batch ("WalOverloaded" beyond). Bounds the memory
   * held by queued appends. Default 64 MiB; must be at least `batchBytesMax`.
   */
  readonly pendingBytesMax: number;
  /**
   * "datasync" (fdatasync: the data plus the metadata needed to read it back, such as the file
   * size, but not mtime) or "fsync" (everything). Both are durable for an append-only file;
   * "datasync" skips a metadata write per batch. Default "datasync" (etcd and PostgreSQL use
   * fdatasync for their logs too). `npm run bench:wal` measures both.
   */
  readonly syncMethod: WalSyncMethod;
}

export const walDefaults: WalConfig = Object.freeze({
  segmentBytesMax: 64 * MiB,
  recordBytesMax: 16 * MiB,
  batchBytesMax: 16 * MiB,
  pendingAppendsMax: 4096,
  pendingBytesMax: 64 * MiB,
  syncMethod: "datasync",
});

/** A record's 32-bit length field and V8's buffer limits make larger records impractical. */
const recordBytesLimit = 1024 * MiB;

/** Problems with `config`, one sentence each; empty when it is valid. */
export function validateWalConfig(config: WalConfig): readonly string[] {
  const issues: string[] = [];
  const sizes = [
    "segmentBytesMax",
    "recordBytesMax",
    "batchBytesMax",
    "pendingAppendsMax",
    "pendingBytesMax",
  ] as const;
  for (const name of sizes)
    if (!Number.isSafeInteger(config[name]) || config[name] < 1)
      issues.push(`${name} must be a positive integer, got ${config[name]}`);
  if (issues.length > 0) return issues;
  if (config.recordBytesMax < walRecordHeaderBytes || config.recordBytesMax > recordBytesLimit)
    issues.push(
      `recordBytesMax must be in [${walRecordHeaderBytes}, ${recordBytesLimit}], got ${config.recordBytesMax}`,
    );
  if (config.batchBytesMax < config.recordBytesMax)
    issues.push("batchBytesMax must be at least recordBytesMax: a largest record must fit a batch");
  if (config.segmentBytesMax < config.batchBytesMax)
    issues.push("segmentBytesMax must be at least batchBytesMax: a batch must fit a new segment");
  if (config.pendingBytesMax < config.batchBytesMax)
    issues.push("pendingBytesMax must be at least batchBytesMax: a largest append must queue");
  if (config.syncMethod !== "datasync" && config.syncMethod !== "fsync")
    issues.push(`syncMethod must be "datasync" or "fsync", got ${String(config.syncMethod)}`);
  return issues;
}

const segmentNamePattern = /^(\d{20})\.wal$/;

/** The file name of the segment whose first record has `firstSequence`. */
export function segmentFileName(firstSequence: number): string {
  assert(Number.isSafeInteger(firstSequence) && firstSequence >= 1, `sequence ${firstSequence}`);
  return `${String(firstSequence).padStart(20, "0")}.wal`;
}

/** A segment as the caller sees it (a copy; changing it changes nothing). */
export interface WalSegmentInfo {
  /** Absolute path. */
  readonly file: string;
  readonly firstSequence: number;
  readonly recordCount: number;
  /** Durable bytes: every record in them is written and fsynced. */
  readonly bytes: number;
  /** Groups with at least one record in the segment, ascending. */
  readonly groupIds: readonly number[];
  /** True for the segment appends go to; it is never deleted. */
  readonly active: boolean;
}

export interface AppendResult {
  /** Sequence number of the append's first record; the others follow one by one. */
  readonly firstSequence: number;
  readonly lastSequence: number;
}

/** Counters since open; every one only grows. */
export interface WalStats {
  /** `append` calls accepted (refused ones are not counted). */
  readonly appends: number;
  readonly records: number;
  /** Write+fsync rounds; each carries one or more appends. */
  readonly batches: number;
  /** fdatasync/fsync calls on segment files: one per batch (directory syncs not included). */
  readonly fsyncs: number;
  /** fsyncs of the WAL directory: one per new segment and one per deletion round. */
  readonly directorySyncs: number;
  readonly bytesWritten: number;
  readonly segmentsCreated: number;
  readonly segmentsDeleted: number;
  /** Appends refused with "WalOverloaded". */
  readonly overloads: number;
  /**
   * Histogram of appends per batch in power-of-two buckets: `batchSizes[i]` counts batches
   * that carried [2^i, 2^(i+1)) appends; the last bucket also holds everything larger.
   */
  readonly batchSizes: readonly number[];
  readonly largestBatchAppends: number;
}

const batchSizeBuckets = 16;

/** What `open` found and did. */
export interface WalRecoveryReport {
  readonly segments: number;
  readonly records: number;
  /** Sequence of the oldest retained record (or of the next record, if there is none). */
  readonly firstSequence: number;
  readonly nextSequence: number;
  /** The torn tail cut off the last segment, or null if it ended cleanly. */
  readonly truncatedTail: {
    readonly file: string;
    readonly offsetBytes: number;
    readonly bytesRemoved: number;
    readonly reason: string;
  } | null;
}

interface Segment {
  readonly file: string;
  readonly firstSequence: number;
  recordCount: number;
  bytes: number;
  readonly groupIds: Set<number>;
}

interface PendingAppend {
  readonly firstSequence: number;
  readonly recordCount: number;
  readonly encoded: Buffer;
  readonly groupIds: readonly number[];
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

type WalState = "open" | "closing" | "closed";

/**
 * The segmented, group-committed WAL. Open one per node with `WriteAheadLog.open`.
 *
 * When to use: every record a Raft group must find again after a crash (entries, hard state,
 * snapshot markers). Snapshot CONTENTS go to files via `writeSnapshotAtomically`; the WAL
 * only records that a snapshot exists.
 *
 * Gotchas:
 * - `append` resolves after fsync; do not send a message that promises the records (a vote,
 *   an AppendEntries success) before it resolves.
 * - An unacknowledged append can survive a crash as a prefix of its records: order records
 *   so that any prefix is safe (entries before the hard state whose commit index covers them).
 * - Deleting segments (`truncateBefore`, `compact`) must not delete a group's newest hard
 *   state: re-append it after a snapshot, before compacting (see docs/wal.md).
 * - Do not delete segments while a `replay()` iterates over them.
 *
 * Example:
 *   const wal = await WriteAheadLog.open(path.join(dataDir, "wal"));
 *   for await (const record of wal.replay()) raft.restore(record);
 *   const { lastSequence } = await wal.append([{ type: "entries", groupId: 7, payload }]);
 *   await wal.close();
 */
export class WriteAheadLog {
  readonly directory: string;
  readonly config: WalConfig;
  readonly recovery: WalRecoveryReport;

  readonly #segments: Segment[];
  #handle: FileHandle;
  #nextSequence: number;
  #queue: PendingAppend[] = [];
  #pendingBytes = 0;
  #flushing = false;
  #flushScheduled = false;
  #failure: BrigadeError | null = null;
  #state: WalState = "open";
  #closing: Promise<void> | null = null;
  #idleWaiters: (() => void)[] = [];
  readonly #stats = {
    appends: 0,
    records: 0,
    batches: 0,
    fsyncs: 0,
    directorySyncs: 0,
    bytesWritten: 0,
    segmentsCreated: 0,
    segmentsDeleted: 0,
    overloads: 0,
    batchSizes: new Array<number>(batchSizeBuckets).fill(0),
    largestBatchAppends: 0,
  };

  private constructor(options: {
    directory: string;
    config: WalConfig;
    segments: Segment[];
    handle: FileHandle;
    recovery: WalRecoveryReport;
    directorySyncs: number;
    segmentsCreated: number;
  }) {
    assert(options.segments.length > 0);
    this.directory = options.directory;
    this.config = options.config;
    this.#segments = options.segments;
    this.#handle = options.handle;
    this.recovery = options.recovery;
    this.#nextSequence = options.recovery.nextSequence;
    this.#stats.directorySyncs = options.directorySyncs;
    this.#stats.segmentsCreated = options.segmentsCreated;
  }

  /**
   * Opens the WAL in `directory` (created if missing), recovering as the module doc says:
   * a torn tail is truncated, any other damage throws `WalCorruptError`. `overrides` replace
   * single fields of `walDefaults`; an invalid result throws "InvalidConfig".
   */
  static async open(directory: string, overrides: Partial<WalConfig> = {}): Promise<WriteAheadLog> {
    const config: WalConfig = Object.freeze({ ...walDefaults, ...overrides });
    const issues = validateWalConfig(config);
    if (issues.length > 0)
      throw new BrigadeError("InvalidConfig", `invalid WAL config: ${issues.join("; ")}`);
    const absolute = path.resolve(directory);
    await mkdir(absolute, { recursive: true });
    const names = (await readdir(absolute)).filter((name) => segmentNamePattern.test(name)).sort();

    if (names.length === 0) {
      const file = path.join(absolute, segmentFileName(1));
      const handle = await open(file, "wx");
      await syncDirectory(absolute);
      return new WriteAheadLog({
        directory: absolute,
        config,
        segments: [{ file, firstSequence: 1, recordCount: 0, bytes: 0, groupIds: new Set() }],
        handle,
        recovery: {
          segments: 1,
          records: 0,
          firstSequence: 1,
          nextSequence: 1,
          truncatedTail: null,
        },
        directorySyncs: 1,
        segmentsCreated: 1,
      });
    }

    const segments: Segment[] = [];
    let truncatedTail: WalRecoveryReport["truncatedTail"] = null;
    let handle: FileHandle | null = null;
    for (const [index, name] of names.entries()) {
      const file = path.join(absolute, name);
      const firstSequence = Number(segmentNamePattern.exec(name)![1]);
      if (!Number.isSafeInteger(firstSequence) || firstSequence < 1)
        throw new WalCorruptError(file, 0, `segment name ${name} is not a sequence number >= 1`);
      const previous = segments.at(-1);
      if (previous !== undefined && previous.firstSequence + previous.recordCount !== firstSequence)
        throw new WalCorruptError(
          previous.file,
          previous.bytes,
          `segment ends before sequence ${previous.firstSequence + previous.recordCount} ` +
            `but the next segment ${name} starts at ${firstSequence}: records are missing`,
        );

      const bytes = await readFile(file);
      const scan = scanSegment(bytes, config.recordBytesMax);
      const isLast = index === names.length - 1;
      if (scan.damage !== null) {
        if (!isLast)
          throw new WalCorruptError(
            file,
            scan.damage.offsetBytes,
            `${scan.damage.reason}, in a sealed segment (only the last one may have a torn tail)`,
          );
        const validAfter = findValidRecordAfter(
          bytes,
          scan.damage.offsetBytes,
          config.recordBytesMax,
        );
        if (validAfter !== null)
          throw new WalCorruptError(
            file,
            scan.damage.offsetBytes,
            `${scan.damage.reason}, yet a valid record follows at offset ${validAfter}: ` +
              "damage in the middle of the log, not a torn tail",
          );
        // A torn tail: the last write was cut short by a crash and was never acknowledged.
        // Cut it off durably before anything new is written after the last good record.
        handle = await open(file, "r+");
        try {
          await handle.truncate(scan.validBytes);
          await handle.datasync();
        } catch (error) {
          await handle.close();
          throw error;
        }
        truncatedTail = {
          file,
          offsetBytes: scan.validBytes,
          bytesRemoved: bytes.length - scan.validBytes,
          reason: scan.damage.reason,
        };
      }
      segments.push({
        file,
        firstSequence,
        recordCount: scan.recordCount,
        bytes: scan.validBytes,
        groupIds: new Set(scan.groupIds),
      });
    }

    const last = segments.at(-1)!;
    handle ??= await open(last.file, "r+");
    const nextSequence = last.firstSequence + last.recordCount;
    assert(Number.isSafeInteger(nextSequence));
    return new WriteAheadLog({
      directory: absolute,
      config,
      segments,
      handle,
      recovery: {
        segments: segments.length,
        records: segments.reduce((sum, segment) => sum + segment.recordCount, 0),
        firstSequence: segments[0]!.firstSequence,
        nextSequence,
        truncatedTail,
      },
      directorySyncs: 0,
      segmentsCreated: 0,
    });
  }

  /** The sequence number the next appended record will get. */
  get nextSequence(): number {
    return this.#nextSequence;
  }

  /** Sequence of the oldest retained record (equal to `nextSequence` when the WAL is empty). */
  get firstSequence(): number {
    return this.#segments[0]!.firstSequence;
  }

  /** A copy of the counters. */
  get stats(): WalStats {
    return { ...this.#stats, batchSizes: [...this.#stats.batchSizes] };
  }

  /** The segments, oldest first; the last is the active one. */
  segments(): readonly WalSegmentInfo[] {
    return this.#segments.map((segment, index) => ({
      file: segment.file,
      firstSequence: segment.firstSequence,
      recordCount: segment.recordCount,
      bytes: segment.bytes,
      groupIds: [...segment.groupIds].sort((a, b) => a - b),
      active: index === this.#segments.length - 1,
    }));
  }

  /**
   * Appends `records` (of any groups) as one unit of the queue and resolves once they are
   * written and fsynced, with their sequence numbers. Payloads are copied before this returns.
   *
   * Rejects with "RecordTooLarge" (a record over `recordBytesMax`), "BatchTooLarge" (all
   * records together over `batchBytesMax`), "WalOverloaded" (queue full; retriable), "WalClosed"
   * or "WalFailed". An empty `records`, a group id outside [0, 2^32) or an unknown type is a
   * programmer error and throws an `AssertionError` synchronously.
   */
  append(records: readonly WalRecordInput[]): Promise<AppendResult> {
    assert(records.length > 0, "append needs at least one record");
    if (this.#state !== "open")
      return Promise.reject(new BrigadeError("WalClosed", `WAL ${this.directory} is closed`));
    if (this.#failure !== null) return Promise.reject(this.#failure);

    let totalBytes = 0;
    for (const record of records) {
      const recordBytes = encodedRecordBytes(record.payload.length);
      if (recordBytes > this.config.recordBytesMax)
        return Promise.reject(
          new BrigadeError(
            "RecordTooLarge",
            `WAL record of ${recordBytes} bytes (${record.payload.length} of payload) exceeds ` +
              `recordBytesMax ${this.config.recordBytesMax}`,
          ),
        );
      totalBytes += recordBytes;
    }
    if (totalBytes > this.config.batchBytesMax)
      return Promise.reject(
        new BrigadeError(
          "BatchTooLarge",
          `one append of ${records.length} records and ${totalBytes} bytes exceeds ` +
            `batchBytesMax ${this.config.batchBytesMax}; split it into several appends`,
        ),
      );
    if (
      this.#queue.length >= this.config.pendingAppendsMax ||
      this.#pendingBytes + totalBytes > this.config.pendingBytesMax
    ) {
      this.#stats.overloads++;
      return Promise.reject(
        new BrigadeError(
          "WalOverloaded",
          `WAL queue is full (${this.#queue.length} appends, ${this.#pendingBytes} bytes waiting; ` +
            `limits ${this.config.pendingAppendsMax} appends, ${this.config.pendingBytesMax} ` +
            "bytes): the disk is not keeping up, retry after a backoff",
        ),
      );
    }

    const encoded = Buffer.allocUnsafe(totalBytes);
    let offset = 0;
    const groupIds: number[] = [];
    for (const record of records) {
      offset = encodeRecord(record, encoded, offset);
      groupIds.push(record.groupId);
    }
    assert(offset === totalBytes);

    const firstSequence = this.#nextSequence;
    this.#nextSequence += records.length;
    assert(Number.isSafeInteger(this.#nextSequence));
    this.#stats.appends++;
    this.#stats.records += records.length;
    const promise = new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({
        firstSequence,
        recordCount: records.length,
        encoded,
        groupIds,
        resolve,
        reject,
      });
    });
    this.#pendingBytes += totalBytes;
    this.#scheduleFlush();
    return promise;
  }

  /**
   * Reads the durable records back in sequence order, from `fromSequence` (default: the
   * oldest retained). Meant for recovery right after `open`, but safe while appends run: it
   * reads each segment only up to what was fsynced when the iteration started. Each payload
   * is a fresh copy. Throws `WalCorruptError` if a record that checked out at open no longer
   * does (the disk changed under us).
   */
  async *replay(options: { fromSequence?: number } = {}): AsyncGenerator<WalRecord> {
    const fromSequence = options.fromSequence ?? this.firstSequence;
    const segments = this.#segments.map((segment) => ({
      file: segment.file,
      firstSequence: segment.firstSequence,
      recordCount: segment.recordCount,
      bytes: segment.bytes,
    }));
    for (const segment of segments) {
      if (segment.firstSequence + segment.recordCount <= fromSequence) continue;
      const bytes = (await readFile(segment.file)).subarray(0, segment.bytes);
      assert(bytes.length === segment.bytes, `${segment.file} shrank under the WAL`);
      let offset = 0;
      for (let position = 0; position < segment.recordCount; position++) {
        const result = decodeRecordAt(bytes, offset, bytes.length, this.config.recordBytesMax);
        if (!result.ok) throw new WalCorruptError(segment.file, offset, result.reason);
        const sequence = segment.firstSequence + position;
        if (sequence >= fromSequence)
          yield {
            sequence,
            type: result.record.type,
            groupId: result.record.groupId,
            // A copy (Buffer#slice would share memory): a kept payload must not pin the segment.
            payload: new Uint8Array(
              bytes.subarray(result.record.payloadStart, result.record.payloadEnd),
            ),
          };
        offset = result.record.nextOffset;
      }
      assert(offset === bytes.length, `${segment.file}: records end before the durable bytes`);
    }
  }

  /**
   * Deletes every sealed segment whose records all have sequence numbers below `sequence`
   * (whole segments only, oldest first; never the active segment). Returns what it deleted.
   *
   * When to use: the caller knows no record before `sequence` is needed by ANY group, e.g.
   * a single-group node after a snapshot. With several groups, `compact` does the bookkeeping.
   */
  truncateBefore(sequence: number): Promise<readonly WalSegmentInfo[]> {
    assert(Number.isSafeInteger(sequence), `sequence ${sequence}`);
    return this.#deleteOldestSegments((_segment, endSequence) => endSequence <= sequence);
  }

  /**
   * Deletes the oldest sealed segments that no group needs any more. `retainFromByGroup`
   * maps a group id to the sequence of that group's oldest record it still needs (after a
   * snapshot: the snapshot marker's sequence). A segment goes only if every group with a
   * record in it has an entry here that is past the segment's last record; a group with no
   * entry keeps every segment it has records in. Deletion stops at the first segment that must
   * stay, so the retained segments always chain up. Returns what it deleted.
   */
  compact(retainFromByGroup: ReadonlyMap<number, number>): Promise<readonly WalSegmentInfo[]> {
    return this.#deleteOldestSegments((segment, endSequence) => {
      for (const groupId of segment.groupIds) {
        const retainFrom = retainFromByGroup.get(groupId);
        if (retainFrom === undefined || retainFrom < endSequence) return false;
      }
      return true;
    });
  }

  /**
   * Stops accepting appends, waits until every queued append is written and fsynced (or
   * failed), then closes the active file. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#state = "closing";
    this.#closing = (async () => {
      await this.#whenIdle();
      await this.#handle.close();
      this.#state = "closed";
    })();
    return this.#closing;
  }

  #scheduleFlush(): void {
    if (this.#flushing || this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Not a timer, not even the next turn of the event loop: once the code that issued this
    // append yields, so appends issued in the same synchronous run go out in one write and
    // fsync. (`setImmediate` here cost ~0.8 ms per lone append under load: bench:raft at one
    // write in flight went from ~350 to ~500 ops/s when it was removed.)
    queueMicrotask(() => {
      this.#flushScheduled = false;
      void this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    assert(!this.#flushing);
    this.#flushing = true;
    try {
      while (this.#queue.length > 0 && this.#failure === null) {
        const batch = this.#takeBatch();
        try {
          await this.#writeBatch(batch);
        } catch (error) {
          this.#fail(error, batch);
          break;
        }
        for (const append of batch)
          append.resolve({
            firstSequence: append.firstSequence,
            lastSequence: append.firstSequence + append.recordCount - 1,
          });
      }
    } finally {
      this.#flushing = false;
      if (this.#queue.length === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  /** Takes appends from the front of the queue while they fit in `batchBytesMax`. */
  #takeBatch(): PendingAppend[] {
    let bytes = 0;
    let count = 0;
    for (const append of this.#queue) {
      if (bytes + append.encoded.length > this.config.batchBytesMax) break;
      bytes += append.encoded.length;
      count++;
    }
    assert(count > 0, "every queued append fits a batch on its own");
    this.#pendingBytes -= bytes;
    assert(this.#pendingBytes >= 0);
    return this.#queue.splice(0, count);
  }

  async #writeBatch(batch: readonly PendingAppend[]): Promise<void> {
    const bytes = batch.reduce((sum, append) => sum + append.encoded.length, 0);
    const recordCount = batch.reduce((sum, append) => sum + append.recordCount, 0);
    if (this.#active().bytes > 0 && this.#active().bytes + bytes > this.config.segmentBytesMax)
      await this.#rotate();
    const segment = this.#active();
    assert(segment.firstSequence + segment.recordCount === batch[0]!.firstSequence);
    assert(segment.bytes + bytes <= this.config.segmentBytesMax);

    const buffer =
      batch.length === 1
        ? batch[0]!.encoded
        : Buffer.concat(
            batch.map((a) => a.encoded),
            bytes,
          );
    assert(buffer.length === bytes);
    checkBatch(buffer, recordCount, this.config.recordBytesMax);

    await writeFully(this.#handle, buffer, segment.bytes);
    if (this.config.syncMethod === "datasync") await this.#handle.datasync();
    else await this.#handle.sync();

    segment.bytes += bytes;
    segment.recordCount += recordCount;
    for (const append of batch)
      for (const groupId of append.groupIds) segment.groupIds.add(groupId);
    this.#stats.fsyncs++;
    this.#stats.batches++;
    this.#stats.bytesWritten += bytes;
    this.#stats.batchSizes[Math.min(batchSizeBuckets - 1, Math.floor(Math.log2(batch.length)))]!++;
    this.#stats.largestBatchAppends = Math.max(this.#stats.largestBatchAppends, batch.length);
  }

  /**
   * Seals the active segment and starts the next one. The sealed one needs no fsync here:
   * every batch in it was fsynced before it was acknowledged. The new file's directory entry
   * is fsynced BEFORE any record in it is acknowledged, else a crash could lose the file.
   */
  async #rotate(): Promise<void> {
    const sealed = this.#active();
    const firstSequence = sealed.firstSequence + sealed.recordCount;
    const file = path.join(this.directory, segmentFileName(firstSequence));
    const handle = await open(file, "wx");
    try {
      await syncDirectory(this.directory);
    } catch (error) {
      await handle.close();
      throw error;
    }
    this.#stats.directorySyncs++;
    this.#stats.segmentsCreated++;
    const previous = this.#handle;
    this.#handle = handle;
    this.#segments.push({ file, firstSequence, recordCount: 0, bytes: 0, groupIds: new Set() });
    await previous.close();
  }

  #active(): Segment {
    return this.#segments.at(-1)!;
  }

  #fail(cause: unknown, batch: readonly PendingAppend[]): void {
    const error = new BrigadeError(
      "WalFailed",
      `WAL ${this.directory} failed to write or fsync (${(cause as Error).message}); it accepts ` +
        "no more appends: close it and reopen to recover from what is on disk",
      { cause },
    );
    this.#failure = error;
    const queued = this.#queue;
    this.#queue = [];
    this.#pendingBytes = 0;
    for (const append of [...batch, ...queued]) append.reject(error);
  }

  #whenIdle(): Promise<void> {
    if (!this.#flushing && !this.#flushScheduled && this.#queue.length === 0)
      return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Removes, from the front, every sealed segment `deletable` accepts (stopping at the first
   * it refuses), then unlinks their files oldest first and fsyncs the directory. The list is
   * updated before the first await, so concurrent calls never pick the same segment.
   * `endSequence` is the sequence just past the segment's last record.
   */
  async #deleteOldestSegments(
    deletable: (segment: Segment, endSequence: number) => boolean,
  ): Promise<readonly WalSegmentInfo[]> {
    if (this.#state !== "open")
      throw new BrigadeError("WalClosed", `WAL ${this.directory} is closed`);
    let count = 0;
    while (count < this.#segments.length - 1) {
      const segment = this.#segments[count]!;
      const endSequence = this.#segments[count + 1]!.firstSequence;
      assert(segment.firstSequence + segment.recordCount === endSequence);
      if (!deletable(segment, endSequence)) break;
      count++;
    }
    if (count === 0) return [];
    const deleted = this.segments().slice(0, count);
    this.#segments.splice(0, count);
    assert(this.#segments.length >= 1);
    // Oldest first: if we crash halfway, what is left is still a contiguous run of segments.
    for (const segment of deleted) {
      await unlink(segment.file);
      this.#stats.segmentsDeleted++;
    }
    // Not needed for safety (a deletion lost in a crash only brings back records the caller
    // already said it does not need), but it makes the freed space and the listing stick.
    await syncDirectory(this.directory);
    this.#stats.directorySyncs++;
    return deleted;
  }
}

/**
 * The pair of the read-side check: just before a batch goes to disk, decode it back and
 * check every record's bounds and checksum, so a bug in encoding fails here, loudly, instead
 * of as "corruption" at the next recovery.
 */
function checkBatch(buffer: Uint8Array, recordCount: number, recordBytesMax: number): void {
  let offset = 0;
  for (let index = 0; index < recordCount; index++) {
    const result = decodeRecordAt(buffer, offset, buffer.length, recordBytesMax);
    assert(result.ok, `encoded record ${index} of the batch does not decode`);
    offset = result.record.nextOffset;
  }
  assert(offset === buffer.length, "batch has bytes after its last record");
}
