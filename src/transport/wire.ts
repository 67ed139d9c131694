/**
 * @module The node-to-node wire protocol. The hot frames — one-way `Message`, `Request`,
 * `Response` — have a fixed binary header (so sending one costs no msgpack work beyond the
 * payload, and a byte payload none at all); the rest (handshake, errors, pings) are msgpack
 * lists whose first element is the kind. A body's first byte tells them apart: binary kinds
 * are 0x01-0x0f, a msgpack list starts at 0x90 or above. Decoding validates everything, so a
 * garbage frame is a typed `WireError`, never a crash deeper in the stack.
 *
 * Binary layouts (big-endian; `hlc` = f64 wall ms + u32 logical; `payload` = u8 encoding
 * (0 msgpack, 1 raw bytes) + the rest of the body):
 *   Message   0x01 | hlc | u8 topic length | topic (utf-8) | payload
 *   Request   0x02 | u32 correlation id | u32 timeout ms | hlc | u8 topic length | topic | payload
 *   Response  0x03 | u32 correlation id | hlc | payload
 */
import { Packr, RESERVE_START_SPACE } from "msgpackr";
import type { HlcTimestamp } from "../clocks/hlc.js";
import { frameHeaderBytes } from "./frame.js";

/** Bumped on any incompatible change to the frames below; checked in the handshake. */
export const protocolVersion = 2;

export const FrameKind = {
  Hello: 0,
  Welcome: 1,
  Reject: 2,
  Message: 3,
  Request: 4,
  Response: 5,
  ErrorResponse: 6,
  Ping: 7,
} as const;

export interface Hello {
  readonly kind: typeof FrameKind.Hello;
  readonly version: number;
  readonly clusterId: string;
  readonly nodeId: string;
  /** Where the sender accepts connections, so the receiver can dial back. */
  readonly advertise: string;
  readonly hlc: HlcTimestamp;
}
export interface Welcome {
  readonly kind: typeof FrameKind.Welcome;
  readonly version: number;
  readonly clusterId: string;
  readonly nodeId: string;
  readonly hlc: HlcTimestamp;
}
export interface Reject {
  readonly kind: typeof FrameKind.Reject;
  readonly reason: string;
}
export interface Message {
  readonly kind: typeof FrameKind.Message;
  readonly topic: string;
  readonly payload: unknown;
  readonly hlc: HlcTimestamp;
}
export interface Request {
  readonly kind: typeof FrameKind.Request;
  readonly correlationId: number;
  readonly topic: string;
  readonly payload: unknown;
  /** Milliseconds the caller will still wait; a handler may give up sooner. */
  readonly timeoutMs: number;
  readonly hlc: HlcTimestamp;
}
export interface Response {
  readonly kind: typeof FrameKind.Response;
  readonly correlationId: number;
  readonly payload: unknown;
  readonly hlc: HlcTimestamp;
}
export interface ErrorResponse {
  readonly kind: typeof FrameKind.ErrorResponse;
  readonly correlationId: number;
  readonly code: string;
  readonly message: string;
  readonly retriable: boolean;
  readonly hlc: HlcTimestamp;
}
export interface Ping {
  readonly kind: typeof FrameKind.Ping;
  readonly hlc: HlcTimestamp;
}

export type Frame = Hello | Welcome | Reject | Message | Request | Response | ErrorResponse | Ping;

export class WireError extends Error {
  override readonly name = "WireError";
}

// useRecords: false keeps plain msgpack (no msgpackr record extension) on the wire.
const packr = new Packr({ useRecords: false, moreTypes: false });

const binaryMessage = 0x01;
const binaryRequest = 0x02;
const binaryResponse = 0x03;
const payloadMsgpack = 0;
const payloadRaw = 1;
const hlcBytes = 12;
/** Longest topic: topics are short names like "membership.push-pull". */
export const topicBytesMax = 255;
/** Correlation ids wrap at 2^32; far more than could ever be in flight at once. */
export const correlationIdModulus = 0x1_0000_0000;

