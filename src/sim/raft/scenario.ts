/**
 * @module Seeded simulations of the Raft core (`core/raft`) under the simulator: 3 or 5
 * founding voters plus 1-2 spare nodes that start outside the group, a client workload
 * proposing unique commands and ReadIndex reads, a membership workload on the leader (add a
 * spare or removed node as a learner, promote it once caught up, remove a voter, keeping 3
 * to 5 voters), snapshots every few applied entries with a log compacted almost up to them
 * (so lagging, restarted and new nodes need snapshots, sent in small chunks), and a nemesis
 * (`sim/nemesis.ts`) injecting partitions, crashes (some in the middle of a write, losing
 * unsynced data), loss bursts and one-way link drops, over a network that itself loses,
 * duplicates and reorders.
 *
 * After EVERY step the checker asserts Raft's safety properties (paper Figure 3):
 * - Election Safety: at most one leader per term, across all nodes and all time;
 * - Log Matching: two logs with an entry of the same index and term agree on everything up
 *   to it (checked inductively: same (index, term) implies same entry and same previous term;
 *   compacted indexes are skipped);
 * - State Machine Safety: no two nodes ever commit or apply different entries at one index,
 *   and a snapshot a node restores holds exactly the commands applied anywhere at its indexes;
 * - Leader Completeness: an entry known committed while some node was in term T is in the
 *   log of every leader of a later term (unless that leader compacted it into a snapshot);
 * - ReadIndex: a confirmed read's index is at least every index committed before it was asked;
 * - Membership (thesis ch. 4): a leader's log holds at most one configuration entry beyond its
 *   commit index, no configuration lists a node twice, and only a voter of its own
 *   configuration campaigns or leads;
 * - Storage: at every restart, every whole record on the node's disk decodes (recovery would
 *   read one that does not as the end of the file and drop everything after it).
 * At the end, after a heal (every node up, no partition): liveness (a leader is elected and
 * commits a fresh command on every member of its configuration within `livenessBoundMs`),
 * and every acknowledged proposal (applied at its proposer) is applied exactly once on every
 * member of that final configuration.
 *
 * A run never throws for a protocol bug: it returns failures (an `AssertionError` inside a
 * core is reported as one). One seed gives one trace, so
 * `npm run sim:raft -- --seed N` replays a failure.
 */

import { decodeRecords } from "../../core/broadcast/record-log.js";
import type { RaftConfig } from "../../core/raft/config.js";
import { membersOf } from "../../core/raft/membership.js";
import {
  type RaftConfigEvent,
  RaftCore,
  type RaftCoreStats,
  type RaftEvent,
  type RaftRestoreEvent,
} from "../../core/raft/raft-core.js";
import type { RaftDefect, RaftNode } from "../../core/raft/raft-node.js";
import { decodeRaftRecord, RAFT_RECORD_BYTES_MAX } from "../../core/raft/storage.js";
import type {
  ChangeMembershipError,
  ClusterConfig,
  Entry,
  MembershipChange,
  RaftMessage,
} from "../../core/raft/types.js";
import type { NodeId } from "../../core/sans-io.js";
import { AssertionError, assertNever } from "../../lib/assert.js";
import { type Prng, prngFromSeed } from "../../lib/prng.js";
import { Nemesis, type NemesisConfig, nemesisDefaults } from "../nemesis.js";
import type { SimNetworkConfig } from "../sim-network.js";
import { type EventRecord, Simulator } from "../simulator.js";

export interface RaftScenarioOverrides {
  /** Founding voters, 3 or 5; default drawn from the seed. */
  readonly nodeCount?: number;
  /** Spare nodes that start outside the group; default drawn (1 or 2). */
  readonly spares?: number;
  /** Applied entries between snapshots; 0 turns snapshots off. Default drawn (5..40). */
  readonly snapshotEvery?: number;
  /** false: no membership changes. Default true. */
  readonly membership?: boolean;
  /** Raft settings applied over the drawn ones (experiments). */
  readonly config?: Partial<RaftConfig>;
  readonly defect?: RaftDefect;
  /** Length of the fault phase (virtual ms). Default 8000. */
  readonly faultMs?: number;
  readonly keepTrace?: boolean;
  /**
   * `nemesis` (default): random faults. `figure8`: a scripted schedule that drives 5 nodes
   * through the paper's Figure 8 sequence (see `runFigure8Schedule`), which random faults
   * practically never hit; with the `commit-previous-term` defect it must fail. It runs
   * without spares, snapshots or membership changes (they would change its script).
   */
  readonly schedule?: RaftSchedule;
}

export type RaftSchedule = "nemesis" | "figure8";
export const raftSchedules: readonly RaftSchedule[] = ["nemesis", "figure8"];

