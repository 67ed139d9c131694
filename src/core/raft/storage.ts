/**
 * @module A stand-in durable format for the Raft core under the simulator (the real WAL is
 * being built in `src/storage/`). Pure: encodes the Ready's hard state and entries as one
 * self-checking record per Ready (`core/broadcast/record-log.ts` frames), and rebuilds the
 * state from a file's surviving records.
 *
 * One record per Ready makes each Ready atomic on disk: a crash keeps it whole or drops it
 * (a torn frame fails its checksum). Each incarnation writes a new file generation,
 * `raft-<n>`, opening with a checkpoint of everything recovered, because nothing may be
 * appended after a torn tail. Recovery uses the newest generation whose checkpoint survived.
 */
import { assert } from "../../lib/assert.js";
import { BodyReader, BodyWriter, decodeRecords, encodeRecord } from "../broadcast/record-log.js";
import { decodeClusterConfig, encodeClusterConfig } from "./membership.js";
import {
  asIndex,
  asTerm,
  type Entry,
  type EntryKind,
  type HardState,
  type Snapshot,
  type SnapshotMetadata,
} from "./types.js";

/** Largest record: a Ready carries at most a few MiB (appendBytesMax per message, batched). */
export const RAFT_RECORD_BYTES_MAX = 256 * 1024 * 1024;
const FILE_PREFIX = "raft-";

export interface RaftRecord {
  /** True for the first record of a generation: it holds the whole state, not a delta. */
  readonly checkpoint: boolean;
  /**
   * A snapshot taken here or installed from the leader, applied to the stored log before
   * `entries`: entries up to its index are dropped, and the rest too unless the stored
   * entry at its index has its term (an installed snapshot replaces a log that differs).
   * `snapshotData` is the image itself where the record carries it (the simulator); the
   * node keeps it in a snapshot file and the record only points at it.
   */
  readonly snapshot?: SnapshotMetadata | null;
  readonly snapshotData?: Uint8Array | null;
  readonly hardState: HardState | null;
  /** Entries to store; the stored log is first truncated to `entries[0].index - 1`. */
  readonly entries: readonly Entry[];
}

export interface RecoveredRaftState {
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  /** The file the next incarnation must write (never one with a damaged tail). */
  readonly nextFile: string;
}

/** A record framed (length + checksum) for the simulator's append-only files. */
export function encodeRaftRecord(record: RaftRecord): Uint8Array {
  return encodeRecord(encodeRaftRecordBody(record), RAFT_RECORD_BYTES_MAX);
}

/** A record's body alone, for a log that frames and checksums records itself (the WAL). */
const kindCodes: Readonly<Record<EntryKind, number>> = { noop: 0, command: 1, config: 2 };
const kindsByCode: readonly EntryKind[] = ["noop", "command", "config"];

export function encodeRaftRecordBody(record: RaftRecord): Uint8Array {
  const writer = new BodyWriter().u8(2).u8(record.checkpoint ? 1 : 0);
  const snapshot = record.snapshot ?? null;
  writer.u8(snapshot === null ? 0 : 1);
  if (snapshot !== null) {
    writer
      .string(String(snapshot.index))
      .string(String(snapshot.term))
      .bytes(encodeClusterConfig(snapshot.config))
      .bytes(record.snapshotData ?? new Uint8Array(0));
  }
  const hard = record.hardState;
  writer.u8(hard === null ? 0 : 1);
  if (hard !== null) {
    writer
      .string(String(hard.term))
      .string(hard.vote ?? "")
      .string(String(hard.commit));
  }
  writer.string(String(record.entries.length));
  for (const entry of record.entries) {
    writer
      .string(String(entry.index))
      .string(String(entry.term))
      .u8(kindCodes[entry.kind])
      .bytes(entry.data);
  }
  return writer.finish();
}