/** Encodes a whole frame: the 4-byte length prefix and the body, in one buffer. */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.kind) {
    case FrameKind.Message: {
      const topic = topicBytes(frame.topic);
      const header = 1 + hlcBytes + 1 + topic.length;
      const framed = framedPayload(header, frame.payload);
      let offset = framed.writeUInt8(binaryMessage, frameHeaderBytes);
      offset = writeHlc(framed, offset, frame.hlc);
      offset = framed.writeUInt8(topic.length, offset);
      topic.copy(framed, offset);
      return framed;
    }
    case FrameKind.Request: {
      const topic = topicBytes(frame.topic);
      const header = 1 + 4 + 4 + hlcBytes + 1 + topic.length;
      const framed = framedPayload(header, frame.payload);
      let offset = framed.writeUInt8(binaryRequest, frameHeaderBytes);
      offset = framed.writeUInt32BE(frame.correlationId % correlationIdModulus, offset);
      offset = framed.writeUInt32BE(Math.min(frame.timeoutMs, 0xffff_ffff), offset);
      offset = writeHlc(framed, offset, frame.hlc);
      offset = framed.writeUInt8(topic.length, offset);
      topic.copy(framed, offset);
      return framed;
    }
    case FrameKind.Response: {
      const header = 1 + 4 + hlcBytes;
      const framed = framedPayload(header, frame.payload);
      let offset = framed.writeUInt8(binaryResponse, frameHeaderBytes);
      offset = framed.writeUInt32BE(frame.correlationId % correlationIdModulus, offset);
      writeHlc(framed, offset, frame.hlc);
      return framed;
    }
    default: {
      const framed = encodeListBody(frame, RESERVE_START_SPACE | frameHeaderBytes);
      framed.writeUInt32BE(framed.length - frameHeaderBytes, 0);
      return framed;
    }
  }
}

/**
 * A buffer holding the length prefix, `headerBytes` of header to fill in, the payload
 * encoding byte and the payload. Byte payloads are copied in raw; anything else is packed by
 * msgpack straight into place behind the reserved space.
 */
function framedPayload(headerBytes: number, payload: unknown): Buffer {
  const before = frameHeaderBytes + headerBytes + 1;
  let framed: Buffer;
  if (payload instanceof Uint8Array) {
    framed = Buffer.allocUnsafe(before + payload.length);
    framed.set(payload, before);
    framed.writeUInt8(payloadRaw, before - 1);
  } else {
    framed = packr.pack(payload, RESERVE_START_SPACE | before);
    framed.writeUInt8(payloadMsgpack, before - 1);
  }
  framed.writeUInt32BE(framed.length - frameHeaderBytes, 0);
  return framed;
}

function writeHlc(buffer: Buffer, offset: number, hlc: HlcTimestamp): number {
  const next = buffer.writeDoubleBE(hlc.wallMs, offset);
  return buffer.writeUInt32BE(hlc.logical, next);
}

const topicCache = new Map<string, Buffer>();
function topicBytes(topic: string): Buffer {
  let bytes = topicCache.get(topic);
  if (bytes === undefined) {
    bytes = Buffer.from(topic, "utf8");
    if (bytes.length > topicBytesMax)
      throw new WireError(`topic "${topic.slice(0, 40)}…" is longer than ${topicBytesMax} bytes`);
    if (topicCache.size < 1024) topicCache.set(topic, bytes);
  }
  return bytes;
}

/** Encodes the body of a list-shaped frame (no length prefix unless `packOptions` reserves room). */
export function encodeFrameBody(frame: Frame, packOptions = 0): Buffer {
  switch (frame.kind) {
    case FrameKind.Message:
    case FrameKind.Request:
    case FrameKind.Response:
      return encodeFrame(frame).subarray(frameHeaderBytes);
    default:
      return encodeListBody(frame, packOptions);
  }
}

function encodeListBody(
  frame: Exclude<Frame, Message | Request | Response>,
  packOptions: number,
): Buffer {
  switch (frame.kind) {
    case FrameKind.Hello:
      return packr.pack(
        [
          frame.kind,
          frame.version,
          frame.clusterId,
          frame.nodeId,
          frame.advertise,
          frame.hlc.wallMs,
          frame.hlc.logical,
        ],
        packOptions,
      );
    case FrameKind.Welcome:
      return packr.pack(
        [
          frame.kind,
          frame.version,
          frame.clusterId,
          frame.nodeId,
          frame.hlc.wallMs,
          frame.hlc.logical,
        ],
        packOptions,
      );
    case FrameKind.Reject:
      return packr.pack([frame.kind, frame.reason], packOptions);
    case FrameKind.ErrorResponse:
      return packr.pack(
        [
          frame.kind,
          frame.correlationId,
          frame.code,
          frame.message,
          frame.retriable,
          frame.hlc.wallMs,
          frame.hlc.logical,
        ],
        packOptions,
      );
    case FrameKind.Ping:
      return packr.pack([frame.kind, frame.hlc.wallMs, frame.hlc.logical], packOptions);
  }
}

function field<T>(
  fields: unknown[],
  index: number,
  check: (value: unknown) => value is T,
  what: string,
): T {
  const value = fields[index];
  if (!check(value)) throw new WireError(`malformed frame: ${what} at position ${index}`);
  return value;
}
const isString = (value: unknown): value is string => typeof value === "string";
const isBoolean = (value: unknown): value is boolean => typeof value === "boolean";
const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

