// Goal: the file WAL keeps its contract while running (records come back in order across
// segment rotation and reopen, group commit really shares fsyncs, every limit is a typed error,
// segments are deleted only when allowed, a failed fsync stops the WAL); method: real files in
// temp directories, fast-check for random record streams and compaction maps against a simple
// oracle, and FileHandle.prototype.datasync wrapped to hold or fail an fsync on cue.
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { isBrigadeError } from "../lib/errors.js";
import { temporaryDirectory } from "../testkit/index.js";
import { type WalConfig, WriteAheadLog } from "./wal.js";
import { type WalRecord, type WalRecordInput, walRecordTypes } from "./wal-record.js";

/** Small limits so a few hundred records span many segments. */
const small: Partial<WalConfig> = {
  segmentBytesMax: 2048,
  batchBytesMax: 1024,
  recordBytesMax: 512,
  pendingBytesMax: 64 * 1024,
};

function record(groupId: number, text: string): WalRecordInput {
  return { type: "entries", groupId, payload: new TextEncoder().encode(text) };
}

async function collect(wal: WriteAheadLog, fromSequence?: number): Promise<WalRecord[]> {
  const records: WalRecord[] = [];
  const options = fromSequence === undefined ? {} : { fromSequence };
  for await (const item of wal.replay(options)) records.push(item);
  return records;
}

function strip(records: readonly WalRecord[]): WalRecordInput[] {
  return records.map(({ type, groupId, payload }) => ({ type, groupId, payload }));
}

const recordArbitrary: fc.Arbitrary<WalRecordInput> = fc
  .record({
    type: fc.constantFrom(...walRecordTypes),
    groupId: fc.integer({ min: 0, max: 6 }),
    payload: fc.uint8Array({ maxLength: 200 }),
  })
  .map((value) => ({ ...value }));

/** The class every FileHandle belongs to, so tests can wrap its datasync. */
let fileHandlePrototype: { datasync: () => Promise<void> };
let scratch: { path: string; remove: () => void };

before(async () => {
  scratch = temporaryDirectory("brigade-wal-proto-");
  const handle = await open(path.join(scratch.path, "probe"), "w");
  fileHandlePrototype = Object.getPrototypeOf(handle);
  await handle.close();
});
after(() => scratch.remove());

describe("WriteAheadLog", () => {
  it("starts empty with one segment named by sequence 1", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path);
      assert.equal(wal.nextSequence, 1);
      assert.deepEqual(readdirSync(directory.path), ["00000000000000000001.wal"]);
      assert.deepEqual(await collect(wal), []);
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("round-trips random records across segment rotation and reopen", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recordArbitrary, { minLength: 1, maxLength: 3 }), {
          minLength: 1,
          maxLength: 60,
        }),
        async (appends) => {
          const directory = temporaryDirectory("brigade-wal-");
          try {
            const wal = await WriteAheadLog.open(directory.path, small);
            // All issued in one turn: group commit batches them, batchBytesMax splits batches,
            // and segments rotate between batches.
            const results = await Promise.all(appends.map((records) => wal.append(records)));
            let expectedSequence = 1;
            for (const [index, result] of results.entries()) {
              assert.equal(result.firstSequence, expectedSequence);
              expectedSequence += appends[index]!.length;
              assert.equal(result.lastSequence, expectedSequence - 1);
            }
            const expected = appends.flat();
            assert.deepEqual(strip(await collect(wal)), expected);
            await wal.close();

            // Segment files: named by their first sequence, none over the size limit.
            const reopened = await WriteAheadLog.open(directory.path, small);
            assert.equal(reopened.recovery.truncatedTail, null);
            for (const segment of reopened.segments()) {
              assert.equal(
                path.basename(segment.file),
                `${String(segment.firstSequence).padStart(20, "0")}.wal`,
              );
              assert.ok(statSync(segment.file).size <= small.segmentBytesMax!);
            }
            const replayed = await collect(reopened);
            assert.deepEqual(strip(replayed), expected);
            assert.deepEqual(
              replayed.map((item) => item.sequence),
              expected.map((_, index) => index + 1),
            );
            await reopened.close();
          } finally {
            directory.remove();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("rotates into several segments and continues sequences after reopen", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path, small);
      for (let round = 0; round < 10; round++)
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            wal.append([record(i % 3, `r${round}-${i}-`.repeat(8))]),
          ),
        );
      const segments = wal.segments();
      assert.ok(segments.length >= 4, `only ${segments.length} segments`);
      assert.equal(wal.stats.segmentsCreated, segments.length);
      assert.ok(segments.at(-1)!.active);
      await wal.close();

      const reopened = await WriteAheadLog.open(directory.path, small);
      assert.equal(reopened.recovery.records, 100);
      assert.equal(reopened.nextSequence, 101);
      const { firstSequence } = await reopened.append([record(9, "after reopen")]);
      assert.equal(firstSequence, 101);
      const fromLast = await collect(reopened, 100);
      assert.deepEqual(
        fromLast.map((item) => item.sequence),
        [100, 101],
      );
      await reopened.close();
    } finally {
      directory.remove();
    }
  });

  it("replays while appends run, up to what was durable when the replay started", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path, small);
      await wal.append([record(1, "one")]);
      const replay = wal.replay();
      const pending = wal.append([record(1, "two")]);
      const seen: number[] = [];
      for await (const item of replay) seen.push(item.sequence);
      await pending;
      assert.deepEqual(seen, [1]);
      assert.deepEqual(
        (await collect(wal)).map((item) => item.sequence),
        [1, 2],
      );
      await wal.close();
    } finally {
      directory.remove();
    }
  });
});

