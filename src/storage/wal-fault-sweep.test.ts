// Goal: recovery is right at EVERY point a crash or a bad disk can leave a WAL, not just at
// the sampled ones of wal-recovery.test.ts: the last segment cut at every byte (the file
// truncated there, or kept at full size with zeros from there on, as ext4 shows an extended
// but unwritten file), and every bit of every record header (plus one bit of each payload
// byte) flipped in every segment; method: one real multi-segment WAL is written once, then
// each case rebuilds it in a temp directory from the pristine bytes, damages it and reopens.
// The expected records and offsets come from the test's own bookkeeping (record sizes), not
// from the decoder under test.
import assert from "node:assert/strict";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { temporaryDirectory } from "../testkit/index.js";
import { WalCorruptError } from "./storage-errors.js";
import { type WalConfig, WriteAheadLog } from "./wal.js";
import {
  encodedRecordBytes,
  type WalRecordInput,
  walRecordHeaderBytes,
  walRecordTypes,
} from "./wal-record.js";

/** Tiny segments: 16 records make 3+ segments, and a full byte sweep stays fast. */
const config: Partial<WalConfig> = {
  segmentBytesMax: 256,
  batchBytesMax: 256,
  recordBytesMax: 128,
};

const payloadLengths = [40, 0, 25, 61, 12, 33, 7, 50, 19, 44, 3, 28, 36, 9, 55, 21];
const groupIds = [0, 1, 7, 0xffff_ffff];
/** Records per append: the last append is a 3-record batch, so cuts land inside a batch too. */
const appendSizes = [1, 2, 1, 1, 3, 1, 1, 2, 1, 3];

/** A distinct record per index: type, group and payload all vary, payload bytes are binary. */
function input(index: number): WalRecordInput {
  const length = payloadLengths[index % payloadLengths.length]!;
  return {
    type: walRecordTypes[index % walRecordTypes.length]!,
    groupId: groupIds[index % groupIds.length]!,
    payload: Uint8Array.from({ length }, (_, k) => (index * 37 + k * 11 + 1) & 0xff),
  };
}

/** A record as compared in assertions (hex payload: readable diffs, exact bytes). */
interface Row {
  readonly sequence: number;
  readonly type: string;
  readonly groupId: number;
  readonly payload: string;
}

function row(sequence: number, record: WalRecordInput): Row {
  return {
    sequence,
    type: record.type,
    groupId: record.groupId,
    payload: Buffer.from(record.payload).toString("hex"),
  };
}

async function replayRows(wal: WriteAheadLog): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const record of wal.replay()) rows.push(row(record.sequence, record));
  return rows;
}

interface SegmentImage {
  readonly name: string;
  readonly firstSequence: number;
  readonly bytes: Buffer;
  /** Start offset of each record in the file. */
  readonly starts: readonly number[];
  /** Offset just past each record. */
  readonly ends: readonly number[];
}

interface Fixture {
  /** Every record ever appended, in sequence order. */
  readonly rows: readonly Row[];
  readonly segments: readonly SegmentImage[];
}

let base: { path: string; remove: () => void };
let fixture: Fixture;

async function writeFixture(directory: string): Promise<Fixture> {
  const wal = await WriteAheadLog.open(directory, config);
  const inputs: WalRecordInput[] = [];
  for (const size of appendSizes) {
    const batch = Array.from({ length: size }, () => input(inputs.length));
    const result = await wal.append(batch);
    assert.equal(result.firstSequence, inputs.length + 1);
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
    return { name: path.basename(info.file), firstSequence: info.firstSequence, bytes, starts, ends };
  });
  // The shape the sweeps rely on.
  assert.ok(segments.length >= 3, `only ${segments.length} segments`);
  const last = segments.at(-1)!;
  assert.ok(last.starts.length >= 3, "the last segment needs several records");
  assert.equal(last.firstSequence + last.starts.length - 1, inputs.length);
  return { rows: inputs.map((record, index) => row(index + 1, record)), segments };
}

/** A fresh directory holding the fixture's segments, the last one replaced by `lastBytes`. */
function materialize(lastBytes: Uint8Array): string {
  const directory = mkdtempSync(path.join(base.path, "case-"));
  for (const [index, segment] of fixture.segments.entries())
    writeFileSync(
      path.join(directory, segment.name),
      index === fixture.segments.length - 1 ? lastBytes : segment.bytes,
    );
  return directory;
}

function writeByte(file: string, at: number, value: number): void {
  const descriptor = openSync(file, "r+");
  try {
    assert.equal(writeSync(descriptor, Uint8Array.of(value), 0, 1, at), 1);
  } finally {
    closeSync(descriptor);
  }
}

before(async () => {
  base = temporaryDirectory("brigade-wal-sweep-");
  const source = mkdtempSync(path.join(base.path, "source-"));
  fixture = await writeFixture(source);
  rmSync(source, { recursive: true, force: true });
});
after(() => base.remove());

