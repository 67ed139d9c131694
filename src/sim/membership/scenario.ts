/**
 * @module Seeded simulations of the SWIM + Lifeguard membership core (`core/membership`), one
 * per named scenario, each a property the issue asks for:
 *
 * - `join`: every node boots knowing only the seed `n1`; all of them must see all N alive
 *   within `bounds.joinMs`;
 * - `crash`: after the join, one random node crashes; every live member must mark it `dead`
 *   within `bounds.failureMs`, and nobody else may be declared dead;
 * - `loss`: 5 % message loss and no fault for minutes of virtual time: no member may ever be
 *   declared dead (zero false positives);
 * - `slow`: one node is CPU-starved (`Simulator.setSlowdown`: its inbound messages wait in a
 *   backlog, its timers fire late); no healthy node may be declared dead by a healthy node;
 *   the slow node's suspicions are counted (compare `lifeguard: false`);
 * - `partition`: two random halves are cut apart; each side must mark every member of the
 *   other `dead` within `bounds.failureMs`, and after the heal everyone must see everyone
 *   alive again within `bounds.healMs`;
 * - `leave`: a random node leaves gracefully; every other member must see it `left` within
 *   `bounds.leaveMs`, and no one may ever mark it `dead`;
 * - `restart`: a crashed node, once declared dead everywhere, restarts from its disk (in the
 *   simulator an unsynced incarnation file does not survive) and must be seen alive by all
 *   within `bounds.joinMs`.
 *
 * Every run also checks each core's `checkInvariants()` after every step (the simulator calls
 * it) and, at the end, that the views rebuilt from the emitted events equal each live core's
 * `memberList()`. A run never throws for a protocol bug: it returns failures. One seed gives
 * one trace (digest), so `npm run sim:membership -- --seed S --scenario X` replays a failure.
 */

import { retransmitLimit } from "../../core/membership/broadcast-queue.js";
import { type MembershipConfig, membershipProfiles } from "../../core/membership/config.js";
import type {
  MemberRecord,
  MemberState,
  MembershipEvent,
  MembershipMessage,
  MemberUpdate,
} from "../../core/membership/messages.js";
import { suspicionTimeoutMinMs } from "../../core/membership/suspicion.js";
import { Swim } from "../../core/membership/swim.js";
import type { CoreContext, NodeId } from "../../core/sans-io.js";
import { AssertionError, assertNever } from "../../lib/assert.js";
import { type Prng, prngFromSeed } from "../../lib/prng.js";
import { type SimNetworkConfig, simNetworkProfiles } from "../sim-network.js";
import { type EventRecord, type NodeSlowdown, Simulator } from "../simulator.js";

export const membershipScenarioNames = [
  "join",
  "crash",
  "loss",
  "slow",
  "partition",
  "leave",
  "restart",
] as const;
export type MembershipScenarioName = (typeof membershipScenarioNames)[number];

/** A deliberately broken variant, to prove the checkers catch a real bug (off by default). */
export type MembershipDefect = "none" | "ignore-refutations";
export const membershipDefects: readonly MembershipDefect[] = ["none", "ignore-refutations"];

export interface MembershipScenarioOverrides {
  readonly nodeCount?: number;
  /** Lifeguard off: `awarenessMaxMultiplier: 1`, `suspicionMaxTimeoutMult: 1`. Default on. */
  readonly lifeguard?: boolean;
  readonly defect?: MembershipDefect;
  /** Length of the observed phase of `loss` and `slow` (virtual ms). */
  readonly runMs?: number;
  /** Override the slow node's slowdown. */
  readonly slowdown?: NodeSlowdown;
  /** Keep the trace lines (the digest is always computed). Default false: runs are long. */
  readonly keepTrace?: boolean;
}

export interface MembershipScenarioOptions {
  readonly scenario: MembershipScenarioName;
  readonly seed: number;
  readonly nodeCount: number;
  readonly tickIntervalMs: number;
  readonly network: SimNetworkConfig;
  readonly config: MembershipConfig;
  readonly lifeguard: boolean;
  readonly defect: MembershipDefect;
  readonly runMs: number;
  readonly slowdown: NodeSlowdown;
  /**
   * partition: how long the cut lasts after both sides declared each other dead. Even seeds
   * hold it past `gossipToTheDeadMs`, so the heal must come from reconnect push-pulls; odd
   * seeds heal at once, while members still gossip to the recently dead.
   */
  readonly partitionHoldMs: number;
  readonly bounds: MembershipBounds;
}

