/**
 * @module Operating errors: expected failures with a stable `code`, a message a person can
 * act on, and whether retrying may help. Programmer errors are `AssertionError` instead.
 */

export const brigadeErrorCodes = [
  "DeadlineExceeded",
  "Unavailable",
  "QueueFull",
  "MessageTooLarge",
  "ConnectionClosed",
  "HandshakeRejected",
  "UnknownPeer",
  "NoHandler",
  "RemoteError",
  "ClockOffsetExceeded",
  "MetadataTooLarge",
  "NotFound",
  "CompareFailed",
  "InvalidConfig",
  "InvalidArgument",
  "PortInUse",
  "DataDirMismatch",
  "WalCorrupt",
  "WalFailed",
  "WalClosed",
  "WalOverloaded",
  "RecordTooLarge",
  "BatchTooLarge",
  "SnapshotCorrupt",
  "SnapshotTooLarge",
  /** The history asked for (a watch's start revision) was compacted away. */
  "Compacted",
] as const;

export type BrigadeErrorCode = (typeof brigadeErrorCodes)[number];

const knownCodes: ReadonlySet<string> = new Set(brigadeErrorCodes);

/** True for the codes this version knows (a remote may send others). */
export function isBrigadeErrorCode(code: string): code is BrigadeErrorCode {
  return knownCodes.has(code);
}

const retriableCodes: ReadonlySet<BrigadeErrorCode> = new Set([
  "DeadlineExceeded",
  "Unavailable",
  "QueueFull",
  "ConnectionClosed",
  "WalOverloaded",
]);

export class BrigadeError extends Error {
  override readonly name = "BrigadeError";
  readonly retriable: boolean;
  constructor(
    readonly code: BrigadeErrorCode,
    message: string,
    options?: { cause?: unknown; retriable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retriable = options?.retriable ?? retriableCodes.has(code);
  }
}

export function isBrigadeError(error: unknown, code?: BrigadeErrorCode): error is BrigadeError {
  return error instanceof BrigadeError && (code === undefined || error.code === code);
}
