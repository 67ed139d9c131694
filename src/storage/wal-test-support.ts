/**
 * @module Test-only helpers shared by the WAL fault tests (wal-torn-sweep, wal-bitflip,
 * wal-rotation-crash): write a real segmented WAL once, remember each segment's bytes and
 * record boundaries (computed from record sizes, not by the decoder under test), and rebuild
 * it in a fresh directory for each damaged variant. Not used by production code.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type WalConfig, WriteAheadLog } from "./wal.js";
import { encodedRecordBytes, type WalRecordInput, walRecordTypes } from "./wal-record.js";

/** A record as the tests compare it: hex payload, so diffs are readable and bytes exact. */
export interface Row {
  readonly sequence: number;
  readonly type: string;
  readonly groupId: number;
  readonly payload: string;
}

export function row(sequence: number, record: WalRecordInput): Row {
  return {
    sequence,
    type: record.type,
    groupId: record.groupId,
    payload: Buffer.from(record.payload).toString("hex"),
  };
}

export async function replayRows(wal: WriteAheadLog): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const record of wal.replay()) rows.push(row(record.sequence, record));
  return rows;
}

export interface SegmentImage {
  readonly name: string;
  readonly firstSequence: number;
  readonly bytes: Buffer;
  /** Start offset of each record in the file. */
  readonly starts: readonly number[];
  /** Offset just past each record. */
  readonly ends: readonly number[];
}

export interface WalImage {
  /** Every record appended, in sequence order. */
  readonly rows: readonly Row[];
  /** The closed WAL's segments, oldest first. */
  readonly segments: readonly SegmentImage[];
}

/**
 * Opens a WAL in `directory`, makes one append per entry of `appendSizes` (that many records,
 * `input(0)`, `input(1)`, ... in order, each append awaited), closes it and returns its image.
 */
export async function writeWalImage(
  directory: string,
  config: Partial<WalConfig>,
  appendSizes: readonly number[],
  input: (index: number) => WalRecordInput,
): Promise<WalImage> {
  const wal = await WriteAheadLog.open(directory, config);
  const inputs: WalRecordInput[] = [];
  for (const size of appendSizes) {
    const batch = Array.from({ length: size }, () => input(inputs.length));
    assert.equal((await wal.append(batch)).firstSequence, inputs.length + 1);
    inputs.push(...batch);
  }
  const infos = wal.segments();
  await wal.close();
  const segments = infos.map((info): SegmentImage => {
    const bytes = readFileSync(info.file);
    const starts: number[] = [];
    const ends: number[] = [];
    let offset = 0;
    for (let position = 0; position < info.recordCount; position++) {
      starts.push(offset);
      offset += encodedRecordBytes(inputs[info.firstSequence - 1 + position]!.payload.length);
      ends.push(offset);
    }
    assert.equal(offset, bytes.length, `${info.file} holds exactly its records`);
    return {
      name: path.basename(info.file),
      firstSequence: info.firstSequence,
      bytes,
      starts,
      ends,
    };
  });
  return { rows: inputs.map((record, index) => row(index + 1, record)), segments };
}

/**
 * A fresh directory under `parent` holding the image's segments, with `replace` (file name to
 * bytes) written over them or added next to them.
 */
export function materializeWal(
  parent: string,
  image: WalImage,
  replace: Readonly<Record<string, Uint8Array>> = {},
): string {
  const directory = mkdtempSync(path.join(parent, "case-"));
  for (const segment of image.segments)
    if (!(segment.name in replace))
      writeFileSync(path.join(directory, segment.name), segment.bytes);
  for (const [name, bytes] of Object.entries(replace))
    writeFileSync(path.join(directory, name), bytes);
  return directory;
}

/** Tiny segments: the sample's 16 records make 3+ segments, and a full byte sweep stays fast. */
export const sampleWalConfig: Partial<WalConfig> = {
  segmentBytesMax: 256,
  batchBytesMax: 256,
  recordBytesMax: 128,
};
const samplePayloadLengths = [40, 0, 25, 61, 12, 33, 7, 50, 19, 44, 3, 28, 36, 9, 55, 21];
const sampleGroupIds = [0, 1, 7, 0xffff_ffff];
/** Records per append: the last append (3 records) lands in the last segment. */
export const sampleAppendSizes = [1, 2, 1, 1, 3, 1, 1, 2, 1, 3];

/** A distinct sample record per index: type, group and payload all vary, payload bytes are binary. */
export function sampleRecord(index: number): WalRecordInput {
  const length = samplePayloadLengths[index % samplePayloadLengths.length]!;
  return {
    type: walRecordTypes[index % walRecordTypes.length]!,
    groupId: sampleGroupIds[index % sampleGroupIds.length]!,
    payload: Uint8Array.from({ length }, (_, k) => (index * 37 + k * 11 + 1) & 0xff),
  };
}

/** Writes the sample WAL under `directory` once (3+ segments) and returns its image. */
export async function writeSampleWal(directory: string): Promise<WalImage> {
  const source = mkdtempSync(path.join(directory, "source-"));
  const image = await writeWalImage(source, sampleWalConfig, sampleAppendSizes, sampleRecord);
  rmSync(source, { recursive: true, force: true });
  assert.ok(image.segments.length >= 3, `only ${image.segments.length} segments`);
  return image;
}