/**
 * Time bounds derived from the config and the cluster size (all virtual ms). Each is a
 * worst case with margin, not an expectation; the runner prints what was measured.
 */
export interface MembershipBounds {
  readonly periodMs: number;
  readonly suspicionMinMs: number;
  readonly suspicionMaxMs: number;
  /** How often an update is piggybacked by each member that learns it. */
  readonly retransmits: number;
  /**
   * Spreading one update by gossip: rounds reach `gossipNodes` members every
   * `gossipIntervalMs`, so about log_(1+gossipNodes)(n) rounds suffice without contention
   * (3 rounds for 64 nodes); we allow 5 probe periods (25 rounds at the LAN defaults).
   */
  readonly disseminationMs: number;
  /**
   * Gossip is probabilistic: each member sends an update `retransmits` times to random
   * members, so a given member misses it with probability about e^(-retransmits) (3e-4
   * at 32-64 nodes). The push-pull anti-entropy repairs that: the first one comes within
   * 2 push-pull intervals of boot (a random phase in [interval, 2·interval), as memberlist),
   * then one every interval (scaled up above 32 members); we allow one of them to be lost.
   * So: 3 scaled push-pull intervals.
   */
  readonly repairMs: number;
  /** Boot to full membership: 3 join retries, a dissemination, and the repair bound. */
  readonly joinMs: number;
  /**
   * Crash to `dead` at every live member: some member probes the crashed one within 10
   * periods (each period every live member probes one target of a shuffled round-robin, so
   * missing it for k periods has probability about e^-k), its probe fails by the end of that
   * period (Lifeguard may stretch it up to awarenessMaxMultiplier periods), the suspicion
   * expires after at most suspicionMaxMs (confirmations only shorten it), and the `dead`
   * update is disseminated.
   */
  readonly failureMs: number;
  /** Leave to `left` at every member: a dissemination, and the repair bound for stragglers. */
  readonly leaveMs: number;
  /**
   * Heal to full membership after a partition: each member sends a push-pull to a random
   * dead member every reconnectIntervalMs; each exchange makes both ends refute and learn
   * the other's refutations. Two reconnect rounds, one scaled push-pull interval and a
   * dissemination (LAN, 32 nodes: 2×10 s + 30 s + 5 s = 55 s).
   */
  readonly healMs: number;
}

export function membershipBounds(config: MembershipConfig, nodeCount: number): MembershipBounds {
  const periodMs = config.probeIntervalMs;
  const suspicionMinMs = suspicionTimeoutMinMs(config.suspicionMult, nodeCount, periodMs);
  const suspicionMaxMs = suspicionMinMs * config.suspicionMaxTimeoutMult;
  const disseminationMs = 5 * periodMs;
  // Swim's pushPullIntervalMs(): memberlist's pushPullScale.
  const pushPullScale = nodeCount <= 32 ? 1 : Math.ceil(Math.log2(nodeCount) - Math.log2(32)) + 1;
  const pushPullMs = config.pushPullIntervalMs * pushPullScale;
  const repairMs = 3 * pushPullMs;
  return {
    periodMs,
    suspicionMinMs,
    suspicionMaxMs,
    retransmits: retransmitLimit(config.retransmitMult, nodeCount),
    disseminationMs,
    repairMs,
    joinMs: 3 * config.joinRetryIntervalMs + disseminationMs + repairMs,
    failureMs:
      10 * periodMs + config.awarenessMaxMultiplier * periodMs + suspicionMaxMs + disseminationMs,
    leaveMs: disseminationMs + repairMs,
    healMs: 2 * config.reconnectIntervalMs + pushPullMs + disseminationMs,
  };
}

export interface MembershipScenarioResult {
  readonly options: MembershipScenarioOptions;
  /** Empty when every property held. */
  readonly failures: readonly string[];
  readonly digest: string;
  readonly trace: readonly string[];
  readonly summary: MembershipSummary;
}

