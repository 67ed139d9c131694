// Goal: recovery is right at EVERY byte a crash can cut the last write at, not just at the
// points wal-recovery.test.ts samples: the last segment is cut at each byte from 0 to its
// full size, either truncated there or kept at full size with zeros from there on (a file
// extended but never written, as ext4 shows after a crash), and each time the WAL must open,
// replay exactly the records wholly before the cut, and take and keep a new append; method:
// one real multi-segment WAL written once (its last append a 3-record batch, so cuts also
// land inside a batch), rebuilt in a fresh temp directory for each cut.
import assert from "node:assert/strict";
import { rmSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { temporaryDirectory } from "../testkit/index.js";
import { WriteAheadLog } from "./wal.js";
import {
  materializeWal,
  replayRows,
  row,
  sampleAppendSizes,
  sampleRecord,
  sampleWalConfig,
  type WalImage,
  writeSampleWal,
} from "./wal-test-support.js";

const config = sampleWalConfig;
const appendSizes = sampleAppendSizes;
const input = sampleRecord;

let base: { path: string; remove: () => void };
let image: WalImage;

before(async () => {
  base = temporaryDirectory("brigade-wal-torn-sweep-");
  image = await writeSampleWal(base.path);
  const last = image.segments.at(-1)!;
  assert.ok(last.starts.length >= 4, "the last segment needs several records");
  // The final append (3 records) is all in the last segment.
  assert.ok(last.starts.length >= appendSizes.at(-1)!);
});
after(() => base.remove());

describe("WAL recovery: a crash at every write boundary", () => {
  for (const mode of ["truncated", "zero-filled"] as const)
    it(`keeps exactly the whole records before a cut at any byte of the last segment (${mode})`, async () => {
      const last = image.segments.at(-1)!;
      const size = last.bytes.length;
      const sealedRecords = last.firstSequence - 1;
      let cases = 0;
      for (let cut = 0; cut <= size; cut++) {
        const context = `last segment ${mode} at byte ${cut} of ${size}`;
        const damaged =
          mode === "truncated"
            ? last.bytes.subarray(0, cut)
            : Buffer.concat([last.bytes.subarray(0, cut), Buffer.alloc(size - cut)]);
        const kept = last.ends.filter((end) => end <= cut).length;
        const boundary = kept === 0 ? 0 : last.ends[kept - 1]!;
        const survivors = sealedRecords + kept;
        const directory = materializeWal(base.path, image, { [last.name]: damaged });
        const lastFile = path.join(directory, last.name);
        try {
          const wal = await WriteAheadLog.open(directory, config);
          assert.equal(wal.recovery.records, survivors, context);
          assert.equal(wal.recovery.segments, image.segments.length, context);
          assert.equal(wal.nextSequence, survivors + 1, context);
          if (damaged.length === boundary) assert.equal(wal.recovery.truncatedTail, null, context);
          else {
            const tail = wal.recovery.truncatedTail;
            assert.deepEqual(
              { file: tail?.file, offsetBytes: tail?.offsetBytes, removed: tail?.bytesRemoved },
              { file: lastFile, offsetBytes: boundary, removed: damaged.length - boundary },
              context,
            );
          }
          assert.equal(statSync(lastFile).size, boundary, `${context}: the tail is gone from disk`);
          assert.deepEqual(await replayRows(wal), image.rows.slice(0, survivors), context);

          // Appends continue right after the last good record (rotating if it does not fit).
          const extra = input(1000 + cut);
          assert.equal((await wal.append([extra])).firstSequence, survivors + 1, context);
          await wal.close();
          const again = await WriteAheadLog.open(directory, config);
          assert.equal(again.recovery.truncatedTail, null, context);
          assert.deepEqual(
            await replayRows(again),
            [...image.rows.slice(0, survivors), row(survivors + 1, extra)],
            context,
          );
          await again.close();
          cases++;
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      }
      assert.equal(cases, size + 1);
    });
});
