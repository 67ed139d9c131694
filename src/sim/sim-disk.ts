/**
 * @module A simulated disk for one node: named append-only files with explicit fsync, and a
 * crash that keeps only what a real disk would be allowed to keep.
 *
 * Fault model (what `crash` does to each file):
 * - every byte covered by a completed `fsync` survives;
 * - every byte appended since the last `fsync` is lost, except that, with probability
 *   `tornWriteProbability`, the file's LAST unsynced append survives in part: a random
 *   non-empty strict prefix of it stays on disk right after the synced bytes (a torn write:
 *   the write was in progress, earlier unsynced appends never reached the platter);
 * - a file left with no surviving bytes disappears (its creation was never made durable).
 *
 * So a reader after a crash may find a damaged tail, never damage in the synced region.
 * Records in files must be self-checking (length + checksum) to detect that tail.
 * Randomness comes only from the `Prng` passed to `crash`.
 */
import { assert } from "../lib/assert.js";
import type { Prng } from "../lib/prng.js";

export interface SimDiskConfig {
  /**
   * Chance, per file with unsynced appends at a crash, that the last unsynced append survives
   * as a torn prefix instead of vanishing. 0 disables torn writes. Default 0.5: often enough
   * that every run with crashes exercises the recovery path that skips a torn tail.
   */
  readonly tornWriteProbability: number;
}

export const simDiskDefaults: SimDiskConfig = { tornWriteProbability: 0.5 };

/** What a crash did to one file, for the trace. */
export interface FileCrashReport {
  readonly file: string;
  readonly survivingBytes: number;
  readonly lostBytes: number;
  /** Bytes of the last unsynced append that survived torn (included in `survivingBytes`). */
  readonly tornBytes: number;
}

interface SimFile {
  /** Chunks covered by a completed fsync (including a torn prefix that survived a crash). */
  synced: Uint8Array[];
  syncedBytes: number;
  /** Appends since the last fsync, each kept whole so a crash can tear the last one. */
  unsynced: Uint8Array[];
  unsyncedBytes: number;
}

export class SimDisk {
  readonly #config: SimDiskConfig;
  readonly #files = new Map<string, SimFile>();
  #appendCount = 0;
  #fsyncCount = 0;
  #crashCount = 0;

  constructor(config: SimDiskConfig = simDiskDefaults) {
    assert(
      config.tornWriteProbability >= 0 && config.tornWriteProbability <= 1,
      `tornWriteProbability must be in [0, 1], got ${config.tornWriteProbability}`,
    );
    this.#config = config;
  }

  /** Appends a copy of `bytes` (the caller may reuse its buffer) to `file`, creating it. */
  append(file: string, bytes: Uint8Array): void {
    assert(file.length > 0, "file name must not be empty");
    let simFile = this.#files.get(file);
    if (simFile === undefined) {
      simFile = { synced: [], syncedBytes: 0, unsynced: [], unsyncedBytes: 0 };
      this.#files.set(file, simFile);
    }
    simFile.unsynced.push(bytes.slice());
    simFile.unsyncedBytes += bytes.length;
    this.#appendCount++;
  }

  /** Makes every byte appended to `file` so far durable. A no-op for an unknown file. */
  fsync(file: string): void {
    this.#fsyncCount++;
    const simFile = this.#files.get(file);
    if (simFile === undefined) return;
    for (const chunk of simFile.unsynced) simFile.synced.push(chunk);
    simFile.syncedBytes += simFile.unsyncedBytes;
    simFile.unsynced = [];
    simFile.unsyncedBytes = 0;
  }

  /** Power loss: applies the fault model above to every file and reports what it did. */
  crash(prng: Prng): FileCrashReport[] {
    this.#crashCount++;
    const reports: FileCrashReport[] = [];
    for (const [file, simFile] of [...this.#files]) {
      let tornBytes = 0;
      const last = simFile.unsynced.at(-1);
      if (
        last !== undefined &&
        last.length >= 2 &&
        prng.chance(this.#config.tornWriteProbability)
      ) {
        tornBytes = prng.intInclusive(1, last.length - 1);
        simFile.synced.push(last.subarray(0, tornBytes));
        simFile.syncedBytes += tornBytes;
      }
      reports.push({
        file,
        survivingBytes: simFile.syncedBytes,
        lostBytes: simFile.unsyncedBytes - tornBytes,
        tornBytes,
      });
      simFile.unsynced = [];
      simFile.unsyncedBytes = 0;
      if (simFile.syncedBytes === 0) this.#files.delete(file);
    }
    return reports;
  }

  /**
   * Every file's current contents (synced and not yet synced bytes), as copies. Right after
   * `crash`, that is exactly the surviving bytes: what a restarted core gets as `recovered`.
   */
  read(): Map<string, Uint8Array> {
    const contents = new Map<string, Uint8Array>();
    for (const [file, simFile] of this.#files) {
      const bytes = new Uint8Array(simFile.syncedBytes + simFile.unsyncedBytes);
      let offset = 0;
      for (const chunk of [...simFile.synced, ...simFile.unsynced]) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      assert(offset === bytes.length);
      contents.set(file, bytes);
    }
    return contents;
  }

  /** Bytes of `file` that a crash cannot take away. */
  syncedBytes(file: string): number {
    return this.#files.get(file)?.syncedBytes ?? 0;
  }

  get stats(): { appends: number; fsyncs: number; crashes: number; files: number } {
    return {
      appends: this.#appendCount,
      fsyncs: this.#fsyncCount,
      crashes: this.#crashCount,
      files: this.#files.size,
    };
  }
}
