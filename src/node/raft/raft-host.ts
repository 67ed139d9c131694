/**
 * @module Runs every Raft group of this node for real (issue 4 §3): one timer ticks them
 * all, one write-ahead log holds them all, one frame per destination node carries all their
 * messages. The order of a `Ready` (core/raft/types.ts) is enforced here and only here:
 *
 *   round: feed queued inputs → take a Ready from EVERY group that has one →
 *          send the leaders' replication traffic (`Ready.sendBeforePersist`) →
 *          persist them all with ONE WAL append (one fsync, however many groups wrote) →
 *          send the other messages, batched per destination (heartbeats coalesced) →
 *          each group restores/applies/answers → advance every group →
 *          start the snapshots that are due (files written in the background; a later
 *          round records them and compacts the WAL behind them).
 *
 * While a round runs, inputs (ticks, messages, proposals, reads) wait in a bounded queue,
 * because a core accepts no input between `ready()` and `advance()`; all of them are fed
 * before the next round, so they share its fsync.
 *
 * Snapshots: a group's state machine image goes to its own file (`storage/snapshot.ts`:
 * temp file, fsync, rename, directory fsync), THEN a snapshot-marker record in the WAL
 * points at it together with the group's hard state and its log after the snapshot, THEN
 * WAL segments no group needs any more are deleted and older snapshot files removed. A
 * crash between any two steps leaves either the old marker (and its file) or the new one.
 */
import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { RaftNode } from "../../core/raft/raft-node.js";
import {
  decodeRaftRecord,
  encodeRaftRecordBody,
  replayRaftRecord,
} from "../../core/raft/storage.js";
import type {
  Entry,
  HardState,
  LogIndex,
  Ready,
  Snapshot,
  SnapshotMetadata,
} from "../../core/raft/types.js";
import { AssertionError } from "../../lib/assert.js";
import { BrigadeError, isBrigadeError } from "../../lib/errors.js";
import { prngFromSeed } from "../../lib/prng.js";
import { deleteSnapshot, readSnapshot, writeSnapshotAtomically } from "../../storage/snapshot.js";
import { type WalConfig, WriteAheadLog, walDefaults } from "../../storage/wal.js";
import type { WalRecordInput } from "../../storage/wal-record.js";
import type { Logger, TcpTransport } from "../../transport/tcp-transport.js";
import { decodeBatchFrame, encodeBatchFrames, type GroupMessage } from "./batch-wire.js";
import { type GroupStateMachine, RaftGroup } from "./raft-group.js";

const batchTopic = "raft.batch";

export interface RaftHostOptions {
  readonly nodeId: string;
  readonly transport: TcpTransport;
  readonly dataDir: string;
  readonly logger: Logger;
  /** Wall time of one Raft tick. Election timeout = 10 to 20 ticks, heartbeat = 1 tick. */
  readonly tickMs: number;
  /**
   * Applied entries between a group's snapshots. Each snapshot lets the log and the WAL
   * behind it go, which is what bounds memory and disk; a lower value costs more
   * snapshot writes. Default 10,000.
   */
  readonly snapshotEntries: number;
  /** WAL settings other than the defaults (tests use small segments to see them deleted). */
  readonly wal?: Partial<WalConfig>;
}

/** Sealed WAL segments kept before quiet groups are made to let the oldest go. */
const walSealedSegmentsMax = 4;
/** How often (in rounds) the host checks whether quiet groups hold the WAL back. */
const walCheckEveryRounds = 64;

/** Entries a learner may lag the commit index and still be promoted (about 4 full appends). */
const learnerCatchUpSlackEntries = 256;

export const raftHostDefaults = { tickMs: 100, snapshotEntries: 10_000 } as const;

/** Inputs that wait while a round persists; beyond this, messages are dropped (Raft retries) and commands refused. */
const inputQueueMax = 10_000;

interface QueuedInput {
  readonly run: () => void;
  /** Called instead of `run` when the input is dropped (queue full, node stopping). */
  readonly fail: (error: BrigadeError) => void;
}

