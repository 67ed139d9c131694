// Goal: snapshot files are replaced atomically and read back only if whole and unaltered;
// method: real files in a temp directory, fast-check round trips, every single-byte
// corruption and truncation of a written file, and the leftovers an interrupted write leaves.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isBrigadeError } from "../lib/errors.js";
import { temporaryDirectory } from "../testkit/index.js";
import {
  deleteSnapshot,
  readSnapshot,
  snapshotHeaderBytes,
  writeSnapshotAtomically,
} from "./snapshot.js";
import { SnapshotCorruptError } from "./storage-errors.js";

const bytesOf = (text: string) => new TextEncoder().encode(text);

describe("snapshots", () => {
  it("round-trips any payload and replaces the previous snapshot", async () => {
    const directory = temporaryDirectory("brigade-snapshot-");
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), async (payload) => {
          const file = await writeSnapshotAtomically(directory.path, "group-1", payload);
          assert.equal(file, path.join(directory.path, "group-1"));
          assert.deepEqual(
            new Uint8Array((await readSnapshot(directory.path, "group-1")) ?? []),
            payload,
          );
        }),
        { numRuns: 25 },
      );
      assert.deepEqual(readdirSync(directory.path), ["group-1"], "no temp file is left behind");
    } finally {
      directory.remove();
    }
  });

  it("reads null for a snapshot that does not exist, and deletes idempotently", async () => {
    const directory = temporaryDirectory("brigade-snapshot-");
    try {
      assert.equal(await readSnapshot(directory.path, "absent"), null);
      await writeSnapshotAtomically(directory.path, "present", bytesOf("x"));
      await deleteSnapshot(directory.path, "present");
      await deleteSnapshot(directory.path, "present");
      assert.equal(await readSnapshot(directory.path, "present"), null);
    } finally {
      directory.remove();
    }
  });

  it("rejects any flipped byte or truncation with SnapshotCorrupt", async () => {
    const directory = temporaryDirectory("brigade-snapshot-");
    try {
      const file = await writeSnapshotAtomically(directory.path, "s", bytesOf("state ".repeat(20)));
      const original = readFileSync(file);
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (position, xor) => {
          const damaged = Buffer.from(original);
          damaged[position % damaged.length]! ^= xor;
          writeFileSync(file, damaged);
          await assert.rejects(readSnapshot(directory.path, "s"), (error) => {
            assert.ok(error instanceof SnapshotCorruptError);
            assert.ok(isBrigadeError(error, "SnapshotCorrupt") && error.file === file);
            return true;
          });
        }),
        { numRuns: 40 },
      );
      for (const length of [0, 3, snapshotHeaderBytes, original.length - 1]) {
        writeFileSync(file, original);
        truncateSync(file, length);
        await assert.rejects(readSnapshot(directory.path, "s"), (error) =>
          isBrigadeError(error, "SnapshotCorrupt"),
        );
      }
    } finally {
      directory.remove();
    }
  });

  it("keeps the old snapshot when a write was interrupted before its rename", async () => {
    const directory = temporaryDirectory("brigade-snapshot-");
    try {
      await writeSnapshotAtomically(directory.path, "g", bytesOf("old"));
      // What a crash between "write temp" and "rename" leaves: a partial temp file.
      writeFileSync(path.join(directory.path, "g.tmp"), bytesOf("BSNP partial"));
      assert.deepEqual(new Uint8Array((await readSnapshot(directory.path, "g"))!), bytesOf("old"));
      await writeSnapshotAtomically(directory.path, "g", bytesOf("new"));
      assert.deepEqual(new Uint8Array((await readSnapshot(directory.path, "g"))!), bytesOf("new"));
      assert.ok(!existsSync(path.join(directory.path, "g.tmp")));
    } finally {
      directory.remove();
    }
  });

  it("enforces snapshotBytesMax on write and on read, and checks names", async () => {
    const directory = temporaryDirectory("brigade-snapshot-");
    try {
      const limit = { snapshotBytesMax: 100 };
      await writeSnapshotAtomically(directory.path, "ok", new Uint8Array(100), limit);
      await assert.rejects(
        writeSnapshotAtomically(directory.path, "big", new Uint8Array(101), limit),
        (error) => isBrigadeError(error, "SnapshotTooLarge"),
      );
      await writeSnapshotAtomically(directory.path, "big", new Uint8Array(101));
      await assert.rejects(readSnapshot(directory.path, "big", limit), (error) =>
        isBrigadeError(error, "SnapshotTooLarge"),
      );
      for (const name of ["", "../escape", "a/b", ".hidden", "x.tmp"])
        await assert.rejects(writeSnapshotAtomically(directory.path, name, bytesOf("x")), (error) =>
          isBrigadeError(error, "InvalidArgument"),
        );
    } finally {
      directory.remove();
    }
  });
});