export interface RaftScenarioOptions {
  readonly seed: number;
  /** Founding voters. */
  readonly nodeCount: number;
  /** Nodes that boot outside the group (bootstrap voters `[]`) for the membership workload. */
  readonly spares: number;
  readonly defect: RaftDefect;
  readonly schedule: RaftSchedule;
  readonly tickIntervalMs: number;
  readonly config: Partial<RaftConfig>;
  /** Each node snapshots once this many entries were applied since its last one; 0: never. */
  readonly snapshotEvery: number;
  readonly network: SimNetworkConfig;
  readonly nemesis: NemesisConfig;
  readonly faultMs: number;
  /** Mean gap between client proposals during the fault phase. */
  readonly proposalIntervalMsMean: number;
  /** Mean gap between membership change attempts during the fault phase; 0: none. */
  readonly membershipIntervalMsMean: number;
  /**
   * Heal to "a leader committed a new command on every member". Worst case with margin: a
   * few rounds of (pre-vote + vote) each bounded by the largest randomized election timeout
   * (2 * electionTicks * tick = 400 ms), plus catch-up of the log or a snapshot (a few KiB
   * in chunks of 16 bytes and more, a window of them per round trip); we allow 10 s.
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
  /** ReadIndex requests the workload issued, and how many were confirmed. */
  readonly reads: number;
  readonly readsConfirmed: number;
  /** Reads the leaders served from their lease, without a heartbeat round (nodes up at the end). */
  readonly leaseReads: number;
  /** Snapshots taken by nodes, transfers started by leaders, chunks sent, installs from a leader, restores at restart. */
  readonly snapshotsTaken: number;
  readonly snapshotsSent: number;
  readonly snapshotChunksSent: number;
  readonly snapshotsInstalled: number;
  readonly snapshotsRestored: number;
  /** Membership changes accepted by a leader, and those seen applied, by kind. */
  readonly configChangesProposed: number;
  readonly configChangesApplied: {
    readonly add: number;
    readonly promote: number;
    readonly remove: number;
  };
  /** The final configuration's voters and learners. */
  readonly finalConfig: ClusterConfig | null;
  /** figure8 schedule: the last step it reached ("done" when the whole sequence ran). */
  readonly schedulePhase: string | null;
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
  const schedule = overrides.schedule ?? "nemesis";
  const figure8 = schedule === "figure8";
  const nodeCount = figure8 ? 5 : (overrides.nodeCount ?? draw.pick([3, 5]));
  const faultIntervalMsMean = draw.pick([150, 300, 600]);
  const proposalIntervalMsMean = draw.pick([5, 20, 50]);
  // Drawn whatever the overrides, so overriding one leaves the others as they were.
  const spares = draw.pick([1, 2]);
  const snapshotEvery = draw.intInclusive(5, 40);
  const compactionRetainEntries = draw.intInclusive(0, 8);
  const chunkBytesBase = draw.pick([16, 32, 64]);
  const snapshotChunksInflightMax = draw.intInclusive(1, 4);
  const membershipIntervalMsMean = draw.pick([100, 250, 500]);
  // Half the seeds serve reads from the leader's lease (the ReadIndex checker then checks
  // lease reads); the lease-too-long defect needs them on.
  const leaseReads = draw.chance(0.5) || overrides.defect === "lease-too-long";
  const membership = !figure8 && (overrides.membership ?? true);
  const allNodes = nodeCount + (figure8 ? 0 : (overrides.spares ?? spares));
  const faultMs = overrides.faultMs ?? 8_000;
  // Chunks of 16-64 bytes for a state machine of ~400 commands (~3 KiB), larger in
  // proportion when the workload will write more: a full snapshot is then ~50-200 chunks,
  // so transfers span many round trips with loss and reordering, yet a node that needs two
  // in a row (the leader snapshots every few entries and keeps almost nothing behind) still
  // catches up well within the liveness bound. (A whole window after a reordered chunk is
  // dropped and resent at the next heartbeat answer, so throughput is about one window per
  // heartbeat interval: 16-byte chunks for ~1,600 commands took over 10 s.)
  const expectedCommands = faultMs / proposalIntervalMsMean;
  const snapshotChunkBytes = chunkBytesBase * Math.max(1, Math.round(expectedCommands / 400));
  return {
    seed,
    nodeCount,
    spares: allNodes - nodeCount,
    defect: overrides.defect ?? "none",
    schedule,
    tickIntervalMs: 10,
    // figure8: one entry per append, so an old-term entry can reach a follower without the
    // new leader's no-op right behind it (the state Figure 8 (c) needs).
    config: {
      electionTicks: 10,
      heartbeatTicks: 2,
      entriesPerAppendMax: figure8 ? 1 : 16,
      compactionRetainEntries,
      snapshotChunkBytes,
      snapshotChunksInflightMax,
      leaseReads,
      ...overrides.config,
    },
    snapshotEvery: figure8 ? 0 : (overrides.snapshotEvery ?? snapshotEvery),
    // figure8: jitter (reordering) but no loss or duplication, so the script's steps happen.
    network: figure8
      ? { ...raftSimNetwork, lossProbability: 0, duplicationProbability: 0 }
      : raftSimNetwork,
    nemesis: {
      ...nemesisDefaults,
      faultIntervalMsMean,
      faultMsMin: 50,
      faultMsMax: 1_500,
      // Safety must hold even with every node down; keep one up so the workload runs.
      nodesDownMax: allNodes - 1,
    },
    faultMs,
    proposalIntervalMsMean,
    membershipIntervalMsMean: membership ? membershipIntervalMsMean : 0,
    livenessBoundMs: 10_000,
  };
}

