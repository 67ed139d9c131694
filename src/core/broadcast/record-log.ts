/**
 * @module Self-checking records for append-only files, and a tiny field codec for their
 * bodies. Pure: no I/O; the driver appends the bytes and hands them back after a restart.
 *
 * Frame: [u32 LE body length][u32 LE FNV-1a 32 over the length bytes and the body][body].
 * A crash can leave a torn last record (see `sim/sim-disk.ts`); `decodeRecords` stops at the
 * first frame that is short, too long or fails its checksum and reports the rest as damaged,
 * so the reader keeps exactly the records that were written whole. Because everything after a
 * damaged frame is unreadable, a writer must never append after one: after a restart, write
 * to a new file instead (the broadcast core starts a new file generation per incarnation).
 */
import { assert } from "../../lib/assert.js";
import { fnv1a32 } from "../../lib/fnv1a.js";

export const RECORD_HEADER_BYTES = 8;

export function encodeRecord(body: Uint8Array, bodyBytesMax: number): Uint8Array {
  assert(body.length <= bodyBytesMax, `record body ${body.length} B > max ${bodyBytesMax} B`);
  const frame = new Uint8Array(RECORD_HEADER_BYTES + body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, body.length, true);
  frame.set(body, RECORD_HEADER_BYTES);
  view.setUint32(4, frameChecksum(frame, body.length), true);
  return frame;
}

export interface DecodedRecords {
  readonly bodies: readonly Uint8Array[];
  /** Bytes of whole, valid records from the start of the file. */
  readonly validBytes: number;
  /** Bytes after the last valid record (a torn tail, or damage): ignored. */
  readonly damagedBytes: number;
}

export function decodeRecords(bytes: Uint8Array, bodyBytesMax: number): DecodedRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodies: Uint8Array[] = [];
  let offset = 0;
  while (bytes.length - offset >= RECORD_HEADER_BYTES) {
    const bodyBytes = view.getUint32(offset, true);
    if (bodyBytes > bodyBytesMax) break;
    const end = offset + RECORD_HEADER_BYTES + bodyBytes;
    if (end > bytes.length) break;
    const frame = bytes.subarray(offset, end);
    if (view.getUint32(offset + 4, true) !== frameChecksum(frame, bodyBytes)) break;
    bodies.push(frame.slice(RECORD_HEADER_BYTES));
    offset = end;
  }
  return { bodies, validBytes: offset, damagedBytes: bytes.length - offset };
}

function frameChecksum(frame: Uint8Array, bodyBytes: number): number {
  const overLength = fnv1a32(frame, undefined, 0, 4);
  return fnv1a32(frame, overLength, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + bodyBytes);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Builds a record body from u8 tags, strings and byte arrays (each length-prefixed, u32 LE). */
export class BodyWriter {
  #bytes = new Uint8Array(64);
  #length = 0;

  u8(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, `u8 out of range: ${value}`);
    this.#reserve(1);
    this.#bytes[this.#length++] = value;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.#reserve(4 + value.length);
    new DataView(this.#bytes.buffer).setUint32(this.#length, value.length, true);
    this.#bytes.set(value, this.#length + 4);
    this.#length += 4 + value.length;
    return this;
  }

  string(value: string): this {
    return this.bytes(textEncoder.encode(value));
  }

  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + extra));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }
}

/** Reads what `BodyWriter` wrote; every method returns null instead of reading out of bounds. */
export class BodyReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(): number | null {
    if (this.#offset + 1 > this.#bytes.length) return null;
    return this.#bytes[this.#offset++]!;
  }

  bytes(): Uint8Array | null {
    if (this.#offset + 4 > this.#bytes.length) return null;
    const length = this.#view.getUint32(this.#offset, true);
    const start = this.#offset + 4;
    if (start + length > this.#bytes.length) return null;
    this.#offset = start + length;
    return this.#bytes.slice(start, start + length);
  }

  string(): string | null {
    const bytes = this.bytes();
    if (bytes === null) return null;
    try {
      return textDecoder.decode(bytes);
    } catch {
      return null;
    }
  }

  /** True when every byte was consumed: a body with trailing bytes is malformed. */
  atEnd(): boolean {
    return this.#offset === this.#bytes.length;
  }
}
