/**
 * @module Hybrid logical clock (Kulkarni, Demirbas, Madappa, Avva, Leone 2014, "Logical
 * Physical Clocks", OPODIS 2014; the HLC algorithm of its Section 3). A timestamp is `(l, c)` =
 * `(wallMs, logical)`: `l` is the largest physical time this process has heard of, `c` counts events
 * that share that `l`. It gives the Lamport guarantee (e happened before f implies
 * `hlc(e) < hlc(f)`) while staying within the clock-sync bound ε of physical time
 * (`l - pt ≤ ε`), so timestamps can stand in for wall-clock time in logs, leases and MVCC.
 *
 * Brigade stamps every transport frame with one. A remote timestamp further ahead of our
 * physical clock than `maxOffsetMs` is refused: accepting it would drag `l`, and through
 * every later message the whole cluster's `l`, away from real time for good.
 *
 * Pure: physical time is the injected `physicalNowMs`; no I/O, no timers, no randomness.
 */
import { assert } from "../lib/assert.js";
import { BrigadeError } from "../lib/errors.js";

export interface HlcTimestamp {
  /** `l` in the paper: the largest physical time (ms) heard of, directly or through messages. */
  readonly wallMs: number;
  /** `c` in the paper: orders events with the same `wallMs`; resets to 0 when `wallMs` moves. */
  readonly logical: number;
}

/**
 * Largest `logical` value. The paper bounds `c` by the events that happen within ε at the
 * same `l` (`c ≤ N·(ε+1)` when physical clocks tick between events), so honest clusters stay
 * far below it; it exists so that a peer sending a huge counter cannot push ours past the
 * range where `+ 1` is exact. 2^32 - 1 also fits a uint32 wire field. When a counter would
 * pass it, the clock carries into `wallMs` instead (see `HybridLogicalClock`).
 */
export const hlcLogicalMax = 0xffff_ffff;

/** Total order: by `wallMs`, then by `logical`. */
export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): -1 | 0 | 1 {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
}

export interface HlcOptions {
  /**
   * The process's physical clock in milliseconds (e.g. `Date.now` in the driver, a simulated
   * clock in tests). Fractions are floored. It may jump backwards; timestamps stay monotonic.
   */
  readonly physicalNowMs: () => number;
  /** Largest amount a remote timestamp may be ahead of our physical clock. */
  readonly maxOffsetMs: number;
}

/**
 * A hybrid logical clock for one process.
 *
 * **When to use**: stamp every send and local event with `now()`, and pass the timestamp of
 * every received message to `update()` before acting on it.
 *
 * **Gotchas**:
 * - `update` throws `ClockOffsetExceeded` (not retriable) for a remote timestamp more than
 *   `maxOffsetMs` ahead of our physical clock, and leaves the clock unchanged: drop that
 *   message; retrying will not help until the clocks are re-synchronised. Set `maxOffsetMs` to
 *   at least the real clock-sync error, or healthy peers get refused.
 * - State is in memory. After a restart monotonicity relies on the physical clock having
 *   passed the last timestamp issued, as in the paper.
 * - `peek()` before the first event is `{ wallMs: 0, logical: 0 }`.
 * - If `logical` would pass `hlcLogicalMax` (only a faulty or hostile peer gets there), the
 *   clock moves `wallMs` on by 1 ms and restarts `logical` at 0, keeping every guarantee but
 *   the ε bound, which it exceeds by that 1 ms.
 *
 * **Example**
 * ```ts
 * const hlc = new HybridLogicalClock({ physicalNowMs: () => Date.now(), maxOffsetMs: 500 });
 * const stamp = hlc.now();          // attach to an outgoing frame
 * hlc.update(frame.hlc);            // on receipt, before handling the frame
 * ```
 */
export class HybridLogicalClock {
  readonly #physicalNowMs: () => number;
  readonly #maxOffsetMs: number;
  // Timestamps are readonly by type; not frozen, because freezing costs on every frame.
  #last: HlcTimestamp = { wallMs: 0, logical: 0 };
  #rejectedCount = 0;

  constructor(options: HlcOptions) {
    if (typeof options.physicalNowMs !== "function") {
      throw new BrigadeError("InvalidConfig", "HLC physicalNowMs must be a function", {
        retriable: false,
      });
    }
    if (!Number.isFinite(options.maxOffsetMs) || options.maxOffsetMs < 0) {
      throw new BrigadeError(
        "InvalidConfig",
        `HLC maxOffsetMs must be a finite number >= 0, got ${String(options.maxOffsetMs)}`,
        { retriable: false },
      );
    }
    this.#physicalNowMs = options.physicalNowMs;
    this.#maxOffsetMs = options.maxOffsetMs;
  }