export function describeRaftScenario(options: RaftScenarioOptions): string {
  const { config } = options;
  return [
    `seed=${options.seed}`,
    `nodes=${options.nodeCount}${options.spares > 0 ? `+${options.spares}` : ""}`,
    ...(options.schedule === "nemesis" ? [] : [`schedule=${options.schedule}`]),
    `faults=${options.faultMs / 1000}s every~${options.nemesis.faultIntervalMsMean}ms`,
    `propose-every~${options.proposalIntervalMsMean}ms`,
    ...(options.membershipIntervalMsMean > 0
      ? [`change-every~${options.membershipIntervalMsMean}ms`]
      : []),
    ...(options.snapshotEvery > 0
      ? [
          `snapshot-every=${options.snapshotEvery} retain=${config.compactionRetainEntries}` +
            ` chunk=${config.snapshotChunkBytes}Bx${config.snapshotChunksInflightMax}`,
        ]
      : []),
    `loss=${options.network.lossProbability} dup=${options.network.duplicationProbability}`,
    ...(config.leaseReads ? ["lease-reads"] : []),
    ...(options.defect === "none" ? [] : [`defect=${options.defect}`]),
  ].join(" ");
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function entryKey(entry: Pick<Entry, "kind" | "data">): string {
  switch (entry.kind) {
    case "noop":
      return "noop";
    case "command":
      return textDecoder.decode(entry.data);
    case "config":
      return `config ${textDecoder.decode(entry.data)}`;
    default:
      return assertNever(entry.kind);
  }
}

function describeConfig(config: ClusterConfig): string {
  return `voters=${config.voters.join(",")} learners=${config.learners.join(",")}`;
}

function configKey(config: ClusterConfig): string {
  return `${config.voters.join(",")}|${config.learners.join(",")}`;
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
    case "timeout-now":
      return `timeout-now t${message.term}`;
    case "install-snapshot":
      return `snapshot t${message.term} at=${message.metadata.index}@${message.metadata.term} bytes=${message.offset}+${message.data.length}/${message.totalBytes}`;
    case "install-snapshot-response":
      return `snapshot-ok t${message.term} at=${message.index} received=${message.received}`;
    default:
      return assertNever(message);
  }
}

function describeRaftEvent(event: RaftEvent): string {
  switch (event.type) {
    case "read":
      return `read ${textDecoder.decode(event.context)} at ${event.index}`;
    case "apply":
      return `apply ${event.index}@${event.term} ${textDecoder.decode(event.data)}`;
    case "config":
      return `config ${event.index}@${event.term} ${describeConfig(event.config)}`;
    case "restore":
      return (
        `restore from ${event.source} at=${event.index}@${event.term} ` +
        `commands=${event.commands.length} ${describeConfig(event.config)}`
      );
    default:
      return assertNever(event);
  }
}

interface Proposal {
  readonly command: string;
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
  acknowledged: boolean;
}

/** A membership change a leader accepted. */
interface ConfigProposal {
  readonly change: MembershipChange;
  readonly index: number;
  readonly term: number;
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
  /** Globally applied command per index (all nodes, all incarnations, snapshots included). */
  readonly #applied = new Map<number, string>();
  /** Globally applied configuration per index: `${term}|${voters}|${learners}`. */
  readonly configsApplied = new Map<number, string>();
  /** node → { incarnation, log version checked, commit checked, leader term seen, invalid messages seen }. */
  readonly #seen = new Map<
    NodeId,
    { incarnation: number; version: number; commit: number; leaderTerm: number; invalid: number }
  >();
  /** node → the current incarnation's state machine: command → index, and the last index applied. */
  readonly appliedBy = new Map<
    NodeId,
    { incarnation: number; commands: Map<string, number>; last: number }
  >();
  readonly proposals = new Map<string, Proposal>();
  readonly configProposals: ConfigProposal[] = [];
  /** ReadIndex requests by context: who asked, and the highest index committed by then. */
  readonly reads = new Map<
    string,
    { nodeId: NodeId; incarnation: number; floor: number; confirmed: boolean }
  >();
  /** Highest index any node has been seen to commit. */
  maxCommitted = 0;
  /** `${node}#${incarnation}` → that incarnation's counters (live objects, read at the end). */
  readonly #stats = new Map<
    string,
    { readonly node: RaftNode["stats"]; readonly core: RaftCoreStats }
  >();
  /** Snapshots installed from a leader, as seen in `restore` events. */
  restoresFromLeader = 0;
  restoresAtRestart = 0;

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

