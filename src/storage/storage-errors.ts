/**
 * @module The storage layer's typed errors. Every one is a `BrigadeError` (so the HTTP table
 * and logs treat it like any other operating error); `WalCorruptError` and
 * `SnapshotCorruptError` also carry where the damage is, as fields a tool can read rather
 * than only text in a message.
 */
import { BrigadeError } from "../lib/errors.js";

/**
 * A WAL segment holds damage that cannot be a torn tail: a bad record in a segment that is
 * not the last one, or a bad record in the last segment followed by a record that checks out,
 * or a gap between segments. Acknowledged records may be behind the damage, so recovery
 * stops instead of skipping them. Not retriable: a person (or a repair tool) must decide.
 */
export class WalCorruptError extends BrigadeError {
  constructor(
    /** Absolute path of the damaged segment file. */
    readonly file: string,
    /** Byte offset, in that file, of the first record that does not check out. */
    readonly offsetBytes: number,
    /** What is wrong there, e.g. "checksum mismatch" or "length 0 is below the 5-byte minimum". */
    readonly reason: string,
  ) {
    super("WalCorrupt", `WAL segment ${file} is corrupt at byte offset ${offsetBytes}: ${reason}`);
  }
}

/** A snapshot file that fails its header, length or checksum check. Not retriable. */
export class SnapshotCorruptError extends BrigadeError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super("SnapshotCorrupt", `snapshot ${file} is corrupt: ${reason}`);
  }
}
