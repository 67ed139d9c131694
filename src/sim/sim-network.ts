/**
 * @module The simulated network: decides the fate of every packet (lost, delayed, duplicated,
 * blocked by a partition or a dropped link, or discarded because its target crashed) in
 * virtual time. It carries no payloads and owns no clock: the simulator asks `send` at the
 * moment a core sends, schedules each returned `Transit` at its `deliverAtMs`, and asks
 * `arrive` again at that moment, so faults that start while a packet is in flight still
 * apply to it.
 *
 * Fault model:
 * - latency: uniform integer in [latencyMsMin, latencyMsMax], plus, with probability
 *   latencyTailProbability, an exponential tail with mean latencyTailMsMean. Every copy draws
 *   its own latency, so two packets on the same link overtake each other whenever the range
 *   is wider than the gap between their sends: reordering comes from latency, not from a
 *   separate knob (with min == max and no tail, a link is FIFO);
 * - loss: each packet is dropped at send with lossProbability (loss bursts raise it for a while);
 * - duplication: with duplicationProbability a second, independently delayed copy is sent;
 * - partitions: a set of groups; a packet whose source and target are in different groups
 *   is dropped, both directions, at send and at arrival; `heal` removes them;
 * - link drops: one direction of one link can be cut (asymmetric faults);
 * - crashes: a packet in flight to a node that crashes is dropped, even if the node has
 *   restarted by the time it would arrive (it was addressed to the old process).
 * All randomness comes from the `Prng` given at construction.
 */

import type { NodeId } from "../core/sans-io.js";
import { assert } from "../lib/assert.js";
import type { Prng } from "../lib/prng.js";

export interface SimNetworkConfig {
  /** Smallest one-way latency. Default profile values are in `simNetworkProfiles`. */
  readonly latencyMsMin: number;
  /** Largest one-way latency before the tail; max - min is how much packets can overtake. */
  readonly latencyMsMax: number;
  /** Chance that a packet also gets an exponential extra delay (a slow path, a GC pause). */
  readonly latencyTailProbability: number;
  /** Mean of that extra delay. */
  readonly latencyTailMsMean: number;
  /** Chance that a packet is dropped. */
  readonly lossProbability: number;
  /** Chance that a packet is delivered twice. */
  readonly duplicationProbability: number;
}

/** Named profiles; a swarm run draws its own values instead (see `sim/broadcast/scenario.ts`). */
export const simNetworkProfiles = {
  /** No faults and a fixed latency: a FIFO, lossless network, for scenario tests. */
  ideal: {
    latencyMsMin: 1,
    latencyMsMax: 1,
    latencyTailProbability: 0,
    latencyTailMsMean: 0,
    lossProbability: 0,
    duplicationProbability: 0,
  },
  /** A loopback-like LAN: sub-10 ms, rare slow packets, rare loss. */
  lan: {
    latencyMsMin: 1,
    latencyMsMax: 5,
    latencyTailProbability: 0.01,
    latencyTailMsMean: 20,
    lossProbability: 0.001,
    duplicationProbability: 0.001,
  },
  /** A bad day: wide jitter (lots of reordering), 10 % loss, 5 % duplicates. */
  flaky: {
    latencyMsMin: 1,
    latencyMsMax: 50,
    latencyTailProbability: 0.05,
    latencyTailMsMean: 200,
    lossProbability: 0.1,
    duplicationProbability: 0.05,
  },
} as const satisfies Record<string, SimNetworkConfig>;

export function validateSimNetworkConfig(config: SimNetworkConfig): void {
  assert(Number.isInteger(config.latencyMsMin) && config.latencyMsMin >= 0, "latencyMsMin");
  assert(
    Number.isInteger(config.latencyMsMax) && config.latencyMsMax >= config.latencyMsMin,
    "latencyMsMax must be an integer >= latencyMsMin",
  );
  assert(config.latencyTailMsMean >= 0, "latencyTailMsMean must be >= 0");
  for (const name of [
    "latencyTailProbability",
    "lossProbability",
    "duplicationProbability",
  ] as const) {
    assert(config[name] >= 0 && config[name] <= 1, `${name} must be in [0, 1]`);
  }
}

export type DropReason =
  | "loss"
  | "partition"
  | "link-down"
  | "target-down"
  | "target-crashed"
  | "unknown-target";

/** One copy of one packet on the wire. */
export interface Transit {
  readonly source: NodeId;
  readonly target: NodeId;
  readonly sentAtMs: number;
  readonly deliverAtMs: number;
  /** 0 for the original, 1 for a duplicate. */
  readonly copy: number;
  /** The target's crash count at send: a crash in between makes the packet undeliverable. */
  readonly targetEpoch: number;
}

export type SendVerdict =
  | { readonly kind: "dropped"; readonly reason: DropReason }
  | { readonly kind: "in-flight"; readonly transits: readonly Transit[] };

export interface SimNetworkStats {
  sent: number;
  delivered: number;
  duplicated: number;
  dropped: Record<DropReason, number>;
}

