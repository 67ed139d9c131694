/**
 * @module The errors the client throws. Every failure is a `BrigadeError`: the server's code
 * when this version knows it ("RemoteError" otherwise, with the server's code kept in
 * `serverCode`), "DeadlineExceeded" when the call's deadline passed (retries included),
 * "Unavailable" when no node could be reached, "ConnectionClosed" after `client.close()`.
 * A failed compare is a `CompareFailedError` carrying the key's current state.
 */
import { BrigadeError, type BrigadeErrorCode, isBrigadeErrorCode } from "../lib/errors.js";
import { type KeyValue, type KvJson, keyValueOrNull } from "./codec.js";

/** An error answer from a node. */
export class ServerError extends BrigadeError {
  /** The answer's `retry-after`, when it had one. */
  retryAfterMs: number | undefined;
  constructor(
    code: BrigadeErrorCode,
    message: string,
    /** The code exactly as the server sent it (e.g. "Compacted"). */
    readonly serverCode: string,
    /** The HTTP status, 0 for an error event in a watch stream. */
    readonly status: number,
    options?: { retriable?: boolean },
  ) {
    super(code, message, options);
  }
}

/** 409: a put, delete (or keyspace create) whose condition did not hold; nothing changed. */
export class CompareFailedError extends ServerError {
  constructor(
    message: string,
    /** The key's state when the compare ran (null: it did not exist). */
    readonly current: KeyValue | null,
    status: number,
  ) {
    super("CompareFailed", message, "CompareFailed", status, { retriable: false });
  }
}

/** Codes worth retrying (after refreshing the shard map when `refresh` says so). */
const retriableServerCodes: ReadonlySet<string> = new Set([
  "Unavailable",
  "QueueFull",
  "DeadlineExceeded",
  "ConnectionClosed",
  "WalClosed",
  "WalOverloaded",
]);

export interface ErrorBody {
  readonly error?: {
    readonly code?: unknown;
    readonly message?: unknown;
    readonly retriable?: unknown;
  };
  readonly current?: KvJson | null;
}

/** Builds the error for a non-2xx answer. */
export function serverError(status: number, body: unknown, what: string): ServerError {
  const error = (body as ErrorBody | null)?.error;
  const serverCode =
    typeof error?.code === "string" ? error.code : status === 503 ? "Unavailable" : `HTTP${status}`;
  const detail =
    typeof error?.message === "string"
      ? error.message
      : typeof body === "string" && body.length > 0
        ? body.slice(0, 200)
        : `HTTP ${status}`;
  const message = `${what}: ${detail}`;
  if (serverCode === "CompareFailed") {
    let current: KeyValue | null = null;
    try {
      current = keyValueOrNull((body as ErrorBody).current);
    } catch {
      current = null;
    }
    return new CompareFailedError(message, current, status);
  }
  const code: BrigadeErrorCode = isBrigadeErrorCode(serverCode) ? serverCode : "RemoteError";
  const retriable =
    retriableServerCodes.has(serverCode) ||
    status === 503 ||
    status === 504 ||
    (error?.retriable === true && status >= 500);
  return new ServerError(
    code,
    code === "RemoteError" && serverCode !== "RemoteError" ? `${serverCode}: ${message}` : message,
    serverCode,
    status,
    { retriable },
  );
}

/** The server code of an error (a client-side BrigadeError's own code). */
export function serverCodeOf(error: unknown): string | null {
  if (error instanceof ServerError) return error.serverCode;
  if (error instanceof BrigadeError) return error.code;
  return null;
}

export function isRetriable(error: unknown): boolean {
  return error instanceof BrigadeError && error.retriable;
}