describe("WAL recovery: a crash at every write boundary", () => {
  for (const mode of ["truncated", "zero-filled"] as const)
    it(`keeps exactly the whole records before a cut at any byte of the last segment (${mode})`, async () => {
      const last = fixture.segments.at(-1)!;
      const size = last.bytes.length;
      const sealedRecords = last.firstSequence - 1;
      for (let cut = 0; cut <= size; cut++) {
        const context = `last segment ${mode} at byte ${cut} of ${size}`;
        const image =
          mode === "truncated"
            ? last.bytes.subarray(0, cut)
            : Buffer.concat([last.bytes.subarray(0, cut), Buffer.alloc(size - cut)]);
        const kept = last.ends.filter((end) => end <= cut).length;
        const boundary = kept === 0 ? 0 : last.ends[kept - 1]!;
        const survivors = sealedRecords + kept;
        const directory = materialize(image);
        const lastFile = path.join(directory, last.name);
        try {
          const wal = await WriteAheadLog.open(directory, config);
          assert.equal(wal.recovery.records, survivors, context);
          assert.equal(wal.recovery.segments, fixture.segments.length, context);
          assert.equal(wal.nextSequence, survivors + 1, context);
          if (image.length === boundary) assert.equal(wal.recovery.truncatedTail, null, context);
          else {
            const tail = wal.recovery.truncatedTail;
            assert.deepEqual(
              { file: tail?.file, offsetBytes: tail?.offsetBytes, removed: tail?.bytesRemoved },
              { file: lastFile, offsetBytes: boundary, removed: image.length - boundary },
              context,
            );
          }
          assert.equal(statSync(lastFile).size, boundary, `${context}: the tail is gone from disk`);
          assert.deepEqual(await replayRows(wal), fixture.rows.slice(0, survivors), context);

          // Appends continue right after the last good record (rotating if it does not fit).
          const extra = input(1000 + cut);
          assert.equal((await wal.append([extra])).firstSequence, survivors + 1, context);
          await wal.close();
          const again = await WriteAheadLog.open(directory, config);
          assert.equal(again.recovery.truncatedTail, null, context);
          assert.deepEqual(
            await replayRows(again),
            [...fixture.rows.slice(0, survivors), row(survivors + 1, extra)],
            context,
          );
          await again.close();
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      }
    });
});

describe("WAL recovery: a flipped bit in any record", () => {
  it("truncates only the final record of the last segment; anywhere else is WalCorruptError", async () => {
    const directory = materialize(fixture.segments.at(-1)!.bytes);
    const names = readdirSync(directory).sort();
    const total = fixture.rows.length;
    let torn = 0;
    let corrupt = 0;
    try {
      for (const [segmentIndex, segment] of fixture.segments.entries()) {
        const file = path.join(directory, segment.name);
        const isLastSegment = segmentIndex === fixture.segments.length - 1;
        for (const [position, start] of segment.starts.entries()) {
          const end = segment.ends[position]!;
          const isFinal = isLastSegment && position === segment.starts.length - 1;
          // Every bit of the 13-byte header, then one bit of every payload byte.
          const flips: { at: number; bit: number }[] = [];
          for (let at = start; at < start + walRecordHeaderBytes; at++)
            for (let bit = 0; bit < 8; bit++) flips.push({ at, bit });
          for (let at = start + walRecordHeaderBytes; at < end; at++)
            flips.push({ at, bit: (at - start) % 8 });

          for (const { at, bit } of flips) {
            const context = `${segment.name} record ${position} (offset ${start}): bit ${bit} of byte ${at}`;
            const damaged = Buffer.from(segment.bytes);
            damaged[at]! ^= 1 << bit;
            // One byte rewritten in place (rewriting the whole file each time is 4x slower).
            writeByte(file, at, damaged[at]!);
            if (isFinal) {
              const wal = await WriteAheadLog.open(directory, config);
              assert.equal(wal.recovery.truncatedTail?.file, file, context);
              assert.equal(wal.recovery.truncatedTail?.offsetBytes, start, context);
              assert.equal(wal.recovery.truncatedTail?.bytesRemoved, end - start, context);
              assert.equal(statSync(file).size, start, context);
              assert.deepEqual(await replayRows(wal), fixture.rows.slice(0, total - 1), context);
              await wal.close();
              writeFileSync(file, segment.bytes);
              torn++;
            } else {
              await assert.rejects(
                WriteAheadLog.open(directory, config),
                (error) => {
                  assert.ok(error instanceof WalCorruptError, `${context}: got ${error}`);
                  assert.equal(error.file, file, context);
                  assert.equal(error.offsetBytes, start, context);
                  assert.ok(error.message.includes(file), context);
                  assert.ok(error.message.includes(`byte offset ${start}`), context);
                  assert.match(
                    error.reason,
                    isLastSegment ? /not a torn tail/ : /sealed segment/,
                    context,
                  );
                  return true;
                },
                context,
              );
              // Refused, not repaired: nothing on disk changed.
              assert.deepEqual(readFileSync(file), damaged, `${context}: file was modified`);
              assert.deepEqual(readdirSync(directory).sort(), names, context);
              writeByte(file, at, segment.bytes[at]!);
              corrupt++;
            }
          }
        }
      }
      // Sanity: both outcomes were exercised, over every record.
      assert.ok(torn > walRecordHeaderBytes * 8, `${torn} torn cases`);
      assert.ok(corrupt > (total - 1) * walRecordHeaderBytes * 8, `${corrupt} corrupt cases`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
