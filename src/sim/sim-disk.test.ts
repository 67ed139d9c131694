// Checks the simulated disk's crash semantics (synced bytes kept, unsynced bytes lost, a torn prefix of the last unsynced write possible) by appending, syncing and crashing with seeded PRNGs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../lib/prng.js";
import { SimDisk } from "./sim-disk.js";

const bytes = (...values: number[]) => Uint8Array.from(values);

describe("SimDisk", () => {
  it("reads back everything appended before a crash, synced or not", () => {
    const disk = new SimDisk({ tornWriteProbability: 0 });
    disk.append("a.wal", bytes(1, 2));
    disk.fsync("a.wal");
    disk.append("a.wal", bytes(3));
    assert.deepEqual(disk.read().get("a.wal"), bytes(1, 2, 3));
  });

  it("keeps synced bytes and loses unsynced ones on a crash", () => {
    const disk = new SimDisk({ tornWriteProbability: 0 });
    disk.append("a.wal", bytes(1, 2, 3));
    disk.fsync("a.wal");
    disk.append("a.wal", bytes(4, 5, 6));
    disk.append("b.wal", bytes(9, 9)); // never synced: the whole file disappears
    const reports = disk.crash(prngFromSeed(1));
    assert.deepEqual(disk.read(), new Map([["a.wal", bytes(1, 2, 3)]]));
    assert.deepEqual(reports, [
      { file: "a.wal", survivingBytes: 3, lostBytes: 3, tornBytes: 0 },
      { file: "b.wal", survivingBytes: 0, lostBytes: 2, tornBytes: 0 },
    ]);
  });

  it("fsync covers every earlier append of the file, and only that file", () => {
    const disk = new SimDisk({ tornWriteProbability: 0 });
    disk.append("a.wal", bytes(1));
    disk.append("b.wal", bytes(2));
    disk.append("a.wal", bytes(3));
    disk.fsync("a.wal");
    disk.crash(prngFromSeed(1));
    assert.deepEqual(disk.read(), new Map([["a.wal", bytes(1, 3)]]));
  });

  it("copies appended bytes: the writer reusing its buffer cannot change the disk", () => {
    const disk = new SimDisk({ tornWriteProbability: 0 });
    const buffer = bytes(1, 2);
    disk.append("a.wal", buffer);
    buffer[0] = 99;
    assert.deepEqual(disk.read().get("a.wal"), bytes(1, 2));
  });

  it("with torn writes, leaves a strict non-empty prefix of the last unsynced write, of varying length", () => {
    const lengths = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const disk = new SimDisk({ tornWriteProbability: 1 });
      disk.append("a.wal", bytes(1, 2));
      disk.fsync("a.wal");
      disk.append("a.wal", bytes(7, 7, 7)); // earlier unsynced write: always lost
      disk.append("a.wal", bytes(10, 11, 12, 13, 14, 15, 16, 17));
      const [report] = disk.crash(prngFromSeed(seed));
      const survived = disk.read().get("a.wal")!;
      const torn = survived.length - 2;
      assert.ok(torn >= 1 && torn <= 7, `torn length ${torn}`);
      assert.deepEqual(
        survived,
        Uint8Array.from([1, 2, 10, 11, 12, 13, 14, 15, 16].slice(0, 2 + torn)),
      );
      assert.deepEqual(report, {
        file: "a.wal",
        survivingBytes: 2 + torn,
        lostBytes: 11 - torn,
        tornBytes: torn,
      });
      lengths.add(torn);
    }
    assert.equal(lengths.size, 7, "every tear point from 1 to 7 bytes occurs");
  });

  it("tears at the configured rate, and a torn prefix is durable from then on", () => {
    let torn = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const disk = new SimDisk({ tornWriteProbability: 0.5 });
      disk.append("a.wal", bytes(1, 2, 3, 4));
      if (disk.crash(prngFromSeed(seed))[0]!.tornBytes > 0) {
        torn++;
        const afterFirst = disk.read().get("a.wal")!;
        disk.crash(prngFromSeed(seed));
        assert.deepEqual(disk.read().get("a.wal"), afterFirst);
      }
    }
    assert.ok(torn > 150 && torn < 250, `torn ${torn} of 400`);
  });

  it("a synced file is never torn", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const disk = new SimDisk({ tornWriteProbability: 1 });
      disk.append("a.wal", bytes(1, 2, 3));
      disk.fsync("a.wal");
      disk.crash(prngFromSeed(seed));
      assert.deepEqual(disk.read().get("a.wal"), bytes(1, 2, 3));
    }
  });
});
