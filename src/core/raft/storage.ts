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
import { asIndex, asTerm, type Entry, type HardState } from "./types.js";

/** Largest record: a Ready carries at most a few MiB (appendBytesMax per message, batched). */
export const RAFT_RECORD_BYTES_MAX = 256 * 1024 * 1024;
const FILE_PREFIX = "raft-";

export interface RaftRecord {
  /** True for the first record of a generation: it holds the whole state, not a delta. */
  readonly checkpoint: boolean;
  readonly hardState: HardState | null;
  /** Entries to store; the stored log is first truncated to `entries[0].index - 1`. */
  readonly entries: readonly Entry[];
}

export interface RecoveredRaftState {
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  /** The file the next incarnation must write (never one with a damaged tail). */
  readonly nextFile: string;
}

/** A record framed (length + checksum) for the simulator's append-only files. */
export function encodeRaftRecord(record: RaftRecord): Uint8Array {
  return encodeRecord(encodeRaftRecordBody(record), RAFT_RECORD_BYTES_MAX);
}

/** A record's body alone, for a log that frames and checksums records itself (the WAL). */
export function encodeRaftRecordBody(record: RaftRecord): Uint8Array {
  const writer = new BodyWriter().u8(1).u8(record.checkpoint ? 1 : 0);
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
      .u8(entry.kind === "noop" ? 0 : 1)
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
  if (reader.u8() !== 1) return null;
  const checkpoint = reader.u8();
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
    if (index === null || term === null || kind === null || data === null) return null;
    entries.push({
      index: asIndex(index),
      term: asTerm(term),
      kind: kind === 0 ? "noop" : "command",
      data,
    });
  }
  if (!reader.atEnd()) return null;
  return { checkpoint: checkpoint === 1, hardState, entries };
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
      if (record === null) break;
      records.push(record);
    }
    if (records[0]?.checkpoint !== true) continue; // checkpoint lost: the previous one holds
    let hardState: HardState | undefined;
    let entries: Entry[] = [];
    for (const record of records) {
      if (record.hardState !== null) hardState = record.hardState;
      const first = record.entries[0];
      if (first === undefined) continue;
      assert(first.index <= entries.length + 1, "stored entries leave a gap");
      entries = entries.slice(0, first.index - 1).concat(record.entries);
    }
    return { hardState, entries, nextFile };
  }
  return { hardState: undefined, entries: [], nextFile };
}