export interface MembershipSummary {
  readonly steps: number;
  readonly endMs: number;
  /** Boot to every node seeing all N alive (null: never). */
  readonly joinedMs: number | null;
  /** The crashed / leaving / slowed node, or null. */
  readonly subject: NodeId | null;
  /** Fault to the first member marking the subject (or a partitioned peer) suspect or dead. */
  readonly firstDetectionMs: number | null;
  /** Fault to every live member marking it dead (left, for `leave`); partition: both sides. */
  readonly fullDetectionMs: number | null;
  /** Heal (partition) or restart to full membership again. */
  readonly recoveredMs: number | null;
  readonly suspectEvents: number;
  readonly deadEvents: number;
  /** `member-dead` about a healthy node, from a healthy observer. */
  readonly falsePositives: number;
  /** `stats.suspicionsRaised` of the slow node (slow scenario), else of all nodes. */
  readonly suspicionsRaised: number;
  /** `member-dead` events the slow node emitted about healthy nodes (slow scenario). */
  readonly deathsBySlowNode: number;
  /** `member-dead` events about the slow node (slow scenario). */
  readonly slowNodeDeclaredDead: number;
  readonly refutations: number;
  readonly messagesSent: number;
}

const scenarioDefaults: Record<
  MembershipScenarioName,
  { readonly nodeCount: number; readonly lossProbability: number; readonly runMs: number }
> = {
  join: { nodeCount: 64, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 10_000 },
  crash: { nodeCount: 32, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 0 },
  loss: { nodeCount: 32, lossProbability: 0.05, runMs: 180_000 },
  slow: { nodeCount: 32, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 120_000 },
  partition: { nodeCount: 32, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 0 },
  leave: { nodeCount: 32, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 0 },
  restart: { nodeCount: 16, lossProbability: simNetworkProfiles.lan.lossProbability, runMs: 0 },
};

/**
 * The default slow node: each inbound message waits 1.5 s (longer than a probe period, so
 * every ack it awaits looks missing) and its timers fire up to 200 ms late.
 */
export const defaultSlowdown: NodeSlowdown = { receiveDelayMs: 1_500, tickDelayMs: 200 };

/** The membership config of a run: the LAN profile, or it with Lifeguard's stretching off. */
export function scenarioConfig(lifeguard: boolean): MembershipConfig {
  const lan = membershipProfiles.lan;
  return lifeguard ? lan : { ...lan, awarenessMaxMultiplier: 1, suspicionMaxTimeoutMult: 1 };
}

export function membershipScenarioOptions(
  scenario: MembershipScenarioName,
  seed: number,
  overrides: MembershipScenarioOverrides = {},
): MembershipScenarioOptions {
  const defaults = scenarioDefaults[scenario];
  const nodeCount = overrides.nodeCount ?? defaults.nodeCount;
  const lifeguard = overrides.lifeguard ?? true;
  const config = scenarioConfig(lifeguard);
  return {
    scenario,
    seed,
    nodeCount,
    tickIntervalMs: 20,
    network: { ...simNetworkProfiles.lan, lossProbability: defaults.lossProbability },
    config,
    lifeguard,
    defect: overrides.defect ?? "none",
    runMs: overrides.runMs ?? defaults.runMs,
    slowdown: overrides.slowdown ?? defaultSlowdown,
    partitionHoldMs: seed % 2 === 0 ? config.gossipToTheDeadMs + 5 * config.probeIntervalMs : 0,
    bounds: membershipBounds(config, nodeCount),
  };
}

export function describeMembershipScenario(options: MembershipScenarioOptions): string {
  const { bounds } = options;
  return [
    `scenario=${options.scenario}`,
    `seed=${options.seed}`,
    `nodes=${options.nodeCount}`,
    `loss=${options.network.lossProbability}`,
    `lifeguard=${options.lifeguard ? "on" : "off"}`,
    ...(options.runMs > 0 ? [`run=${options.runMs / 1000}s`] : []),
    ...(options.scenario === "slow"
      ? [`slow=receive+${options.slowdown.receiveDelayMs}ms,tick+${options.slowdown.tickDelayMs}ms`]
      : []),
    ...(options.scenario === "partition" ? [`hold=${options.partitionHoldMs / 1000}s`] : []),
    ...(options.defect === "none" ? [] : [`defect=${options.defect}`]),
    `bounds: join<=${bounds.joinMs / 1000}s detect<=${bounds.failureMs / 1000}s` +
      ` leave<=${bounds.leaveMs / 1000}s heal<=${bounds.healMs / 1000}s` +
      ` suspicion=${bounds.suspicionMinMs / 1000}..${bounds.suspicionMaxMs / 1000}s`,
  ].join(" ");
}

