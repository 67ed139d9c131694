/**
 * @module Operating errors: expected failures with a stable `code`, a message a person can
 * act on, and whether retrying may help. Programmer errors are `AssertionError` instead.
 */

export type BrigadeErrorCode =
  // transport
  | "DeadlineExceeded"
  | "Unavailable"
  | "QueueFull"
  | "MessageTooLarge"
  | "ConnectionClosed"
  | "HandshakeRejected"
  | "UnknownPeer"
  | "NoHandler"
  | "RemoteError"
  // clocks
  | "ClockOffsetExceeded"
  // membership and discovery
  | "MetadataTooLarge"
  | "NotFound"
  // config and input
  | "InvalidConfig"
  | "InvalidArgument"
  | "PortInUse"
  | "DataDirMismatch";

const retriableCodes: ReadonlySet<BrigadeErrorCode> = new Set([
  "DeadlineExceeded",
  "Unavailable",
  "QueueFull",
  "ConnectionClosed",
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