  /** Counters summed over every incarnation of every node. */
  totals(): { sent: number; chunks: number; installed: number; taken: number } {
    const totals = { sent: 0, chunks: 0, installed: 0, taken: 0 };
    for (const { node, core } of this.#stats.values()) {
      totals.sent += node.snapshotsSent;
      totals.chunks += node.snapshotChunksSent;
      totals.installed += node.snapshotsInstalled;
      totals.taken += core.snapshotsTaken;
    }
    return totals;
  }

  #checkNode(nodeId: NodeId, core: RaftCore): void {
    const node = core.node;
    const log = node.log;
    const incarnation = this.simulator.incarnation(nodeId);
    let seen = this.#seen.get(nodeId);
    let from: number | null;
    if (seen === undefined || seen.incarnation !== incarnation) {
      seen = { incarnation, version: log.version, commit: 0, leaderTerm: -1, invalid: 0 };
      this.#seen.set(nodeId, seen);
      this.#stats.set(`${nodeId}#${incarnation}`, { node: node.stats, core: core.stats });
      from = 1;
    } else {
      from = log.changedSince(seen.version);
      seen.version = log.version;
    }
    const first = log.firstIndex();
    // Log Matching, inductively (entries compacted into a snapshot are skipped).
    if (from !== null) {
      for (let index = Math.max(from, first); index <= log.lastIndex(); index++) {
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
    for (let index = Math.max(seen.commit + 1, first); index <= log.committed; index++) {
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
    this.maxCommitted = Math.max(this.maxCommitted, log.committed);
    this.#checkMembership(nodeId, node);
    if (core.invalidMessages > seen.invalid) {
      // Every peer here is honest: a message the validator rejects is one a core should not
      // have sent (or a validator too strict for what cores send), silently lost.
      seen.invalid = core.invalidMessages;
      this.fail(
        `validation: ${nodeId} dropped a message from a peer as malformed (${core.invalidMessages} so far, at ${this.simulator.nowMs} ms)`,
      );
    }
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

  /**
   * Durability of what was written: every whole record (its checksum holds) a restarting
   * node finds on its disk must decode. Recovery reads a record it cannot decode as the end
   * of the file, so one would silently drop it and every record after it, synced or not.
   */
  checkDisk(nodeId: NodeId, files: ReadonlyMap<string, Uint8Array>): void {
    for (const [file, bytes] of files) {
      const { bodies } = decodeRecords(bytes, RAFT_RECORD_BYTES_MAX);
      const bad = bodies.findIndex((body) => decodeRaftRecord(body) === null);
      if (bad >= 0) {
        this.fail(
          `storage: ${nodeId}'s ${file} holds a whole record that does not decode (record ${bad + 1} of ${bodies.length}): recovery drops it and all after it (at ${this.simulator.nowMs} ms)`,
        );
      }
    }
  }

  /** Membership invariants (thesis §4.1): well-formed configurations, one change at a time. */
  #checkMembership(nodeId: NodeId, node: RaftNode): void {
    const { voters, learners } = node.membership;
    const members = [...voters, ...learners];
    if (new Set(members).size !== members.length) {
      this.fail(
        `membership: ${nodeId}'s configuration lists a node twice (${describeConfig(node.membership)}, at ${this.simulator.nowMs} ms)`,
      );
    }
    if (node.role !== "follower" && !voters.includes(nodeId)) {
      this.fail(
        `membership: ${nodeId} is ${node.role} of term ${node.term} but not a voter (${describeConfig(node.membership)}, at ${this.simulator.nowMs} ms)`,
      );
    }
    if (node.role === "leader") {
      const log = node.log;
      const last = log.lastConfigEntry();
      if (last !== undefined && last.index > log.committed) {
        const previous = log.lastConfigEntry(last.index - 1);
        if (previous !== undefined && previous.index > log.committed) {
          this.fail(
            `membership: leader ${nodeId} of term ${node.term} has two uncommitted configuration ` +
              `entries (${previous.index} and ${last.index}, commit ${log.committed}, at ${this.simulator.nowMs} ms)`,
          );
        }
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
    // Compacted into the leader's snapshot: its content is checked where it was applied.
    if (index < core.node.log.firstIndex()) return;
    const entry = core.node.log.entry(index);
    if (entry === undefined || entry.term !== committed.term || entryKey(entry) !== committed.key) {
      this.fail(
        `leader completeness: ${nodeId}, leader of term ${core.node.term}, lacks committed ` +
          `${index}@${committed.term} ${committed.key} (at ${this.simulator.nowMs} ms)`,
      );
    }
  }

  /**
   * ReadIndex linearizability (thesis §6.4): a confirmed read's index is at least every index
   * committed anywhere before the read was issued, so serving it after applying that index
   * sees every write that completed before it. A deposed leader answering from its stale
   * commit index would fail here.
   */
  #onRead(record: EventRecord<RaftEvent>, event: Extract<RaftEvent, { type: "read" }>): void {
    const context = textDecoder.decode(event.context);
    const read = this.reads.get(context);
    if (
      read === undefined ||
      read.nodeId !== record.nodeId ||
      read.incarnation !== record.incarnation
    ) {
      this.fail(`read index: ${record.nodeId} confirmed ${context}, which it was never asked`);
      return;
    }
    if (read.confirmed) this.fail(`read index: ${context} confirmed twice`);
    read.confirmed = true;
    if (event.index < read.floor) {
      this.fail(
        `read index: ${record.nodeId} confirmed ${context} at ${event.index}, but ${read.floor} ` +
          `was committed before it was asked (stale read, at ${this.simulator.nowMs} ms)`,
      );
    }
  }

  /** The incarnation's state machine, created empty at its first event. */
  #stateOf(record: EventRecord<RaftEvent>) {
    let applied = this.appliedBy.get(record.nodeId);
    if (applied === undefined || applied.incarnation !== record.incarnation) {
      applied = { incarnation: record.incarnation, commands: new Map(), last: 0 };
      this.appliedBy.set(record.nodeId, applied);
    }
    return applied;
  }

  /** Applying `command` at `index` agrees with every other node's (State Machine Safety). */
  #checkGlobal(nodeId: NodeId, index: number, command: string, how: string): void {
    const known = this.#applied.get(index);
    if (known === undefined) this.#applied.set(index, command);
    else if (known !== command) {
      this.fail(
        `state machine safety: ${nodeId} ${how} ${command} at ${index}, another node applied ${known} (at ${this.simulator.nowMs} ms)`,
      );
    }
  }

  /**
   * A snapshot replaced the node's state machine: it must hold exactly the commands applied
   * anywhere at indexes up to its own (none missing, none different), everything this
   * incarnation applied so far, and nothing twice.
   */
  #onRestore(record: EventRecord<RaftEvent>, event: RaftRestoreEvent): void {
    const { nodeId } = record;
    if (event.source === "leader") this.restoresFromLeader++;
    else this.restoresAtRestart++;
    const previous = this.appliedBy.get(nodeId);
    const commands = new Map<string, number>();
    let last = 0;
    for (const { index, data } of event.commands) {
      const command = textDecoder.decode(data);
      if (index <= last || index > event.index) {
        this.fail(
          `snapshot: ${nodeId} restored ${command} at ${index}, out of order or beyond the snapshot's index ${event.index}`,
        );
      }
      last = index;
      if (commands.has(command))
        this.fail(`exactly once: ${nodeId}'s snapshot at ${event.index} holds ${command} twice`);
      commands.set(command, index);
      this.#checkGlobal(nodeId, index, command, `restored (snapshot at ${event.index})`);
    }
    const byIndex = new Map([...commands].map(([command, index]) => [index, command]));
    for (const [index, command] of this.#applied) {
      if (index <= event.index && byIndex.get(index) !== command) {
        this.fail(
          `state machine safety: ${nodeId}'s snapshot at ${event.index} lacks ${command} applied at ${index} (at ${this.simulator.nowMs} ms)`,
        );
      }
    }
    if (previous !== undefined && previous.incarnation === record.incarnation) {
      if (event.index <= previous.last) {
        this.fail(
          `snapshot: ${nodeId} installed a snapshot at ${event.index} after applying up to ${previous.last}`,
        );
      }
    }
    this.appliedBy.set(nodeId, {
      incarnation: record.incarnation,
      commands,
      last: event.index,
    });
  }

