/**
 * @module Raft limits and timing, one place, each with its reason (etcd `raft.Config`).
 * Pure data plus `validateRaftConfig`.
 */
import { assert } from "../../lib/assert.js";

export interface RaftConfig {
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is
   * drawn uniformly from [electionTicks, 2 * electionTicks) at every reset (paper §5.2:
   * randomized timeouts make split votes rare). Default 10.
   */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats. Must be well below `electionTicks`. Default 1. */
  readonly heartbeatTicks: number;
  /**
   * PreVote (thesis §9.6): a would-be candidate first asks whether it could win, without
   * bumping its term, so a node rejoining from a partition does not depose a healthy leader.
   * Default true.
   */
  readonly preVote: boolean;
  /**
   * CheckQuorum (thesis §6.2): a leader that has not heard from a quorum within an election
   * timeout steps down, and followers that heard from a leader within one ignore vote
   * requests (the leader lease). Default true.
   */
  readonly checkQuorum: boolean;
  /**
   * Unacknowledged AppendEntries per follower before the leader pauses it (etcd
   * MaxInflightMsgs): bounds memory and queueing at a slow follower. Default 256.
   */
  readonly appendsInflightMax: number;
  /**
   * Entry bytes in unacknowledged AppendEntries per follower before the leader pauses it
   * (etcd MaxInflightBytes): with `appendsInflightMax` it caps what a slow follower makes the
   * leader (and the transport's queue) hold. At least one append always goes. Default 16 MiB.
   */
  readonly appendsInflightBytesMax: number;
  /** Most entries in one AppendEntries. Default 64. */
  readonly entriesPerAppendMax: number;
  /**
   * Largest AppendEntries payload (entry data bytes). 1 MiB at 1 Gbps is about 8 ms of
   * head-of-line delay for the next heartbeat. At least one entry is always sent. Default 1 MiB.
   */
  readonly appendBytesMax: number;
  /**
   * Largest single proposal; above it `propose` fails with ProposalTooLarge. Default 2 MiB:
   * a key-value transaction may carry 1 MiB of values plus its keys.
   */
  readonly proposalBytesMax: number;
  /**
   * Bytes of this leader's not-yet-committed proposals before `propose` fails with
   * Overloaded (etcd MaxUncommittedEntriesSize): a partitioned leader cannot grow its log
   * without bound. Default 64 MiB.
   */
  readonly uncommittedBytesMax: number;
  /** Most committed entries handed out in one Ready: bounds one apply batch. Default 1024. */
  readonly applyEntriesMax: number;
  /**
   * ReadIndex requests a leader holds while waiting for its first current-term commit or
   * for a quorum's heartbeat acknowledgement; beyond it `readIndex` fails with
   * ReadIndexQueueFull. Bounds memory when a quorum is unreachable. Default 4096.
   */
  readonly readIndexQueueMax: number;
  /**
   * Bytes per InstallSnapshot chunk. Chunks keep every message far below the transport's
   * frame limit (4 MiB) and let heartbeats interleave with a large transfer. Default 512 KiB.
   */
  readonly snapshotChunkBytes: number;
  /**
   * Unacknowledged snapshot chunks per follower: enough to fill a LAN pipe without buffering
   * a whole snapshot in the transport's queue. A chunk not acknowledged by the next
   * heartbeat answer is resent from the follower's last confirmed byte. Default 4.
   */
  readonly snapshotChunksInflightMax: number;
  /**
   * Entries kept in the log behind a new snapshot, so a follower that is only a little
   * behind catches up from the log instead of a whole snapshot (etcd keeps 5000). Default 256.
   */
  readonly compactionRetainEntries: number;
  /**
   * Lease reads (thesis §6.4.1): the leader answers a linearizable read at once, without a
   * heartbeat round, while a quorum acknowledged a heartbeat it sent less than a lease ago.
   * Safe only because CheckQuorum makes followers refuse votes for `electionTicks` after
   * hearing from the leader, and only if clocks tick at nearly the same rate: a lease lasts
   * `electionTicks * (100 - leaseClockDriftPercent) / 100 - 1` ticks, and when that is not
   * positive, or CheckQuorum is off, reads fall back to ReadIndex. A started node also
   * refuses votes for its first `electionTicks` (it may have acked a lease before a crash).
   * Default false: a paused process (GC, SIGSTOP) is drift without a bound.
   */
  readonly leaseReads: boolean;
  /** Largest difference in tick rate between any two nodes, in percent. Default 10. */
  readonly leaseClockDriftPercent: number;
  /**
   * How far behind the commit index a learner's log may be and still be promoted. 0 (the
   * default) demands an exact match, which a learner under steady writes rarely shows: the
   * leader commits new entries before the learner acknowledges them. A little slack lets it
   * be promoted while writes continue; a promoted voter that is behind only delays commits
   * until it has caught up (it is one of a majority), which is why the slack stays small.
   */
  readonly learnerCatchUpSlack: number;
}

const MiB = 1024 * 1024;

export const raftConfigDefaults: RaftConfig = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  appendsInflightMax: 256,
  appendsInflightBytesMax: 16 * MiB,
  entriesPerAppendMax: 64,
  appendBytesMax: 1 * MiB,
  proposalBytesMax: 2 * MiB,
  uncommittedBytesMax: 64 * MiB,
  applyEntriesMax: 1024,
  readIndexQueueMax: 4096,
  snapshotChunkBytes: 512 * 1024,
  snapshotChunksInflightMax: 4,
  compactionRetainEntries: 256,
  leaseReads: false,
  leaseClockDriftPercent: 10,
  learnerCatchUpSlack: 0,
});

export function validateRaftConfig(config: RaftConfig): void {
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === "number") {
      const least = [
        "compactionRetainEntries",
        "leaseClockDriftPercent",
        "learnerCatchUpSlack",
      ].includes(key)
        ? 0
        : 1;
      assert(
        Number.isSafeInteger(value) && value >= least,
        `${key} must be an integer >= ${least}`,
      );
    }
  }
  assert(
    config.heartbeatTicks < config.electionTicks,
    "heartbeatTicks must be below electionTicks",
  );
  assert(config.proposalBytesMax <= config.uncommittedBytesMax, "proposal must fit the budget");
  assert(config.leaseClockDriftPercent <= 100, "leaseClockDriftPercent is a percentage");
}
