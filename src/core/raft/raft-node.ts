/**
 * @module The Raft state machine (Ongaro & Ousterhout 2014; thesis §9.6 PreVote, §6.2
 * CheckQuorum), shaped like etcd's `raft.go`: inputs are `tick()`, `step(message)` and
 * `propose(data)`; output is a `Ready` (see its contract in `types.ts`) acknowledged with
 * `advance()`. Pure and synchronous: no I/O, no clock, no `Math.random` (the `Prng` is
 * injected and only draws election timeouts).
 *
 * Implemented: leader election with randomized timeouts, votes that survive restarts (via
 * the Ready's hard state), log replication with the consistency check, conflict truncation
 * and fast backtracking, commit by counting replicas of current-term entries only (paper
 * §5.4.2, Figure 8), ordered apply, PreVote, CheckQuorum with follower leases, bounded
 * in-flight appends per follower, proposal batching (appends are built once per Ready),
 * ReadIndex (thesis §6.4), leadership transfer (thesis §3.10), log compaction with
 * snapshots sent to lagging followers in chunks (paper §7), membership change one server at
 * a time with learners (thesis §4.1-4.2). Not yet: lease reads (see docs/raft.md).
 *
 * Gotchas:
 * - Call `advance()` after handling each `ready()` before any other input (asserted).
 * - Nodes never vote twice in a term only if the driver persists `hardState` before sending.
 */
import { assert, assertNever } from "../../lib/assert.js";
import type { Prng } from "../../lib/prng.js";
import type { NodeId, Outgoing } from "../sans-io.js";
import { type RaftConfig, raftConfigDefaults, validateRaftConfig } from "./config.js";
import {
  applyMembershipChange,
  decodeClusterConfig,
  encodeClusterConfig,
  membersOf,
  quorumOf,
} from "./membership.js";
import { Progress } from "./progress.js";
import { RaftLog } from "./raft-log.js";
import {
  type AppendEntries,
  type AppendEntriesResponse,
  asIndex,
  asTerm,
  type ChangeMembershipError,
  type ClusterConfig,
  type Entry,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type InstallSnapshot,
  type InstallSnapshotResponse,
  type LogIndex,
  type MembershipChange,
  type ProposalTicket,
  type ProposeError,
  type RaftMessage,
  type ReadIndexError,
  type ReadState,
  type Ready,
  type RequestVote,
  type RequestVoteResponse,
  type Result,
  type Role,
  type Snapshot,
  type SnapshotError,
  type SnapshotMetadata,
  type Term,
  type TransferLeadershipError,
} from "./types.js";

/**
 * Deliberately broken variants, to prove the simulation's checkers catch real bugs. Never
 * use outside tests.
 * - `commit-previous-term`: the leader commits any index a quorum holds, even an entry of
 *   an earlier term (the Figure 8 bug);
 * - `forget-vote`: the vote is never written to the hard state, so a restart forgets it;
 * - `read-without-quorum`: ReadIndex skips the heartbeat round, so a deposed leader that has
 *   not noticed yet answers reads from its stale commit index.
 * - `lease-too-long`: with `leaseReads`, a lease once granted never expires.
 */
export type RaftDefect =
  | "none"
  | "commit-previous-term"
  | "forget-vote"
  | "read-without-quorum"
  | "lease-too-long";
export const raftDefects: readonly RaftDefect[] = [
  "none",
  "commit-previous-term",
  "forget-vote",
  "read-without-quorum",
  "lease-too-long",
];

export interface RaftNodeOptions {
  readonly id: NodeId;
  /**
   * The bootstrap configuration's voters: the same list on every founding member, empty on
   * a node that joins later (it learns the configuration from the leader's log or
   * snapshot). Used only until the log or a snapshot holds a configuration.
   */
  readonly voters: readonly NodeId[];
  readonly prng: Prng;
  readonly config?: Partial<RaftConfig>;
  /** Durable state from a previous incarnation. */
  readonly hardState?: HardState;
  /** The last snapshot taken or installed; `entries` continue after it. */
  readonly snapshot?: Snapshot;
  readonly entries?: readonly Entry[];
  readonly defect?: RaftDefect;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  /** Index of the latest snapshot (0: none); the log holds entries after `firstIndex - 1`. */
  readonly snapshotIndex: LogIndex;
  readonly firstIndex: LogIndex;
  readonly config: ClusterConfig;
}

export class RaftNode {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly #prng: Prng;
  readonly #defect: RaftDefect;
  readonly log: RaftLog;

  #term: Term;
  #vote: NodeId | null;
  #role: Role = "follower";
  #leaderId: NodeId | null = null;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #electionTimeout = 0;
  readonly #votes = new Map<NodeId, boolean>();
  readonly #progress = new Map<NodeId, Progress>();
  #uncommittedBytes = 0;

  // Membership (thesis §4.1): the configuration is that of the last config entry in the
  // log, committed or not; else the snapshot's; else the bootstrap one.
  readonly #bootstrap: ClusterConfig;
  #membership: ClusterConfig;
  /**
   * The entry or snapshot the configuration came from (null: the bootstrap one): its index
   * is the pending change a new one must wait for, and a new source means a new config.
   */
  #membershipSource: Entry | SnapshotMetadata | null = null;