  #onConfig(record: EventRecord<RaftEvent>, event: RaftConfigEvent): void {
    const key = `${event.term}|${configKey(event.config)}`;
    const known = this.configsApplied.get(event.index);
    if (known === undefined) this.configsApplied.set(event.index, key);
    else if (known !== key) {
      this.fail(
        `state machine safety: ${record.nodeId} applied configuration ${key} at ${event.index}, another node applied ${known}`,
      );
    }
    this.#advance(record, event.index);
  }

  /** Apply order within an incarnation: strictly increasing indexes. */
  #advance(record: EventRecord<RaftEvent>, index: number): void {
    const state = this.#stateOf(record);
    if (index <= state.last) {
      this.fail(
        `apply order: ${record.nodeId} applied index ${index} after ${state.last} (at ${this.simulator.nowMs} ms)`,
      );
    }
    state.last = index;
  }

  onEvent(record: EventRecord<RaftEvent>): void {
    const { event, nodeId } = record;
    switch (event.type) {
      case "read":
        this.#onRead(record, event);
        return;
      case "restore":
        this.#onRestore(record, event);
        return;
      case "config":
        this.#onConfig(record, event);
        return;
      case "apply":
        break;
      default:
        assertNever(event);
    }
    const command = textDecoder.decode(event.data);
    this.#checkGlobal(nodeId, event.index, command, "applied");
    this.#advance(record, event.index);
    const applied = this.#stateOf(record);
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

  /** Accepted changes whose entry some node applied (or restored from a snapshot past it). */
  configChangesApplied(): { add: number; promote: number; remove: number } {
    const counts = { add: 0, promote: 0, remove: 0 };
    for (const proposal of this.configProposals) {
      const applied = this.configsApplied.get(proposal.index);
      if (applied === undefined || !applied.startsWith(`${proposal.term}|`)) continue;
      const kind = proposal.change.type === "add-learner" ? "add" : proposal.change.type;
      counts[kind]++;
    }
    return counts;
  }
}