  /** Local or send event: returns a new timestamp strictly greater than every earlier one. */
  now(): HlcTimestamp {
    const physicalMs = this.#readPhysicalMs();
    const previous = this.#last;
    // Paper, send or local event: l := max(l', pt); c := (l = l') ? c + 1 : 0.
    if (physicalMs > previous.wallMs) return this.#advance(physicalMs, 0);
    return this.#advance(previous.wallMs, previous.logical + 1);
  }

  /**
   * Receive event. Throws BrigadeError code "ClockOffsetExceeded" (not retriable) WITHOUT
   * changing state if remote.wallMs > physicalNowMs() + maxOffsetMs, and "InvalidArgument" if
   * `remote` is not a pair of safe non-negative integers with `logical <= hlcLogicalMax`.
   * Otherwise returns the new timestamp, strictly greater than both the previous local
   * timestamp and `remote`.
   */
  update(remote: HlcTimestamp): HlcTimestamp {
    validateRemote(remote);
    const physicalMs = this.#readPhysicalMs();
    if (remote.wallMs > physicalMs + this.#maxOffsetMs) {
      this.#rejectedCount += 1;
      throw new BrigadeError(
        "ClockOffsetExceeded",
        `remote HLC wall time ${remote.wallMs} ms is ${remote.wallMs - physicalMs} ms ahead of ` +
          `the local physical clock (${physicalMs} ms); at most ${this.#maxOffsetMs} ms is allowed`,
        { retriable: false },
      );
    }
    const previous = this.#last;
    // Paper, receive event m: l := max(l', l.m, pt), then c from whichever terms supplied l.
    const wallMs = Math.max(previous.wallMs, remote.wallMs, physicalMs);
    const fromLocal = wallMs === previous.wallMs;
    const fromRemote = wallMs === remote.wallMs;
    let logical: number;
    if (fromLocal && fromRemote) logical = Math.max(previous.logical, remote.logical) + 1;
    else if (fromLocal) logical = previous.logical + 1;
    else if (fromRemote) logical = remote.logical + 1;
    else logical = 0;
    const next = this.#advance(wallMs, logical);
    assert(compareHlc(next, remote) === 1, "HLC update must pass the remote timestamp");
    return next;
  }

  /** The last timestamp issued, without advancing. */
  peek(): HlcTimestamp {
    return this.#last;
  }

  /** How many remote timestamps were rejected for exceeding the offset (for metrics). */
  get rejectedCount(): number {
    return this.#rejectedCount;
  }

  #advance(wallMs: number, logical: number): HlcTimestamp {
    const carry = logical > hlcLogicalMax;
    const next: HlcTimestamp = {
      wallMs: carry ? wallMs + 1 : wallMs,
      logical: carry ? 0 : logical,
    };
    // Messages are built only on failure: this runs for every frame sent and received.
    if (!Number.isSafeInteger(next.wallMs)) assert(false, `HLC wall time overflow: ${next.wallMs}`);
    assert(compareHlc(next, this.#last) === 1, "HLC timestamps must strictly increase");
    this.#last = next;
    return next;
  }

  #readPhysicalMs(): number {
    const raw = this.#physicalNowMs();
    // A broken clock source is a bug in the driver, not an operating condition: crash.
    if (!(Number.isFinite(raw) && raw >= 0))
      assert(false, `physicalNowMs() returned ${String(raw)}`);
    const physicalMs = Math.floor(raw);
    if (!Number.isSafeInteger(physicalMs)) assert(false, `physicalNowMs() out of range: ${raw}`);
    return physicalMs;
  }
}

function validateRemote(remote: unknown): asserts remote is HlcTimestamp {
  // Runs for every frame received: plain type and range checks, the message built only on failure.
  const candidate = remote as { wallMs?: unknown; logical?: unknown } | null;
  const wallMs = typeof candidate === "object" && candidate !== null ? candidate.wallMs : undefined;
  const logical =
    typeof candidate === "object" && candidate !== null ? candidate.logical : undefined;
  if (
    typeof wallMs === "number" &&
    typeof logical === "number" &&
    wallMs >= 0 &&
    wallMs <= Number.MAX_SAFE_INTEGER &&
    Math.floor(wallMs) === wallMs &&
    logical >= 0 &&
    logical <= hlcLogicalMax &&
    Math.floor(logical) === logical
  ) {
    return;
  }
  throw new BrigadeError(
    "InvalidArgument",
    `malformed HLC timestamp: wallMs=${String(wallMs)} logical=${String(logical)}; ` +
      `both must be safe integers >= 0 and logical <= ${hlcLogicalMax}`,
    { retriable: false },
  );
}
