// Goal: recovery on open tells a torn tail (truncate, keep going) from damage in the middle
// (stop with a WalCorruptError naming file and byte offset), and never skips a record
// silently; method: write a real multi-segment WAL, then damage its files the way crashes and
// bad disks do (cut at random offsets, flip bytes, zero or garbage tails, missing segments)
// with fast-check choosing where, and reopen.
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isBrigadeError } from "../lib/errors.js";
import { temporaryDirectory } from "../testkit/index.js";
import { WalCorruptError } from "./storage-errors.js";
import { type WalConfig, WriteAheadLog } from "./wal.js";
import { scanSegment } from "./wal-record.js";

const small: Partial<WalConfig> = {
  segmentBytesMax: 2048,
  batchBytesMax: 1024,
  recordBytesMax: 512,
};
const recordCount = 40;

function payloadOf(index: number): Uint8Array {
  return new TextEncoder().encode(`record ${index} `.padEnd(100 + ((index * 37) % 90), "~"));
}

interface Layout {
  /** Every segment file, oldest first, with the start offset of each of its records. */
  readonly segments: readonly { readonly file: string; readonly offsets: readonly number[] }[];
}

/** Writes `recordCount` records (one per append, so segments fill up) and closes. */
async function writeWal(directory: string): Promise<Layout> {
  const wal = await WriteAheadLog.open(directory, small);
  for (let index = 0; index < recordCount; index++)
    await wal.append([{ type: "entries", groupId: index % 3, payload: payloadOf(index) }]);
  const files = wal.segments().map((segment) => segment.file);
  await wal.close();
  assert.ok(files.length >= 3, "the fixture needs several segments");
  const layout = {
    segments: files.map((file) => {
      const offsets: number[] = [];
      scanSegment(readFileSync(file), small.recordBytesMax!, (_record, offset) => {
        offsets.push(offset);
      });
      return { file, offsets };
    }),
  };
  assert.ok(layout.segments.at(-1)!.offsets.length >= 2, "the last segment needs two records");
  return layout;
}

/** Reopens, checks the records are exactly 1..expectedCount with their payloads, returns the WAL. */
async function reopenExpecting(directory: string, expectedCount: number): Promise<WriteAheadLog> {
  const wal = await WriteAheadLog.open(directory, small);
  let sequence = 0;
  for await (const record of wal.replay()) {
    sequence++;
    assert.equal(record.sequence, sequence);
    assert.deepEqual(record.payload, payloadOf(sequence - 1));
  }
  assert.equal(sequence, expectedCount);
  return wal;
}

function flipByte(file: string, offset: number, xor: number): void {
  const bytes = readFileSync(file);
  bytes[offset]! ^= xor;
  writeFileSync(file, bytes);
}

async function expectCorrupt(directory: string, file: string, offsetBytes: number, reason: RegExp) {
  await assert.rejects(WriteAheadLog.open(directory, small), (error) => {
    assert.ok(error instanceof WalCorruptError, `not a WalCorruptError: ${error}`);
    assert.ok(isBrigadeError(error, "WalCorrupt"));
    assert.equal(error.retriable, false);
    assert.equal(error.file, file);
    assert.equal(error.offsetBytes, offsetBytes);
    assert.match(error.reason, reason);
    assert.ok(error.message.includes(file) && error.message.includes(`offset ${offsetBytes}`));
    return true;
  });
}