const retryableMembershipErrors: ReadonlySet<ChangeMembershipError["code"]> = new Set([
  "LearnerNotCaughtUp",
  "ChangeInProgress",
  "NotReady",
]);

/** Runs one seed. */
export function runRaftScenario(
  seed: number,
  overrides: RaftScenarioOverrides = {},
): RaftScenarioResult {
  const options = raftScenarioOptions(seed, overrides);
  const root = prngFromSeed(seed);
  const nodeIds = Array.from(
    { length: options.nodeCount + options.spares },
    (_, index) => `n${index + 1}`,
  );
  const founders = nodeIds.slice(0, options.nodeCount);
  let checker: RaftChecker | null = null;
  const simulator = new Simulator<RaftMessage, RaftEvent, RaftCore>({
    prng: root.fork(),
    nodeIds,
    factory: (context) => {
      checker?.checkDisk(context.nodeId, context.recovered);
      return new RaftCore(context, {
        config: options.config,
        defect: options.defect,
        voters: founders.includes(context.nodeId) ? founders : [],
        snapshotEvery: options.snapshotEvery,
      });
    },
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
  const membershipPrng = simulator.forkPrng();
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
  let readCount = 0;
  const readIndex = (nodeId: NodeId): void => {
    const context = `r${++readCount}`;
    // Registered first: a read may be confirmed within this very input's output.
    checker.reads.set(context, {
      nodeId,
      incarnation: simulator.incarnation(nodeId),
      floor: checker.maxCommitted,
      confirmed: false,
    });
    const result = simulator.withCore(
      nodeId,
      (core) => core.readIndex(textEncoder.encode(context)),
      `read-index ${context}`,
    );
    if (!result.ok) checker.reads.delete(context);
  };
  const leaders = (): NodeId[] =>
    nodeIds.filter(
      (nodeId) =>
        simulator.isUp(nodeId) && simulator.inspect(nodeId, (core) => core.node.role === "leader"),
    );
  /** The leader of the highest term among the live nodes, if any. */
  const currentLeader = (): NodeId | undefined => {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of leaders()) {
      const term = simulator.inspect(id, (core) => core.node.term);
      if (best === undefined || term > best.term) best = { id, term };
    }
    return best?.id;
  };

  const scheduleWorkload = (prng: Prng, untilMs: number): void => {
    const gapMs = 1 + Math.round(-Math.log(1 - prng.float()) * options.proposalIntervalMsMean);
    const atMs = simulator.nowMs + gapMs;
    if (atMs >= untilMs) return;
    simulator.schedule(atMs, "client", () => {
      const up = nodeIds.filter((nodeId) => simulator.isUp(nodeId));
      const current = leaders();
      // Mostly the (or a) leader; sometimes anyone, to exercise NotLeader.
      const pool = current.length > 0 && prng.chance(0.9) ? current : up;
      // A quarter of the requests are linearizable reads (ReadIndex), the rest writes.
      if (pool.length > 0) {
        const nodeId = prng.pick(pool);
        if (prng.chance(0.25)) readIndex(nodeId);
        else propose(nodeId);
      }
      scheduleWorkload(prng, untilMs);
    });
  };

  /**
   * One membership step on the current leader: promote a learner (once it caught up), add a
   * non-member as a learner, or remove a voter other than the leader (sometimes a learner),
   * keeping 3 to 5 voters. A refusal that only means "not yet" retries sooner.
   */
  const changeMembership = (prng: Prng): boolean => {
    const leader = currentLeader();
    if (leader === undefined) return false;
    const { voters, learners } = simulator.inspect(leader, (core) => core.node.membership);
    const choices: { change: MembershipChange; weight: number }[] = [];
    for (const node of learners) {
      if (voters.length < 5) choices.push({ change: { type: "promote", node }, weight: 6 });
      choices.push({ change: { type: "remove", node }, weight: 1 });
    }
    const outside = nodeIds.filter((id) => !voters.includes(id) && !learners.includes(id));
    if (learners.length === 0 && voters.length < 5 && outside.length > 0) {
      choices.push({ change: { type: "add-learner", node: prng.pick(outside) }, weight: 4 });
    }
    if (voters.length > 3) {
      for (const node of voters) {
        if (node !== leader) choices.push({ change: { type: "remove", node }, weight: 1 });
      }
    }
    if (choices.length === 0) return false;
    let pick = prng.float() * choices.reduce((sum, choice) => sum + choice.weight, 0);
    let change = choices.at(-1)!.change;
    for (const choice of choices) {
      pick -= choice.weight;
      if (pick < 0) {
        change = choice.change;
        break;
      }
    }
    const result = simulator.withCore(
      leader,
      (core) => core.changeMembership(change),
      `change-membership ${change.type} ${change.node}`,
    );
    if (result.ok) {
      checker.configProposals.push({ change, index: result.value.index, term: result.value.term });
      return false;
    }
    return retryableMembershipErrors.has(result.error.code);
  };

  const scheduleMembership = (prng: Prng, untilMs: number, meanMs: number): void => {
    const gapMs = 1 + Math.round(-Math.log(1 - prng.float()) * meanMs);
    const atMs = simulator.nowMs + gapMs;
    if (atMs >= untilMs) return;
    simulator.schedule(atMs, "membership", () => {
      const retry = changeMembership(prng);
      const mean = options.membershipIntervalMsMean;
      scheduleMembership(prng, untilMs, retry ? Math.max(10, Math.round(mean / 5)) : mean);
    });
  };

  /** The current leader's configuration; null while there is no leader. */
  const finalConfig = (): ClusterConfig | null => {
    const leader = currentLeader();
    return leader === undefined ? null : simulator.inspect(leader, (core) => core.node.membership);
  };

  let schedulePhase: string | null = null;
  let configAtEnd: ClusterConfig | null = null;
  try {
    const faultEndMs = options.faultMs;
    if (options.schedule === "figure8") {
      schedulePhase = runFigure8Schedule(simulator, propose, workloadPrng, faultEndMs);
      nemesis.healAll();
    } else {
      nemesis.runFaultPhase(faultEndMs);
      scheduleWorkload(workloadPrng, faultEndMs);
      if (options.membershipIntervalMsMean > 0) {
        scheduleMembership(membershipPrng, faultEndMs, options.membershipIntervalMsMean);
      }
      simulator.runUntil(faultEndMs);
    }
    // Liveness: after the heal, a leader commits a fresh command on every member in time.
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
        const leader = currentLeader();
        // Re-propose when the probe's leader lost office. Proposing inside the condition is
        // safe: runUntilCondition calls it between steps, never during a flush.
        if (stale && leader !== undefined && propose(leader)) {
          probe = checker.proposals.get(`c${commandCount}`)!;
        }
        return false;
      }
      const target = probe.index;
      const config = finalConfig();
      return (
        config !== null &&
        membersOf(config).every((nodeId) =>
          simulator.inspect(nodeId, (core) => core.node.applied >= target),
        )
      );
    };
    if (simulator.runUntilCondition(done, deadlineMs)) livenessMs = simulator.nowMs - healedMs;
    else {
      const status = nodeIds
        .map((nodeId) => {
          const s = simulator.inspect(nodeId, (core) => core.node.status());
          return (
            `${nodeId}:${s.role}/t${s.term}/commit=${s.commit}/applied=${s.applied}` +
            `/last=${s.lastIndex}/snap=${s.snapshotIndex}/voters=${s.config.voters.join(",")}` +
            `/learners=${s.config.learners.join(",")}`
          );
        })
        .join(" ");
      checker.fail(
        `liveness: no leader committed a new command on every member within ${options.livenessBoundMs} ms of the heal (${status})`,
      );
    }
    // Every acknowledged proposal is applied exactly once on every member at the end.
    configAtEnd = finalConfig();
    for (const proposal of checker.proposals.values()) {
      if (!proposal.acknowledged || configAtEnd === null) continue;
      for (const nodeId of membersOf(configAtEnd)) {
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
  const totals = checker.totals();
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
      committedIndex: checker.maxCommitted,
      leaders: checker.leaderByTerm.size,
      crashes: simulator.crashes,
      livenessMs,
      reads: checker.reads.size,
      readsConfirmed: [...checker.reads.values()].filter((read) => read.confirmed).length,
      leaseReads: nodeIds
        .filter((nodeId) => simulator.isUp(nodeId))
        .reduce(
          (sum, nodeId) => sum + simulator.inspect(nodeId, (core) => core.node.stats.leaseReads),
          0,
        ),
      snapshotsTaken: totals.taken,
      snapshotsSent: totals.sent,
      snapshotChunksSent: totals.chunks,
      snapshotsInstalled: checker.restoresFromLeader,
      snapshotsRestored: checker.restoresAtRestart,
      configChangesProposed: checker.configProposals.length,
      configChangesApplied: checker.configChangesApplied(),
      finalConfig: configAtEnd,
      schedulePhase,
    },
  };
}