/** A `Swim` that ignores refutations of members it suspects: suspicions then always kill. */
class IgnoreRefutationsSwim extends Swim {
  override receive(source: string, message: MembershipMessage): void {
    const suspected = (id: string) => this.member(id)?.state === "suspect";
    if (message.type === "push-pull") {
      const members = message.members.filter(
        (record) => !(record.state === "alive" && suspected(record.id)),
      );
      super.receive(source, { ...message, members });
    } else if (message.type !== "nack") {
      const updates = message.updates.filter(
        (update: MemberUpdate) => !(update.kind === "alive" && suspected(update.id)),
      );
      super.receive(source, { ...message, updates });
    } else {
      super.receive(source, message);
    }
  }
}

export function membershipFactory(
  config: MembershipConfig,
  seeds: readonly string[],
  defect: MembershipDefect = "none",
): (context: CoreContext) => Swim {
  return (context) => {
    const options = {
      nodeId: context.nodeId,
      address: context.nodeId,
      seeds,
      tags: {},
      config,
      prng: context.prng,
      nowMs: context.nowMs,
      recovered: context.recovered,
    };
    return defect === "ignore-refutations" ? new IgnoreRefutationsSwim(options) : new Swim(options);
  };
}

/**
 * Every node's view of the cluster rebuilt from the events it emitted (each event carries the
 * member's new record), plus the counters the scenarios assert on. Fed by `onEvent`.
 */
export class MembershipObserver {
  /** observer → member → state, for the observer's current incarnation. */
  readonly views = new Map<NodeId, Map<NodeId, MemberState>>();
  readonly #viewIncarnation = new Map<NodeId, number>();
  /** Bumped on every event: conditions are re-evaluated only when something changed. */
  version = 0;
  readonly records: EventRecord<MembershipEvent>[] = [];

  onEvent(record: EventRecord<MembershipEvent>): void {
    this.version++;
    this.records.push(record);
    let view = this.views.get(record.nodeId);
    if (view === undefined || this.#viewIncarnation.get(record.nodeId) !== record.incarnation) {
      view = new Map(); // a restarted node starts from nothing
      this.views.set(record.nodeId, view);
      this.#viewIncarnation.set(record.nodeId, record.incarnation);
    }
    view.set(record.event.member.id, record.event.member.state);
  }

  stateAt(observer: NodeId, member: NodeId): MemberState | undefined {
    return this.views.get(observer)?.get(member);
  }

  /** Each of `observers` sees each of `members` in `state`. */
  all(observers: readonly NodeId[], members: readonly NodeId[], state: MemberState): boolean {
    return observers.every((observer) => {
      const view = this.views.get(observer);
      return view !== undefined && members.every((member) => view.get(member) === state);
    });
  }

  /** Events matching `predicate` at or after `sinceMs`. */
  events(
    predicate: (record: EventRecord<MembershipEvent>) => boolean,
    sinceMs = 0,
  ): EventRecord<MembershipEvent>[] {
    return this.records.filter((record) => record.atMs >= sinceMs && predicate(record));
  }
}

/** A condition re-evaluated only when the observer saw a new event (steps are many). */
export function onChange(observer: MembershipObserver, condition: () => boolean): () => boolean {
  let seen = -1;
  let value = false;
  return () => {
    if (observer.version !== seen) {
      seen = observer.version;
      value = condition();
    }
    return value;
  };
}

export function describeMembershipMessage(message: MembershipMessage): string {
  switch (message.type) {
    case "ping":
      return `ping#${message.seq} ${message.target} ${describeUpdates(message.updates)}`;
    case "ping-req":
      return `ping-req#${message.seq} ${message.target} ${describeUpdates(message.updates)}`;
    case "ack":
      return `ack#${message.seq} ${describeUpdates(message.updates)}`;
    case "nack":
      return `nack#${message.seq}`;
    case "gossip":
      return `gossip ${describeUpdates(message.updates)}`;
    case "push-pull":
      return `push-pull${message.join ? " join" : ""}${message.response ? " response" : ""} ${message.members.length} members`;
    default:
      return assertNever(message);
  }
}