describe("group commit", () => {
  it("puts 200 appends issued together into one write and one fsync", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => wal.append([record(i % 8, `append ${i}`)])),
      );
      assert.deepEqual(
        results.map((result) => result.firstSequence),
        results.map((_, i) => i + 1),
      );
      const stats = wal.stats;
      assert.equal(stats.appends, 200);
      assert.equal(stats.fsyncs, 1);
      assert.equal(stats.largestBatchAppends, 200);
      assert.equal(stats.batchSizes[7], 1); // 200 is in [128, 256)
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("shares fsyncs among 16 closed-loop appenders: far fewer fsyncs than appends", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path);
      const appendsEach = 15;
      await Promise.all(
        Array.from({ length: 16 }, async (_, appender) => {
          for (let i = 0; i < appendsEach; i++)
            await wal.append([record(appender, `appender ${appender} append ${i}`)]);
        }),
      );
      const stats = wal.stats;
      assert.equal(stats.appends, 16 * appendsEach);
      assert.equal(stats.fsyncs, stats.batches);
      assert.ok(
        stats.fsyncs <= stats.appends / 4,
        `${stats.fsyncs} fsyncs for ${stats.appends} appends`,
      );
      assert.equal((await collect(wal)).length, 16 * appendsEach);
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("batches every append that arrives while an fsync runs into the next single fsync", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    const original = fileHandlePrototype.datasync;
    try {
      const wal = await WriteAheadLog.open(directory.path);
      let release: () => void = () => {};
      let entered: () => void = () => {};
      const inFirstSync = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let calls = 0;
      fileHandlePrototype.datasync = async function heldDatasync(this: unknown) {
        calls++;
        if (calls === 1) {
          entered();
          await gate;
        }
        return original.call(this);
      };
      const first = wal.append([record(1, "first")]);
      await inFirstSync;
      // Five appends from five different turns of the event loop, all during that fsync.
      const during: Promise<unknown>[] = [];
      for (let i = 0; i < 5; i++) {
        during.push(wal.append([record(i, `during ${i}`)]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(wal.stats.fsyncs, 0, "nothing is acknowledged before its fsync completes");
      release();
      await Promise.all([first, ...during]);
      const stats = wal.stats;
      assert.equal(stats.fsyncs, 2);
      assert.equal(stats.batchSizes[0], 1); // the first append alone
      assert.equal(stats.batchSizes[2], 1); // the five, together ([4, 8))
      await wal.close();
    } finally {
      fileHandlePrototype.datasync = original;
      directory.remove();
    }
  });

  it("acknowledges an append only after its fsync", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    const original = fileHandlePrototype.datasync;
    try {
      const wal = await WriteAheadLog.open(directory.path);
      let syncsDone = 0;
      fileHandlePrototype.datasync = async function countedDatasync(this: unknown) {
        await original.call(this);
        syncsDone++;
      };
      for (let i = 0; i < 5; i++) {
        const before = syncsDone;
        await wal.append([record(1, `r${i}`)]);
        assert.equal(syncsDone, before + 1);
      }
      await wal.close();
    } finally {
      fileHandlePrototype.datasync = original;
      directory.remove();
    }
  });
});

