/**
 * @module One seeded simulation of the reliable broadcast protocol, in swarm style: the seed
 * draws the cluster, network, disk, nemesis and workload options; the run has a fault phase
 * (nemesis on, clients broadcasting) and a heal phase (no faults, base loss only) in which
 * liveness must be reached within a bound; a checker judges what the clients observed.
 *
 * Properties checked (over every event of every incarnation, see `EventRecord`):
 * - integrity: no node reports `delivered` twice for one id (across crashes and restarts);
 * - no creation: a delivered id was broadcast by its origin, with the same payload;
 * - validity: every `accepted` broadcast is delivered on every node;
 * - agreement: a broadcast delivered anywhere is delivered everywhere;
 * - liveness: after the heal, all of the above, and every origin's resend queue empty,
 *   within `livenessBoundMs` of virtual time;
 * - every core's `checkInvariants()` after every step (the simulator calls it).
 */

import {
  type BroadcastEvent,
  type BroadcastMessage,
  type ReliableBroadcast,
  type ReliableBroadcastConfig,
  type ReliableBroadcastDefect,
  reliableBroadcastDefaults,
  reliableBroadcastFactory,
} from "../../core/broadcast/reliable-broadcast.js";
import type { NodeId } from "../../core/sans-io.js";
import { AssertionError, assertNever } from "../../lib/assert.js";
import { type Prng, prngFromSeed } from "../../lib/prng.js";
import { Nemesis, type NemesisConfig } from "../nemesis.js";
import type { SimDiskConfig } from "../sim-disk.js";
import type { SimNetworkConfig } from "../sim-network.js";
import { type EventRecord, Simulator } from "../simulator.js";

export interface BroadcastScenarioOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly tickIntervalMs: number;
  readonly network: SimNetworkConfig;
  readonly disk: SimDiskConfig;
  readonly nemesis: NemesisConfig;
  readonly protocol: ReliableBroadcastConfig;
  /** Virtual time with faults and client broadcasts. */
  readonly faultPhaseMs: number;
  /** After the heal, everything must be delivered (and acked) within this much virtual time. */
  readonly livenessBoundMs: number;
  readonly broadcastCount: number;
  readonly payloadBytesMax: number;
}

export interface BroadcastScenarioOverrides {
  /** Run a deliberately broken protocol variant (to prove the checker catches it). */
  readonly defect?: ReliableBroadcastDefect;
  /** Keep the trace lines (the digest is always computed). Default true. */
  readonly keepTrace?: boolean;
}

export interface BroadcastScenarioResult {
  readonly options: BroadcastScenarioOptions;
  /** Empty when every property held. */
  readonly failures: readonly string[];
  readonly trace: readonly string[];
  readonly digest: string;
  readonly summary: {
    readonly started: number;
    readonly accepted: number;
    readonly deliveries: number;
    readonly crashes: number;
    readonly steps: number;
    readonly endMs: number;
    readonly healedAtMs: number;
    readonly livenessMs: number | null;
  };
}

/** Draws every option from the seed (swarm testing: each run enables a different fault mix). */
export function drawBroadcastScenario(
  seed: number,
  prng: Prng,
  overrides: BroadcastScenarioOverrides = {},
): BroadcastScenarioOptions {
  const nodeCount = prng.intInclusive(3, 7);
  const latencyMsMin = prng.intInclusive(1, 5);
  const network: SimNetworkConfig = {
    latencyMsMin,
    latencyMsMax: latencyMsMin + prng.pick([0, 5, 20, 60]),
    latencyTailProbability: prng.pick([0, 0.01, 0.05, 0.2]),
    latencyTailMsMean: prng.pick([20, 100, 300]),
    lossProbability: prng.pick([0, 0.01, 0.05, 0.1, 0.2, 0.3]),
    duplicationProbability: prng.pick([0, 0.01, 0.05, 0.2]),
  };
  const disk: SimDiskConfig = { tornWriteProbability: prng.pick([0, 0.5, 1]) };
  // Each fault kind is on with probability 3/4, so some runs isolate one kind of trouble.
  const weight = () => (prng.chance(0.75) ? 1 : 0);
  const nemesis: NemesisConfig = {
    faultIntervalMsMean: prng.pick([100, 300, 1_000]),
    weights: { partition: weight(), crash: weight(), lossBurst: weight(), linkDrop: weight() },
    crashDuringWriteProbability: prng.pick([0, 0.3, 0.7]),
    faultMsMin: 20,
    faultMsMax: prng.pick([300, 1_000, 3_000]),
    lossBurstProbability: prng.pick([0.5, 0.9, 1]),
    nodesDownMax: nodeCount,
  };
  const protocol: ReliableBroadcastConfig = {
    ...reliableBroadcastDefaults,
    retransmitIntervalMs: prng.pick([20, 50, 100, 200]),
    defect: overrides.defect ?? "none",
  };
  return {
    seed,
    nodeCount,
    tickIntervalMs: 10,
    network,
    disk,
    nemesis,
    protocol,
    faultPhaseMs: 5_000,
    // Worst drawn case: 30 % loss on Data and on Ack, 200 ms resends: a round succeeds with
    // p >= 0.49, so 10 s (50 rounds) leaves ~1e-15 chance of a false liveness failure per pair.
    livenessBoundMs: 10_000,
    broadcastCount: prng.intInclusive(5, 40),
    payloadBytesMax: 32,
  };
}

