/**
 * @module Lifeguard local health awareness (arXiv 1707.00788 §4.1, memberlist awareness.go):
 * a score that rises when this node sees signs that it is itself slow (missed acks, missed
 * nacks, having to refute a suspicion of itself) and falls with successful probes. Timeouts
 * are stretched by (score + 1), so a struggling node waits longer before accusing others.
 */
export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  /** Adds `delta` (positive: worse health), keeping the score within [0, max - 1]. */
  apply(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  get healthScore(): number {
    return this.score;
  }

  scale(timeoutMs: number): number {
    return timeoutMs * (this.score + 1);
  }
}
