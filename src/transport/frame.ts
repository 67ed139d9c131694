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
 * Accumulates stream chunks and yields whole frame bodies as ranges of a buffer, without
 * copying unless a frame spans chunks. The length is checked against `frameBytesMax` as soon
 * as the header arrives, before any body is buffered, so a peer cannot make us allocate more
 * than one frame's worth.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private offset = 0;
  private bufferedBytes = 0;

  constructor(private readonly frameBytesMax: number) {}

  /** Bytes received that do not yet form a whole frame (non-zero at close = truncated). */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /**
   * Feeds one chunk and calls `onBody(buffer, start, end)` for each complete frame body;
   * stops early when `onBody` returns false. Throws FrameError on an empty or oversize frame.
   */
  forEachBody(
    chunk: Buffer,
    onBody: (buffer: Buffer, start: number, end: number) => boolean,
  ): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    while (this.bufferedBytes >= frameHeaderBytes) {
      let first = this.chunks[0] as Buffer;
      if (first.length - this.offset < frameHeaderBytes) first = this.merge();
      const bodyBytes = first.readUInt32BE(this.offset);
      if (bodyBytes === 0) throw new FrameError("FrameEmpty", "empty frame");
      if (bodyBytes > this.frameBytesMax) {
        throw new FrameError(
          "FrameTooLarge",
          `frame of ${bodyBytes} bytes exceeds the limit of ${this.frameBytesMax} bytes`,
        );
      }
      const frameBytes = frameHeaderBytes + bodyBytes;
      if (this.bufferedBytes < frameBytes) return;
      if (first.length - this.offset < frameBytes) first = this.merge();
      const start = this.offset + frameHeaderBytes;
      this.offset += frameBytes;
      this.bufferedBytes -= frameBytes;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      if (!onBody(first, start, start + bodyBytes)) return;
    }
  }

  /** The complete frame bodies in `chunk` (and what was buffered before it), as copies-free views. */
  push(chunk: Buffer): Buffer[] {
    const bodies: Buffer[] = [];
    this.forEachBody(chunk, (buffer, start, end) => {
      bodies.push(buffer.subarray(start, end));
      return true;
    });
    return bodies;
  }

  /** Joins what is buffered into one chunk (only when a header or frame spans chunks). */
  private merge(): Buffer {
    this.chunks[0] = (this.chunks[0] as Buffer).subarray(this.offset);
    this.offset = 0;
    const merged = Buffer.concat(this.chunks, this.bufferedBytes);
    this.chunks = [merged];
    return merged;
  }
}
