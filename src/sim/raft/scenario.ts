/**
 * @module Seeded simulations of the Raft core (`core/raft`) under the simulator: 3 or 5
 * nodes, a client workload proposing unique commands, and a nemesis (`sim/nemesis.ts`)
 * injecting partitions, crashes (some in the middle of a write, losing unsynced data), loss
 * bursts and one-way link drops, over a network that itself loses, duplicates and reorders.
 *
 * After EVERY step the checker asserts Raft's safety properties (paper Figure 3):
 * - Election Safety: at most one leader per term, across all nodes and all time;
 * - Log Matching: two logs with an entry of the same index and term agree on everything up
 *   to it (checked inductively: same (index, term) implies same entry and same previous term);
 * - State Machine Safety: no two nodes ever commit or apply different entries at one index;
 * - Leader Completeness: an entry known committed while some node was in term T is in the
 *   log of every leader of a later term.
 * At the end, after a heal (every node up, no partition): liveness (a leader is elected and
 * commits a fresh command on every node within `livenessBoundMs`), and every acknowledged
 * proposal (applied at its proposer) is applied exactly once on every replica.
 *
 * A run never throws for a protocol bug: it returns failures (an `AssertionError` inside a
 * core is reported as one). One seed gives one trace, so
 * `npm run sim:raft -- --seed N` replays a failure.
 */
import type { RaftConfig } from "../../core/raft/config.js";
import { type RaftCore, type RaftEvent, raftCoreFactory } from "../../core/raft/raft-core.js";
import type { RaftDefect } from "../../core/raft/raft-node.js";
import type { Entry, RaftMessage } from "../../core/raft/types.js";
import type { NodeId } from "../../core/sans-io.js";
import { AssertionError, assertNever } from "../../lib/assert.js";
import { type Prng, prngFromSeed } from "../../lib/prng.js";
import { Nemesis, type NemesisConfig, nemesisDefaults } from "../nemesis.js";
import type { SimNetworkConfig } from "../sim-network.js";
import { type EventRecord, Simulator } from "../simulator.js";

export interface RaftScenarioOverrides {
  /** 3 or 5; default drawn from the seed. */
  readonly nodeCount?: number;
  readonly defect?: RaftDefect;
  /** Length of the fault phase (virtual ms). Default 8000. */
  readonly faultMs?: number;
  readonly keepTrace?: boolean;
}

export interface RaftScenarioOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly defect: RaftDefect;
  readonly tickIntervalMs: number;
  readonly config: Partial<RaftConfig>;
  readonly network: SimNetworkConfig;
  readonly nemesis: NemesisConfig;
  readonly faultMs: number;
  /** Mean gap between client proposals during the fault phase. */
  readonly proposalIntervalMsMean: number;
  /**
   * Heal to "a leader committed a new command on every node". Worst case with margin: a
   * few rounds of (pre-vote + vote) each bounded by the largest randomized election timeout
   * (2 * electionTicks * tick = 400 ms), plus catch-up of the log; we allow 10 s.
   */
  readonly livenessBoundMs: number;
}

export interface RaftScenarioSummary {
  readonly steps: number;
  readonly endMs: number;
  readonly proposals: number;
  readonly acknowledged: number;
  readonly committedIndex: number;
  readonly leaders: number;
  readonly crashes: number;
  readonly livenessMs: number | null;
}

export interface RaftScenarioResult {
  readonly options: RaftScenarioOptions;
  readonly failures: readonly string[];
  readonly digest: string;
  readonly trace: readonly string[];
  readonly summary: RaftScenarioSummary;
}

/** Moderate jitter (reordering), 2 % loss, 2 % duplicates; the nemesis adds the rest. */
export const raftSimNetwork: SimNetworkConfig = {
  latencyMsMin: 1,
  latencyMsMax: 15,
  latencyTailProbability: 0.02,
  latencyTailMsMean: 40,
  lossProbability: 0.02,
  duplicationProbability: 0.02,
};

export function raftScenarioOptions(
  seed: number,
  overrides: RaftScenarioOverrides = {},
): RaftScenarioOptions {
  const draw = prngFromSeed(seed ^ 0x5eed);
  const nodeCount = overrides.nodeCount ?? draw.pick([3, 5]);
  return {
    seed,
    nodeCount,
    defect: overrides.defect ?? "none",
    tickIntervalMs: 10,
    config: { electionTicks: 10, heartbeatTicks: 2, entriesPerAppendMax: 16 },
    network: raftSimNetwork,
    nemesis: {
      ...nemesisDefaults,
      faultIntervalMsMean: draw.pick([150, 300, 600]),
      faultMsMin: 50,
      faultMsMax: 1_500,
      // Safety must hold even with every node down; keep one up so the workload runs.
      nodesDownMax: nodeCount - 1,
    },
    faultMs: overrides.faultMs ?? 8_000,
    proposalIntervalMsMean: draw.pick([5, 20, 50]),
    livenessBoundMs: 10_000,
  };
}

