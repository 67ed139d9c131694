/** @module One table from error codes to HTTP statuses, used by every API route. */
import type { FastifyReply } from "fastify";
import { BrigadeError, type BrigadeErrorCode } from "../lib/errors.js";

const statusByCode: Record<BrigadeErrorCode, number> = {
  InvalidArgument: 400,
  InvalidConfig: 400,
  MessageTooLarge: 413,
  MetadataTooLarge: 413,
  NotFound: 404,
  CompareFailed: 409,
  UnknownPeer: 404,
  NoHandler: 404,
  QueueFull: 503,
  Unavailable: 503,
  ConnectionClosed: 503,
  DeadlineExceeded: 504,
  HandshakeRejected: 502,
  RemoteError: 502,
  ClockOffsetExceeded: 502,
  PortInUse: 500,
  DataDirMismatch: 500,
  WalCorrupt: 500,
  WalFailed: 500,
  WalClosed: 503,
  WalOverloaded: 503,
  RecordTooLarge: 413,
  BatchTooLarge: 413,
  SnapshotCorrupt: 500,
  SnapshotTooLarge: 413,
  Compacted: 410,
};

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly retriable: boolean };
}

export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof BrigadeError) {
    const status = statusByCode[error.code] ?? 502;
    if (status === 503) reply.header("retry-after", "1");
    return reply.code(status).send({
      error: { code: error.code, message: error.message, retriable: error.retriable },
    } satisfies ErrorBody);
  }
  throw error;
}
