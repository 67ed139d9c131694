/**
 * @module Suspicion timeouts (Lifeguard, arXiv 1707.00788 §4.2, as memberlist suspicion.go):
 * a suspicion starts at a maximum timeout and shrinks toward a minimum as independent members
 * confirm it, logarithmically in the number of confirmations. Pure math, table-tested.
 */

/** Minimum suspicion: suspicionMult * max(1, log10(n)) * probeInterval (memberlist util.go suspicionTimeout). */
export function suspicionTimeoutMinMs(
  suspicionMult: number,
  memberCount: number,
  probeIntervalMs: number,
): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, memberCount)));
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs);
}

/**
 * The timeout after `confirmations` of `confirmationsExpected`:
 * max - (max - min) * log(c + 1) / log(k + 1), never below min (memberlist suspicion.go remainingSuspicionTime).
 */
export function suspicionTimeoutMs(options: {
  readonly confirmations: number;
  readonly confirmationsExpected: number;
  readonly minMs: number;
  readonly maxMs: number;
}): number {
  const { confirmations, confirmationsExpected, minMs, maxMs } = options;
  if (confirmationsExpected < 1) return minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(confirmationsExpected + 1);
  const raw = Math.floor(maxMs - fraction * (maxMs - minMs));
  return Math.max(minMs, raw);
}

/** One member under suspicion: when it started and who has independently confirmed it. */
export class Suspicion {
  private readonly confirmedBy = new Set<string>();

  constructor(
    readonly startedMs: number,
    /** Whoever raised the suspicion we first heard; its own confirmation does not count twice. */
    readonly raisedBy: string,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly confirmationsExpected: number,
  ) {}

  get confirmations(): number {
    return this.confirmedBy.size;
  }

  /** Records an independent confirmation; true if it was new (and so worth re-gossiping). */
  confirm(from: string): boolean {
    if (from === this.raisedBy || this.confirmedBy.has(from)) return false;
    if (this.confirmedBy.size >= this.confirmationsExpected) return false;
    this.confirmedBy.add(from);
    return true;
  }

  deadlineMs(): number {
    return (
      this.startedMs +
      suspicionTimeoutMs({
        confirmations: this.confirmedBy.size,
        confirmationsExpected: this.confirmationsExpected,
        minMs: this.minMs,
        maxMs: this.maxMs,
      })
    );
  }
}