describe("limits", () => {
  it("refuses a record over recordBytesMax and an append over batchBytesMax", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path, small);
      // 13-byte header + 499 = 512 = recordBytesMax: the largest record that fits.
      await wal.append([{ type: "entries", groupId: 1, payload: new Uint8Array(499) }]);
      await assert.rejects(
        wal.append([{ type: "entries", groupId: 1, payload: new Uint8Array(500) }]),
        (error) => isBrigadeError(error, "RecordTooLarge") && !error.retriable,
      );
      const three = Array.from({ length: 3 }, () => ({
        type: "entries" as const,
        groupId: 1,
        payload: new Uint8Array(400),
      }));
      await assert.rejects(wal.append(three), (error) => isBrigadeError(error, "BatchTooLarge"));
      assert.equal(wal.stats.appends, 1);
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("bounds the queue: overflow is a retriable WalOverloaded, and clears once it drains", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path, { pendingAppendsMax: 4 });
      const attempts = Array.from({ length: 10 }, (_, i) =>
        wal.append([record(1, `r${i}`)]).then(
          () => "ok",
          (error: unknown) =>
            isBrigadeError(error, "WalOverloaded") && error.retriable ? "overloaded" : error,
        ),
      );
      const outcomes = await Promise.all(attempts);
      assert.deepEqual(outcomes, [...Array(4).fill("ok"), ...Array(6).fill("overloaded")]);
      assert.equal(wal.stats.overloads, 6);
      await wal.append([record(1, "after the queue drained")]);
      assert.equal((await collect(wal)).length, 5);
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("bounds queued bytes with pendingBytesMax", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const limits = { recordBytesMax: 512, batchBytesMax: 1024, pendingBytesMax: 1024 };
      const wal = await WriteAheadLog.open(directory.path, limits);
      const payload = new Uint8Array(400); // 413 bytes encoded
      const outcomes = await Promise.all(
        [0, 1, 2].map((i) =>
          wal.append([{ type: "entries", groupId: i, payload }]).then(
            () => "ok",
            (error: unknown) => (isBrigadeError(error, "WalOverloaded") ? "overloaded" : error),
          ),
        ),
      );
      assert.deepEqual(outcomes, ["ok", "ok", "overloaded"]);
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("refuses invalid configs with InvalidConfig, naming the broken relation", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const cases: [Partial<WalConfig>, RegExp][] = [
        [{ segmentBytesMax: 0 }, /segmentBytesMax must be a positive integer/],
        [{ recordBytesMax: 8 }, /recordBytesMax must be in/],
        [
          { batchBytesMax: 1024, recordBytesMax: 2048 },
          /batchBytesMax must be at least recordBytesMax/,
        ],
        [{ segmentBytesMax: 1024 * 1024 }, /segmentBytesMax must be at least batchBytesMax/],
        [{ pendingBytesMax: 1024 }, /pendingBytesMax must be at least batchBytesMax/],
        [{ syncMethod: "never" as never }, /syncMethod/],
      ];
      for (const [overrides, message] of cases)
        await assert.rejects(
          WriteAheadLog.open(directory.path, overrides),
          (error) => isBrigadeError(error, "InvalidConfig") && message.test(error.message),
        );
    } finally {
      directory.remove();
    }
  });

  it("treats an empty append or a group id outside u32 as a programmer error", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path);
      assert.throws(() => wal.append([]), { name: "AssertionError" });
      assert.throws(() => wal.append([record(2 ** 32, "x")]), { name: "AssertionError" });
      assert.throws(() => wal.append([record(-1, "x")]), { name: "AssertionError" });
      await wal.close();
    } finally {
      directory.remove();
    }
  });

  it("drains queued appends on close, then refuses new ones with WalClosed", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await WriteAheadLog.open(directory.path);
      const queued = wal.append([record(1, "queued before close")]);
      const closing = wal.close();
      await assert.rejects(wal.append([record(1, "late")]), (error) =>
        isBrigadeError(error, "WalClosed"),
      );
      await queued;
      await closing;
      const reopened = await WriteAheadLog.open(directory.path);
      assert.equal(reopened.recovery.records, 1);
      await reopened.close();
    } finally {
      directory.remove();
    }
  });
});