/** What the WAL held for one group at startup. */
interface RecoveredGroup {
  hardState: HardState | undefined;
  snapshot: SnapshotMetadata | undefined;
  entries: Entry[];
}

export interface RaftHostStats {
  rounds: number;
  walAppends: number;
  entriesPersisted: number;
  messagesSent: number;
  framesSent: number;
  messagesDropped: number;
  /** Messages from peers refused as malformed, spoofed or for an unknown group. */
  messagesRejected: number;
  snapshotsWritten: number;
  walSegmentsDeleted: number;
}

const noop = () => {};

export class RaftHost {
  readonly stats: RaftHostStats = {
    rounds: 0,
    walAppends: 0,
    entriesPersisted: 0,
    messagesSent: 0,
    framesSent: 0,
    messagesDropped: 0,
    messagesRejected: 0,
    snapshotsWritten: 0,
    walSegmentsDeleted: 0,
  };
  /** Duration (ms) of each round's WAL append, the entries it carried and the groups in it. */
  onPersist: (durationMs: number, entries: number, groups: number) => void = () => {};
  readonly #groups = new Map<number, RaftGroup>();
  #wal: WriteAheadLog | null = null;
  readonly #recovered = new Map<number, RecoveredGroup>();
  /** Per group: the hard state last written (term and vote decide whether a round must sync). */
  readonly #persisted = new Map<number, HardState>();
  /** Per group: sequence of its latest snapshot marker, for WAL compaction. */
  readonly #markers = new Map<number, number>();
  readonly #queue: QueuedInput[] = [];
  #processing = false;
  /** The rounds loop in progress (or the last one): `stop` waits for it to finish. */
  #rounds: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  /** Set when the WAL failed: every group refuses everything until the process restarts. */
  #failed: Error | null = null;
  readonly #walConfig: WalConfig;
  /** Per group: applied entries after the last snapshot that make the next one due. */
  readonly #snapshotGap = new Map<number, number>();
  /** Groups whose snapshot file is being written. */
  readonly #snapshotsWriting = new Set<number>();
  /** Groups to snapshot at their next round whatever they applied (see `#unblockWal`). */
  readonly #snapshotForced = new Set<number>();
  /** Snapshot files now durable, for the next round to record. */
  readonly #snapshotsDurable: { group: RaftGroup; index: LogIndex; data: Uint8Array }[] = [];

  constructor(private readonly options: RaftHostOptions) {
    this.#walConfig = { ...walDefaults, ...options.wal };
  }

  get snapshotDirectory(): string {
    return path.join(this.options.dataDir, "snapshots");
  }