export function describeRaftScenario(options: RaftScenarioOptions): string {
  return [
    `seed=${options.seed}`,
    `nodes=${options.nodeCount}`,
    `faults=${options.faultMs / 1000}s every~${options.nemesis.faultIntervalMsMean}ms`,
    `propose-every~${options.proposalIntervalMsMean}ms`,
    `loss=${options.network.lossProbability} dup=${options.network.duplicationProbability}`,
    ...(options.defect === "none" ? [] : [`defect=${options.defect}`]),
  ].join(" ");
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function entryKey(entry: Pick<Entry, "kind" | "data">): string {
  return entry.kind === "noop" ? "noop" : textDecoder.decode(entry.data);
}

export function describeRaftMessage(message: RaftMessage): string {
  switch (message.type) {
    case "request-vote":
      return `${message.preVote ? "pre-vote" : "vote"} t${message.term} last=${message.lastLogIndex}@${message.lastLogTerm}`;
    case "request-vote-response":
      return `${message.preVote ? "pre-vote" : "vote"}-${message.granted ? "yes" : "no"} t${message.term} for=t${message.voteTerm}`;
    case "append-entries":
      return `append t${message.term} prev=${message.prevLogIndex}@${message.prevLogTerm} n=${message.entries.length} commit=${message.leaderCommit}`;
    case "append-entries-response":
      return message.success
        ? `append-ok t${message.term} match=${message.matchIndex}`
        : `append-no t${message.term} rejected=${message.rejectedIndex} hint=${message.hintIndex}@${message.hintTerm}`;
    case "heartbeat":
      return `heartbeat t${message.term} commit=${message.commit}`;
    case "heartbeat-response":
      return `heartbeat-ok t${message.term}`;
    default:
      return assertNever(message);
  }
}

function describeRaftEvent(event: RaftEvent): string {
  return `apply ${event.index}@${event.term} ${textDecoder.decode(event.data)}`;
}

interface Proposal {
  readonly command: string;
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
  acknowledged: boolean;
}

interface CommittedEntry {
  readonly term: number;
  readonly key: string;
  /** The observing node's term when first seen committed: committed in a term <= this. */
  readonly observedTerm: number;
}

/** The cross-node safety checker, run after every step. */
class RaftChecker {
  readonly failures: string[] = [];
  readonly leaderByTerm = new Map<number, NodeId>();
  /** `${index}:${term}` → `${previous term}|${entry key}`. */
  readonly #entries = new Map<string, string>();
  readonly committed = new Map<number, CommittedEntry>();
  /** Globally applied command per index (all nodes, all incarnations). */
  readonly #applied = new Map<number, string>();
  /** node → { incarnation, log version checked, commit checked, leader term seen }. */
  readonly #seen = new Map<
    NodeId,
    { incarnation: number; version: number; commit: number; leaderTerm: number }
  >();
  /** node → incarnation → applied commands in order. */
  readonly appliedBy = new Map<NodeId, { incarnation: number; commands: Map<string, number> }>();
  readonly proposals = new Map<string, Proposal>();

  constructor(readonly simulator: Simulator<RaftMessage, RaftEvent, RaftCore>) {}

  fail(message: string): void {
    if (this.failures.length < 20) this.failures.push(message);
  }

  afterStep(): void {
    for (const nodeId of this.simulator.nodeIds) {
      if (!this.simulator.isUp(nodeId)) continue;
      this.simulator.inspect(nodeId, (core) => this.#checkNode(nodeId, core));
    }
  }

  #checkNode(nodeId: NodeId, core: RaftCore): void {
    const node = core.node;
    const log = node.log;
    const incarnation = this.simulator.incarnation(nodeId);
    let seen = this.#seen.get(nodeId);
    let from: number | null;
    if (seen === undefined || seen.incarnation !== incarnation) {
      seen = { incarnation, version: log.version, commit: 0, leaderTerm: -1 };
      this.#seen.set(nodeId, seen);
      from = 1;
    } else {
      from = log.changedSince(seen.version);
      seen.version = log.version;
    }
    // Log Matching, inductively.
    if (from !== null) {
      for (let index = from; index <= log.lastIndex(); index++) {
        const entry = log.entry(index)!;
        const key = `${index}:${entry.term}`;
        const value = `${log.term(index - 1)}|${entryKey(entry)}`;
        const known = this.#entries.get(key);
        if (known === undefined) this.#entries.set(key, value);
        else if (known !== value) {
          this.fail(
            `log matching: ${nodeId} has ${key} = ${value}, another log has ${known} (at ${this.simulator.nowMs} ms)`,
          );
        }
      }
    }
    // Committed entries never change (State Machine Safety at the commit point).
    for (let index = seen.commit + 1; index <= log.committed; index++) {
      const entry = log.entry(index)!;
      const known = this.committed.get(index);
      if (known === undefined) {
        const committed = { term: entry.term, key: entryKey(entry), observedTerm: node.term };
        this.committed.set(index, committed);
        this.#checkLeadersHave(index, committed);
      } else if (known.term !== entry.term || known.key !== entryKey(entry)) {
        this.fail(
          `state machine safety: ${nodeId} committed ${index}@${entry.term} ${entryKey(entry)}, ` +
            `but ${index}@${known.term} ${known.key} was committed before (at ${this.simulator.nowMs} ms)`,
        );
      }
    }
    seen.commit = Math.max(seen.commit, log.committed);
    // Election Safety, and Leader Completeness when a node becomes leader.
    if (node.role === "leader" && seen.leaderTerm !== node.term) {
      seen.leaderTerm = node.term;
      const other = this.leaderByTerm.get(node.term);
      if (other !== undefined && other !== nodeId) {
        this.fail(
          `election safety: ${nodeId} and ${other} are both leaders of term ${node.term} (at ${this.simulator.nowMs} ms)`,
        );
      }
      this.leaderByTerm.set(node.term, nodeId);
      for (const [index, committed] of this.committed) {
        if (committed.observedTerm < node.term)
          this.#checkLeaderHas(nodeId, core, index, committed);
      }
    }
  }

  #checkLeadersHave(index: number, committed: CommittedEntry): void {
    for (const nodeId of this.simulator.nodeIds) {
      if (!this.simulator.isUp(nodeId)) continue;
      this.simulator.inspect(nodeId, (core) => {
        if (core.node.role === "leader" && core.node.term > committed.observedTerm) {
          this.#checkLeaderHas(nodeId, core, index, committed);
        }
      });
    }
  }

  #checkLeaderHas(nodeId: NodeId, core: RaftCore, index: number, committed: CommittedEntry): void {
    const entry = core.node.log.entry(index);
    if (entry === undefined || entry.term !== committed.term || entryKey(entry) !== committed.key) {
      this.fail(
        `leader completeness: ${nodeId}, leader of term ${core.node.term}, lacks committed ` +
          `${index}@${committed.term} ${committed.key} (at ${this.simulator.nowMs} ms)`,
      );
    }
  }

  onEvent(record: EventRecord<RaftEvent>): void {
    const { event, nodeId } = record;
    const command = textDecoder.decode(event.data);
    const known = this.#applied.get(event.index);
    if (known === undefined) this.#applied.set(event.index, command);
    else if (known !== command) {
      this.fail(
        `state machine safety: ${nodeId} applied ${command} at ${event.index}, another node applied ${known}`,
      );
    }
    let applied = this.appliedBy.get(nodeId);
    if (applied === undefined || applied.incarnation !== record.incarnation) {
      applied = { incarnation: record.incarnation, commands: new Map() };
      this.appliedBy.set(nodeId, applied);
    }
    if (applied.commands.has(command)) {
      this.fail(`exactly once: ${nodeId} applied ${command} twice (at ${event.index})`);
    }
    applied.commands.set(command, event.index);
    const proposal = this.proposals.get(command);
    if (
      proposal !== undefined &&
      proposal.nodeId === nodeId &&
      proposal.incarnation === record.incarnation &&
      proposal.index === event.index &&
      proposal.term === event.term
    ) {
      proposal.acknowledged = true;
    }
  }
}

