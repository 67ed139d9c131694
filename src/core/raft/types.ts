/**
 * @module The data of the Raft core: branded terms and indexes, log entries, the persisted
 * hard state, the wire messages (a closed union on `type`, as etcd's `MsgX`), the typed
 * proposal errors, and the `Ready` batch with its ordering contract. Pure data, no behaviour.
 */
import type { NodeId, Outgoing } from "../sans-io.js";

/** A Raft term (Raft paper §5.1). 0 is "before any election". */
export type Term = number & { readonly __brand: "Term" };
/** A 1-based log position. 0 is the empty prefix (the "previous" of the first entry). */
export type LogIndex = number & { readonly __brand: "LogIndex" };

export function asTerm(value: number): Term {
  return value as Term;
}
export function asIndex(value: number): LogIndex {
  return value as LogIndex;
}

/**
 * One log entry. `noop` is the empty entry a new leader appends in its own term so that
 * earlier-term entries can commit (paper §5.4.2, thesis §3.6.2); the layer above skips it.
 * `config` holds a whole `ClusterConfig` (encoded by `membership.ts`); it takes effect on
 * every node as soon as it is in the log, committed or not (thesis §4.1).
 */
export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

export type EntryKind = "command" | "noop" | "config";
export const entryKinds: readonly EntryKind[] = ["command", "noop", "config"];

/**
 * Who is in the group. Voters elect and form quorums; learners receive the log (and
 * snapshots) but never vote or count for commit, so a new node catches up without
 * weakening availability (thesis §4.2.1).
 */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One server at a time (thesis §4.1); a learner first, promoted once caught up. */
export type MembershipChange =
  | { readonly type: "add-learner"; readonly node: NodeId }
  | { readonly type: "promote"; readonly node: NodeId }
  | { readonly type: "remove"; readonly node: NodeId };

/** `changeMembership` refused; nothing was appended. */
export type ChangeMembershipError =
  | { readonly code: "NotLeader"; readonly leaderHint: NodeId | null }
  /** The previous change is not committed yet: one at a time. */
  | { readonly code: "ChangeInProgress"; readonly pendingIndex: LogIndex }
  /**
   * This leader has not committed an entry of its own term yet: until it has, a change
   * could overlap an uncommitted one of a previous leader (Ongaro's 2015 fix to §4.1).
   */
  | { readonly code: "NotReady" }
  /** The learner's log is behind the leader's commit index: promoting it would stall commits. */
  | { readonly code: "LearnerNotCaughtUp"; readonly match: LogIndex; readonly commit: LogIndex }
  | { readonly code: "InvalidChange"; readonly reason: string };

/** What a snapshot stands for: the state after applying every entry up to `index`. */
export interface SnapshotMetadata {
  readonly index: LogIndex;
  readonly term: Term;
  /** The configuration in force at `index` (the log that held it is gone). */
  readonly config: ClusterConfig;
}

/** A state machine image; `data` is opaque to Raft. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent (paper Figure 2). */
export interface HardState {
  readonly term: Term;
  /** Who this node voted for in `term`; null if nobody. Never changes within a term once set. */
  readonly vote: NodeId | null;
  /** Highest index known committed. Persisted only to restart faster; safe to lose. */
  readonly commit: LogIndex;
}

export type RaftMessage =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | TimeoutNow
  | InstallSnapshot
  | InstallSnapshotResponse;

/**
 * A vote request, or with `preVote` a PreVote probe (thesis §9.6): "would you vote for me in
 * `term`?" without the sender having moved to `term`.
 */
export interface RequestVote {
  readonly type: "request-vote";
  readonly from: NodeId;
  /** Candidate's term; for a PreVote the term it would campaign in (its term + 1). */
  readonly term: Term;
  readonly preVote: boolean;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  /**
   * Set by a leadership-transfer target campaigning on TimeoutNow (thesis §3.10): voters
   * then skip the CheckQuorum lease check, which would otherwise refuse the vote because
   * they heard from the (abdicating) leader recently. Absent means false.
   */
  readonly transfer?: boolean;
}