function describeUpdates(updates: readonly MemberUpdate[]): string {
  return `[${updates.map((update) => `${update.kind[0]}:${update.id}@${update.incarnation}`).join(" ")}]`;
}

export function describeMembershipEvent(event: MembershipEvent): string {
  const { member } = event;
  return `${event.type} ${member.id}@${member.incarnation} ${member.state}`;
}

/** The live cluster a scenario drives. */
class Run {
  readonly simulator: Simulator<MembershipMessage, MembershipEvent, Swim>;
  readonly observer = new MembershipObserver();
  readonly nodeIds: readonly NodeId[];
  readonly failures: string[] = [];
  readonly prng: Prng;
  joinedMs: number | null = null;

  constructor(
    readonly options: MembershipScenarioOptions,
    keepTrace: boolean,
  ) {
    const root = prngFromSeed(options.seed);
    this.nodeIds = Array.from({ length: options.nodeCount }, (_, index) => `n${index + 1}`);
    this.simulator = new Simulator({
      prng: root.fork(),
      nodeIds: this.nodeIds,
      factory: membershipFactory(options.config, ["n1"], options.defect),
      tickIntervalMs: options.tickIntervalMs,
      network: options.network,
      disk: { tornWriteProbability: 0.5 },
      describeMessage: describeMembershipMessage,
      describeEvent: describeMembershipEvent,
      onEvent: (record) => this.observer.onEvent(record),
      keepTrace,
      stepsMax: 50_000_000,
    });
    this.prng = this.simulator.forkPrng();
  }

  get nowMs(): number {
    return this.simulator.nowMs;
  }

  up(): NodeId[] {
    return this.nodeIds.filter((nodeId) => this.simulator.isUp(nodeId));
  }

  fail(message: string): void {
    if (this.failures.length < 20) this.failures.push(message);
  }

  /** Runs until `condition` holds; returns the elapsed virtual ms, or null at the deadline. */
  waitFor(condition: () => boolean, boundMs: number): number | null {
    const startMs = this.nowMs;
    const held = this.simulator.runUntilCondition(
      onChange(this.observer, condition),
      startMs + boundMs,
    );
    return held ? this.nowMs - startMs : null;
  }

  /** Boot phase: every node must see all N alive within the join bound. */
  join(): boolean {
    const all = this.nodeIds;
    this.joinedMs = this.waitFor(
      () => this.observer.all(all, all, "alive"),
      this.options.bounds.joinMs,
    );
    if (this.joinedMs === null) {
      const lagging = all.filter(
        (observer) => !all.every((member) => this.observer.stateAt(observer, member) === "alive"),
      );
      this.fail(
        `join: not every node sees all ${all.length} alive within ${this.options.bounds.joinMs} ms` +
          ` (lagging: ${lagging.slice(0, 8).join(",")}${lagging.length > 8 ? ",…" : ""})`,
      );
      return false;
    }
    return true;
  }

  /** The first `member-suspect` / `member-dead` about one of `members` since `sinceMs`. */
  firstDetectionMs(members: ReadonlySet<NodeId>, sinceMs: number): number | null {
    const first = this.observer.records.find(
      (record) =>
        record.atMs >= sinceMs &&
        members.has(record.event.member.id) &&
        (record.event.type === "member-suspect" || record.event.type === "member-dead"),
    );
    return first === undefined ? null : first.atMs - sinceMs;
  }

  /** Every `member-dead` about a node in `healthy` seen by an observer in `healthy`. */
  falsePositives(
    healthy: (nodeId: NodeId) => boolean,
    sinceMs = 0,
  ): EventRecord<MembershipEvent>[] {
    return this.observer.events(
      (record) =>
        record.event.type === "member-dead" &&
        healthy(record.nodeId) &&
        healthy(record.event.member.id),
      sinceMs,
    );
  }

  reportFalsePositives(records: readonly EventRecord<MembershipEvent>[]): void {
    for (const record of records.slice(0, 5)) {
      this.fail(
        `false positive: ${record.nodeId} declared healthy ${record.event.member.id} dead at ${record.atMs} ms` +
          ` (incarnation ${record.event.member.incarnation})`,
      );
    }
    if (records.length > 5) this.fail(`… ${records.length} false positives in all`);
  }