type RaftSimulator = Simulator<RaftMessage, RaftEvent, RaftCore>;

/**
 * The Figure 8 sequence (paper §5.4.2) on 5 nodes, driven by partitions and crashes that
 * react to the cores' state (roles are whoever the seed's elections pick):
 *   1. leader L, cut off with one follower A, writes i@t to A only; L crashes;
 *   2. among the other three, D wins term t' > t and writes its no-op i@t' to itself only
 *      (isolated at once); D crashes;
 *   3. L restarts; L or A (X) wins term t'' and copies i@t to one more node Y, so a majority
 *      (X, its partner, Y) holds i@t; X is cut off the moment it knows that (before its own i+1@t'' spreads to Y)
 *      and X and its partner crash;
 *   4. D restarts with the last two nodes (Y, W): its last term t' beats theirs, it wins and
 *      overwrites index i with i@t'.
 * Correct Raft never commits i@t in step 3 (it is not of the current term), so step 4 is
 * legal; with `commit-previous-term` X commits it and step 4 violates State Machine Safety
 * or Leader Completeness. Returns the last phase reached (a seed whose elections went
 * another way stops early and only the usual checks apply).
 */
function runFigure8Schedule(
  simulator: RaftSimulator,
  propose: (nodeId: NodeId) => boolean,
  prng: Prng,
  deadlineMs: number,
): string {
  const ids = simulator.nodeIds;
  const node = (id: NodeId) =>
    simulator.isUp(id) ? simulator.inspect(id, (core) => core.node) : null;
  const until = (condition: () => boolean, budgetMs: number): boolean =>
    simulator.runUntilCondition(condition, Math.min(deadlineMs, simulator.nowMs + budgetMs));
  const leaderAmong = (group: readonly NodeId[], termAbove: number): NodeId | undefined =>
    group.find((id) => {
      const n = node(id);
      return n !== null && n.role === "leader" && n.term > termAbove;
    });

  // 0. A settled leader: its no-op committed and every node's log as long as its own.
  let leader: NodeId | undefined;
  const settled = () => {
    leader = leaderAmong(ids, 0);
    const l = leader === undefined ? null : node(leader);
    if (l === null || l.log.term(l.log.committed) !== l.term) return false;
    return ids.every((id) => node(id)?.log.lastIndex() === l.log.lastIndex());
  };
  if (!until(settled, 3_000) || leader === undefined) return "no-settled-leader";
  const l = leader;
  const followers = ids.filter((id) => id !== l);
  const a = prng.pick(followers);
  const rest = followers.filter((id) => id !== a);

  // 1. i@t reaches A only.
  simulator.partition([[l, a], rest]);
  if (!propose(l)) return "propose-refused";
  const lNode = node(l)!;
  const index = lNode.log.lastIndex();
  const term = lNode.term;
  if (!until(() => node(a)?.log.term(index) === term, 500)) return "a-missed-entry";
  simulator.crash(l);

  // 2. D wins among the rest and writes i@t' to itself only.
  simulator.partition([[a], rest, [l]]);
  if (!until(() => leaderAmong(rest, term) !== undefined, 3_000)) return "no-rival-leader";
  const rival = leaderAmong(rest, term)!;
  const rivalTerm = node(rival)!.term;
  simulator.partition([[a], [rival], rest.filter((id) => id !== rival), [l]]);
  if (node(rival)!.log.term(index) !== rivalTerm) return "rival-log-unexpected";
  simulator.runUntil(simulator.nowMs + 30);
  if (!simulator.isUp(rival)) return "rival-down";
  simulator.crash(rival);

  // 3. L or A (X) wins and gets i@t onto a third node Y.
  simulator.restart(l);
  const others = rest.filter((id) => id !== rival);
  simulator.partition([[l, a, ...others], [rival]]);
  let x: NodeId | undefined;
  let y: NodeId | undefined;
  const spread = () => {
    x = leaderAmong([l, a], rivalTerm);
    const xNode = x === undefined ? null : node(x);
    if (xNode === null) return false;
    const partnerOf = x === l ? a : l;
    if ((xNode.progressOf(partnerOf)?.match ?? 0) < index) return false; // majority needs it
    y = others.find((id) => (xNode.progressOf(id)?.match ?? 0) >= index);
    return y !== undefined;
  };
  if (!until(spread, 3_000) || x === undefined || y === undefined)
    return "no-majority-for-old-entry";
  const holder = x;
  const third = y;
  if (node(third)!.log.lastIndex() !== index) return "third-got-new-entry"; // legitimately committed
  const partner = holder === l ? a : l;
  for (const id of [holder, partner]) if (simulator.isUp(id)) simulator.crash(id);

  // 4. D comes back with Y and W and overwrites index i.
  simulator.restart(rival);
  simulator.partition([
    [rival, ...others],
    [holder, partner],
  ]);
  const rivalCommits = () => {
    const dNode = node(rival);
    return dNode !== null && dNode.role === "leader" && dNode.log.committed >= index;
  };
  if (!until(rivalCommits, 3_000)) return "rival-did-not-commit";
  return "done";
}
