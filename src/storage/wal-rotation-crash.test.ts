// Goal: a crash in the middle of a segment rotation never loses a record and never stops the
// node for nothing: the new segment may exist empty (created, nothing written), hold part of
// its first batch (cut or zero-filled at any byte), or, if its name does not chain with the
// segments before it, recovery refuses with a WalCorruptError and changes nothing on disk;
// method: a real multi-segment WAL is written and closed, then the file rotation would have
// created next is made by hand (with `segmentFileName` and `encodeRecord`, what `#rotate` and
// `#writeBatch` write) before reopening.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { temporaryDirectory } from "../testkit/index.js";
import { WalCorruptError } from "./storage-errors.js";
import { segmentFileName, type WalConfig, WriteAheadLog } from "./wal.js";
import { encodedRecordBytes, encodeRecord, type WalRecordInput } from "./wal-record.js";
import {
  materializeWal,
  type Row,
  replayRows,
  row,
  type WalImage,
  writeWalImage,
} from "./wal-test-support.js";

const config: Partial<WalConfig> = {
  segmentBytesMax: 256,
  batchBytesMax: 256,
  recordBytesMax: 128,
};

function input(index: number): WalRecordInput {
  return {
    type: index % 5 === 4 ? "hard-state" : "entries",
    groupId: index % 3,
    payload: new TextEncoder().encode(`record ${index} `.padEnd(20 + ((index * 13) % 40), "*")),
  };
}

/** Encodes `records` back to back, as one batch write puts them in a segment. */
function encodeBatch(records: readonly WalRecordInput[]): Buffer {
  const bytes = Buffer.alloc(
    records.reduce((sum, record) => sum + encodedRecordBytes(record.payload.length), 0),
  );
  let offset = 0;
  for (const record of records) offset = encodeRecord(record, bytes, offset);
  assert.equal(offset, bytes.length);
  return bytes;
}

const recordCount = 12;
let base: { path: string; remove: () => void };
let image: WalImage;
/** The closed WAL's files (name to bytes), its records, and its last segment's name. */
let files: ReadonlyMap<string, Buffer>;
let rows: readonly Row[];
let lastName: string;
/** The sequence the next record gets: the name a rotation would give the new segment. */
const nextSequence = recordCount + 1;

before(async () => {
  base = temporaryDirectory("brigade-wal-rotation-");
  const source = mkdtempSync(path.join(base.path, "source-"));
  image = await writeWalImage(source, config, new Array(recordCount).fill(1), input);
  rmSync(source, { recursive: true, force: true });
  assert.ok(image.segments.length >= 3, `only ${image.segments.length} segments`);
  assert.ok(image.segments.at(-1)!.starts.length >= 2, "the last segment needs two records");
  lastName = image.segments.at(-1)!.name;
  files = new Map(image.segments.map((segment) => [segment.name, segment.bytes]));
  rows = image.rows;
  assert.equal(rows.length, recordCount);
});
after(() => base.remove());

/** A fresh copy of the closed WAL plus `extra` files (name to contents). */
function materialize(extra: Readonly<Record<string, Uint8Array>>): string {
  return materializeWal(base.path, image, extra);
}

/**
 * Appends after recovery (enough to rotate again), then reopens and checks the whole log:
 * the recovered records, then the new ones, sequences contiguous.
 */
async function appendsContinue(wal: WriteAheadLog, recovered: readonly Row[], context: string) {
  const directory = wal.directory;
  const added: Row[] = [];
  const first = recovered.at(-1)?.sequence ?? wal.firstSequence - 1;
  assert.equal(wal.nextSequence, first + 1, context);
  const segmentsAtStart = wal.segments().length;
  for (let index = 0; index < 8; index++) {
    const record = input(100 + index);
    const sequence = first + 1 + added.length;
    assert.equal((await wal.append([record])).firstSequence, sequence, context);
    added.push(row(sequence, record));
  }
  const segmentsBefore = wal.segments();
  assert.ok(segmentsBefore.length > segmentsAtStart, `${context}: the appends rotated`);
  await wal.close();
  const again = await WriteAheadLog.open(directory, config);
  try {
    assert.equal(again.recovery.truncatedTail, null, context);
    assert.deepEqual(again.segments(), segmentsBefore, context);
    assert.deepEqual(await replayRows(again), [...recovered, ...added], context);
  } finally {
    await again.close();
  }
}

