// Goal: a single flipped bit anywhere in any record of a multi-segment WAL is either the torn
// tail (only in the final record of the last segment: truncated there, every earlier record
// kept) or a WalCorruptError naming the file and the byte offset of that record, with nothing
// on disk changed; never a silently skipped or misread record; method: one real WAL written
// once, then for every record of every segment each bit of its 13-byte header and one bit of
// each payload byte flipped in place in a copy, and the WAL reopened (about 2,000 cases).
import assert from "node:assert/strict";
import {
  closeSync,
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
import { WriteAheadLog } from "./wal.js";
import { walRecordHeaderBytes } from "./wal-record.js";
import {
  materializeWal,
  replayRows,
  sampleWalConfig,
  type WalImage,
  writeSampleWal,
} from "./wal-test-support.js";

const config = sampleWalConfig;

let base: { path: string; remove: () => void };
let image: WalImage;

before(async () => {
  base = temporaryDirectory("brigade-wal-bitflip-");
  image = await writeSampleWal(base.path);
  assert.ok(image.segments.at(-1)!.starts.length >= 2, "the last segment needs two records");
});
after(() => base.remove());

/** Rewrites one byte in place (4x faster than rewriting the file, for ~2,000 cases). */
function writeByte(file: string, at: number, value: number): void {
  const descriptor = openSync(file, "r+");
  try {
    assert.equal(writeSync(descriptor, Uint8Array.of(value), 0, 1, at), 1);
  } finally {
    closeSync(descriptor);
  }
}

describe("WAL recovery: a flipped bit in any record", () => {
  it("truncates only the final record of the last segment; anywhere else is WalCorruptError", async () => {
    const directory = materializeWal(base.path, image);
    const names = readdirSync(directory).sort();
    const total = image.rows.length;
    let torn = 0;
    let corrupt = 0;
    try {
      for (const [segmentIndex, segment] of image.segments.entries()) {
        const file = path.join(directory, segment.name);
        const isLastSegment = segmentIndex === image.segments.length - 1;
        for (const [position, start] of segment.starts.entries()) {
          const end = segment.ends[position]!;
          const isFinal = isLastSegment && position === segment.starts.length - 1;
          // Every bit of the header (length, checksum, type, group id), then one bit of every
          // payload byte.
          const flips: { at: number; bit: number }[] = [];
          for (let at = start; at < start + walRecordHeaderBytes; at++)
            for (let bit = 0; bit < 8; bit++) flips.push({ at, bit });
          for (let at = start + walRecordHeaderBytes; at < end; at++)
            flips.push({ at, bit: (at - start) % 8 });

          for (const { at, bit } of flips) {
            const context = `${segment.name} record ${position} (offset ${start}): bit ${bit} of byte ${at}`;
            const damaged = Buffer.from(segment.bytes);
            damaged[at]! ^= 1 << bit;
            writeByte(file, at, damaged[at]!);
            if (isFinal) {
              const wal = await WriteAheadLog.open(directory, config);
              assert.equal(wal.recovery.truncatedTail?.file, file, context);
              assert.equal(wal.recovery.truncatedTail?.offsetBytes, start, context);
              assert.equal(wal.recovery.truncatedTail?.bytesRemoved, end - start, context);
              assert.equal(statSync(file).size, start, context);
              assert.deepEqual(await replayRows(wal), image.rows.slice(0, total - 1), context);
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
      // Both outcomes were exercised, over every record.
      assert.ok(torn > walRecordHeaderBytes * 8, `${torn} torn cases`);
      assert.ok(corrupt > (total - 1) * walRecordHeaderBytes * 8, `${corrupt} corrupt cases`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