describe("WAL recovery: torn tail", () => {
  it("truncates a last record cut at any offset, then appends continue cleanly", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        async (where) => {
          const directory = temporaryDirectory("brigade-wal-torn-");
          try {
            const layout = await writeWal(directory.path);
            const last = layout.segments.at(-1)!;
            const lastStart = last.offsets.at(-1)!;
            const size = readFileSync(last.file).length;
            // Any cut strictly inside the last record: from 1 byte of it to all but 1 byte.
            const cut = lastStart + 1 + Math.floor(where * (size - lastStart - 1));
            truncateSync(last.file, cut);

            const wal = await reopenExpecting(directory.path, recordCount - 1);
            assert.deepEqual(wal.recovery.truncatedTail?.offsetBytes, lastStart);
            assert.equal(wal.recovery.truncatedTail?.bytesRemoved, cut - lastStart);
            assert.equal(readFileSync(last.file).length, lastStart, "the tail is gone from disk");
            assert.equal(wal.nextSequence, recordCount);
            for (const index of [recordCount - 1, recordCount])
              await wal.append([{ type: "entries", groupId: 0, payload: payloadOf(index) }]);
            await wal.close();

            const again = await reopenExpecting(directory.path, recordCount + 1);
            assert.equal(again.recovery.truncatedTail, null);
            await again.close();
          } finally {
            directory.remove();
          }
        },
      ),
      { numRuns: 20 },
    );
  });

  it("treats a bad checksum in the final record, with nothing after it, as torn", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (position, xor) => {
        const directory = temporaryDirectory("brigade-wal-torn-");
        try {
          const layout = await writeWal(directory.path);
          const last = layout.segments.at(-1)!;
          const lastStart = last.offsets.at(-1)!;
          const size = readFileSync(last.file).length;
          flipByte(last.file, lastStart + (position % (size - lastStart)), xor);
          const wal = await reopenExpecting(directory.path, recordCount - 1);
          assert.equal(wal.recovery.truncatedTail?.offsetBytes, lastStart);
          await wal.close();
        } finally {
          directory.remove();
        }
      }),
      { numRuns: 15 },
    );
  });

  it("truncates a zero-filled or garbage tail after the last good record", async () => {
    for (const tail of [
      new Uint8Array(4096),
      Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff),
    ]) {
      const directory = temporaryDirectory("brigade-wal-torn-");
      try {
        const layout = await writeWal(directory.path);
        const last = layout.segments.at(-1)!;
        const size = readFileSync(last.file).length;
        appendFileSync(last.file, tail);
        const wal = await reopenExpecting(directory.path, recordCount);
        assert.equal(wal.recovery.truncatedTail?.offsetBytes, size);
        assert.equal(wal.recovery.truncatedTail?.bytesRemoved, tail.length);
        await wal.close();
      } finally {
        directory.remove();
      }
    }
  });

  it("recovers a last segment torn down to nothing (crash right after rotation)", async () => {
    const directory = temporaryDirectory("brigade-wal-torn-");
    try {
      const layout = await writeWal(directory.path);
      const last = layout.segments.at(-1)!;
      const lastCount = last.offsets.length;
      truncateSync(last.file, 5); // not even a whole prefix of its first record
      const wal = await reopenExpecting(directory.path, recordCount - lastCount);
      assert.equal(wal.recovery.truncatedTail?.offsetBytes, 0);
      assert.equal(wal.segments().at(-1)!.file, last.file);
      await wal.close();
    } finally {
      directory.remove();
    }
  });
});

describe("WAL recovery: damage in the middle", () => {
  it("stops at a flipped byte in any record of the last segment but its final one", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (which, position, xor) => {
          const directory = temporaryDirectory("brigade-wal-mid-");
          try {
            const layout = await writeWal(directory.path);
            const last = layout.segments.at(-1)!;
            assert.ok(last.offsets.length >= 2);
            const index = which % (last.offsets.length - 1);
            const start = last.offsets[index]!;
            const end = last.offsets[index + 1]!;
            flipByte(last.file, start + (position % (end - start)), xor);
            await expectCorrupt(directory.path, last.file, start, /not a torn tail/);
          } finally {
            directory.remove();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("stops at a flipped byte anywhere in a sealed segment, even in its final record", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (which, position, xor) => {
          const directory = temporaryDirectory("brigade-wal-mid-");
          try {
            const layout = await writeWal(directory.path);
            const sealed = layout.segments.slice(0, -1);
            const segment = sealed[which % sealed.length]!;
            const size = readFileSync(segment.file).length;
            const at = position % size;
            const start = segment.offsets.findLast((offset) => offset <= at)!;
            flipByte(segment.file, at, xor);
            await expectCorrupt(directory.path, segment.file, start, /sealed segment/);
          } finally {
            directory.remove();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("stops when a sealed segment is cut short or a segment is missing (sequence gap)", async () => {
    const directory = temporaryDirectory("brigade-wal-mid-");
    try {
      const layout = await writeWal(directory.path);
      const first = layout.segments[0]!;
      // Cut at a record boundary: the segment still parses, but its successor's name says
      // records are missing.
      truncateSync(first!.file, first!.offsets.at(-1)!);
      await expectCorrupt(
        directory.path,
        first!.file,
        first!.offsets.at(-1)!,
        /records are missing/,
      );
    } finally {
      directory.remove();
    }
    const again = temporaryDirectory("brigade-wal-mid-");
    try {
      const layout = await writeWal(again.path);
      const [first, second] = layout.segments;
      rmSync(second!.file);
      const firstSize = readFileSync(first!.file).length;
      await expectCorrupt(again.path, first!.file, firstSize, /records are missing/);
    } finally {
      again.remove();
    }
  });

  it("refuses, rather than truncates, a damaged length followed by valid records", async () => {
    const directory = temporaryDirectory("brigade-wal-mid-");
    try {
      const layout = await writeWal(directory.path);
      const last = layout.segments.at(-1)!;
      const start = last.offsets[0]!;
      // A length pointing past the end of the file looks like a torn record on its own; the
      // valid records after it are what make it corruption.
      const bytes = readFileSync(last.file);
      bytes.writeUInt32LE(1_000_000 % 400, start); // still within recordBytesMax
      writeFileSync(last.file, bytes);
      await expectCorrupt(directory.path, last.file, start, /not a torn tail/);
      assert.equal(readFileSync(last.file).length, bytes.length, "nothing was truncated");
    } finally {
      directory.remove();
    }
  });
});