function hlcAt(fields: unknown[], index: number): HlcTimestamp {
  return {
    wallMs: field(fields, index, isCount, "hlc wall time"),
    logical: field(fields, index + 1, isCount, "hlc logical counter"),
  };
}

/** Reads a binary frame's fields in order, failing with WireError past the body's end. */
class BodyReader {
  constructor(
    private readonly source: Buffer,
    public offset: number,
    private readonly end: number,
  ) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.end)
      throw new WireError("malformed frame: truncated binary header");
  }
  u8(): number {
    this.need(1);
    return this.source.readUInt8(this.offset++);
  }
  u32(): number {
    this.need(4);
    const value = this.source.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  hlc(): HlcTimestamp {
    this.need(hlcBytes);
    const wallMs = this.source.readDoubleBE(this.offset);
    const logical = this.source.readUInt32BE(this.offset + 8);
    this.offset += hlcBytes;
    if (!Number.isSafeInteger(wallMs) || wallMs < 0)
      throw new WireError("malformed frame: hlc wall time");
    return { wallMs, logical };
  }
  topic(): string {
    const length = this.u8();
    this.need(length);
    const topic = this.source.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return topic;
  }
  payload(): unknown {
    const encoding = this.u8();
    if (encoding === payloadRaw) return this.source.subarray(this.offset, this.end);
    if (encoding !== payloadMsgpack)
      throw new WireError(`malformed frame: payload encoding ${encoding}`);
    if (this.offset >= this.end) throw new WireError("malformed frame: missing payload");
    try {
      return packr.unpack(this.source, { start: this.offset, end: this.end });
    } catch (error) {
      throw new WireError(`undecodable payload: ${(error as Error).message}`);
    }
  }
}

/**
 * Decodes the body at `source[start, end)` — a range, so the receive path copies nothing.
 * A raw byte payload is returned as a view of `source`.
 */
export function decodeFrameBody(source: Buffer, start = 0, end = source.length): Frame {
  if (end <= start) throw new WireError("malformed frame: empty body");
  const first = source[start] as number;
  if (first === binaryMessage || first === binaryRequest || first === binaryResponse) {
    const reader = new BodyReader(source, start + 1, end);
    if (first === binaryMessage) {
      const hlc = reader.hlc();
      const topic = reader.topic();
      return { kind: FrameKind.Message, topic, payload: reader.payload(), hlc };
    }
    if (first === binaryRequest) {
      const correlationId = reader.u32();
      const timeoutMs = reader.u32();
      const hlc = reader.hlc();
      const topic = reader.topic();
      return {
        kind: FrameKind.Request,
        correlationId,
        topic,
        payload: reader.payload(),
        timeoutMs,
        hlc,
      };
    }
    const correlationId = reader.u32();
    const hlc = reader.hlc();
    return { kind: FrameKind.Response, correlationId, payload: reader.payload(), hlc };
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(source, { start, end });
  } catch (error) {
    throw new WireError(`undecodable frame: ${(error as Error).message}`);
  }
  if (!Array.isArray(decoded) || decoded.length === 0)
    throw new WireError("malformed frame: not a list");
  const fields = decoded as unknown[];
  const kind = fields[0];
  switch (kind) {
    case FrameKind.Hello:
      return {
        kind,
        version: field(fields, 1, isCount, "version"),
        clusterId: field(fields, 2, isString, "cluster id"),
        nodeId: field(fields, 3, isString, "node id"),
        advertise: field(fields, 4, isString, "advertise address"),
        hlc: hlcAt(fields, 5),
      };
    case FrameKind.Welcome:
      return {
        kind,
        version: field(fields, 1, isCount, "version"),
        clusterId: field(fields, 2, isString, "cluster id"),
        nodeId: field(fields, 3, isString, "node id"),
        hlc: hlcAt(fields, 4),
      };
    case FrameKind.Reject:
      return { kind, reason: field(fields, 1, isString, "reason") };
    case FrameKind.ErrorResponse:
      return {
        kind,
        correlationId: field(fields, 1, isCount, "correlation id"),
        code: field(fields, 2, isString, "error code"),
        message: field(fields, 3, isString, "error message"),
        retriable: field(fields, 4, isBoolean, "retriable flag"),
        hlc: hlcAt(fields, 5),
      };
    case FrameKind.Ping:
      return { kind, hlc: hlcAt(fields, 1) };
    default:
      throw new WireError(`malformed frame: unknown kind ${JSON.stringify(kind)}`);
  }
}