describe("a failed fsync", () => {
  it("fails the batch, the queue and every later append with WalFailed; reopen recovers", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    const original = fileHandlePrototype.datasync;
    try {
      const wal = await WriteAheadLog.open(directory.path);
      await wal.append([record(1, "durable")]);
      fileHandlePrototype.datasync = async function failingDatasync() {
        throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
      };
      const failed = await Promise.allSettled([
        wal.append([record(1, "lost 1")]),
        wal.append([record(1, "lost 2")]),
      ]);
      for (const outcome of failed) {
        assert.equal(outcome.status, "rejected");
        assert.ok(isBrigadeError(outcome.reason, "WalFailed"));
        assert.match((outcome.reason as Error).message, /EIO/);
      }
      fileHandlePrototype.datasync = original;
      // Even with the disk "healthy" again, a failed WAL does not retry: fsyncgate.
      await assert.rejects(wal.append([record(1, "later")]), (error) =>
        isBrigadeError(error, "WalFailed"),
      );
      await wal.close();
      const reopened = await WriteAheadLog.open(directory.path);
      const recovered = await collect(reopened);
      assert.equal(new TextDecoder().decode(recovered[0]!.payload), "durable");
      // The unacknowledged batch may or may not be there (it was written, not fsynced).
      assert.ok(recovered.length === 1 || recovered.length === 3);
      await reopened.close();
    } finally {
      fileHandlePrototype.datasync = original;
      directory.remove();
    }
  });
});

describe("segment deletion", () => {
  /** Fills a WAL with one record per append so that segments have known boundaries. */
  async function filled(directory: string, groupOf: (index: number) => number, count: number) {
    const wal = await WriteAheadLog.open(directory, small);
    for (let i = 0; i < count; i++)
      await wal.append([record(groupOf(i), `record ${i} `.padEnd(300, "."))]);
    return wal;
  }

  it("truncateBefore deletes whole sealed segments below the sequence, never the active one", async () => {
    const directory = temporaryDirectory("brigade-wal-");
    try {
      const wal = await filled(directory.path, () => 1, 30);
      const segments = wal.segments();
      assert.ok(segments.length >= 5);
      const cut = segments[2]!.firstSequence;
      // One record short of segment 2's start: segment 1 still holds a needed record.
      assert.deepEqual(await wal.truncateBefore(cut - 1), [segments[0]]);
      assert.deepEqual(
        (await wal.truncateBefore(cut)).map((segment) => segment.firstSequence),
        [segments[1]!.firstSequence],
      );
      assert.ok(!existsSync(segments[0]!.file) && !existsSync(segments[1]!.file));
      assert.equal(wal.firstSequence, cut);
      assert.equal(wal.stats.segmentsDeleted, 2);

      const deleted = await wal.truncateBefore(Number.MAX_SAFE_INTEGER);
      assert.equal(deleted.length, segments.length - 3);
      assert.deepEqual(wal.segments(), [segments.at(-1)]);
      await wal.close();

      const reopened = await WriteAheadLog.open(directory.path, small);
      assert.equal(reopened.firstSequence, segments.at(-1)!.firstSequence);
      const replayed = await collect(reopened);
      assert.equal(replayed[0]!.sequence, segments.at(-1)!.firstSequence);
      assert.equal(replayed.at(-1)!.sequence, 30);
      assert.equal((await reopened.append([record(1, "next")])).firstSequence, 31);
      await reopened.close();
    } finally {
      directory.remove();
    }
  });

  it("compact deletes exactly the oldest segments every group present has moved past", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 10, maxLength: 40 }),
        fc.array(fc.option(fc.integer({ min: 1, max: 45 }), { nil: undefined }), {
          minLength: 3,
          maxLength: 3,
        }),
        async (groups, retain) => {
          const directory = temporaryDirectory("brigade-wal-");
          try {
            const wal = await filled(directory.path, (index) => groups[index]!, groups.length);
            const before = wal.segments();
            const retainFrom = new Map<number, number>();
            retain.forEach((sequence, index) => {
              if (sequence !== undefined) retainFrom.set(index + 1, sequence);
            });
            // Oracle: walk the sealed segments from the oldest; a segment may go when every
            // group with a record in it (by the test's own bookkeeping) retains past its end.
            let expected = 0;
            for (let index = 0; index < before.length - 1; index++) {
              const first = before[index]!.firstSequence;
              const end = before[index + 1]!.firstSequence;
              const present = new Set(groups.slice(first - 1, end - 1));
              const ok = [...present].every((group) => (retainFrom.get(group) ?? 0) >= end);
              if (!ok) break;
              expected++;
            }
            const deleted = await wal.compact(retainFrom);
            assert.deepEqual(deleted, before.slice(0, expected));
            assert.deepEqual(wal.segments(), before.slice(expected));
            await wal.close();
          } finally {
            directory.remove();
          }
        },
      ),
      { numRuns: 10 },
    );
  });
});