function readNumber(reader: BodyReader): number | null {
  const text = reader.string();
  if (text === null || !/^\d+$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** Decodes one record body; null if malformed (treated like a torn tail). */
export function decodeRaftRecord(body: Uint8Array): RaftRecord | null {
  const reader = new BodyReader(body);
  const version = reader.u8();
  if (version !== 1 && version !== 2) return null; // 1: before snapshots
  const checkpoint = reader.u8();
  let snapshot: SnapshotMetadata | null = null;
  let snapshotData: Uint8Array | null = null;
  if (version === 2) {
    const hasSnapshot = reader.u8();
    if (hasSnapshot === null) return null;
    if (hasSnapshot === 1) {
      const index = readNumber(reader);
      const term = readNumber(reader);
      const configBytes = reader.bytes();
      snapshotData = reader.bytes();
      const config = configBytes === null ? null : decodeClusterConfig(configBytes);
      if (index === null || term === null || config === null || snapshotData === null) return null;
      snapshot = { index: asIndex(index), term: asTerm(term), config };
    }
  }
  const hasHard = reader.u8();
  if (checkpoint === null || hasHard === null) return null;
  let hardState: HardState | null = null;
  if (hasHard === 1) {
    const term = readNumber(reader);
    const vote = reader.string();
    const commit = readNumber(reader);
    if (term === null || vote === null || commit === null) return null;
    hardState = { term: asTerm(term), vote: vote === "" ? null : vote, commit: asIndex(commit) };
  }
  const count = readNumber(reader);
  if (count === null) return null;
  const entries: Entry[] = [];
  for (let position = 0; position < count; position++) {
    const index = readNumber(reader);
    const term = readNumber(reader);
    const kind = reader.u8();
    const data = reader.bytes();
    const entryKind = kind === null ? undefined : kindsByCode[kind];
    if (index === null || term === null || entryKind === undefined || data === null) return null;
    entries.push({ index: asIndex(index), term: asTerm(term), kind: entryKind, data });
  }
  if (!reader.atEnd()) return null;
  return { checkpoint: checkpoint === 1, snapshot, snapshotData, hardState, entries };
}

/**
 * Applies one record to a recovering log (see `RaftRecord`). Pure; shared by the
 * simulator's files and the node's WAL. Returns null if the record leaves a gap.
 */
export function replayRaftRecord(
  state: { snapshot: SnapshotMetadata | undefined; entries: Entry[] },
  record: Pick<RaftRecord, "snapshot" | "entries">,
): { snapshot: SnapshotMetadata | undefined; entries: Entry[] } | null {
  let { snapshot, entries } = state;
  const offset = () => snapshot?.index ?? 0;
  if (record.snapshot !== undefined && record.snapshot !== null) {
    const next = record.snapshot;
    const at = entries[next.index - offset() - 1];
    entries = at !== undefined && at.term === next.term ? entries.slice(next.index - offset()) : [];
    snapshot = next;
  }
  const first = record.entries[0];
  if (first === undefined) return { snapshot, entries };
  if (first.index <= offset()) {
    // Entries the snapshot already covers (written before it in the same Ready): keep the rest.
    const rest = record.entries.filter((entry) => entry.index > offset());
    if (rest.length === 0) return { snapshot, entries };
    return replayRaftRecord({ snapshot, entries }, { entries: rest });
  }
  if (first.index > offset() + entries.length + 1) return null;
  entries = entries.slice(0, first.index - offset() - 1).concat(record.entries);
  return { snapshot, entries };
}

/** Rebuilds the durable state from the files a restart found. */
export function recoverRaftState(files: ReadonlyMap<string, Uint8Array>): RecoveredRaftState {
  const generations = [...files.keys()]
    .filter((name) => name.startsWith(FILE_PREFIX))
    .map((name) => Number(name.slice(FILE_PREFIX.length)))
    .filter((generation) => Number.isSafeInteger(generation))
    .sort((a, b) => b - a);
  const nextFile = `${FILE_PREFIX}${(generations[0] ?? 0) + 1}`;
  for (const generation of generations) {
    const bytes = files.get(`${FILE_PREFIX}${generation}`)!;
    const records: RaftRecord[] = [];
    for (const body of decodeRecords(bytes, RAFT_RECORD_BYTES_MAX).bodies) {
      const record = decodeRaftRecord(body);
      // Its checksum held, so this is what was written: a record we cannot read is a bug
      // or foreign data, never a torn tail to drop silently (with everything after it).
      assert(record !== null, `${FILE_PREFIX}${generation}: a whole record does not decode`);
      records.push(record);
    }
    if (records[0]?.checkpoint !== true) continue; // checkpoint lost: the previous one holds
    let hardState: HardState | undefined;
    let state: { snapshot: SnapshotMetadata | undefined; entries: Entry[] } = {
      snapshot: undefined,
      entries: [],
    };
    let snapshotData: Uint8Array | undefined;
    for (const record of records) {
      if (record.hardState !== null) hardState = record.hardState;
      if (record.snapshot) snapshotData = record.snapshotData ?? new Uint8Array(0);
      const next = replayRaftRecord(state, record);
      assert(next !== null, "stored entries leave a gap");
      state = next;
    }
    const snapshot =
      state.snapshot === undefined ? undefined : { metadata: state.snapshot, data: snapshotData! };
    return { hardState, snapshot, entries: state.entries, nextFile };
  }
  return { hardState: undefined, snapshot: undefined, entries: [], nextFile };
}
