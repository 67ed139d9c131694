/**
 * @module Fault injection on real traffic. Each node holds rules keyed by peer id; the
 * transport consults them for every application frame (requests, responses, one-way
 * messages, pings; not the handshake, which a partition refuses instead). These are the hooks
 * `brigade chaos` drives.
 *
 * Drop, delay and duplicate act on frames this node SENDS to the peer; set the rule on both
 * nodes for a symmetric fault. A partition blocks both directions at this node: frames to
 * and from the peer are discarded and new handshakes with it are refused, so connections
 * die by idle timeout exactly as behind a black-holing network.
 */
import { BrigadeError } from "../lib/errors.js";

export interface LinkFault {
  /** Probability (0..1) that a frame to the peer is silently dropped. */
  readonly dropRate: number;
  /** Fixed delay added to each frame to the peer. With jitter, frames may be reordered. */
  readonly delayMs: number;
  /** Uniform extra delay in [0, jitterMs]. */
  readonly jitterMs: number;
  /** Probability (0..1) that a frame to the peer is sent twice. */
  readonly duplicateRate: number;
  /** Block both directions with the peer. */
  readonly partitioned: boolean;
}

export const noFault: LinkFault = Object.freeze({
  dropRate: 0,
  delayMs: 0,
  jitterMs: 0,
  duplicateRate: 0,
  partitioned: false,
});

/** What to do with one outbound frame: how many copies, each after how long. */
export type FaultDecision =
  | { readonly copies: 0 }
  | { readonly copies: 1 | 2; readonly delayMs: number };

const deliverNow: FaultDecision = { copies: 1, delayMs: 0 };

export class FaultInjector {
  private readonly rules = new Map<string, LinkFault>();
  /** Frames this injector has discarded, for metrics and for tests that a fault acted. */
  droppedFrames = 0;
  duplicatedFrames = 0;
  delayedFrames = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /** Adds to (merges into) the rule for `peer`. */
  set(peer: string, fault: Partial<LinkFault>): LinkFault {
    const merged = { ...(this.rules.get(peer) ?? noFault), ...fault };
    validateLinkFault(merged);
    this.rules.set(peer, Object.freeze(merged));
    return merged;
  }

  /** Removes the rule for one peer, or every rule. */
  heal(peer?: string): void {
    if (peer === undefined) this.rules.clear();
    else this.rules.delete(peer);
  }

  list(): Record<string, LinkFault> {
    return Object.fromEntries(this.rules);
  }

  isPartitioned(peer: string): boolean {
    return this.rules.get(peer)?.partitioned ?? false;
  }

  onOutbound(peer: string): FaultDecision {
    const rule = this.rules.get(peer);
    if (rule === undefined) return deliverNow;
    if (rule.partitioned || (rule.dropRate > 0 && this.random() < rule.dropRate)) {
      this.droppedFrames++;
      return { copies: 0 };
    }
    const delayMs =
      rule.delayMs + (rule.jitterMs > 0 ? Math.floor(this.random() * (rule.jitterMs + 1)) : 0);
    if (delayMs > 0) this.delayedFrames++;
    if (rule.duplicateRate > 0 && this.random() < rule.duplicateRate) {
      this.duplicatedFrames++;
      return { copies: 2, delayMs };
    }
    return delayMs > 0 ? { copies: 1, delayMs } : deliverNow;
  }

  /** True when an inbound frame from `peer` must be discarded. */
  dropInbound(peer: string): boolean {
    if (!this.isPartitioned(peer)) return false;
    this.droppedFrames++;
    return true;
  }
}

function validateLinkFault(fault: LinkFault): void {
  const rate = (name: keyof LinkFault, value: number) => {
    if (!(value >= 0 && value <= 1)) {
      throw new BrigadeError("InvalidArgument", `${name} must be between 0 and 1, got ${value}`);
    }
  };
  const duration = (name: keyof LinkFault, value: number) => {
    if (!(Number.isFinite(value) && value >= 0 && value <= 600_000)) {
      throw new BrigadeError(
        "InvalidArgument",
        `${name} must be between 0 and 600000 ms, got ${value}`,
      );
    }
  };
  rate("dropRate", fault.dropRate);
  rate("duplicateRate", fault.duplicateRate);
  duration("delayMs", fault.delayMs);
  duration("jitterMs", fault.jitterMs);
  if (typeof fault.partitioned !== "boolean") {
    throw new BrigadeError("InvalidArgument", "partitioned must be true or false");
  }
}