export function describeBroadcastScenario(options: BroadcastScenarioOptions): string {
  const { network, nemesis } = options;
  const kinds = Object.entries(nemesis.weights)
    .filter(([, weight]) => weight > 0)
    .map(([kind]) => kind);
  return [
    `seed=${options.seed}`,
    `nodes=${options.nodeCount}`,
    `latency=${network.latencyMsMin}..${network.latencyMsMax}ms`,
    `tail=${network.latencyTailProbability}@${network.latencyTailMsMean}ms`,
    `loss=${network.lossProbability}`,
    `dup=${network.duplicationProbability}`,
    `torn=${options.disk.tornWriteProbability}`,
    `faults=[${kinds.join(",")}]/${nemesis.faultIntervalMsMean}ms`,
    `fault-duration<=${nemesis.faultMsMax}ms`,
    `crash-during-write=${nemesis.crashDuringWriteProbability}`,
    `burst-loss=${nemesis.lossBurstProbability}`,
    `resend=${options.protocol.retransmitIntervalMs}ms`,
    `broadcasts=${options.broadcastCount}`,
    ...(options.protocol.defect === "none" ? [] : [`defect=${options.protocol.defect}`]),
  ].join(" ");
}

interface StartedBroadcast {
  readonly origin: NodeId;
  readonly payload: Uint8Array;
}

/** Tracks what clients observed and judges it; fed by the simulator's `onEvent`. */
class BroadcastChecker {
  readonly failures: string[] = [];
  readonly started = new Map<string, StartedBroadcast>();
  readonly accepted = new Set<string>();
  /** id → node → time of its (first) delivery. */
  readonly deliveredAt = new Map<string, Map<NodeId, number>>();
  /** Ids accepted or delivered somewhere but not yet delivered on every node. */
  readonly incomplete = new Set<string>();
  deliveries = 0;
  readonly #nodeIds: readonly NodeId[];

  constructor(nodeIds: readonly NodeId[]) {
    this.#nodeIds = nodeIds;
  }

  onEvent(record: EventRecord<BroadcastEvent>): void {
    const { event, nodeId, atMs } = record;
    switch (event.type) {
      case "accepted": {
        const started = this.started.get(event.id);
        if (started === undefined || started.origin !== nodeId) {
          this.#fail(`no creation: ${nodeId} accepted ${event.id}, which it never broadcast`);
        }
        this.accepted.add(event.id);
        this.#updateIncomplete(event.id);
        return;
      }
      case "delivered": {
        this.deliveries++;
        const started = this.started.get(event.id);
        if (started === undefined) {
          this.#fail(`no creation: ${nodeId} delivered ${event.id}, never broadcast`);
        } else if (started.origin !== event.origin || !sameBytes(started.payload, event.payload)) {
          this.#fail(
            `no creation: ${nodeId} delivered ${event.id} with a different origin or payload`,
          );
        }
        let byNode = this.deliveredAt.get(event.id);
        if (byNode === undefined) {
          byNode = new Map();
          this.deliveredAt.set(event.id, byNode);
        }
        const earlierMs = byNode.get(nodeId);
        if (earlierMs !== undefined) {
          this.#fail(
            `integrity: ${nodeId} delivered ${event.id} twice (at ${earlierMs} ms and ${atMs} ms,` +
              ` incarnation ${record.incarnation})`,
          );
        } else {
          byNode.set(nodeId, atMs);
        }
        this.#updateIncomplete(event.id);
        return;
      }
      case "completed":
      case "recovered":
        return;
    }
  }

  /** Validity and agreement at the end of the run. */
  checkFinal(): void {
    for (const id of [...this.accepted].sort()) {
      const missing = this.#missing(id);
      if (missing.length > 0) {
        this.#fail(`validity: accepted ${id} never delivered on ${missing.join(",")}`);
      }
    }
    for (const [id, byNode] of this.deliveredAt) {
      const missing = this.#missing(id);
      if (missing.length > 0) {
        this.#fail(
          `agreement: ${id} delivered on ${[...byNode.keys()].join(",")} but not on ${missing.join(",")}`,
        );
      }
    }
  }

  #missing(id: string): NodeId[] {
    const byNode = this.deliveredAt.get(id);
    return this.#nodeIds.filter((nodeId) => !byNode?.has(nodeId));
  }

  #updateIncomplete(id: string): void {
    if (this.#missing(id).length === 0) this.incomplete.delete(id);
    else this.incomplete.add(id);
  }

  #fail(message: string): void {
    if (this.failures.length < 20) this.failures.push(message);
  }
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  return left.length === right.length && left.every((byte, index) => byte === right[index]);
}

