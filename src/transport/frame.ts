/**
 * @module Length-prefixed framing: a 4-byte big-endian body length, then the body. Pure
 * byte manipulation, no sockets, so it is tested on split, coalesced, oversize and
 * truncated input directly.
 */
export const frameHeaderBytes = 4;

export type FrameErrorCode = "FrameTooLarge" | "FrameEmpty";

export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function encodeFrameHeader(bodyBytes: number): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderBytes);
  header.writeUInt32BE(bodyBytes, 0);
  return header;
}

/**
 * Accumulates stream chunks and yields whole frame bodies. The length is checked against
 * `frameBytesMax` as soon as the header arrives, before any body is buffered, so a peer
 * cannot make us allocate more than one frame's worth.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(private readonly frameBytesMax: number) {}

  /** Bytes received that do not yet form a whole frame (non-zero at close = truncated). */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /** Feeds one chunk; returns the complete frame bodies it finished. Throws FrameError. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    const frames: Buffer[] = [];
    while (this.bufferedBytes >= frameHeaderBytes) {
      const head = this.contiguous(frameHeaderBytes);
      const bodyBytes = head.readUInt32BE(0);
      if (bodyBytes === 0) throw new FrameError("FrameEmpty", "empty frame");
      if (bodyBytes > this.frameBytesMax) {
        throw new FrameError(
          "FrameTooLarge",
          `frame of ${bodyBytes} bytes exceeds the limit of ${this.frameBytesMax} bytes`,
        );
      }
      if (this.bufferedBytes < frameHeaderBytes + bodyBytes) break;
      const whole = this.contiguous(frameHeaderBytes + bodyBytes);
      frames.push(whole.subarray(frameHeaderBytes, frameHeaderBytes + bodyBytes));
      this.consume(frameHeaderBytes + bodyBytes);
    }
    return frames;
  }

  /** Makes the first `bytes` contiguous in chunks[0] (copying only when a frame spans chunks). */
  private contiguous(bytes: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= bytes) return first;
    const merged = Buffer.concat(this.chunks, this.bufferedBytes);
    this.chunks = [merged];
    return merged;
  }

  private consume(bytes: number): void {
    const first = this.chunks[0] as Buffer;
    if (first.length === bytes) this.chunks.shift();
    else this.chunks[0] = first.subarray(bytes);
    this.bufferedBytes -= bytes;
  }
}
