/**
 * @module The dissemination queue (memberlist's TransmitLimitedQueue): updates waiting to be
 * piggybacked, each sent at most `retransmitMult * ceil(log10(n + 1))` times, least-sent
 * first. A newer update about a member replaces the older one. Bounded: past the capacity
 * the most-transmitted updates are dropped (they have already spread furthest).
 */
import { type MemberUpdate, updateBytesEstimate } from "./messages.js";

interface Queued {
  readonly update: MemberUpdate;
  transmits: number;
  /** Insertion order: among equally-sent updates, newer ones go first. */
  readonly order: number;
}

export function retransmitLimit(retransmitMult: number, memberCount: number): number {
  return retransmitMult * Math.ceil(Math.log10(memberCount + 1));
}

export class BroadcastQueue {
  private readonly byMember = new Map<string, Queued>();
  private order = 0;
  dropped = 0;

  /**
   * @param capacity updates kept at most
   * @param protectedId updates about this member (the node itself: its refutations and its
   *   leave) are never the ones evicted
   */
  constructor(
    private readonly capacity: number,
    private readonly protectedId: string | null = null,
  ) {}

  get size(): number {
    return this.byMember.size;
  }

  enqueue(update: MemberUpdate): void {
    this.byMember.set(update.id, { update, transmits: 0, order: this.order++ });
    if (this.byMember.size > this.capacity) {
      let worst: Queued | null = null;
      for (const queued of this.byMember.values()) {
        if (queued.update.id === this.protectedId) continue;
        if (
          worst === null ||
          queued.transmits > worst.transmits ||
          (queued.transmits === worst.transmits && queued.order < worst.order)
        )
          worst = queued;
      }
      if (worst !== null) {
        this.byMember.delete(worst.update.id);
        this.dropped++;
      }
    }
  }

  /** Takes up to `countMax` updates within `bytesMax`, counting a transmission of each. */
  take(options: { countMax: number; bytesMax: number; limit: number }): MemberUpdate[] {
    if (this.byMember.size === 0) return [];
    const candidates = [...this.byMember.values()].sort(
      (a, b) => a.transmits - b.transmits || b.order - a.order,
    );
    const taken: MemberUpdate[] = [];
    let bytes = 0;
    for (const queued of candidates) {
      if (taken.length >= options.countMax) break;
      const size = updateBytesEstimate(queued.update);
      if (bytes + size > options.bytesMax) continue;
      bytes += size;
      taken.push(queued.update);
      queued.transmits++;
      if (queued.transmits >= options.limit) this.byMember.delete(queued.update.id);
    }
    return taken;
  }
}