export interface RequestVoteResponse {
  readonly type: "request-vote-response";
  readonly from: NodeId;
  /** The responder's term; for a granted PreVote, the requested term (as etcd does). */
  readonly term: Term;
  readonly preVote: boolean;
  /** The term the vote was requested for: stale responses from an older campaign are ignored. */
  readonly voteTerm: Term;
  readonly granted: boolean;
}

export interface AppendEntries {
  readonly type: "append-entries";
  readonly from: NodeId;
  readonly term: Term;
  readonly prevLogIndex: LogIndex;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly leaderCommit: LogIndex;
}

export interface AppendEntriesResponse {
  readonly type: "append-entries-response";
  readonly from: NodeId;
  readonly term: Term;
  readonly success: boolean;
  /** On success: the follower's log matches the leader's up to here. */
  readonly matchIndex: LogIndex;
  /** On failure: the `prevLogIndex` that failed the consistency check. */
  readonly rejectedIndex: LogIndex;
  /**
   * On failure, the fast-backtracking hint (etcd `RejectHint`/`LogTerm`, paper §5.3 end): the
   * follower's largest index <= min(rejectedIndex, its last index) whose term is <= the
   * leader's `prevLogTerm`, and that entry's term. The leader then skips whole terms.
   */
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

/** Leader liveness and commit propagation; carries no entries so it never counts as in flight. */
export interface Heartbeat {
  readonly type: "heartbeat";
  readonly from: NodeId;
  readonly term: Term;
  /** min(follower's match, leader commit): never beyond what the follower is known to hold. */
  readonly commit: LogIndex;
  /**
   * ReadIndex round (thesis §6.4): the leader's read-round counter when this heartbeat was
   * sent; echoed in the response. A quorum echoing round >= R proves the sender was still
   * leader after every read registered in round R. Absent means 0 (no read asked for yet).
   */
  readonly readRound?: number;
}

export interface HeartbeatResponse {
  readonly type: "heartbeat-response";
  readonly from: NodeId;
  readonly term: Term;
  /** The `readRound` of the heartbeat being answered; absent means 0. */
  readonly readRound?: number;
}

/**
 * Leadership transfer (thesis §3.10): the leader, having brought the target's log up to
 * date, tells it to start an election at once (no PreVote, no waiting for a timeout).
 */
export interface TimeoutNow {
  readonly type: "timeout-now";
  readonly from: NodeId;
  readonly term: Term;
}

/**
 * One chunk of a snapshot (paper §7, Figure 13): a follower whose next entry the leader has
 * compacted away receives the leader's snapshot in chunks of at most `snapshotChunkBytes`,
 * a few in flight, each acknowledged with the bytes received so far. The last chunk
 * (`offset + data.length === totalBytes`) installs it.
 */
export interface InstallSnapshot {
  readonly type: "install-snapshot";
  readonly from: NodeId;
  readonly term: Term;
  readonly metadata: SnapshotMetadata;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Progress of a snapshot transfer: the follower holds the first `received` bytes of the
 * snapshot at `index`. An answer that does not move forward tells the leader to resend
 * from `received` (a chunk was lost or reordered). Once installed, the follower answers
 * with an `append-entries-response` instead, like any append.
 */
export interface InstallSnapshotResponse {
  readonly type: "install-snapshot-response";
  readonly from: NodeId;
  readonly term: Term;
  readonly index: LogIndex;
  readonly received: number;
}

/**
 * A confirmed ReadIndex request (thesis §6.4): once the state machine has applied up to
 * `index`, a read tagged with `context` is linearizable and may be served locally.
 */
export interface ReadState {
  readonly index: LogIndex;
  readonly context: Uint8Array;
}

/** `readIndex` refused; nothing was queued. */
export type ReadIndexError =
  /** Followers do not forward reads: ask the leader (simplest correct choice, docs/raft.md). */
  | { readonly code: "NotLeader"; readonly leaderHint: NodeId }
  | { readonly code: "ReadIndexDropped"; readonly reason: "no-leader" }
  | { readonly code: "ReadIndexQueueFull"; readonly queued: number; readonly queuedMax: number };

/** `transferLeadership` refused. */
export type TransferLeadershipError =
  | { readonly code: "NotLeader"; readonly leaderHint: NodeId | null }
  /** Not a voter of the current configuration. */
  | { readonly code: "UnknownTarget"; readonly target: NodeId };

/** `snapshot` refused: nothing changed. */
export type SnapshotError =
  /** Only an applied index can be snapshotted, and only one newer than the last snapshot. */
  { readonly code: "InvalidSnapshotIndex"; readonly index: LogIndex; readonly reason: string };

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Proposal refused; nothing was appended. Every variant is an operating error the caller handles. */
export type ProposeError =
  | { readonly code: "NotLeader"; readonly leaderHint: NodeId }
  /**
   * No leader is known (election in progress), or this leader is handing leadership over
   * (`transferLeadership`, thesis §3.10): retry after a short wait.
   */
  | { readonly code: "ProposalDropped"; readonly reason: "no-leader" | "leadership-transfer" }
  | {
      readonly code: "Overloaded";
      readonly uncommittedBytes: number;
      readonly uncommittedBytesMax: number;
    }
  | {
      readonly code: "ProposalTooLarge";
      readonly sizeBytes: number;
      readonly sizeBytesMax: number;
    };

export type Result<T, E> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

/** Where an accepted proposal sits; it is committed when an applied entry has this index and term. */
export interface ProposalTicket {
  readonly index: LogIndex;
  readonly term: Term;
}

/**
 * Everything the core produced since the last `advance()`. The driver must handle it in
 * this order, then call `advance()` before giving the core any other input:
 *
 *   1. persist `snapshot` (if not null: one received from the leader; it replaces the whole
 *      stored log, every stored entry is dropped), `hardState`
 *      (if not null) and `entries`, and make them durable (fsync). `entries` may start at or
 *      below the last stored index: the stored log is truncated from `entries[0].index`
 *      first (a conflicting suffix replaced by the leader's, paper §5.3);
 *   2. only then send `messages`. A vote grant, an append acknowledgement or a commit index
 *      in a message is a promise about durable state: sending before the fsync completes
 *      could let a crash un-vote or un-append what a peer already counted (a second leader
 *      in one term, or a lost committed entry);
 *   3. restore the state machine from `snapshot` if there is one, then apply
 *      `committedEntries` in order (they may include entries persisted in step 1 of this
 *      same Ready, never entries that are not yet durable). `config` entries come out too:
 *      the layer above needs no action for them (the core already acts on them).
 *
 * If persisting fails the node must stop (crash): the core has already assumed success.
 */
export interface Ready {
  /** A snapshot from the leader to persist and restore (see the order above). */
  readonly snapshot: Snapshot | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly messages: readonly Outgoing<RaftMessage>[];
  readonly committedEntries: readonly Entry[];
  /**
   * Confirmed ReadIndex requests, in request order. Serve each read once the state machine
   * has applied `index` (i.e. after applying this or a later Ready's committed entries).
   * Reads still pending when leadership is lost are dropped silently: callers time out.
   */
  readonly readStates: readonly ReadState[];
  /**
   * True when every message is a leader's replication traffic, which may be sent BEFORE
   * step 1 completes, so the leader's fsync overlaps its followers' (thesis §10.2.1): the
   * leader's own new entries count toward a quorum only once `advance()` confirms them
   * durable, and its term and vote were already durable when it campaigned.
   */
  readonly sendBeforePersist: boolean;
}