  /** The views rebuilt from events must equal what each live core reports. */
  checkViewsMatchCores(): void {
    for (const nodeId of this.up()) {
      const actual = this.simulator.inspect(nodeId, (core) => core.memberList());
      const view = this.observer.views.get(nodeId) ?? new Map<NodeId, MemberState>();
      const fromEvents = [...view].sort(([a], [b]) => (a < b ? -1 : 1));
      const fromCore = actual.map((record: MemberRecord) => [record.id, record.state]);
      if (JSON.stringify(fromEvents) !== JSON.stringify(fromCore)) {
        this.fail(
          `events vs state: ${nodeId}'s events say ${JSON.stringify(fromEvents)} but memberList() says ${JSON.stringify(fromCore)}`,
        );
        return;
      }
    }
  }

  statsOf(nodeIds: readonly NodeId[], pick: (core: Swim) => number): number {
    return nodeIds
      .filter((nodeId) => this.simulator.isUp(nodeId))
      .reduce((sum, nodeId) => sum + this.simulator.inspect(nodeId, pick), 0);
  }
}

interface Measured {
  subject: NodeId | null;
  firstDetectionMs: number | null;
  fullDetectionMs: number | null;
  recoveredMs: number | null;
  falsePositives: number;
  suspicionsRaised: number | null;
  deathsBySlowNode: number;
  slowNodeDeclaredDead: number;
}

/** Runs one scenario on one seed and judges it. Never throws for a protocol bug. */
export function runMembershipScenario(
  scenario: MembershipScenarioName,
  seed: number,
  overrides: MembershipScenarioOverrides = {},
): MembershipScenarioResult {
  const options = membershipScenarioOptions(scenario, seed, overrides);
  const run = new Run(options, overrides.keepTrace ?? false);
  const measured: Measured = {
    subject: null,
    firstDetectionMs: null,
    fullDetectionMs: null,
    recoveredMs: null,
    falsePositives: 0,
    suspicionsRaised: null,
    deathsBySlowNode: 0,
    slowNodeDeclaredDead: 0,
  };
  try {
    if (run.join()) {
      switch (scenario) {
        case "join":
          runJoin(run, measured);
          break;
        case "crash":
          runCrash(run, measured);
          break;
        case "loss":
          runLoss(run, measured);
          break;
        case "slow":
          runSlow(run, measured);
          break;
        case "partition":
          runPartition(run, measured);
          break;
        case "leave":
          runLeave(run, measured);
          break;
        case "restart":
          runRestart(run, measured);
          break;
        default:
          assertNever(scenario);
      }
    }
    run.checkViewsMatchCores();
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    run.fail(`assertion at ${run.nowMs} ms: ${error.message}`);
  }
  const records = run.observer.records;
  return {
    options,
    failures: run.failures,
    digest: run.simulator.traceDigest(),
    trace: run.simulator.trace,
    summary: {
      steps: run.simulator.steps,
      endMs: run.nowMs,
      joinedMs: run.joinedMs,
      subject: measured.subject,
      firstDetectionMs: measured.firstDetectionMs,
      fullDetectionMs: measured.fullDetectionMs,
      recoveredMs: measured.recoveredMs,
      suspectEvents: records.filter((record) => record.event.type === "member-suspect").length,
      deadEvents: records.filter((record) => record.event.type === "member-dead").length,
      falsePositives: measured.falsePositives,
      suspicionsRaised:
        measured.suspicionsRaised ??
        run.statsOf(run.nodeIds, (core) => core.stats.suspicionsRaised),
      deathsBySlowNode: measured.deathsBySlowNode,
      slowNodeDeclaredDead: measured.slowNodeDeclaredDead,
      refutations: run.statsOf(run.nodeIds, (core) => core.stats.refutations),
      messagesSent: run.simulator.networkStats.sent,
    },
  };
}

/** join: after convergence, a quiet while in which nobody may be suspected to death. */
function runJoin(run: Run, measured: Measured): void {
  const startMs = run.nowMs;
  run.simulator.runUntil(startMs + run.options.runMs);
  const falsePositives = run.falsePositives(() => true);
  measured.falsePositives = falsePositives.length;
  run.reportFalsePositives(falsePositives);
  if (!run.observer.all(run.nodeIds, run.nodeIds, "alive")) {
    run.fail("join: full membership did not last");
  }
}

