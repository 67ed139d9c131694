/**
 * @module What a leader knows about one follower (etcd `tracker/progress.go`): `probe`
 * sends one append at a time until the follower's match point is found, `replicate`
 * streams appends optimistically, at most `appendsInflightMax` unacknowledged carrying at
 * most `appendsInflightBytesMax` of entries (etcd MaxInflightBytes), and
 * `snapshot` sends the leader's snapshot in chunks because the entries the follower needs
 * next were compacted away. Pure.
 */
import { assert } from "../../lib/assert.js";
import { asIndex, type LogIndex, type Snapshot } from "./types.js";

/** A snapshot transfer in progress: a window of chunks, acknowledged by bytes received. */
export interface SnapshotTransfer {
  readonly snapshot: Snapshot;
  /** Next byte to send. */
  next: number;
  /** Bytes the follower confirmed holding. */
  acked: number;
  /** The last chunk has been sent (for an empty snapshot: the single empty chunk). */
  allSent: boolean;
  /** An acknowledgement moved `acked` since the last heartbeat answer (else: resend). */
  progressed: boolean;
  /**
   * The lowest `received` below `acked` reported since the last heartbeat answer, or null:
   * the follower lost what it had (it restarted), or an old answer arrived late
   * (reordered). The heartbeat answer tells them apart: without progress, resend from it.
   */
  behind: number | null;
}

export class Progress {
  /** Highest index known replicated on the follower. */
  match: LogIndex = asIndex(0);
  /** Next index to send. */
  next: LogIndex;
  state: "probe" | "replicate" | "snapshot" = "probe";
  /** Snapshot state: the transfer. */
  transfer: SnapshotTransfer | null = null;
  /** Probe state: an append is outstanding; wait for its answer or a heartbeat response. */
  probeSent = false;
  /** Replicate state: last index of each unacknowledged append, oldest first. */
  readonly inflight: LogIndex[] = [];
  /** Entry bytes of each unacknowledged append (parallel to `inflight`), and their sum. */
  readonly #inflightBytes: number[] = [];
  inflightBytesTotal = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = true;

  constructor(
    next: LogIndex,
    readonly inflightMax: number,
    readonly inflightBytesMax: number = Number.POSITIVE_INFINITY,
  ) {
    this.next = next;
  }

  /** No append may be sent now (a snapshot transfer sends chunks instead). */
  isPaused(): boolean {
    if (this.state === "snapshot") return true;
    if (this.state === "probe") return this.probeSent;
    return (
      this.inflight.length >= this.inflightMax || this.inflightBytesTotal >= this.inflightBytesMax
    );
  }

  becomeProbe(): void {
    this.state = "probe";
    this.probeSent = false;
    this.transfer = null;
    this.next = asIndex(this.match + 1);
    this.#clearInflight();
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.probeSent = false;
    this.transfer = null;
    this.next = asIndex(this.match + 1);
    this.#clearInflight();
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.state = "snapshot";
    this.probeSent = false;
    this.#clearInflight();
    this.transfer = {
      snapshot,
      next: 0,
      acked: 0,
      allSent: false,
      progressed: false,
      behind: null,
    };
  }

  /** An append ending at `lastIndex`, carrying `bytes` of entry data, was sent. */
  sentAppend(lastIndex: LogIndex, entryCount: number, bytes = 0): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = asIndex(lastIndex + 1);
        this.inflight.push(lastIndex);
        this.#inflightBytes.push(bytes);
        this.inflightBytesTotal += bytes;
      }
    } else {
      this.probeSent = true;
    }
  }

  /** A success up to `index` arrived; false if it told us nothing new (stale, duplicate). */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (index + 1 > this.next) this.next = asIndex(index + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= index) {
      this.inflight.shift();
      this.inflightBytesTotal -= this.#inflightBytes.shift()!;
    }
    return updated;
  }

  #clearInflight(): void {
    this.inflight.length = 0;
    this.#inflightBytes.length = 0;
    this.inflightBytesTotal = 0;
  }

  /**
   * A rejection of an append with `prevLogIndex = rejected` arrived, with a backtracking
   * target `probeFrom` (already mapped through the leader's log). False if stale.
   */
  maybeDecrease(rejected: LogIndex, probeFrom: LogIndex): boolean {
    if (this.state === "snapshot") return false; // an answer to an append sent before it
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      this.next = asIndex(Math.max(this.match + 1, Math.min(rejected, probeFrom + 1)));
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = asIndex(Math.max(this.match + 1, Math.min(rejected, probeFrom + 1)));
    this.probeSent = false;
    assert(this.next >= 1);
    return true;
  }
}
