/**
 * @module The node-to-node wire protocol: frame bodies are msgpack arrays whose first element
 * is the frame kind. Decoding validates shape and types, so a garbage frame is a typed
 * `WireError`, never a crash deeper in the stack.
 */
import { Packr } from "msgpackr";
import type { HlcTimestamp } from "../clocks/hlc.js";

/** Bumped on any incompatible change to the frames below; checked in the handshake. */
export const protocolVersion = 1;

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

export function encodeFrameBody(frame: Frame): Buffer {
  switch (frame.kind) {
    case FrameKind.Hello:
      return packr.pack([
        frame.kind,
        frame.version,
        frame.clusterId,
        frame.nodeId,
        frame.advertise,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.Welcome:
      return packr.pack([
        frame.kind,
        frame.version,
        frame.clusterId,
        frame.nodeId,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.Reject:
      return packr.pack([frame.kind, frame.reason]);
    case FrameKind.Message:
      return packr.pack([
        frame.kind,
        frame.topic,
        frame.payload,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.Request:
      return packr.pack([
        frame.kind,
        frame.correlationId,
        frame.topic,
        frame.payload,
        frame.timeoutMs,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.Response:
      return packr.pack([
        frame.kind,
        frame.correlationId,
        frame.payload,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.ErrorResponse:
      return packr.pack([
        frame.kind,
        frame.correlationId,
        frame.code,
        frame.message,
        frame.retriable,
        frame.hlc.wallMs,
        frame.hlc.logical,
      ]);
    case FrameKind.Ping:
      return packr.pack([frame.kind, frame.hlc.wallMs, frame.hlc.logical]);
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
const isAnything = (_value: unknown): _value is unknown => true;

function hlcAt(fields: unknown[], index: number): HlcTimestamp {
  return {
    wallMs: field(fields, index, isCount, "hlc wall time"),
    logical: field(fields, index + 1, isCount, "hlc logical counter"),
  };
}

export function decodeFrameBody(body: Buffer): Frame {
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
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
    case FrameKind.Message:
      return {
        kind,
        topic: field(fields, 1, isString, "topic"),
        payload: field(fields, 2, isAnything, "payload"),
        hlc: hlcAt(fields, 3),
      };
    case FrameKind.Request:
      return {
        kind,
        correlationId: field(fields, 1, isCount, "correlation id"),
        topic: field(fields, 2, isString, "topic"),
        payload: field(fields, 3, isAnything, "payload"),
        timeoutMs: field(fields, 4, isCount, "timeout"),
        hlc: hlcAt(fields, 5),
      };
    case FrameKind.Response:
      return {
        kind,
        correlationId: field(fields, 1, isCount, "correlation id"),
        payload: field(fields, 2, isAnything, "payload"),
        hlc: hlcAt(fields, 3),
      };
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