/** Crashes `victim` at a random phase and waits until every live member marks it dead. */
function crashAndDetect(run: Run, measured: Measured, victim: NodeId): boolean {
  run.simulator.runUntil(run.nowMs + run.prng.int(run.options.bounds.periodMs));
  const crashedAtMs = run.nowMs;
  run.simulator.crash(victim);
  measured.subject = victim;
  const live = run.up();
  const boundMs = run.options.bounds.failureMs;
  measured.fullDetectionMs = run.waitFor(() => run.observer.all(live, [victim], "dead"), boundMs);
  measured.firstDetectionMs = run.firstDetectionMs(new Set([victim]), crashedAtMs);
  if (measured.fullDetectionMs === null) {
    const missing = live.filter((observer) => run.observer.stateAt(observer, victim) !== "dead");
    run.fail(
      `crash: ${victim} (crashed at ${crashedAtMs} ms) not dead at every live member within` +
        ` ${boundMs} ms; still ${missing
          .slice(0, 8)
          .map((observer) => `${observer}:${run.observer.stateAt(observer, victim)}`)
          .join(",")}`,
    );
    return false;
  }
  return true;
}

function runCrash(run: Run, measured: Measured): void {
  const victim = run.prng.pick(run.nodeIds);
  crashAndDetect(run, measured, victim);
  // A few more periods: nobody else may be taken down with it.
  run.simulator.runUntil(run.nowMs + 5 * run.options.bounds.periodMs);
  const falsePositives = run.falsePositives((nodeId) => nodeId !== victim);
  measured.falsePositives = falsePositives.length;
  run.reportFalsePositives(falsePositives);
}

function runLoss(run: Run, measured: Measured): void {
  run.simulator.runUntil(run.nowMs + run.options.runMs);
  const falsePositives = run.falsePositives(() => true);
  measured.falsePositives = falsePositives.length;
  run.reportFalsePositives(falsePositives);
}

function runSlow(run: Run, measured: Measured): void {
  const slow = run.prng.pick(run.nodeIds.slice(1)); // not the seed, so joins are unaffected
  measured.subject = slow;
  const startMs = run.nowMs;
  const raisedBefore = run.simulator.inspect(slow, (core) => core.stats.suspicionsRaised);
  run.simulator.setSlowdown(slow, run.options.slowdown);
  run.simulator.runUntil(startMs + run.options.runMs);
  measured.suspicionsRaised =
    run.simulator.inspect(slow, (core) => core.stats.suspicionsRaised) - raisedBefore;
  const healthy = (nodeId: NodeId) => nodeId !== slow;
  const falsePositives = run.falsePositives(healthy, startMs);
  measured.falsePositives = falsePositives.length;
  run.reportFalsePositives(falsePositives);
  measured.deathsBySlowNode = run.observer.events(
    (record) => record.nodeId === slow && record.event.type === "member-dead",
    startMs,
  ).length;
  measured.slowNodeDeclaredDead = run.observer.events(
    (record) => record.event.member.id === slow && record.event.type === "member-dead",
    startMs,
  ).length;
}

function runPartition(run: Run, measured: Measured): void {
  const shuffled = run.prng.shuffle([...run.nodeIds]);
  const cut = Math.floor(shuffled.length / 2);
  const sides = [shuffled.slice(0, cut).sort(), shuffled.slice(cut).sort()] as const;
  const [left, right] = sides;
  run.simulator.runUntil(run.nowMs + run.prng.int(run.options.bounds.periodMs));
  const cutAtMs = run.nowMs;
  run.simulator.partition(sides);
  const boundMs = run.options.bounds.failureMs;
  measured.fullDetectionMs = run.waitFor(
    () => run.observer.all(left, right, "dead") && run.observer.all(right, left, "dead"),
    boundMs,
  );
  measured.firstDetectionMs = run.firstDetectionMs(new Set(run.nodeIds), cutAtMs);
  if (measured.fullDetectionMs === null) {
    run.fail(`partition: the sides did not declare each other dead within ${boundMs} ms`);
    return;
  }
  const sideOf = new Map<NodeId, number>();
  for (const nodeId of left) sideOf.set(nodeId, 0);
  for (const nodeId of right) sideOf.set(nodeId, 1);
  run.simulator.runUntil(run.nowMs + run.options.partitionHoldMs);
  const sameSideDeaths = run.observer.events(
    (record) =>
      record.event.type === "member-dead" &&
      sideOf.get(record.nodeId) === sideOf.get(record.event.member.id),
    cutAtMs,
  );
  run.simulator.heal();
  const healBoundMs = run.options.bounds.healMs;
  measured.recoveredMs = run.waitFor(
    () => run.observer.all(run.nodeIds, run.nodeIds, "alive"),
    healBoundMs,
  );
  if (measured.recoveredMs === null) {
    const lagging = run.nodeIds.filter((observer) =>
      run.nodeIds.some((member) => run.observer.stateAt(observer, member) !== "alive"),
    );
    run.fail(
      `partition: full membership not restored within ${healBoundMs} ms of the heal` +
        ` (lagging: ${lagging.slice(0, 8).join(",")})`,
    );
  }
  // While cut, members of one side can always reach each other: a death there is false.
  // (After the heal the other side's `dead` claims do reach a member's own side and are
  // believed until the member refutes them: that transient is part of healing, not checked.)
  measured.falsePositives = sameSideDeaths.length;
  run.reportFalsePositives(sameSideDeaths);
}

