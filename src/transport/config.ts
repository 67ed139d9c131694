/** @module Transport limits and timings, each with its default and the reason for it. */

export interface TransportConfig {
  /** Largest frame body accepted or sent. 4 MiB leaves room for a 1 MiB value plus batching, and caps what a bad peer can make us buffer. */
  readonly frameBytesMax: number;
  /** Frames waiting for one peer (not yet handed to the socket) before `send` fails fast with QueueFull. */
  readonly sendQueueFramesMax: number;
  /** Bytes waiting for one peer, ours plus the socket's buffer, before `send` fails with QueueFull. 16 MiB ≈ 130 ms of a 1 Gbps link. */
  readonly sendQueueBytesMax: number;
  /** Frames written in one socket write at most: a bounded batch lets the peer start on it while we encode the next (measured best at 32, docs/benchmarks.md). */
  readonly coalesceFramesMax: number;
  /** Bytes written in one socket write at most; small caps cost CPU on large frames. */
  readonly coalesceBytesMax: number;
  /** Requests awaiting a response, across all peers, before `request` fails with QueueFull. */
  readonly pendingRequestsMax: number;
  /** Default deadline of a request when the caller gives none. */
  readonly requestTimeoutMs: number;
  /** A dial (TCP connect + handshake) that takes longer than this is abandoned and retried. */
  readonly connectTimeoutMs: number;
  /** First reconnect delay; doubles on every failure up to `reconnectDelayMsMax`, with full jitter. */
  readonly reconnectDelayMsMin: number;
  /** Cap on the reconnect delay, so a peer that comes back is found within this long. */
  readonly reconnectDelayMsMax: number;
  /** An idle connection sends a ping this often so the other side can tell it is alive. */
  readonly pingIntervalMs: number;
  /** A connection that has received nothing for this long is closed (half-open or black-holed). */
  readonly idleTimeoutMs: number;
}

export const transportDefaults: TransportConfig = Object.freeze({
  frameBytesMax: 4 * 1024 * 1024,
  sendQueueFramesMax: 65_536,
  sendQueueBytesMax: 16 * 1024 * 1024,
  coalesceFramesMax: 32,
  coalesceBytesMax: 256 * 1024,
  pendingRequestsMax: 65_536,
  requestTimeoutMs: 5_000,
  connectTimeoutMs: 3_000,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 2_000,
  pingIntervalMs: 500,
  idleTimeoutMs: 3_000,
});

/** Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export function reconnectDelayMs(
  config: TransportConfig,
  failures: number,
  random: () => number,
): number {
  const ceiling = Math.min(
    config.reconnectDelayMsMax,
    config.reconnectDelayMsMin * 2 ** Math.min(failures, 30),
  );
  return Math.max(config.reconnectDelayMsMin, Math.floor(random() * ceiling));
}
