/**
 * @module The on-disk format of one WAL record, and the pure scan that finds where the valid
 * records of a segment end. No I/O here: `wal.ts` reads and writes the bytes.
 *
 * A segment file is nothing but records back to back (no file header: the file NAME carries
 * the segment's first sequence number, see `wal.ts`). One record, all integers little-endian:
 *
 * ```
 * offset  size  field
 *      0     4  length    u32: bytes after this 8-byte prefix = 5 + payload bytes
 *      4     4  crc32c    u32: CRC32C over bytes [0, 4) (the length) then [8, 8 + length)
 *      8     1  type      u8:  1 entries, 2 hard state, 3 snapshot marker (0 is never valid)
 *      9     4  group id  u32: the Raft group the record belongs to
 *     13     n  payload   opaque bytes, encoded by the layer above
 * ```
 *
 * Why the checksum also covers the length: a flipped bit in the length would otherwise send
 * the reader to a wrong record boundary with nothing to say so until garbage fails later.
 * Why type 0 is invalid: a zero-filled tail (a file extended but never written, which is what
 * ext4 shows after a crash) must not parse as a record; its length 0 is rejected anyway.
 *
 * A record's sequence number is not stored: it is the segment's first sequence number plus
 * the record's position in the segment. Recovery checks that segments chain up exactly.
 */
import { assert } from "../lib/assert.js";
import { crc32c } from "./crc32c.js";

/** length (4) + crc32c (4). */
export const walRecordPrefixBytes = 8;
/** Prefix + type (1) + group id (4): the bytes of a record with an empty payload. */
export const walRecordHeaderBytes = 13;
/** The smallest valid `length` field: type + group id. */
const bodyBytesMin = walRecordHeaderBytes - walRecordPrefixBytes;
/** Largest group id: it is stored as a u32. */
export const walGroupIdMax = 0xffff_ffff;

export const walRecordTypes = ["entries", "hard-state", "snapshot-marker"] as const;
/**
 * What a record holds, for the layer above: the WAL treats every payload as opaque bytes.
 * - `entries`: Raft log entries of one group (the Raft layer encodes index, term and data);
 * - `hard-state`: a group's term, vote and commit index;
 * - `snapshot-marker`: a group has a snapshot up to some index (written after the snapshot
 *   file itself is durable), so its older entries are no longer needed.
 */
export type WalRecordType = (typeof walRecordTypes)[number];

const typeCodes: Readonly<Record<WalRecordType, number>> = {
  entries: 1,
  "hard-state": 2,
  "snapshot-marker": 3,
};
const typesByCode: ReadonlyMap<number, WalRecordType> = new Map(
  walRecordTypes.map((type) => [typeCodes[type], type]),
);

/** A record as the caller hands it to `append`. */
export interface WalRecordInput {
  readonly type: WalRecordType;
  /** The Raft group, an integer in [0, 2^32). */
  readonly groupId: number;
  /** Opaque bytes; copied by `append`, so the caller may reuse the buffer once it returns. */
  readonly payload: Uint8Array;
}

/** A record read back, with the sequence number the WAL gave it. */
export interface WalRecord extends WalRecordInput {
  /** Position in the WAL across all groups: 1 for the first record ever, then +1 per record. */
  readonly sequence: number;
}

/** Bytes a record with `payloadBytes` of payload takes on disk. */
export function encodedRecordBytes(payloadBytes: number): number {
  return walRecordHeaderBytes + payloadBytes;
}

/** Encodes `record` into `target` at `offset`; returns the offset just past it. */
export function encodeRecord(record: WalRecordInput, target: Uint8Array, offset: number): number {
  assert(Number.isInteger(record.groupId), `group id ${record.groupId} is not an integer`);
  assert(record.groupId >= 0 && record.groupId <= walGroupIdMax, `group id ${record.groupId}`);
  const typeCode = typeCodes[record.type];
  assert(typeCode !== undefined, `unknown WAL record type ${String(record.type)}`);
  const end = offset + encodedRecordBytes(record.payload.length);
  assert(end <= target.length, "record does not fit the target buffer");

  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  const length = bodyBytesMin + record.payload.length;
  view.setUint32(offset, length, true);
  target[offset + walRecordPrefixBytes] = typeCode;
  view.setUint32(offset + 9, record.groupId, true);
  target.set(record.payload, offset + walRecordHeaderBytes);
  const checksum = crc32c(target, crc32c(target, 0, offset, offset + 4), offset + 8, end);
  view.setUint32(offset + 4, checksum, true);
  return end;
}

/** One record found in a buffer: where it is, and its fields (the payload is NOT copied). */
export interface DecodedRecord {
  readonly type: WalRecordType;
  readonly groupId: number;
  readonly payloadStart: number;
  readonly payloadEnd: number;
  /** Offset just past the record: where the next one starts. */
  readonly nextOffset: number;
}