  // Snapshots (paper §7).
  /** The latest snapshot, taken here or received; sent to followers that need it. */
  #snapshot: Snapshot | null = null;
  /** A snapshot received from the leader, for the next Ready to persist and restore. */
  #snapshotToInstall: Snapshot | null = null;
  /** A snapshot being received in chunks. */
  #incoming: {
    readonly metadata: SnapshotMetadata;
    readonly totalBytes: number;
    readonly leaderTerm: Term;
    readonly chunks: Uint8Array[];
    received: number;
  } | null = null;

  /** Leader: appends to broadcast when the next Ready is built (proposal batching). */
  #appendPending = false;

  // ReadIndex (thesis §6.4), leader only.
  /** The last heartbeat round sent; every heartbeat starts one, responses echo it. */
  #readRound = 0;
  /** A heartbeat round must go out with the next Ready for reads waiting on round `#readRound + 1`. */
  #readHeartbeatPending = false;
  // Lease reads (thesis §6.4.1), leader only.
  /** Ticks since this node became leader: the lease clock. */
  #leaderTicks = 0;
  /** Leader tick at which each unconfirmed heartbeat round was sent. */
  readonly #roundSentAt = new Map<number, number>();
  /** Reads may skip the heartbeat round while `#leaderTicks` is below this. */
  #leaseUntil = 0;
  /** A transfer campaign skips the followers' lease: no lease reads for the rest of this term. */
  #leaseVoided = false;
  /** Ticks since this node started, for the start-up vote refusal (see `leaseReads`). */
  #ticksSinceStart = 0;
  /** Reads waiting for this leader's first current-term commit (their index is not known yet). */
  #readsWaitingCommit: Uint8Array[] = [];
  /** Reads with their index, waiting for a quorum to echo a round >= `round`; FIFO. */
  #readsWaitingQuorum: {
    readonly index: LogIndex;
    readonly context: Uint8Array;
    readonly round: number;
  }[] = [];
  /** Highest read round each peer echoed in this leadership. */
  readonly #readAcks = new Map<NodeId, number>();
  /** Confirmed reads for the next Ready. */
  #readStates: ReadState[] = [];

  // Leadership transfer (thesis §3.10), leader only.
  #transferee: NodeId | null = null;
  #transferElapsed = 0;

  #messages: Outgoing<RaftMessage>[] = [];
  /** Hard state as last handed to the driver. */
  #persisted: HardState;
  /** Highest index handed out in `committedEntries`. */
  #applied: LogIndex = asIndex(0);
  #readyOutstanding: { readonly lastEntry: LogIndex; readonly applied: LogIndex } | null = null;
  /** Counters for observability and tests. */
  readonly stats = {
    leaseReads: 0,
    electionsStarted: 0,
    preVotesStarted: 0,
    staleMessages: 0,
    leaderChanges: 0,
    snapshotsSent: 0,
    snapshotChunksSent: 0,
    snapshotsInstalled: 0,
  };

  constructor(options: RaftNodeOptions) {
    this.id = options.id;
    assert(new Set(options.voters).size === options.voters.length, "duplicate voter");
    this.#bootstrap = { voters: [...options.voters], learners: [] };
    this.config = Object.freeze({ ...raftConfigDefaults, ...options.config });
    validateRaftConfig(this.config);
    this.#prng = options.prng;
    this.#defect = options.defect ?? "none";
    const hard = options.hardState ?? { term: asTerm(0), vote: null, commit: asIndex(0) };
    const snapshot = options.snapshot ?? null;
    this.log = new RaftLog(
      options.entries ?? [],
      hard.commit,
      snapshot === null ? undefined : snapshot.metadata,
    );
    this.#snapshot = snapshot;
    this.#applied = this.log.offset; // the driver restored the state machine from the snapshot
    this.#term = hard.term;
    this.#vote = hard.vote;
    this.#persisted = hard;
    this.#membership = this.#bootstrap;
    this.#refreshMembership();
    assert(this.log.lastTerm() <= this.#term, "recovered log has a term above the hard state");
    this.#resetElectionTimeout();
  }

  // ----- inspection -----

  get role(): Role {
    return this.#role;
  }
  get term(): Term {
    return this.#term;
  }
  get leaderId(): NodeId | null {
    return this.#leaderId;
  }
  get applied(): LogIndex {
    return this.#applied;
  }
  /** The current configuration's voters. */
  get voters(): readonly NodeId[] {
    return this.#membership.voters;
  }
  get membership(): ClusterConfig {
    return this.#membership;
  }
  /** The latest snapshot (taken here or installed from the leader). */
  get snapshotMetadata(): SnapshotMetadata | null {
    return this.#snapshot?.metadata ?? null;
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leaderId: this.#leaderId,
      commit: this.log.committed,
      applied: this.#applied,
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.#snapshot?.metadata.index ?? asIndex(0),
      firstIndex: this.log.firstIndex(),
      config: this.#membership,
    };
  }

  /** Leader only: the follower's progress (for tests and the dashboard). */
  progressOf(id: NodeId): Readonly<Progress> | undefined {
    return this.#progress.get(id);
  }

  /** Local invariants, cheap; the simulator calls this after every step. */
  checkInvariants(): void {
    assert(this.log.committed <= this.log.lastIndex(), "commit beyond last index");
    assert(this.#applied <= this.log.committed, "applied beyond commit");
    assert(this.log.lastTerm() <= this.#term, "log term above current term");
    if (this.#role === "leader") {
      assert(this.#leaderId === this.id, "leader must know itself as leader");
      assert(this.#vote === this.id, "a leader voted for itself in its term");
    }
    if (this.#role === "candidate") assert(this.#vote === this.id, "candidate votes for itself");
    if (this.#role !== "follower") assert(this.#isVoter(), "only a voter campaigns or leads");
    assert(this.log.offset <= (this.#snapshot?.metadata.index ?? 0), "compacted past the snapshot");
  }

  // ----- inputs -----

  /** Virtual time advanced by one tick (the driver decides how long a tick is). */
  tick(): void {
    this.#assertNoReadyOutstanding();
    this.#ticksSinceStart++;
    if (this.#role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  /** A message from a peer. Stale or unexpected messages are counted and ignored. */
  step(message: RaftMessage): void {
    this.#assertNoReadyOutstanding();
    // Any sender but ourselves: a new learner must accept the leader before its own log
    // names it, and a server answers RPCs whatever its configuration (thesis §4.1). Votes
    // and acknowledgements count only from the members they are meant for.
    if (message.from === this.id) {
      this.stats.staleMessages++;
      return;
    }
    if (message.term > this.#term) {
      if (!this.#onHigherTerm(message)) return;
    } else if (message.term < this.#term) {
      this.#onLowerTerm(message);
      return;
    }
    switch (message.type) {
      case "request-vote":
        this.#onRequestVote(message);
        break;
      case "request-vote-response":
        this.#onRequestVoteResponse(message);
        break;
      case "append-entries":
        this.#onAppendEntries(message);
        break;
      case "append-entries-response":
        this.#onAppendEntriesResponse(message);
        break;
      case "heartbeat":
        this.#onHeartbeat(message);
        break;
      case "heartbeat-response":
        this.#onHeartbeatResponse(message);
        break;
      case "timeout-now":
        this.#onTimeoutNow();
        break;
      case "install-snapshot":
        this.#onInstallSnapshot(message);
        break;
      case "install-snapshot-response":
        this.#onInstallSnapshotResponse(message);
        break;
      default:
        assertNever(message);
    }
  }

  /**
   * Appends `data` as a new entry if this node is the leader.
   *
   * When to use: every client command. The command is committed once an entry with the
   * returned index and term comes out in `committedEntries`; if a different entry comes out
   * at that index, the proposal was lost (leader change) and the client should retry.
   * Gotchas: `Ok` is not durability; nothing is promised until the entry is applied.
   * Example: `const result = node.propose(bytes); if (!result.ok && result.error.code ===
   * "NotLeader") redirect(result.error.leaderHint);`
   */
  propose(data: Uint8Array): Result<ProposalTicket, ProposeError> {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") {
      return this.#leaderId === null
        ? { ok: false, error: { code: "ProposalDropped", reason: "no-leader" } }
        : { ok: false, error: { code: "NotLeader", leaderHint: this.#leaderId } };
    }
    if (this.#transferee !== null) {
      return { ok: false, error: { code: "ProposalDropped", reason: "leadership-transfer" } };
    }
    if (data.length > this.config.proposalBytesMax) {
      return {
        ok: false,
        error: {
          code: "ProposalTooLarge",
          sizeBytes: data.length,
          sizeBytesMax: this.config.proposalBytesMax,
        },
      };
    }
    if (
      this.#uncommittedBytes > 0 &&
      this.#uncommittedBytes + data.length > this.config.uncommittedBytesMax
    ) {
      return {
        ok: false,
        error: {
          code: "Overloaded",
          uncommittedBytes: this.#uncommittedBytes,
          uncommittedBytesMax: this.config.uncommittedBytesMax,
        },
      };
    }
    const entry = this.#appendEntry("command", data);
    return { ok: true, value: { index: entry.index, term: entry.term } };
  }

  /** Starts an election now (tests, and later leadership transfer). */
  campaign(): void {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader" && this.#isVoter()) this.#startElection();
  }

  /**
   * Asks for a linearizable read point (ReadIndex, thesis §6.4) without writing to the log.
   *
   * When to use: a read that must see every write committed before it was issued. On `Ok`,
   * a later Ready carries `readStates` with this `context` and an index; serve the read
   * once the state machine has applied that index. The leader first waits until it has
   * committed an entry of its own term (before that its commit index may be stale), then
   * records its commit index and confirms it is still leader with a heartbeat round a quorum
   * acknowledges.
   * Gotchas: only the leader answers; a follower returns NotLeader (no forwarding: the
   * caller redirects, as for `propose`). Requests pending when leadership is lost are
   * dropped without notice: give each read a timeout. `context` should be unique per read.
   * Example: `if (node.readIndex(id).ok) pending.set(key(id), read);` and on each Ready
   * `for (const s of ready.readStates) serveWhenApplied(s.index, pending.get(key(s.context)))`.
   */
  readIndex(context: Uint8Array): Result<void, ReadIndexError> {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") {
      return this.#leaderId === null
        ? { ok: false, error: { code: "ReadIndexDropped", reason: "no-leader" } }
        : { ok: false, error: { code: "NotLeader", leaderHint: this.#leaderId } };
    }
    const queued = this.#readsWaitingCommit.length + this.#readsWaitingQuorum.length;
    if (queued >= this.config.readIndexQueueMax) {
      return {
        ok: false,
        error: {
          code: "ReadIndexQueueFull",
          queued,
          queuedMax: this.config.readIndexQueueMax,
        },
      };
    }
    if (this.#committedInCurrentTerm() && this.#inReadLease()) {
      this.stats.leaseReads++;
      this.#readStates.push({ index: this.log.committed, context });
    } else if (this.#committedInCurrentTerm()) this.#registerRead(this.log.committed, context);
    else this.#readsWaitingCommit.push(context);
    return { ok: true, value: undefined };
  }

  /**
   * Hands leadership to `to` (thesis §3.10): from now on `propose` fails with
   * ProposalDropped{leadership-transfer}; once `to`'s log matches ours it gets TimeoutNow and
   * campaigns at once (no PreVote, past the followers' CheckQuorum lease). If no new leader
   * takes over within an election timeout the transfer is abandoned and proposals resume.
   *
   * When to use: planned restarts and rebalancing. Gotchas: `Ok` only means the transfer
   * started; watch `leaderId`. Calling it again for another target restarts the transfer;
   * `to === this.id` cancels a transfer in progress.
   */
  transferLeadership(to: NodeId): Result<void, TransferLeadershipError> {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") {
      return { ok: false, error: { code: "NotLeader", leaderHint: this.#leaderId } };
    }
    if (!this.#membership.voters.includes(to)) {
      return { ok: false, error: { code: "UnknownTarget", target: to } };
    }
    if (to === this.id) {
      this.#transferee = null;
      return { ok: true, value: undefined };
    }
    if (this.#transferee === to) return { ok: true, value: undefined };
    this.#transferee = to;
    this.#leaseVoided = true;
    this.#transferElapsed = 0;
    const progress = this.#progress.get(to)!;
    if (progress.match === this.log.lastIndex()) this.#sendTimeoutNow(to);
    else this.#sendAppend(to, true); // even if empty: a rejection restarts a stalled probe
    return { ok: true, value: undefined };
  }

  /** The target of a leadership transfer in progress, or null. */
  get transferee(): NodeId | null {
    return this.#transferee;
  }

  /**
   * Proposes a configuration that differs from the current one by one server (thesis
   * §4.1): add a learner, promote a caught-up learner to voter, or remove a member. It takes
   * effect on each node as soon as it is in its log; the change is done when the returned
   * entry is applied.
   *
   * When to use: growing, shrinking or replacing a group. Add the new node as a learner,
   * wait until it has caught up (promote refuses with LearnerNotCaughtUp until its log
   * reaches the leader's commit index), promote it, then remove the old one.
   * Gotchas: one change at a time (ChangeInProgress until the previous one commits); a new
   * leader accepts changes only after committing an entry of its term (NotReady); the
   * leader cannot remove itself: transfer leadership first.
   */
  changeMembership(change: MembershipChange): Result<ProposalTicket, ChangeMembershipError> {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") {
      return { ok: false, error: { code: "NotLeader", leaderHint: this.#leaderId } };
    }
    if (!this.#committedInCurrentTerm()) return { ok: false, error: { code: "NotReady" } };
    const pendingIndex = this.#membershipSource?.index ?? asIndex(0);
    if (pendingIndex > this.log.committed) {
      return {
        ok: false,
        error: { code: "ChangeInProgress", pendingIndex },
      };
    }
    if (change.type === "remove" && change.node === this.id) {
      const reason = "the leader cannot remove itself: transfer leadership first";
      return { ok: false, error: { code: "InvalidChange", reason } };
    }
    const next = applyMembershipChange(this.#membership, change);
    if (!next.ok) return { ok: false, error: { code: "InvalidChange", reason: next.reason } };
    if (change.type === "promote") {
      const match = this.#progress.get(change.node)?.match ?? asIndex(0);
      if (match + this.config.learnerCatchUpSlack < this.log.committed) {
        return {
          ok: false,
          error: { code: "LearnerNotCaughtUp", match, commit: this.log.committed },
        };
      }
    }
    if (this.#transferee !== null) this.#transferee = null;
    const entry = this.#appendEntry("config", encodeClusterConfig(next.config));
    return { ok: true, value: { index: entry.index, term: entry.term } };
  }

  /**
   * Records that the state machine's image at applied index `index` is `data` (taken by
   * the layer above, already durable), and compacts the log behind it, keeping
   * `compactionRetainEntries` entries for followers that are only a little behind.
   * Followers that need anything older get this snapshot, in chunks.
   *
   * When to use: after applying, when the log since the last snapshot has grown past the
   * application's threshold. Returns the metadata to store beside `data` (the index's term
   * and the configuration in force there: a restart needs both).
   */
  snapshot(index: LogIndex, data: Uint8Array): Result<SnapshotMetadata, SnapshotError> {
    this.#assertNoReadyOutstanding();
    const refuse = (reason: string): Result<SnapshotMetadata, SnapshotError> => ({
      ok: false,
      error: { code: "InvalidSnapshotIndex", index, reason },
    });
    if (index > this.#applied) return refuse(`not applied yet (applied ${this.#applied})`);
    const previous = this.#snapshot?.metadata.index ?? 0;
    if (index <= previous) return refuse(`not after the last snapshot (${previous})`);
    const term = this.log.term(index);
    assert(term !== undefined, "an applied index after the last snapshot is in the log");
    const config = this.#membershipAt(index);
    if (config.voters.length === 0) {
      // A node that joined later (bootstrap voters `[]`) and got the log from the start: up
      // to the entry that added it, the configuration in force is the founders', which only
      // they know. A snapshot claiming an empty one could not be stored or sent (it does
      // not decode), and would leave whoever restores it without a configuration.
      return refuse("the configuration in force there is not known here yet");
    }
    const metadata: SnapshotMetadata = { index, term, config };
    this.#snapshot = { metadata, data };
    this.log.compactTo(asIndex(Math.max(0, index - this.config.compactionRetainEntries)));
    return { ok: true, value: metadata };
  }

  // ----- output -----

  hasReady(): boolean {
    return (
      this.#snapshotToInstall !== null ||
      this.#appendPending ||
      this.#readHeartbeatPending ||
      this.#readStates.length > 0 ||
      this.#messages.length > 0 ||
      this.log.hasUnstable() ||
      this.#hardStateChanged() ||
      this.log.committed > this.#applied
    );
  }

  /** Everything to persist, send and apply since the last `advance()`; see `Ready` for the order. */
  ready(): Ready {
    this.#assertNoReadyOutstanding();
    if (this.#appendPending) {
      this.#appendPending = false;
      this.#broadcastAppend();
    }
    if (this.#readHeartbeatPending) {
      this.#readHeartbeatPending = false;
      this.#broadcastHeartbeat();
    }
    const hardState = this.#hardStateChanged() ? this.#hardState() : null;
    // A leader's messages (appends, heartbeats, snapshot chunks) promise nothing about its
    // own disk: its term and vote were made durable when it campaigned, and its own entries
    // count toward commit only after `advance`. So they may go out while it persists.
    const sendBeforePersist =
      this.#role === "leader" &&
      (hardState === null ||
        (hardState.term === this.#persisted.term && hardState.vote === this.#persisted.vote));
    const entries = this.log.unstableEntries();
    const snapshot = this.#snapshotToInstall;
    this.#snapshotToInstall = null;
    const appliedFrom = Math.max(this.#applied, snapshot?.metadata.index ?? 0);
    const committedEntries = this.log.slice(
      appliedFrom + 1,
      this.log.committed,
      this.config.applyEntriesMax,
      Number.POSITIVE_INFINITY,
    );
    const messages = this.#messages;
    this.#messages = [];
    const readStates = this.#readStates;
    this.#readStates = [];
    if (hardState !== null) this.#persisted = hardState;
    this.#readyOutstanding = {
      lastEntry: entries.at(-1)?.index ?? asIndex(0),
      applied: committedEntries.at(-1)?.index ?? asIndex(appliedFrom),
    };
    return {
      snapshot,
      hardState,
      entries,
      messages,
      committedEntries,
      readStates,
      sendBeforePersist,
    };
  }

  /** The driver persisted, sent and applied the last Ready. */
  advance(): void {
    const outstanding = this.#readyOutstanding;
    assert(outstanding !== null, "advance without ready");
    this.#readyOutstanding = null;
    if (outstanding.lastEntry > 0) {
      this.log.stableTo(outstanding.lastEntry);
      // The leader's own copy counts toward a quorum only now that it is durable.
      if (
        this.#role === "leader" &&
        this.#progress.get(this.id)?.maybeUpdate(outstanding.lastEntry)
      )
        this.#maybeCommit();
    }
    assert(outstanding.applied <= this.log.committed);
    this.#applied = outstanding.applied;
  }

  // ----- timers -----

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTimeout) {
      this.#electionElapsed = 0;
      // Learners and removed servers never campaign (thesis §4.2.1, §4.2.3).
      if (this.#isVoter()) this.#startElection();
    }
  }

  #tickHeartbeat(): void {
    this.#leaderTicks++;
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#transferee !== null && ++this.#transferElapsed >= this.config.electionTicks) {
      this.#transferee = null; // the target did not take over in time: resume proposals
    }
    if (this.#electionElapsed >= this.config.electionTicks) {
      this.#electionElapsed = 0;
      if (this.config.checkQuorum && !this.#maybeKeepLeadership()) return;
    }
    if (this.#heartbeatElapsed >= this.config.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  /** CheckQuorum: false (and stepped down) if fewer than a quorum were heard from lately. */
  #maybeKeepLeadership(): boolean {
    let active = 1;
    for (const [id, progress] of this.#progress) {
      if (id === this.id) continue;
      if (progress.recentActive && this.#membership.voters.includes(id)) active++;
      progress.recentActive = false;
    }
    if (active >= this.#quorum()) return true;
    this.#becomeFollower(this.#term, null);
    return false;
  }

  #resetElectionTimeout(): void {
    this.#electionElapsed = 0;
    this.#electionTimeout = this.config.electionTicks + this.#prng.int(this.config.electionTicks);
  }

  // ----- transitions -----

  #startElection(): void {
    if (this.config.preVote) this.#becomePreCandidate();
    else this.#becomeCandidate();
  }

  #becomeFollower(term: Term, leaderId: NodeId | null): void {
    assert(term >= this.#term);
    if (term > this.#term) {
      this.#term = term;
      this.#vote = null;
    }
    this.#role = "follower";
    this.#setLeader(leaderId);
    this.#progress.clear();
    this.#incoming = null;
    this.#appendPending = false;
    this.#resetLeaderState();
    this.#resetElectionTimeout();
  }

  /** Reads and transfers belong to one leadership; pending reads are dropped (callers time out). */
  #resetLeaderState(): void {
    this.#readHeartbeatPending = false;
    this.#readsWaitingCommit = [];
    this.#readsWaitingQuorum = [];
    this.#readAcks.clear();
    this.#transferee = null;
    this.#transferElapsed = 0;
    this.#leaderTicks = 0;
    this.#roundSentAt.clear();
    this.#leaseUntil = 0;
    this.#leaseVoided = false;
  }

  #becomePreCandidate(): void {
    this.stats.preVotesStarted++;
    this.#role = "pre-candidate";
    this.#setLeader(null);
    this.#resetElectionTimeout();
    this.#votes.clear();
    this.#sendVoteRequests(asTerm(this.#term + 1), true);
  }

  #becomeCandidate(transfer = false): void {
    this.stats.electionsStarted++;
    this.#term = asTerm(this.#term + 1);
    this.#vote = this.id;
    this.#role = "candidate";
    this.#setLeader(null);
    this.#resetElectionTimeout();
    this.#votes.clear();
    this.#sendVoteRequests(this.#term, false, transfer);
  }

  #sendVoteRequests(term: Term, preVote: boolean, transfer = false): void {
    this.#votes.set(this.id, true);
    if (this.#maybeWinElection(preVote)) return;
    for (const peer of this.#membership.voters) {
      if (peer === this.id) continue;
      this.#send(peer, {
        type: "request-vote",
        from: this.id,
        term,
        preVote,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        ...(transfer ? { transfer: true } : {}),
      });
    }
  }

  /** True if the tally decided the election (won or lost). */
  #maybeWinElection(preVote: boolean): boolean {
    let granted = 0;
    let rejected = 0;
    for (const [voter, vote] of this.#votes) {
      if (!this.#membership.voters.includes(voter)) continue; // config changed meanwhile
      if (vote) granted++;
      else rejected++;
    }
    if (granted >= this.#quorum()) {
      if (preVote) this.#becomeCandidate();
      else this.#becomeLeader();
      return true;
    }
    if (rejected >= this.#quorum()) {
      this.#becomeFollower(this.#term, null);
      return true;
    }
    return false;
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "only a candidate becomes leader");
    this.#role = "leader";
    this.#setLeader(this.id);
    this.#heartbeatElapsed = 0;
    this.#electionElapsed = 0;
    this.#uncommittedBytes = 0;
    this.#progress.clear();
    this.#resetLeaderState();
    this.#trackMembers();
    // A no-op in the new term lets earlier-term entries commit (paper §5.4.2).
    this.#appendEntry("noop", new Uint8Array(0));
  }

  #setLeader(leaderId: NodeId | null): void {
    if (leaderId !== null && leaderId !== this.#leaderId) this.stats.leaderChanges++;
    this.#leaderId = leaderId;
  }

  // ----- messages -----

  /** A message from a higher term. False if it must be dropped without further handling. */
  #onHigherTerm(message: RaftMessage): boolean {
    if (message.type === "request-vote") {
      // Leader lease (CheckQuorum): while we hear from a leader, ignore disruptive candidates.
      // A transfer campaign is sanctioned by the leader itself, so it passes the lease.
      const inLease =
        message.transfer !== true &&
        this.config.checkQuorum &&
        ((this.#leaderId !== null && this.#electionElapsed < this.config.electionTicks) ||
          // Just started: we may have acknowledged a leader's lease before a crash.
          (this.config.leaseReads && this.#ticksSinceStart < this.config.electionTicks));
      if (inLease) return false;
      if (message.preVote) return true; // answering a PreVote never changes our term
    }
    if (message.type === "request-vote-response" && message.preVote && message.granted) {
      return true; // carries the term we would campaign in, not a newer leader's
    }
    const leader =
      message.type === "append-entries" ||
      message.type === "heartbeat" ||
      message.type === "install-snapshot"
        ? message.from
        : null;
    this.#becomeFollower(message.term, leader);
    return true;
  }

  #onLowerTerm(message: RaftMessage): void {
    this.stats.staleMessages++;
    if (
      message.type === "append-entries" ||
      message.type === "heartbeat" ||
      message.type === "install-snapshot"
    ) {
      // A stale leader (e.g. back from a partition): tell it our term so it steps down.
      // Needed with PreVote/CheckQuorum, where our higher term may never reach it otherwise.
      this.#respondToAppend(message.from, { success: false });
    } else if (message.type === "request-vote" && message.preVote) {
      this.#send(message.from, {
        type: "request-vote-response",
        from: this.id,
        term: this.#term,
        preVote: true,
        voteTerm: message.term,
        granted: false,
      });
    }
  }

  #onRequestVote(message: RequestVote): void {
    // As etcd: a PreVote for a later term is always eligible; a real vote only if we have not
    // voted in this term (or voted for this candidate: a retransmitted request).
    const canVote =
      this.#vote === message.from ||
      (this.#vote === null && this.#leaderId === null) ||
      (message.preVote && message.term > this.#term);
    const granted = canVote && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    if (granted && !message.preVote) {
      this.#vote = message.from;
      this.#resetElectionTimeout();
    }
    this.#send(message.from, {
      type: "request-vote-response",
      from: this.id,
      term: granted && message.preVote ? message.term : this.#term,
      preVote: message.preVote,
      voteTerm: message.term,
      granted,
    });
  }

  #onRequestVoteResponse(message: RequestVoteResponse): void {
    const expecting =
      (this.#role === "pre-candidate" && message.preVote && message.voteTerm === this.#term + 1) ||
      (this.#role === "candidate" && !message.preVote && message.voteTerm === this.#term);
    if (!expecting) return;
    this.#votes.set(message.from, message.granted);
    this.#maybeWinElection(message.preVote);
  }

  /**
   * A message only the current term's leader sends (append, heartbeat, snapshot chunk): we
   * follow its sender and restart the election timer. False if we are the leader ourselves
   * (two leaders in one term: impossible unless a defect), and the message is dropped.
   */
  #followLeader(message: AppendEntries | Heartbeat | InstallSnapshot): boolean {
    if (this.#role === "leader") {
      this.stats.staleMessages++;
      return false;
    }
    if (this.#role !== "follower" || this.#leaderId !== message.from) {
      this.#becomeFollower(message.term, message.from);
    }
    this.#electionElapsed = 0;
    return true;
  }

  /** An append answer in our term: a success unless `fields` say otherwise. */
  #respondToAppend(to: NodeId, fields: Partial<AppendEntriesResponse>): void {
    this.#send(to, {
      type: "append-entries-response",
      from: this.id,
      term: this.#term,
      success: true,
      matchIndex: asIndex(0),
      rejectedIndex: asIndex(0),
      hintIndex: asIndex(0),
      hintTerm: asTerm(0),
      ...fields,
    });
  }

  #onAppendEntries(message: AppendEntries): void {
    if (!this.#followLeader(message)) return;
    if (message.prevLogIndex < this.log.committed) {
      this.#respondToAppend(message.from, { matchIndex: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(
      message.prevLogIndex,
      message.prevLogTerm,
      message.leaderCommit,
      message.entries,
    );
    this.#refreshMembership(); // a config entry appended, or truncated away
    if (lastNew !== null) {
      this.#respondToAppend(message.from, { matchIndex: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(
      asIndex(Math.min(message.prevLogIndex, this.log.lastIndex())),
      message.prevLogTerm,
    );
    this.#respondToAppend(message.from, {
      success: false,
      rejectedIndex: message.prevLogIndex,
      hintIndex: hint.index,
      hintTerm: hint.term,
    });
  }

  #onAppendEntriesResponse(message: AppendEntriesResponse): void {
    if (this.#role !== "leader") return;
    const progress = this.#progress.get(message.from);
    if (progress === undefined) return; // not (or no longer) a member
    progress.recentActive = true;
    if (!message.success) {
      // Map the follower's hint through our log: skip every entry of terms it lacks. Below
      // our compaction point we know no terms: probing there leads to a snapshot.
      const probeFrom =
        message.hintTerm > 0 && message.hintIndex >= this.log.offset
          ? this.log.findConflictByTerm(message.hintIndex, message.hintTerm).index
          : message.hintIndex;
      if (progress.maybeDecrease(message.rejectedIndex, probeFrom)) this.#sendAppend(message.from);
      return;
    }
    // Only a faulty peer acks past our log; drop it rather than trust it.
    if (message.matchIndex > this.log.lastIndex()) return;
    if (progress.state === "snapshot") {
      // The snapshot is installed (or the follower turned out not to need it).
      if (message.matchIndex < progress.transfer!.snapshot.metadata.index) return;
      progress.becomeProbe();
    }
    const wasProbe = progress.state === "probe";
    const updated = progress.maybeUpdate(message.matchIndex);
    if (message.from === this.#transferee && progress.match === this.log.lastIndex()) {
      this.#sendTimeoutNow(message.from);
    }
    if (!updated && !wasProbe) return;
    if (wasProbe) progress.becomeReplicate();
    if (this.#maybeCommit()) this.#broadcastAppend();
    else this.#sendAppend(message.from);
  }

  #onHeartbeat(message: Heartbeat): void {
    if (!this.#followLeader(message)) return;
    // The leader sends min(our match, its commit), which we hold durably; cap it anyway so a
    // faulty peer cannot push the commit index past our log.
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()) as LogIndex);
    this.#send(message.from, {
      type: "heartbeat-response",
      from: this.id,
      term: this.#term,
      readRound: message.readRound ?? 0,
    });
  }

  #onHeartbeatResponse(message: HeartbeatResponse): void {
    if (this.#role !== "leader") return;
    const progress = this.#progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    const round = message.readRound ?? 0;
    if (round > (this.#readAcks.get(message.from) ?? 0)) {
      if (round > this.#readRound) return; // a round we never sent: a faulty peer
      this.#readAcks.set(message.from, round);
      this.#releaseReads();
      this.#extendLease();
    }
    if (progress.match >= this.log.lastIndex()) {
      // TimeoutNow may have been lost: repeat it while the transfer is on.
      if (message.from === this.#transferee) this.#sendTimeoutNow(message.from);
      return;
    }
    if (progress.state === "snapshot") {
      // No chunk acknowledged for a heartbeat interval: resend from the confirmed byte, or
      // from a lower one the follower reported meanwhile (it lost what it had).
      const transfer = progress.transfer!;
      if (!transfer.progressed) {
        if (transfer.behind !== null) transfer.acked = transfer.behind;
        transfer.next = transfer.acked;
        transfer.allSent = false;
      }
      transfer.progressed = false;
      transfer.behind = null;
      this.#sendSnapshotChunks(message.from, progress);
    } else if (progress.state === "probe" || progress.next - 1 < this.log.offset) {
      progress.probeSent = false;
      this.#sendAppend(message.from);
    } else {
      // Appends may have been lost: an empty append at next-1 either confirms the follower
      // has everything in flight or is rejected and drops it back to probing. Not counted
      // against the in-flight limit, so a full window of lost appends cannot stall it.
      this.#sendAppendAt(message.from, asIndex(progress.next - 1), []);
    }
  }

  #onTimeoutNow(): void {
    if (this.#role === "leader" || !this.#isVoter()) {
      this.stats.staleMessages++;
      return;
    }
    // Campaign at once in a real election: the leader vouched that our log is up to date.
    this.#becomeCandidate(true);
  }

  // ----- snapshots -----

  /** Follower: one chunk of the leader's snapshot (paper §7, Figure 13). */
  #onInstallSnapshot(message: InstallSnapshot): void {
    if (!this.#followLeader(message)) return;
    const { metadata } = message;
    const ack = (received: number) =>
      this.#send(message.from, {
        type: "install-snapshot-response",
        from: this.id,
        term: this.#term,
        index: metadata.index,
        received,
      });
    const installed = (matchIndex: LogIndex) => this.#respondToAppend(message.from, { matchIndex });
    if (metadata.index <= this.log.committed) {
      // Nothing to install: our committed prefix already covers it (a stale or repeated send).
      this.#incoming = null;
      installed(this.log.committed);
      return;
    }
    let incoming = this.#incoming;
    const sameSnapshot =
      incoming !== null &&
      incoming.metadata.index === metadata.index &&
      incoming.metadata.term === metadata.term &&
      incoming.totalBytes === message.totalBytes &&
      incoming.leaderTerm === this.#term;
    if (!sameSnapshot) {
      if (message.offset !== 0) {
        ack(0); // we hold none of it (restarted, or a newer snapshot): start over
        return;
      }
      incoming = {
        metadata,
        totalBytes: message.totalBytes,
        leaderTerm: this.#term,
        chunks: [],
        received: 0,
      };
      this.#incoming = incoming;
    }
    assert(incoming !== null);
    if (message.offset !== incoming.received) {
      ack(incoming.received); // a gap (lost chunk) or a duplicate: say where we are
      return;
    }
    incoming.chunks.push(message.data);
    incoming.received += message.data.length;
    if (incoming.received < incoming.totalBytes) {
      ack(incoming.received);
      return;
    }
    this.#incoming = null;
    const data = new Uint8Array(incoming.totalBytes);
    let offset = 0;
    for (const chunk of incoming.chunks) {
      data.set(chunk, offset);
      offset += chunk.length;
    }
    this.#restoreSnapshot({ metadata, data });
    installed(metadata.index);
  }

  #restoreSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (this.log.term(index) === term) {
      // Our log already holds the snapshot's last entry, so it matches the leader's up to
      // there: commit up to it and keep the entries after it (etcd `restore` does the same).
      this.log.commitTo(index);
      return;
    }
    this.log.restore(index, term);
    this.#snapshot = snapshot;
    this.#snapshotToInstall = snapshot;
    this.#refreshMembership();
    this.stats.snapshotsInstalled++;
  }

  /** Leader: a follower confirmed the bytes it holds of the snapshot being sent. */
  #onInstallSnapshotResponse(message: InstallSnapshotResponse): void {
    if (this.#role !== "leader") return;
    const progress = this.#progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    const transfer = progress.transfer;
    if (progress.state !== "snapshot" || transfer === null) return;
    if (message.index !== transfer.snapshot.metadata.index) return; // an older transfer's
    if (message.received > transfer.snapshot.data.length) return; // a faulty peer
    if (message.received > transfer.acked) {
      transfer.acked = message.received;
      transfer.progressed = true;
      // After a resend from an earlier byte, an answer to a chunk sent before it can
      // confirm bytes past `next`: never resend confirmed bytes (nor exceed the window).
      if (transfer.next < transfer.acked) transfer.next = transfer.acked;
    } else if (message.received < transfer.acked) {
      // The follower restarted (it lost what it had), or this is an old answer that arrived
      // late: rewinding at once would resend acknowledged chunks at every reordering. The
      // next heartbeat answer decides (see `SnapshotTransfer.behind`).
      transfer.behind = Math.min(transfer.behind ?? message.received, message.received);
    }
    this.#sendSnapshotChunks(message.from, progress);
  }

  /** Starts sending our snapshot to a follower whose next entry is compacted away. */
  #startSnapshot(peer: NodeId, progress: Progress): void {
    const snapshot = this.#snapshot;
    assert(snapshot !== null, "the log is compacted only behind a snapshot");
    progress.becomeSnapshot(snapshot);
    this.stats.snapshotsSent++;
    this.#sendSnapshotChunks(peer, progress);
  }

  /** Sends chunks while fewer than `snapshotChunksInflightMax` are unacknowledged. */
  #sendSnapshotChunks(peer: NodeId, progress: Progress): void {
    const transfer = progress.transfer!;
    const { snapshot } = transfer;
    const total = snapshot.data.length;
    const chunkBytes = this.config.snapshotChunkBytes;
    const windowBytes = chunkBytes * this.config.snapshotChunksInflightMax;
    while (!transfer.allSent && transfer.next - transfer.acked < windowBytes) {
      const end = Math.min(total, transfer.next + chunkBytes);
      this.#send(peer, {
        type: "install-snapshot",
        from: this.id,
        term: this.#term,
        metadata: snapshot.metadata,
        totalBytes: total,
        offset: transfer.next,
        data: snapshot.data.subarray(transfer.next, end),
      });
      this.stats.snapshotChunksSent++;
      transfer.next = end;
      if (end === total) transfer.allSent = true;
    }
  }

  // ----- membership -----

  #isVoter(): boolean {
    return this.#membership.voters.includes(this.id);
  }

  /** The configuration in force at `index` (at or after the snapshot). */
  #membershipAt(index: number): ClusterConfig {
    const entry = this.log.lastConfigEntry(index);
    if (entry !== undefined) return decodeClusterConfig(entry.data)!;
    return this.#snapshot?.metadata.config ?? this.#bootstrap;
  }

  /** Re-reads the configuration after the log changed; a leader tracks the new members. */
  #refreshMembership(): void {
    const source = this.log.lastConfigEntry() ?? this.#snapshot?.metadata ?? null;
    if (source === this.#membershipSource) return;
    this.#membershipSource = source;
    this.#membership = this.#membershipAt(this.log.lastIndex());
    if (this.#role === "leader") {
      this.#trackMembers();
      if (this.#maybeCommit()) this.#appendPending = true; // a smaller quorum may commit more
    } else if (this.#role !== "follower" && !this.#isVoter()) {
      this.#becomeFollower(this.#term, null);
    }
  }

  /** Leader: a progress for every member (new ones start probing at our end), none for others. */
  #trackMembers(): void {
    const members = membersOf(this.#membership);
    for (const id of [...this.#progress.keys()]) {
      if (!members.includes(id)) this.#progress.delete(id);
    }
    for (const id of members) {
      if (this.#progress.has(id)) continue;
      const progress = new Progress(
        asIndex(this.log.lastIndex() + 1),
        this.config.appendsInflightMax,
        this.config.appendsInflightBytesMax,
      );
      // Our own entries count once durable (see `advance`), so a leader can write its log in
      // parallel with replicating it (thesis §10.2.1).
      if (id === this.id) progress.match = this.log.lastStableIndex();
      this.#progress.set(id, progress);
    }
  }

  // ----- reads and transfers -----

  #committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.#term;
  }

  /** A read at `index` joins the current round; a heartbeat round goes out with the next Ready. */
  #registerRead(index: LogIndex, context: Uint8Array): void {
    if (this.#quorum() === 1 || this.#defect === "read-without-quorum") {
      this.#readStates.push({ index, context });
      return;
    }
    // Answered by the next heartbeat round: one sent after this read was registered.
    this.#readHeartbeatPending = true;
    this.#readsWaitingQuorum.push({ index, context, round: this.#readRound + 1 });
  }

  /** Releases, in order, every read whose round a quorum (counting us) has echoed. */
  #releaseReads(): void {
    while (this.#readsWaitingQuorum.length > 0) {
      const read = this.#readsWaitingQuorum[0]!;
      let acks = 1;
      for (const [peer, round] of this.#readAcks)
        if (peer !== this.id && round >= read.round && this.#membership.voters.includes(peer))
          acks++;
      if (acks < this.#quorum()) return;
      this.#readsWaitingQuorum.shift();
      this.#readStates.push({ index: read.index, context: read.context });
    }
  }

  /** Lease length in ticks; 0 when leases are off or unsafe with these settings. */
  #leaseTicks(): number {
    const { leaseReads, checkQuorum, electionTicks, leaseClockDriftPercent } = this.config;
    if (!leaseReads || !checkQuorum) return 0;
    return Math.max(0, Math.floor((electionTicks * (100 - leaseClockDriftPercent)) / 100) - 1);
  }

  #inReadLease(): boolean {
    if (this.#defect === "lease-too-long" && this.#leaseUntil > 0) return true;
    return !this.#leaseVoided && this.#leaderTicks < this.#leaseUntil;
  }

  /**
   * The newest round a quorum (counting us) acknowledged proves no other leader can exist
   * until a lease after it was sent: every node of that quorum refuses votes for
   * `electionTicks` after receiving it, and any electing quorum includes one of them.
   */
  #extendLease(): void {
    const leaseTicks = this.#leaseTicks();
    if (leaseTicks === 0) return;
    const rounds = this.#membership.voters.map((id) =>
      id === this.id ? this.#readRound : (this.#readAcks.get(id) ?? 0),
    );
    rounds.sort((a, b) => b - a);
    const confirmed = rounds[this.#quorum() - 1] ?? 0;
    const sentAt = this.#roundSentAt.get(confirmed);
    if (sentAt !== undefined) this.#leaseUntil = Math.max(this.#leaseUntil, sentAt + leaseTicks);
    for (const round of this.#roundSentAt.keys())
      if (round <= confirmed) this.#roundSentAt.delete(round);
  }

  #sendTimeoutNow(peer: NodeId): void {
    this.#send(peer, { type: "timeout-now", from: this.id, term: this.#term });
  }

  // ----- leader replication -----

  #appendEntry(kind: Entry["kind"], data: Uint8Array): Entry {
    assert(this.#role === "leader");
    const entry: Entry = {
      term: this.#term,
      index: asIndex(this.log.lastIndex() + 1),
      kind,
      data,
    };
    this.log.append([entry]);
    this.#uncommittedBytes += data.length;
    this.#appendPending = true;
    if (kind === "config") this.#refreshMembership(); // in force from now, on the leader too
    this.#maybeCommit(); // a config change may have shrunk the quorum
    return entry;
  }

  #broadcastAppend(): void {
    for (const peer of this.#progress.keys()) if (peer !== this.id) this.#sendAppend(peer, true);
  }

  #broadcastHeartbeat(): void {
    this.#readRound++;
    this.#roundSentAt.set(this.#readRound, this.#leaderTicks);
    for (const [peer, progress] of this.#progress) {
      if (peer === this.id) continue;
      this.#send(peer, {
        type: "heartbeat",
        from: this.id,
        term: this.#term,
        commit: asIndex(Math.min(progress.match, this.log.committed)),
        readRound: this.#readRound,
      });
    }
  }

  /** Sends the next batch to `peer` unless its progress is paused. */
  #sendAppend(peer: NodeId, sendIfEmpty = false): void {
    const progress = this.#progress.get(peer)!;
    if (progress.state === "snapshot") return; // chunks go by their own window
    if (progress.next - 1 < this.log.offset) {
      // What it needs next is only in the snapshot; checked before the pause, because a
      // full window of lost appends would otherwise block this follower for good.
      this.#startSnapshot(peer, progress);
      return;
    }
    if (progress.isPaused()) return;
    const entries = this.log.slice(
      progress.next,
      this.log.lastIndex(),
      this.config.entriesPerAppendMax,
      this.config.appendBytesMax,
    );
    if (entries.length === 0 && !sendIfEmpty && progress.state === "replicate") return;
    this.#sendAppendAt(peer, asIndex(progress.next - 1), entries);
    let bytes = 0;
    for (const entry of entries) bytes += entry.data.length;
    progress.sentAppend(asIndex(progress.next - 1 + entries.length), entries.length, bytes);
  }

  #sendAppendAt(peer: NodeId, prevLogIndex: LogIndex, entries: readonly Entry[]): void {
    const prevLogTerm = this.log.term(prevLogIndex);
    assert(prevLogTerm !== undefined, "append after the end of the log");
    this.#send(peer, {
      type: "append-entries",
      from: this.id,
      term: this.#term,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.log.committed,
    });
  }

  /**
   * Advances the commit index to the highest index a quorum holds, but only if that entry is
   * from the current term: an earlier-term entry on a quorum can still be overwritten
   * (paper §5.4.2, Figure 8); it commits indirectly when a current-term entry after it does.
   */
  #maybeCommit(): boolean {
    const matches = this.#membership.voters.map(
      (id) => this.#progress.get(id)?.match ?? asIndex(0),
    );
    matches.sort((a, b) => b - a);
    const candidate = matches[this.#quorum() - 1];
    assert(candidate !== undefined);
    if (candidate <= this.log.committed) return false;
    if (this.#defect !== "commit-previous-term" && this.log.term(candidate) !== this.#term) {
      return false;
    }
    const previous = this.log.committed;
    this.log.commitTo(candidate);
    for (let index = previous + 1; index <= candidate; index++) {
      const entry = this.log.entry(index)!;
      if (entry.term === this.#term) this.#uncommittedBytes -= entry.data.length;
    }
    this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes);
    if (this.#readsWaitingCommit.length > 0 && this.#committedInCurrentTerm()) {
      // The first current-term commit: our commit index is now at least every earlier
      // leader's, so it is a valid read index for everything queued before it (§6.4 step 1).
      const waiting = this.#readsWaitingCommit;
      this.#readsWaitingCommit = [];
      for (const context of waiting) this.#registerRead(this.log.committed, context);
    }
    return true;
  }

  // ----- helpers -----

  #quorum(): number {
    return quorumOf(this.#membership);
  }

  #send(target: NodeId, message: RaftMessage): void {
    this.#messages.push({ target, message });
  }

  #hardState(): HardState {
    return {
      term: this.#term,
      vote: this.#defect === "forget-vote" ? null : this.#vote,
      commit: this.log.committed,
    };
  }

  #hardStateChanged(): boolean {
    const current = this.#hardState();
    return (
      current.term !== this.#persisted.term ||
      current.vote !== this.#persisted.vote ||
      current.commit !== this.#persisted.commit
    );
  }

  #assertNoReadyOutstanding(): void {
    assert(this.#readyOutstanding === null, "call advance() after ready() before other input");
  }
}