  /** Opens the WAL and reads what every group left in it; groups start with `addGroup`. */
  async start(): Promise<void> {
    const wal = await WriteAheadLog.open(path.join(this.options.dataDir, "wal"), this.options.wal);
    if (this.#stopped) {
      await wal.close(); // stop() ran while the WAL was opening
      return;
    }
    this.#wal = wal;
    // A group's records before its last snapshot marker are superseded by it (the marker
    // carries the snapshot, the hard state and the log after it), and the segments that held
    // the group's earlier records may already be deleted: replay each group from its marker.
    for await (const record of wal.replay()) {
      if (record.type === "snapshot-marker") this.#markers.set(record.groupId, record.sequence);
    }
    for await (const record of wal.replay()) {
      if (record.sequence < (this.#markers.get(record.groupId) ?? 0)) continue;
      const decoded = decodeRaftRecord(record.payload);
      if (decoded === null)
        throw new BrigadeError(
          "DataDirMismatch",
          `unreadable Raft record at WAL sequence ${record.sequence} (group ${record.groupId})`,
        );
      let group = this.#recovered.get(record.groupId);
      if (group === undefined) {
        group = {
          hardState: undefined,
          snapshot: undefined,
          entries: [],
        };
        this.#recovered.set(record.groupId, group);
      }
      if (decoded.hardState !== null) group.hardState = decoded.hardState;
      const next = replayRaftRecord(group, decoded);
      if (next === null)
        throw new BrigadeError(
          "DataDirMismatch",
          `Raft log gap in group ${record.groupId} at WAL sequence ${record.sequence}`,
        );
      group.snapshot = next.snapshot;
      group.entries = next.entries;
    }
    this.options.transport.onMessage(batchTopic, (payload, context) => {
      this.stats.messagesRejected += decodeBatchFrame(
        payload,
        context.source,
        (groupId, message) => {
          const group = this.#groups.get(groupId);
          if (group === undefined) this.stats.messagesRejected++;
          else this.#input(() => group.node.step(message), noop);
        },
      );
    });
    // One input ticks every group, so all their heartbeats leave in the same round: one frame
    // per peer carries them all.
    this.#timer = setInterval(() => {
      this.#input(() => {
        for (const group of this.#groups.values()) group.node.tick();
      }, noop);
    }, this.options.tickMs);
  }

  /**
   * Starts group `groupId` from what the WAL and its snapshot file hold. `voters` is the
   * bootstrap configuration (the same on every founding member; empty on a node that will
   * be added to the group later).
   */
  async addGroup(
    groupId: number,
    voters: readonly string[],
    machine: GroupStateMachine,
  ): Promise<RaftGroup> {
    if (this.#groups.has(groupId))
      throw new BrigadeError("InvalidArgument", `group ${groupId} is already running`);
    const recovered = this.#recovered.get(groupId);
    this.#recovered.delete(groupId);
    let snapshot: Snapshot | undefined;
    if (recovered?.snapshot !== undefined) {
      const name = snapshotFileName(groupId, recovered.snapshot.index);
      const data = await readSnapshot(this.snapshotDirectory, name);
      if (data === null)
        throw new BrigadeError(
          "DataDirMismatch",
          `group ${groupId}: the WAL points at snapshot ${name}, which is missing from ${this.snapshotDirectory}`,
        );
      snapshot = { metadata: recovered.snapshot, data };
      machine.restore(data);
    }
    await this.#removeSnapshotsExcept(groupId, recovered?.snapshot?.index);
    const hardState = recovered?.hardState;
    const entries = recovered?.entries ?? [];
    const lastIndex = entries.at(-1)?.index ?? snapshot?.metadata.index ?? 0;
    if (hardState !== undefined && hardState.commit > lastIndex) {
      throw new BrigadeError(
        "DataDirMismatch",
        `group ${groupId}: commit index ${hardState.commit} is past the recovered log (${lastIndex})`,
      );
    }
    if (hardState !== undefined) this.#persisted.set(groupId, hardState);
    const node = new RaftNode({
      id: this.options.nodeId,
      voters,
      prng: prngFromSeed(Number.parseInt(randomUUID().slice(0, 8), 16) | 0),
      // A learner within a few appends of the commit index may be promoted under load.
      config: { learnerCatchUpSlack: learnerCatchUpSlackEntries },
      ...(hardState === undefined ? {} : { hardState }),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries,
    });
    const group = new RaftGroup(groupId, node, machine, (run, fail) => this.#input(run, fail));
    this.#groups.set(groupId, group);
    this.options.logger.info(
      {
        group: groupId,
        term: hardState?.term ?? 0,
        snapshotIndex: snapshot?.metadata.index ?? 0,
        entries: entries.length,
        config: node.membership,
      },
      "raft group started",
    );
    return group;
  }

  /**
   * Stops group `groupId` for good (its data was dropped): waiting callers fail, its snapshot
   * files go, and its WAL records no longer hold segments back. Also forgets a group that was
   * recovered from the WAL but not started.
   */
  async removeGroup(groupId: number): Promise<void> {
    const group = this.#groups.get(groupId);
    this.#groups.delete(groupId);
    this.#recovered.delete(groupId);
    this.#persisted.delete(groupId);
    this.#snapshotGap.delete(groupId);
    // Retriable: the group lives on elsewhere (a moved replica) or the caller learns on
    // retry that its keyspace is gone. A pending command may still commit: retry with its id.
    group?.failEverything(
      new BrigadeError(
        "DeadlineExceeded",
        `group ${groupId} left this node: the outcome is unknown; retry with the same request id`,
      ),
    );
    // A marker past every record: compaction treats all the group's records as superseded.
    this.#markers.set(groupId, Number.MAX_SAFE_INTEGER);
    await this.#removeSnapshotsExcept(groupId, undefined);
  }

  /** Groups recovered from the WAL that no `addGroup` has started yet. */
  recoveredGroupIds(): number[] {
    return [...this.#recovered.keys()];
  }

  group(groupId: number): RaftGroup | undefined {
    return this.#groups.get(groupId);
  }

  groups(): RaftGroup[] {
    return [...this.#groups.values()];
  }

  get failure(): string | null {
    return this.#failed?.message ?? null;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#failEverything(
      new BrigadeError(
        "DeadlineExceeded",
        "node stopping: the outcome is unknown; retry with the same request id",
      ),
    );
    await this.#rounds;
    await this.#wal?.close();
  }

  /** The WAL's segments (for tests and the dashboard). */
  walSegments() {
    return this.#wal?.segments() ?? [];
  }

  #failEverything(error: BrigadeError): void {
    for (const queued of this.#queue.splice(0)) queued.fail(error);
    for (const group of this.#groups.values()) group.failEverything(error);
  }

  /** Runs an input now, or queues it while a round is in progress; then runs rounds. */
  #input(run: () => void, fail: (error: BrigadeError) => void): void {
    if (this.#stopped || this.#failed !== null) {
      fail(new BrigadeError("Unavailable", "raft is not running on this node"));
      return;
    }
    if (this.#processing) {
      if (this.#queue.length >= inputQueueMax) {
        this.stats.messagesDropped++;
        fail(new BrigadeError("QueueFull", `${this.#queue.length} inputs waiting for the disk`));
        return;
      }
      this.#queue.push({ run, fail });
      return;
    }
    this.#runInput(run);
    this.#rounds = this.#runRounds();
  }

  /** An input's own failure (a bad command) is contained; the core's assertions still crash. */
  #runInput(run: () => void): void {
    try {
      run();
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      this.options.logger.error({ err: error }, "raft input failed");
    }
  }

  async #runRounds(): Promise<void> {
    if (this.#processing) return;
    this.#processing = true;
    try {
      while (!this.#stopped) {
        for (const queued of this.#queue.splice(0)) this.#runInput(queued.run);
        if (this.#snapshotsDurable.length > 0) await this.#recordSnapshots();
        if (this.stats.rounds % walCheckEveryRounds === 0) await this.#unblockWal();
        const readies: [RaftGroup, Ready][] = [];
        for (const group of this.#groups.values()) {
          if (group.node.hasReady()) readies.push([group, group.node.ready()]);
        }
        if (readies.length === 0) break;
        this.stats.rounds++;
        // A leader's replication goes out before its own fsync (the Ready says when that is
        // safe), so its disk write overlaps its followers' (thesis §10.2.1).
        this.#send(readies.filter(([, ready]) => ready.sendBeforePersist));
        await this.#persist(readies);
        this.#send(readies.filter(([, ready]) => !ready.sendBeforePersist));
        for (const [group, ready] of readies) group.applyReady(ready);
        for (const [group] of readies) group.node.advance();
        for (const [group] of readies) this.#maybeStartSnapshot(group);
      }
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      // The disk failed: no group here can promise durability any more. Refuse everything.
      this.#failed = error as Error;
      this.options.logger.error({ err: error }, "raft stopped: cannot persist");
      // Entries already in the log may still commit through the other replicas.
      this.#failEverything(
        new BrigadeError(
          "DeadlineExceeded",
          `raft stopped on this node (${(error as Error).message}): the outcome is unknown`,
        ),
      );
    } finally {
      this.#processing = false;
    }
  }

  /**
   * Step 1: every group's snapshot file first, then one WAL append with all their records
   * (markers, hard states, entries), fsynced once. A hard state that changes only its commit
   * index is not worth an fsync (the leader tells it again; etcd MustSync).
   */
  async #persist(readies: readonly [RaftGroup, Ready][]): Promise<void> {
    const records: WalRecordInput[] = [];
    const markerPositions: [number, number][] = [];
    let entryCount = 0;
    let groupsWritten = 0;
    for (const [group, ready] of readies) {
      const previous = this.#persisted.get(group.id);
      const hard = ready.hardState;
      if (hard !== null) this.#persisted.set(group.id, hard);
      const voteChanged =
        hard !== null && (hard.term !== previous?.term || hard.vote !== previous?.vote);
      if (ready.snapshot !== null) {
        const { metadata, data } = ready.snapshot;
        await writeSnapshotAtomically(
          this.snapshotDirectory,
          snapshotFileName(group.id, metadata.index),
          data,
        );
        markerPositions.push([group.id, records.length]);
        records.push(this.#markerRecord(group.id, metadata));
      } else if (ready.entries.length === 0 && !voteChanged) continue;
      groupsWritten++;
      entryCount += ready.entries.length;
      records.push(...entryRecords(group.id, hard, ready.entries, this.#recordEntryBytesMax()));
    }
    if (records.length === 0) return;
    const started = performance.now();
    const sequences = await this.#append(records);
    for (const [groupId, position] of markerPositions) {
      this.#markers.set(groupId, sequences[position]!);
    }
    this.stats.walAppends++;
    this.stats.entriesPersisted += entryCount;
    this.onPersist(performance.now() - started, entryCount, groupsWritten);
    if (markerPositions.length > 0) {
      for (const [groupId] of markerPositions) {
        await this.#removeSnapshotsExcept(
          groupId,
          this.#groups.get(groupId)?.node.snapshotMetadata?.index,
        );
      }
      await this.#compactWal();
    }
  }

  /** A snapshot marker carries the group's full hard state: the records before it may go. */
  #markerRecord(groupId: number, metadata: SnapshotMetadata): WalRecordInput {
    const hardState = this.#persisted.get(groupId) ?? null;
    return {
      type: "snapshot-marker",
      groupId,
      payload: encodeRaftRecordBody({
        checkpoint: false,
        snapshot: metadata,
        hardState,
        entries: [],
      }),
    };
  }

  /** Appends records in batches under the WAL's batch limit, in order; returns their sequences. */
  async #append(records: readonly WalRecordInput[]): Promise<number[]> {
    const wal = this.#wal as WriteAheadLog;
    const sequences: number[] = [];
    let batch: WalRecordInput[] = [];
    let batchBytes = 0;
    const flush = async () => {
      const result = await wal.append(batch);
      for (let sequence = result.firstSequence; sequence <= result.lastSequence; sequence++)
        sequences.push(sequence);
      batch = [];
      batchBytes = 0;
    };
    for (const record of records) {
      if (
        batch.length > 0 &&
        batchBytes + record.payload.length > this.#walConfig.batchBytesMax / 2
      )
        await flush();
      batch.push(record);
      batchBytes += record.payload.length;
    }
    if (batch.length > 0) await flush();
    return sequences;
  }

  /** Step 2: every group's messages, one frame (or a few, by size) per destination node. */
  #send(readies: readonly [RaftGroup, Ready][]): void {
    const byTarget = new Map<string, GroupMessage[]>();
    for (const [group, ready] of readies) {
      for (const { target, message } of ready.messages) {
        let list = byTarget.get(target);
        if (list === undefined) {
          list = [];
          byTarget.set(target, list);
        }
        list.push({ group: group.id, message });
      }
    }
    for (const [target, messages] of byTarget) {
      for (const frame of encodeBatchFrames(messages)) {
        const count = (frame.m?.length ?? 0) + (frame.b?.length ?? 0) + (frame.r?.length ?? 0);
        try {
          this.options.transport.send(target, batchTopic, frame);
          this.stats.messagesSent += count;
          this.stats.framesSent++;
        } catch (error) {
          // Unknown or unreachable peer, full queue, oversize: Raft retries by itself.
          this.stats.messagesDropped += count;
          if (!isBrigadeError(error)) throw error;
        }
      }
    }
  }

  /**
   * After a round: a group that applied `snapshotEntries` since its last snapshot captures
   * its state machine image now (in the round, so it matches the applied index) and writes
   * the file in the background, so rounds keep running during the write and its fsync.
   */
  #maybeStartSnapshot(group: RaftGroup): void {
    const node = group.node;
    const last = node.snapshotMetadata?.index ?? 0;
    if (this.#snapshotsWriting.has(group.id)) return;
    const forced = this.#snapshotForced.has(group.id) && node.applied > last;
    if (!forced && node.applied - last < this.#snapshotDue(group.id)) return;
    this.#snapshotForced.delete(group.id);
    this.#snapshotGap.delete(group.id); // draw a new gap for the next one
    const index = node.applied;
    // Captured now (the image is as of `index`), built and written in the background.
    const image = group.machine.snapshotInSlices?.() ?? Promise.resolve(group.machine.snapshot());
    this.#snapshotsWriting.add(group.id);
    const name = snapshotFileName(group.id, index);
    image
      .then(async (data) => {
        await writeSnapshotAtomically(this.snapshotDirectory, name, data);
        return data;
      })
      .then(
        (data) => {
          this.#snapshotsDurable.push({ group, index, data });
          this.#input(noop, noop); // run a round to record it
        },
        (error: unknown) => {
          this.#snapshotsWriting.delete(group.id);
          this.options.logger.error({ err: error, group: group.id }, "snapshot write failed");
        },
      );
  }

  /**
   * `snapshotEntries` plus up to half again, drawn per snapshot: replicas apply the same
   * entries at about the same time, and without the jitter they would all pause to take an
   * image (and fsync a file beside the WAL) at once, stalling commits (bench:raft p99).
   */
  #snapshotDue(groupId: number): number {
    let gap = this.#snapshotGap.get(groupId);
    if (gap === undefined) {
      const entries = this.options.snapshotEntries;
      gap = entries + Math.floor(Math.random() * Math.ceil(entries / 2));
      this.#snapshotGap.set(groupId, gap);
    }
    return gap;
  }

  /**
   * In a round (so no other WAL append is in flight): hand each durable snapshot file to its
   * core, which compacts its log; then a marker record with the group's hard state and the
   * log after the snapshot (entries persisted before the marker must survive the WAL
   * compaction that follows), then old segments and files go.
   */
  async #recordSnapshots(): Promise<void> {
    const durable = this.#snapshotsDurable.splice(0);
    let recorded = false;
    for (const { group, index, data } of durable) {
      this.#snapshotsWriting.delete(group.id);
      if (this.#groups.get(group.id) !== group) continue; // removed while the file was written
      const result = group.node.snapshot(index, data);
      if (!result.ok) {
        // A newer snapshot came from the leader meanwhile: this one is not needed.
        await this.#removeSnapshotsExcept(group.id, group.node.snapshotMetadata?.index);
        continue;
      }
      await this.#appendMarker(group, result.value);
      group.stats.snapshotsTaken++;
      this.stats.snapshotsWritten++;
      await this.#removeSnapshotsExcept(group.id, index);
      recorded = true;
      this.options.logger.debug({ group: group.id, index, bytes: data.length }, "raft snapshot");
    }
    if (recorded) await this.#compactWal();
  }

  /**
   * Groups that write little (the catalog, a quiet shard) rarely reach `snapshotEntries`,
   * yet their old records pin the WAL's oldest segment, and compaction deletes segments
   * oldest first: with one quiet group the WAL would grow forever. Once more than
   * `walSealedSegmentsMax` segments are sealed, each group holding the oldest one back takes
   * a snapshot now, or, with nothing applied since its last one, writes its marker again
   * at the head of the log.
   */
  async #unblockWal(): Promise<void> {
    const wal = this.#wal as WriteAheadLog;
    const sealed = wal.segments().filter((segment) => !segment.active);
    if (sealed.length <= walSealedSegmentsMax) return;
    const [oldest, next] = [sealed[0]!, sealed[1] ?? wal.segments().at(-1)!];
    let rewrote = false;
    for (const groupId of oldest.groupIds) {
      const retainFrom = this.#markers.get(groupId);
      if (retainFrom !== undefined && retainFrom >= next.firstSequence) continue;
      const group = this.#groups.get(groupId);
      if (group === undefined || this.#snapshotsWriting.has(groupId)) continue;
      const metadata = group.node.snapshotMetadata;
      if (group.node.applied > (metadata?.index ?? 0)) {
        this.#snapshotForced.add(groupId);
        this.#maybeStartSnapshot(group);
      } else if (metadata !== null && metadata !== undefined) {
        await this.#appendMarker(group, metadata);
        rewrote = true;
      }
    }
    if (rewrote) await this.#compactWal();
  }

  /**
   * Appends the group's snapshot marker (the snapshot, its hard state) with the log after
   * the snapshot, and remembers the marker as where the group's records start.
   */
  async #appendMarker(group: RaftGroup, metadata: SnapshotMetadata): Promise<void> {
    const log = group.node.log;
    const tail = log.slice(metadata.index + 1, log.lastIndex(), Infinity, Infinity);
    const records = [
      this.#markerRecord(group.id, metadata),
      ...(tail.length > 0 ? entryRecords(group.id, null, tail, this.#recordEntryBytesMax()) : []),
    ];
    const sequences = await this.#append(records);
    this.#markers.set(group.id, sequences[0]!);
  }

  /** Entry bytes per WAL record: a larger Ready is written as several records (one append). */
  #recordEntryBytesMax(): number {
    return this.#walConfig.recordBytesMax / 2;
  }

  async #compactWal(): Promise<void> {
    const deleted = await (this.#wal as WriteAheadLog).compact(this.#markers);
    this.stats.walSegmentsDeleted += deleted.length;
  }

  /** Deletes the group's snapshot files other than the one at `keepIndex` (orphans of a crash too). */
  async #removeSnapshotsExcept(groupId: number, keepIndex: number | undefined): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.snapshotDirectory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const prefix = `raft-${groupId}-`;
    const keep = keepIndex === undefined ? null : snapshotFileName(groupId, keepIndex);
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith(".snap") && name !== keep) {
        await deleteSnapshot(this.snapshotDirectory, name);
      }
    }
  }
}

function snapshotFileName(groupId: number, index: number): string {
  return `raft-${groupId}-${String(index).padStart(20, "0")}.snap`;
}

/** A group's entries as WAL records under the record limit; the hard state goes with the first. */
function entryRecords(
  groupId: number,
  hardState: HardState | null,
  entries: readonly Entry[],
  entryBytesMax: number,
): WalRecordInput[] {
  const records: WalRecordInput[] = [];
  let chunk: Entry[] = [];
  let chunkBytes = 0;
  let hard = hardState;
  const flush = () => {
    records.push({
      type: "entries",
      groupId,
      payload: encodeRaftRecordBody({ checkpoint: false, hardState: hard, entries: chunk }),
    });
    hard = null;
    chunk = [];
    chunkBytes = 0;
  };
  for (const entry of entries) {
    if (chunk.length > 0 && chunkBytes + entry.data.length > entryBytesMax) flush();
    chunk.push(entry);
    chunkBytes += entry.data.length + 32;
  }
  if (chunk.length > 0 || hard !== null) flush();
  return records;
}