describe("WAL recovery: a crash during segment rotation", () => {
  it("recovers every record when the new segment exists but is empty; appends go into it", async () => {
    const newName = segmentFileName(nextSequence);
    const directory = materialize({ [newName]: new Uint8Array(0) });
    try {
      const wal = await WriteAheadLog.open(directory, config);
      assert.equal(wal.recovery.truncatedTail, null);
      assert.equal(wal.recovery.segments, files.size + 1);
      assert.equal(wal.recovery.records, recordCount);
      assert.equal(wal.nextSequence, nextSequence);
      const active = wal.segments().at(-1)!;
      assert.deepEqual(
        { ...active, groupIds: [...active.groupIds] },
        {
          file: path.join(directory, newName),
          firstSequence: nextSequence,
          recordCount: 0,
          bytes: 0,
          groupIds: [],
          active: true,
        },
      );
      assert.deepEqual(await replayRows(wal), rows);
      // The first append after recovery lands in the empty segment, not in a new one.
      const record = input(99);
      assert.equal((await wal.append([record])).firstSequence, nextSequence);
      assert.equal(wal.segments().length, files.size + 1);
      assert.equal(wal.stats.segmentsCreated, 0);
      assert.equal(
        statSync(path.join(directory, newName)).size,
        encodedRecordBytes(record.payload.length),
      );
      await appendsContinue(wal, [...rows, row(nextSequence, record)], "empty new segment");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("keeps an empty active segment as the whole log once everything before it is deleted", async () => {
    const newName = segmentFileName(nextSequence);
    const directory = materialize({ [newName]: new Uint8Array(0) });
    try {
      const wal = await WriteAheadLog.open(directory, config);
      const deleted = await wal.truncateBefore(nextSequence);
      assert.equal(deleted.length, files.size);
      assert.deepEqual(readdirSync(directory), [newName]);
      await wal.close();

      const reopened = await WriteAheadLog.open(directory, config);
      assert.equal(reopened.recovery.records, 0);
      assert.equal(reopened.firstSequence, nextSequence);
      assert.equal(reopened.nextSequence, nextSequence);
      assert.deepEqual(await replayRows(reopened), []);
      await appendsContinue(reopened, [], "lone empty segment");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  for (const mode of ["truncated", "zero-filled"] as const)
    it(`cuts a new segment's partly written first batch back to its whole records (${mode}, every byte)`, async () => {
      // The first batch into the new segment: one append of two records.
      const batchRecords = [input(200), input(201)];
      const batch = encodeBatch(batchRecords);
      const firstEnd = encodedRecordBytes(batchRecords[0]!.payload.length);
      const newName = segmentFileName(nextSequence);
      for (let cut = 0; cut <= batch.length; cut++) {
        const context = `new segment ${mode} at byte ${cut} of ${batch.length}`;
        const image =
          mode === "truncated"
            ? batch.subarray(0, cut)
            : Buffer.concat([batch.subarray(0, cut), Buffer.alloc(batch.length - cut)]);
        const kept = cut === batch.length ? 2 : cut >= firstEnd ? 1 : 0;
        const boundary = kept === 2 ? batch.length : kept === 1 ? firstEnd : 0;
        const directory = materialize({ [newName]: image });
        const file = path.join(directory, newName);
        try {
          const wal = await WriteAheadLog.open(directory, config);
          assert.equal(wal.recovery.segments, files.size + 1, context);
          assert.equal(wal.recovery.records, recordCount + kept, context);
          if (image.length === boundary) assert.equal(wal.recovery.truncatedTail, null, context);
          else {
            const tail = wal.recovery.truncatedTail;
            assert.deepEqual(
              { file: tail?.file, offsetBytes: tail?.offsetBytes, removed: tail?.bytesRemoved },
              { file, offsetBytes: boundary, removed: image.length - boundary },
              context,
            );
          }
          assert.equal(statSync(file).size, boundary, context);
          // The previous segments are untouched.
          for (const [name, bytes] of files)
            assert.deepEqual(readFileSync(path.join(directory, name)), bytes, context);
          const recovered = [
            ...rows,
            ...batchRecords
              .slice(0, kept)
              .map((record, index) => row(nextSequence + index, record)),
          ];
          assert.deepEqual(await replayRows(wal), recovered, context);
          await appendsContinue(wal, recovered, context);
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      }
    });

  it("refuses a new segment whose name does not chain (gap or overlap), changing nothing", async () => {
    const lastBytes = files.get(lastName)!;
    const valid = encodeBatch([input(300)]);
    const contents: Readonly<Record<string, Uint8Array>> = {
      empty: new Uint8Array(0),
      "partial record": valid.subarray(0, 7),
      "valid record": valid,
    };
    // nextSequence - 1 overlaps the last segment (it holds several records, so the name is new
    // and still sorts after it).
    for (const sequence of [nextSequence + 1, nextSequence + 1000, nextSequence - 1])
      for (const [what, bytes] of Object.entries(contents)) {
        const newName = segmentFileName(sequence);
        const context = `${what} segment named ${newName} after records 1..${recordCount}`;
        const directory = materialize({ [newName]: bytes });
        try {
          const before = new Map(
            readdirSync(directory).map((name) => [name, readFileSync(path.join(directory, name))]),
          );
          const lastFile = path.join(directory, lastName);
          await assert.rejects(
            WriteAheadLog.open(directory, config),
            (error) => {
              assert.ok(error instanceof WalCorruptError, `${context}: got ${error}`);
              // Where the chain breaks: the end of the segment before the stray one.
              assert.equal(error.file, lastFile, context);
              assert.equal(error.offsetBytes, lastBytes.length, context);
              assert.match(error.reason, /records are missing/, context);
              assert.ok(error.message.includes(lastFile), context);
              assert.ok(error.message.includes(`byte offset ${lastBytes.length}`), context);
              assert.ok(error.message.includes(newName), `${context}: names the stray segment`);
              return true;
            },
            context,
          );
          assert.deepEqual(readdirSync(directory).sort(), [...before.keys()].sort(), context);
          for (const [name, bytes] of before)
            assert.deepEqual(
              readFileSync(path.join(directory, name)),
              bytes,
              `${context}: ${name}`,
            );
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      }
  });

  it("does not take a torn record in a sealed segment for a tail just because a newer segment is empty", async () => {
    // Rotation happens only after the previous batch's fsync, so this cannot be a crash:
    // the sealed segment lost acknowledged bytes. Refuse, and truncate nothing.
    const directory = materialize({ [segmentFileName(nextSequence)]: new Uint8Array(0) });
    const lastFile = path.join(directory, lastName);
    const lastBytes = files.get(lastName)!;
    try {
      writeFileSync(lastFile, lastBytes.subarray(0, lastBytes.length - 3));
      await assert.rejects(WriteAheadLog.open(directory, config), (error) => {
        assert.ok(error instanceof WalCorruptError, `got ${error}`);
        assert.equal(error.file, lastFile);
        assert.match(error.reason, /sealed segment/);
        assert.ok(error.offsetBytes > 0 && error.offsetBytes < lastBytes.length - 3);
        return true;
      });
      assert.equal(statSync(lastFile).size, lastBytes.length - 3);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