export type DecodeResult =
  | { readonly ok: true; readonly record: DecodedRecord }
  | { readonly ok: false; readonly reason: string };

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x100_0000
  );
}

/**
 * Decodes the record starting at `offset`, reading no byte at or past `end`. Checks, in order:
 * the prefix fits, the length is within [5, recordBytesMax - 8], the body fits, the checksum
 * matches, the type is known. Any failure returns the reason instead of a record.
 */
export function decodeRecordAt(
  bytes: Uint8Array,
  offset: number,
  end: number,
  recordBytesMax: number,
): DecodeResult {
  assert(offset >= 0 && offset <= end && end <= bytes.length);
  if (end - offset < walRecordPrefixBytes)
    return { ok: false, reason: `${end - offset} bytes left, too few for a record prefix` };
  const length = readUint32(bytes, offset);
  if (length < bodyBytesMin)
    return { ok: false, reason: `length ${length} is below the ${bodyBytesMin}-byte minimum` };
  if (length > recordBytesMax - walRecordPrefixBytes)
    return { ok: false, reason: `length ${length} exceeds recordBytesMax ${recordBytesMax}` };
  const recordEnd = offset + walRecordPrefixBytes + length;
  if (recordEnd > end)
    return { ok: false, reason: `length ${length} runs ${recordEnd - end} bytes past the end` };
  const stored = readUint32(bytes, offset + 4);
  const computed = crc32c(bytes, crc32c(bytes, 0, offset, offset + 4), offset + 8, recordEnd);
  if (stored !== computed)
    return {
      ok: false,
      reason: `checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`,
    };
  const type = typesByCode.get(bytes[offset + walRecordPrefixBytes]!);
  if (type === undefined)
    return { ok: false, reason: `unknown record type ${bytes[offset + walRecordPrefixBytes]}` };
  return {
    ok: true,
    record: {
      type,
      groupId: readUint32(bytes, offset + 9),
      payloadStart: offset + walRecordHeaderBytes,
      payloadEnd: recordEnd,
      nextOffset: recordEnd,
    },
  };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** Where a segment's valid records end, and what is wrong right after them, if anything. */
export interface SegmentScan {
  readonly recordCount: number;
  /** Every group with at least one valid record in the segment. */
  readonly groupIds: ReadonlySet<number>;
  /** Offset just past the last valid record: the whole file when `damage` is null. */
  readonly validBytes: number;
  /** The first record that does not decode, or null if the file is all valid records. */
  readonly damage: { readonly offsetBytes: number; readonly reason: string } | null;
}

/**
 * Walks `bytes` record by record from offset 0 and stops at the first one that does not
 * decode. `onRecord` sees each valid record in order (its payload is a view into `bytes`).
 */
export function scanSegment(
  bytes: Uint8Array,
  recordBytesMax: number,
  onRecord?: (record: DecodedRecord, offset: number) => void,
): SegmentScan {
  const groupIds = new Set<number>();
  let offset = 0;
  let recordCount = 0;
  while (offset < bytes.length) {
    const result = decodeRecordAt(bytes, offset, bytes.length, recordBytesMax);
    if (!result.ok)
      return {
        recordCount,
        groupIds,
        validBytes: offset,
        damage: { offsetBytes: offset, reason: result.reason },
      };
    onRecord?.(result.record, offset);
    groupIds.add(result.record.groupId);
    recordCount++;
    offset = result.record.nextOffset;
  }
  assert(offset === bytes.length);
  return { recordCount, groupIds, validBytes: offset, damage: null };
}

/**
 * The offset of the first position in (from, bytes.length) where a whole valid record starts,
 * or null if there is none. This is what tells a torn tail (nothing valid after the damage:
 * the last write was cut short) from corruption in the middle (valid records after it, which
 * may have been acknowledged and must not be dropped).
 *
 * Every byte offset is tried because a damaged length field says nothing about where the next
 * record starts. The cost stays small on real tails: zero-filled or partial bytes are rejected
 * by the length and type checks before any checksum is computed. A chance match of type and
 * CRC32C on garbage is below 2^-38 per position.
 */
export function findValidRecordAfter(
  bytes: Uint8Array,
  from: number,
  recordBytesMax: number,
): number | null {
  const end = bytes.length;
  for (let offset = from + 1; offset + walRecordHeaderBytes <= end; offset++) {
    const length = readUint32(bytes, offset);
    if (length < bodyBytesMin || length > recordBytesMax - walRecordPrefixBytes) continue;
    if (offset + walRecordPrefixBytes + length > end) continue;
    if (!typesByCode.has(bytes[offset + walRecordPrefixBytes]!)) continue;
    if (decodeRecordAt(bytes, offset, end, recordBytesMax).ok) return offset;
  }
  return null;
}