/** Runs one seed. */
export function runRaftScenario(
  seed: number,
  overrides: RaftScenarioOverrides = {},
): RaftScenarioResult {
  const options = raftScenarioOptions(seed, overrides);
  const root = prngFromSeed(seed);
  const nodeIds = Array.from({ length: options.nodeCount }, (_, index) => `n${index + 1}`);
  let checker: RaftChecker | null = null;
  const simulator = new Simulator<RaftMessage, RaftEvent, RaftCore>({
    prng: root.fork(),
    nodeIds,
    factory: raftCoreFactory({ config: options.config, defect: options.defect }),
    tickIntervalMs: options.tickIntervalMs,
    network: options.network,
    disk: { tornWriteProbability: 0.5 },
    describeMessage: describeRaftMessage,
    describeEvent: describeRaftEvent,
    onEvent: (record) => checker?.onEvent(record),
    afterStep: () => checker?.afterStep(),
    keepTrace: overrides.keepTrace ?? false,
  });
  checker = new RaftChecker(simulator);
  const workloadPrng = simulator.forkPrng();
  const nemesis = new Nemesis(simulator, simulator.forkPrng(), options.nemesis);
  let livenessMs: number | null = null;
  let commandCount = 0;

  const propose = (nodeId: NodeId): boolean => {
    const command = `c${++commandCount}`;
    const result = simulator.withCore(
      nodeId,
      (core) => core.propose(textEncoder.encode(command)),
      `propose ${command}`,
    );
    if (!result.ok) return false;
    checker.proposals.set(command, {
      command,
      nodeId,
      incarnation: simulator.incarnation(nodeId),
      index: result.value.index,
      term: result.value.term,
      acknowledged: false,
    });
    return true;
  };
  const leaders = (): NodeId[] =>
    nodeIds.filter(
      (nodeId) =>
        simulator.isUp(nodeId) && simulator.inspect(nodeId, (core) => core.node.role === "leader"),
    );

  const scheduleWorkload = (prng: Prng, untilMs: number): void => {
    const gapMs = 1 + Math.round(-Math.log(1 - prng.float()) * options.proposalIntervalMsMean);
    const atMs = simulator.nowMs + gapMs;
    if (atMs >= untilMs) return;
    simulator.schedule(atMs, "client", () => {
      const up = nodeIds.filter((nodeId) => simulator.isUp(nodeId));
      const current = leaders();
      // Mostly the (or a) leader; sometimes anyone, to exercise NotLeader.
      const pool = current.length > 0 && prng.chance(0.9) ? current : up;
      if (pool.length > 0) propose(prng.pick(pool));
      scheduleWorkload(prng, untilMs);
    });
  };

  try {
    const faultEndMs = options.faultMs;
    nemesis.runFaultPhase(faultEndMs);
    scheduleWorkload(workloadPrng, faultEndMs);
    simulator.runUntil(faultEndMs);
    // Liveness: after the heal, a leader commits a fresh command on every node in time.
    const healedMs = simulator.nowMs;
    const deadlineMs = healedMs + options.livenessBoundMs;
    let probe: Proposal | null = null;
    const done = (): boolean => {
      if (probe === null || !probe.acknowledged) {
        const current: Proposal | null = probe;
        const stale =
          current === null ||
          !simulator.isUp(current.nodeId) ||
          simulator.inspect(
            current.nodeId,
            (core) => core.node.role !== "leader" || core.node.term !== current.term,
          );
        const leader = leaders()[0];
        // Re-propose when the probe's leader lost office. Proposing inside the condition is
        // safe: runUntilCondition calls it between steps, never during a flush.
        if (stale && leader !== undefined && propose(leader)) {
          probe = checker.proposals.get(`c${commandCount}`)!;
        }
        return false;
      }
      const target = probe.index;
      return nodeIds.every((nodeId) =>
        simulator.inspect(nodeId, (core) => core.node.applied >= target),
      );
    };
    if (simulator.runUntilCondition(done, deadlineMs)) livenessMs = simulator.nowMs - healedMs;
    else {
      const status = nodeIds
        .map((nodeId) => {
          const s = simulator.inspect(nodeId, (core) => core.node.status());
          return `${nodeId}:${s.role}/t${s.term}/commit=${s.commit}/applied=${s.applied}/last=${s.lastIndex}`;
        })
        .join(" ");
      checker.fail(
        `liveness: no leader committed a new command on every node within ${options.livenessBoundMs} ms of the heal (${status})`,
      );
    }
    // Every acknowledged proposal is applied exactly once on every replica.
    for (const proposal of checker.proposals.values()) {
      if (!proposal.acknowledged) continue;
      for (const nodeId of nodeIds) {
        const index = checker.appliedBy.get(nodeId)?.commands.get(proposal.command);
        if (index !== proposal.index) {
          checker.fail(
            `acknowledged ${proposal.command} (${proposal.index}@${proposal.term} via ${proposal.nodeId}) ` +
              `applied at ${index ?? "nowhere"} on ${nodeId}`,
          );
        }
      }
    }
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    checker.fail(`assertion: ${error.message} (at ${simulator.nowMs} ms)`);
  }

  const proposals = [...checker.proposals.values()];
  return {
    options,
    failures: checker.failures,
    digest: simulator.traceDigest(),
    trace: simulator.trace,
    summary: {
      steps: simulator.steps,
      endMs: simulator.nowMs,
      proposals: proposals.length,
      acknowledged: proposals.filter((proposal) => proposal.acknowledged).length,
      committedIndex: checker.committed.size,
      leaders: checker.leaderByTerm.size,
      crashes: simulator.crashes,
      livenessMs,
    },
  };
}