export class SimNetwork {
  readonly #prng: Prng;
  readonly #baseConfig: SimNetworkConfig;
  #lossProbability: number;
  readonly #nodeIds: ReadonlySet<NodeId>;
  /** Partition group index per node; empty when the network is whole. */
  #groupOf = new Map<NodeId, number>();
  readonly #droppedLinks = new Set<string>();
  readonly #down = new Set<NodeId>();
  readonly #epochs = new Map<NodeId, number>();
  readonly stats: SimNetworkStats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    dropped: {
      loss: 0,
      partition: 0,
      "link-down": 0,
      "target-down": 0,
      "target-crashed": 0,
      "unknown-target": 0,
    },
  };

  constructor(options: {
    readonly nodeIds: readonly NodeId[];
    readonly prng: Prng;
    readonly config: SimNetworkConfig;
  }) {
    validateSimNetworkConfig(options.config);
    this.#nodeIds = new Set(options.nodeIds);
    assert(this.#nodeIds.size === options.nodeIds.length, "node ids must be unique");
    this.#prng = options.prng;
    this.#baseConfig = options.config;
    this.#lossProbability = options.config.lossProbability;
    for (const nodeId of options.nodeIds) this.#epochs.set(nodeId, 0);
  }

  get config(): SimNetworkConfig {
    return { ...this.#baseConfig, lossProbability: this.#lossProbability };
  }

  /** Decides the fate of a packet sent now; each returned transit is one copy to deliver. */
  send(source: NodeId, target: NodeId, nowMs: number): SendVerdict {
    this.stats.sent++;
    const blocked = this.#blocked(source, target);
    if (blocked !== null) return this.#drop(blocked);
    if (this.#prng.chance(this.#lossProbability)) return this.#drop("loss");
    const copies = this.#prng.chance(this.#baseConfig.duplicationProbability) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const transits: Transit[] = [];
    for (let copy = 0; copy < copies; copy++) {
      transits.push({
        source,
        target,
        sentAtMs: nowMs,
        deliverAtMs: nowMs + this.#latencyMs(),
        copy,
        targetEpoch: this.#epochs.get(target)!,
      });
    }
    return { kind: "in-flight", transits };
  }

  /** Checks a transit again at its delivery time: null means deliver it, else why it is dropped. */
  arrive(transit: Transit): DropReason | null {
    if (this.#epochs.get(transit.target) !== transit.targetEpoch) {
      this.stats.dropped["target-crashed"]++;
      return "target-crashed";
    }
    const blocked = this.#blocked(transit.source, transit.target);
    if (blocked !== null) {
      this.stats.dropped[blocked]++;
      return blocked;
    }
    this.stats.delivered++;
    return null;
  }

  /**
   * Splits the nodes into groups that cannot talk to each other. Every node must be in exactly
   * one group. Replaces any earlier partition.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((group, index) => {
      for (const nodeId of group) {
        assert(this.#nodeIds.has(nodeId), `partition: unknown node ${nodeId}`);
        assert(!groupOf.has(nodeId), `partition: ${nodeId} is in two groups`);
        groupOf.set(nodeId, index);
      }
    });
    assert(groupOf.size === this.#nodeIds.size, "partition: every node must be in a group");
    this.#groupOf = groupOf;
  }

  heal(): void {
    this.#groupOf = new Map();
  }

  isPartitioned(source: NodeId, target: NodeId): boolean {
    const sourceGroup = this.#groupOf.get(source);
    return sourceGroup !== undefined && sourceGroup !== this.#groupOf.get(target);
  }

  /** Cuts (or restores) one direction of one link. */
  setLinkDropped(source: NodeId, target: NodeId, dropped: boolean): void {
    assert(this.#nodeIds.has(source) && this.#nodeIds.has(target), "setLinkDropped: unknown node");
    if (dropped) this.#droppedLinks.add(`${source}>${target}`);
    else this.#droppedLinks.delete(`${source}>${target}`);
  }

  clearLinkDrops(): void {
    this.#droppedLinks.clear();
  }

  /** Overrides the loss probability (a loss burst); `restoreLossProbability` undoes it. */
  setLossProbability(probability: number): void {
    assert(probability >= 0 && probability <= 1, "loss probability must be in [0, 1]");
    this.#lossProbability = probability;
  }

  restoreLossProbability(): void {
    this.#lossProbability = this.#baseConfig.lossProbability;
  }

  /** The node crashed: drop what is in flight to it and everything sent to it while down. */
  nodeDown(nodeId: NodeId): void {
    assert(this.#nodeIds.has(nodeId), `unknown node ${nodeId}`);
    this.#down.add(nodeId);
    this.#epochs.set(nodeId, this.#epochs.get(nodeId)! + 1);
  }

  nodeUp(nodeId: NodeId): void {
    assert(this.#down.delete(nodeId), `nodeUp(${nodeId}): node was not down`);
  }

  #blocked(source: NodeId, target: NodeId): DropReason | null {
    if (!this.#nodeIds.has(target)) return "unknown-target";
    if (this.#down.has(target)) return "target-down";
    if (this.isPartitioned(source, target)) return "partition";
    if (this.#droppedLinks.has(`${source}>${target}`)) return "link-down";
    return null;
  }

  #drop(reason: DropReason): SendVerdict {
    this.stats.dropped[reason]++;
    return { kind: "dropped", reason };
  }

  #latencyMs(): number {
    const config = this.#baseConfig;
    let latencyMs = this.#prng.intInclusive(config.latencyMsMin, config.latencyMsMax);
    if (this.#prng.chance(config.latencyTailProbability)) {
      // Inverse-CDF sampling of an exponential distribution; rounded to keep time integral.
      latencyMs += Math.round(-Math.log(1 - this.#prng.float()) * config.latencyTailMsMean);
    }
    return latencyMs;
  }
}