function runLeave(run: Run, measured: Measured): void {
  const leaver = run.prng.pick(run.nodeIds);
  measured.subject = leaver;
  run.simulator.runUntil(run.nowMs + run.prng.int(run.options.bounds.periodMs));
  const leftAtMs = run.nowMs;
  run.simulator.withCore(leaver, (core) => core.leave(), "input leave");
  // The driver's part of a graceful leave: keep running until the announcement is out.
  const drained = run.simulator.runUntilCondition(
    () => run.simulator.inspect(leaver, (core) => core.pendingBroadcasts === 0),
    leftAtMs + run.options.bounds.disseminationMs,
  );
  if (!drained) run.fail(`leave: ${leaver} still has broadcasts pending after the deadline`);
  run.simulator.crash(leaver); // the process exits
  const others = run.up();
  const seen = run.waitFor(
    () => run.observer.all(others, [leaver], "left"),
    run.options.bounds.leaveMs,
  );
  measured.fullDetectionMs = seen === null ? null : run.nowMs - leftAtMs;
  if (measured.fullDetectionMs === null) {
    const missing = others.filter((observer) => run.observer.stateAt(observer, leaver) !== "left");
    run.fail(
      `leave: ${leaver} not seen as left by ${missing
        .slice(0, 8)
        .map((observer) => `${observer}:${run.observer.stateAt(observer, leaver)}`)
        .join(",")}`,
    );
  }
  run.simulator.runUntil(run.nowMs + run.options.bounds.suspicionMaxMs);
  const dead = run.observer.events((record) => record.event.type === "member-dead", leftAtMs);
  measured.falsePositives = dead.length;
  for (const record of dead.slice(0, 5)) {
    run.fail(
      `leave: ${record.nodeId} marked ${record.event.member.id} dead at ${record.atMs} ms` +
        ` (${record.event.member.id === leaver ? "the leaver: must be left" : "a healthy node"})`,
    );
  }
}

function runRestart(run: Run, measured: Measured): void {
  const victim = run.prng.pick(run.nodeIds);
  if (!crashAndDetect(run, measured, victim)) return;
  const deadIncarnation = Math.max(
    ...run.observer
      .events((record) => record.event.type === "member-dead" && record.event.member.id === victim)
      .map((record) => record.event.member.incarnation),
  );
  run.simulator.runUntil(run.nowMs + run.prng.int(run.options.bounds.periodMs));
  run.simulator.restart(victim);
  measured.recoveredMs = run.waitFor(
    () => run.observer.all(run.nodeIds, run.nodeIds, "alive"),
    run.options.bounds.joinMs,
  );
  if (measured.recoveredMs === null) {
    run.fail(`restart: ${victim} was not seen alive by all within ${run.options.bounds.joinMs} ms`);
    return;
  }
  const incarnation = run.simulator.inspect(victim, (core) => core.incarnation);
  if (incarnation <= deadIncarnation) {
    run.fail(
      `restart: ${victim} rejoined at incarnation ${incarnation}, not above the ${deadIncarnation} it died at`,
    );
  }
  const falsePositives = run.falsePositives((nodeId) => nodeId !== victim);
  measured.falsePositives = falsePositives.length;
  run.reportFalsePositives(falsePositives);
}