/** Runs one seed end to end and judges it. Never throws for a protocol bug: it reports it. */
export function runBroadcastScenario(
  seed: number,
  overrides: BroadcastScenarioOverrides = {},
): BroadcastScenarioResult {
  const root = prngFromSeed(seed);
  const options = drawBroadcastScenario(seed, root.fork(), overrides);
  const nodeIds = Array.from({ length: options.nodeCount }, (_, index) => `n${index + 1}`);
  const checker = new BroadcastChecker(nodeIds);
  const simulator = new Simulator<BroadcastMessage, BroadcastEvent, ReliableBroadcast>({
    prng: root.fork(),
    nodeIds,
    factory: reliableBroadcastFactory(options.protocol),
    tickIntervalMs: options.tickIntervalMs,
    network: options.network,
    disk: options.disk,
    describeMessage: describeBroadcastMessage,
    onEvent: (record) => checker.onEvent(record),
    keepTrace: overrides.keepTrace ?? true,
  });
  const workloadPrng = simulator.forkPrng();
  const nemesis = new Nemesis(simulator, simulator.forkPrng(), options.nemesis);

  // Workload: clients broadcast at random times from random nodes during the fault phase.
  for (let index = 0; index < options.broadcastCount; index++) {
    const atMs = workloadPrng.int(options.faultPhaseMs);
    const origin = workloadPrng.pick(nodeIds);
    const payload = new Uint8Array(workloadPrng.intInclusive(0, options.payloadBytesMax));
    for (let byte = 0; byte < payload.length; byte++) payload[byte] = workloadPrng.int(256);
    const id = `${origin}/${index}`;
    simulator.schedule(atMs, `client broadcast ${id}`, () => {
      if (!simulator.isUp(origin)) return; // the client's node is down: nothing started
      checker.started.set(id, { origin, payload });
      const result = simulator.withCore(
        origin,
        (core) => core.broadcast(id, payload),
        `input broadcast ${id} ${payload.length}B`,
      );
      if (!result.ok)
        checker.failures.push(`workload: broadcast ${id} refused: ${result.error.code}`);
    });
  }

  let livenessMs: number | null = null;
  const healedAtMs = options.faultPhaseMs;
  try {
    nemesis.runFaultPhase(options.faultPhaseMs);
    simulator.runUntil(healedAtMs);
    const quiescent = () =>
      checker.incomplete.size === 0 &&
      nodeIds.every((nodeId) => simulator.inspect(nodeId, (core) => core.pendingCount === 0));
    const live = simulator.runUntilCondition(quiescent, healedAtMs + options.livenessBoundMs);
    if (live) {
      livenessMs = simulator.nowMs - healedAtMs;
    } else {
      const pending = nodeIds
        .map((nodeId) => `${nodeId}:${simulator.inspect(nodeId, (core) => core.pendingCount)}`)
        .join(",");
      checker.failures.push(
        `liveness: ${options.livenessBoundMs} ms after the heal at ${healedAtMs} ms,` +
          ` ${checker.incomplete.size} broadcast(s) not delivered everywhere` +
          ` [${[...checker.incomplete].sort().slice(0, 10).join(",")}], pending resends [${pending}]`,
      );
    }
    checker.checkFinal();
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    checker.failures.push(`assertion at ${simulator.nowMs} ms: ${error.message}`);
  }

  return {
    options,
    failures: checker.failures,
    trace: simulator.trace,
    digest: simulator.traceDigest(),
    summary: {
      started: checker.started.size,
      accepted: checker.accepted.size,
      deliveries: checker.deliveries,
      crashes: simulator.crashes,
      steps: simulator.steps,
      endMs: simulator.nowMs,
      healedAtMs,
      livenessMs,
    },
  };
}

export function describeBroadcastMessage(message: BroadcastMessage): string {
  switch (message.type) {
    case "Data":
      return `Data ${message.id} ${message.payload.length}B`;
    case "Ack":
      return `Ack ${message.id}`;
    default:
      return assertNever(message);
  }
}
