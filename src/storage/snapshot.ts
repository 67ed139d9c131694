/**
 * @module Snapshot files: written atomically (a crash leaves either the old file or the new
 * one, never a mix) and read back with a checksum check. The WAL records THAT a snapshot
 * exists (a "snapshot-marker" record); the bytes live here, one file per name.
 *
 * File format, integers little-endian:
 *
 * ```
 * offset  size  field
 *      0     4  magic        "BSNP"
 *      4     4  version      u32, 1
 *      8     4  length       u32: payload bytes
 *     12     4  crc32c       u32: CRC32C over bytes [0, 12) then the payload
 *     16     n  payload      opaque bytes (the Raft layer's encoding)
 * ```
 *
 * Atomic write, in the order that makes it crash-safe on Linux filesystems:
 * write `<name>.tmp` → fsync it → rename over `<name>` → fsync the directory. Without the
 * first fsync a crash can leave a renamed but empty file (ext4 delayed allocation); without
 * the last, the rename itself can be lost.
 *
 * Never: two concurrent writers of the same name (they share the temp file). The Raft layer
 * gives each group its own names.
 */
import { mkdir, open, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { BrigadeError } from "../lib/errors.js";
import { crc32c } from "./crc32c.js";
import { syncDirectory, writeFully } from "./durable-fs.js";
import { SnapshotCorruptError } from "./storage-errors.js";

const MiB = 1024 * 1024;
const magic = [0x42, 0x53, 0x4e, 0x50] as const; // "BSNP"
const formatVersion = 1;
export const snapshotHeaderBytes = 16;

export interface SnapshotConfig {
  /**
   * Largest snapshot payload, written or read ("SnapshotTooLarge" beyond). A snapshot is
   * held in memory whole, and a follower receives it over the network. Default 512 MiB;
   * at most 1 GiB (the 32-bit length field and V8's buffer limits leave no room above).
   */
  readonly snapshotBytesMax: number;
}

export const snapshotDefaults: SnapshotConfig = Object.freeze({ snapshotBytesMax: 512 * MiB });

const snapshotBytesLimit = 1024 * MiB;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkName(name: string): void {
  if (!namePattern.test(name) || name.endsWith(".tmp"))
    throw new BrigadeError(
      "InvalidArgument",
      `snapshot name ${JSON.stringify(name)} must be letters, digits, ".", "_" or "-", ` +
        'start with a letter or digit, and not end in ".tmp"',
    );
}

function configWith(overrides: Partial<SnapshotConfig>): SnapshotConfig {
  const config = { ...snapshotDefaults, ...overrides };
  const max = config.snapshotBytesMax;
  if (!Number.isSafeInteger(max) || max < 1 || max > snapshotBytesLimit)
    throw new BrigadeError(
      "InvalidConfig",
      `snapshotBytesMax must be an integer in [1, ${snapshotBytesLimit}], got ${max}`,
    );
  return config;
}

function tooLarge(bytes: number, config: SnapshotConfig): BrigadeError {
  return new BrigadeError(
    "SnapshotTooLarge",
    `snapshot of ${bytes} bytes exceeds snapshotBytesMax ${config.snapshotBytesMax}`,
  );
}

/** Header + payload, checksummed; exported for tests of the read side. */
export function encodeSnapshot(payload: Uint8Array): Buffer {
  const file = Buffer.allocUnsafe(snapshotHeaderBytes + payload.length);
  file.set(magic, 0);
  file.writeUInt32LE(formatVersion, 4);
  file.writeUInt32LE(payload.length, 8);
  file.set(payload, snapshotHeaderBytes);
  file.writeUInt32LE(crc32c(file, crc32c(file, 0, 0, 12), snapshotHeaderBytes, file.length), 12);
  return file;
}

/**
 * Writes `bytes` as snapshot `name` in `directory` (created if missing) so that after a crash
 * at any point the file holds either the previous snapshot or this one, whole. Resolves once
 * the new file and its directory entry are fsynced. Returns the file's path.
 *
 * When to use: a Raft group's state machine snapshot, before appending the WAL
 * "snapshot-marker" that points at it (marker after file, so the marker never points at
 * nothing).
 *
 * Example:
 *   await writeSnapshotAtomically(path.join(dataDir, "snapshots"), "group-7", bytes);
 */
export async function writeSnapshotAtomically(
  directory: string,
  name: string,
  bytes: Uint8Array,
  overrides: Partial<SnapshotConfig> = {},
): Promise<string> {
  checkName(name);
  const config = configWith(overrides);
  if (bytes.length > config.snapshotBytesMax) throw tooLarge(bytes.length, config);
  await mkdir(directory, { recursive: true });
  const target = path.join(directory, name);
  const temporary = `${target}.tmp`;
  const file = encodeSnapshot(bytes);
  try {
    const handle = await open(temporary, "w");
    try {
      await writeFully(handle, file, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
  return target;
}

/**
 * Reads snapshot `name` back, checking magic, version, length and checksum; resolves null if
 * there is no such snapshot. Throws `SnapshotCorruptError` (code "SnapshotCorrupt") on any
 * mismatch and "SnapshotTooLarge" if the file claims more than `snapshotBytesMax`.
 */
export async function readSnapshot(
  directory: string,
  name: string,
  overrides: Partial<SnapshotConfig> = {},
): Promise<Uint8Array | null> {
  checkName(name);
  const config = configWith(overrides);
  const target = path.join(directory, name);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(target, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  let file: Buffer;
  try {
    // Check the size before reading, so a huge or damaged file is not pulled into memory.
    const { size } = await handle.stat();
    if (size - snapshotHeaderBytes > config.snapshotBytesMax)
      throw tooLarge(size - snapshotHeaderBytes, config);
    file = await handle.readFile();
  } finally {
    await handle.close();
  }
  if (file.length < snapshotHeaderBytes)
    throw new SnapshotCorruptError(target, `${file.length} bytes, shorter than the header`);
  if (!magic.every((byte, index) => file[index] === byte))
    throw new SnapshotCorruptError(target, "bad magic (not a Brigade snapshot file)");
  const version = file.readUInt32LE(4);
  if (version !== formatVersion)
    throw new SnapshotCorruptError(target, `unknown format version ${version}`);
  const length = file.readUInt32LE(8);
  if (length !== file.length - snapshotHeaderBytes)
    throw new SnapshotCorruptError(
      target,
      `header says ${length} payload bytes, file has ${file.length - snapshotHeaderBytes}`,
    );
  const stored = file.readUInt32LE(12);
  const computed = crc32c(file, crc32c(file, 0, 0, 12), snapshotHeaderBytes, file.length);
  if (stored !== computed)
    throw new SnapshotCorruptError(
      target,
      `checksum mismatch (stored ${stored.toString(16)}, computed ${computed.toString(16)})`,
    );
  return file.subarray(snapshotHeaderBytes);
}

/** Deletes snapshot `name` (no error if it is absent) and fsyncs the directory. */
export async function deleteSnapshot(directory: string, name: string): Promise<void> {
  checkName(name);
  try {
    await unlink(path.join(directory, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  await syncDirectory(directory);
}
