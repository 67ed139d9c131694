/**
 * @module Values on the wire: the API sends a value as UTF-8 text when its bytes are valid
 * UTF-8 and as base64 otherwise, and says which in `encoding`. The client hands out bytes
 * (`Uint8Array`) and reads text on request (`KeyValue.text()`).
 */
import { BrigadeError } from "../lib/errors.js";

/** A value as callers give it: text (stored as its UTF-8 bytes) or bytes. */
export type Value = string | Uint8Array;

export type ValueEncoding = "utf8" | "base64";

/** One key's state as the HTTP API sends it. */
export interface KvJson {
  readonly key: string;
  readonly value: string;
  readonly encoding: ValueEncoding;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: number;
}

const utf8Encoder = new TextEncoder();
/** Throws on bytes that are not UTF-8; keeps a leading byte order mark as data. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

export function toBytes(value: Value): Uint8Array {
  if (typeof value === "string") return utf8Encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new BrigadeError("InvalidArgument", "a value must be a string or a Uint8Array");
}

/** The text of `bytes` when they are valid UTF-8, else null. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

export function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** A value for a JSON body: text when the bytes are UTF-8, base64 otherwise. */
export function encodeValue(value: Value): { value: string; encoding: ValueEncoding } {
  if (typeof value === "string") return { value, encoding: "utf8" };
  const bytes = toBytes(value);
  const text = utf8OrNull(bytes);
  return text === null
    ? { value: base64Of(bytes), encoding: "base64" }
    : { value: text, encoding: "utf8" };
}

export function decodeValue(value: string, encoding: string | undefined): Uint8Array {
  if (encoding === "base64") {
    const buffer = Buffer.from(value, "base64");
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  if (encoding === undefined || encoding === "utf8") return utf8Encoder.encode(value);
  throw new BrigadeError(
    "RemoteError",
    `the server sent a value in unknown encoding "${encoding}"`,
  );
}

/**
 * One key's state. `value` is the stored bytes; `text()` decodes them as UTF-8 (invalid
 * sequences become U+FFFD). Revisions count per shard. `lease` 0 = no lease. A deleted key
 * (in a watch's delete event) has an empty value. `JSON.stringify` gives the API's form.
 */
export class KeyValue {
  constructor(
    readonly key: string,
    readonly value: Uint8Array,
    /** 1 on creation, +1 per put. */
    readonly version: number,
    readonly createRevision: number,
    readonly modRevision: number,
    readonly lease: number,
  ) {}

  /** The value as UTF-8 text. */
  text(): string {
    return lenientDecoder.decode(this.value);
  }

  toJSON(): KvJson {
    const { value, encoding } = encodeValue(this.value);
    return {
      key: this.key,
      value,
      encoding,
      version: this.version,
      createRevision: this.createRevision,
      modRevision: this.modRevision,
      lease: this.lease,
    };
  }

  static fromJson(json: KvJson): KeyValue {
    if (typeof json !== "object" || json === null || typeof json.key !== "string")
      throw new BrigadeError("RemoteError", "the server sent a malformed key-value record");
    return new KeyValue(
      json.key,
      decodeValue(String(json.value ?? ""), json.encoding),
      Number(json.version ?? 0),
      Number(json.createRevision ?? 0),
      Number(json.modRevision ?? 0),
      Number(json.lease ?? 0),
    );
  }
}

export function keyValueOrNull(json: KvJson | null | undefined): KeyValue | null {
  return json === null || json === undefined ? null : KeyValue.fromJson(json);
}
