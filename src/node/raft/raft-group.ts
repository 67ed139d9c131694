/**
 * @module One Raft group on this node: its core (`core/raft/raft-node.ts`), its state
 * machine, and the callers waiting on it (proposals until applied, reads until their
 * ReadIndex is applied, membership changes until committed). It does no I/O: the host
 * (`raft-host.ts`) feeds it inputs, persists and sends its Readies together with every
 * other group's, and calls `applyReady` / `advance`.
 *
 * A proposal is answered when the entry at its (index, term) is applied here; a different
 * entry at that index means leadership changed and the proposal was lost (retry).
 */
import type { RaftNode, RaftStatus } from "../../core/raft/raft-node.js";
import type {
  ChangeMembershipError,
  ClusterConfig,
  Entry,
  MembershipChange,
  ProposalTicket,
  ProposeError,
  Ready,
} from "../../core/raft/types.js";
import { BrigadeError } from "../../lib/errors.js";

/** What a group replicates. Deterministic: every replica applies the same entries in order. */
export interface GroupStateMachine {
  /** Applies a committed command; the return value answers the proposer on this node. */
  apply(index: number, data: Uint8Array): unknown;
  /** The whole state as bytes, as of the last applied index. */
  snapshot(): Uint8Array;
  /**
   * Optional: the same image built without holding the event loop, as of the last applied
   * index at the call (the host prefers it; large state machines should have it).
   */
  snapshotInSlices?(): Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's. */
  restore(data: Uint8Array): void;
}

/** Queues an input for the group's core; `fail` is called instead if it is dropped. */
export type GroupInput = (run: () => void, fail: (error: BrigadeError) => void) => void;

interface Waiter<T> {
  readonly ticket: ProposalTicket;
  readonly resolve: (value: T) => void;
  readonly reject: (error: BrigadeError) => void;
  readonly timer: NodeJS.Timeout;
  readonly kind: "command" | "config";
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (error: BrigadeError) => void;
  readonly timer: NodeJS.Timeout;
  /** Set once the core confirmed the read: answer when applied reaches it. */
  index: number | null;
}

export interface RaftGroupStats {
  proposals: number;
  entriesApplied: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

/** Commands and reads in flight (queued, proposed or awaiting their index) per group. */
export const groupPendingMax = 10_000;

export class RaftGroup {
  readonly stats: RaftGroupStats = {
    proposals: 0,
    entriesApplied: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };
  readonly #pending = new Map<number, Waiter<unknown>>();
  /** Reads by a context unique to each ReadIndex call (a client's retry gets a new one). */
  readonly #reads = new Map<string, PendingRead>();
  #nextReadContext = 1;
  #queued = 0;
  #appliedIndex: number;

  constructor(
    readonly id: number,
    readonly node: RaftNode,
    readonly machine: GroupStateMachine,
    private readonly input: GroupInput,
  ) {
    this.#appliedIndex = node.applied;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  status(): RaftStatus & RaftGroupStats & { pendingCommands: number; pendingReads: number } {
    return {
      ...this.node.status(),
      ...this.stats,
      pendingCommands: this.#pending.size,
      pendingReads: this.#reads.size,
    };
  }

  /**
   * Replicates `data` and resolves with the state machine's result once it is applied here.
   * Only the leader proposes (the caller forwards otherwise). Typed errors: Unavailable
   * (no leader, or leadership moved: retry), DeadlineExceeded (outcome unknown: retry with
   * the same request id), QueueFull, MessageTooLarge.
   */
  propose(data: Uint8Array, timeoutMs: number): Promise<unknown> {
    return this.#submit(timeoutMs, "command", () => {
      this.stats.proposals++;
      const result = this.node.propose(data);
      return result.ok ? result : { ok: false as const, error: proposeError(result.error) };
    });
  }

  /** Proposes a one-server configuration change; resolves with the new configuration once applied. */
  changeMembership(change: MembershipChange, timeoutMs: number): Promise<ClusterConfig> {
    return this.#submit(timeoutMs, "config", () => {
      const result = this.node.changeMembership(change);
      return result.ok ? result : { ok: false as const, error: membershipError(result.error) };
    }) as Promise<ClusterConfig>;
  }

  /**
   * Asks the leader to hand leadership to voter `to` (thesis §3.10); resolves when the
   * request is accepted, not when the transfer completed (the caller observes the leader).
   */
  transferLeadership(to: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.input(() => {
        const result = this.node.transferLeadership(to);
        if (result.ok) resolve();
        else if (result.error.code === "NotLeader")
          reject(new BrigadeError("Unavailable", "not the leader; retry there"));
        else
          reject(new BrigadeError("InvalidArgument", `${to} is not a voter of group ${this.id}`));
      }, reject);
    });
  }

  /** Resolves once a linearizable read may be served from the state machine (ReadIndex). */
  linearizableRead(timeoutMs: number): Promise<void> {
    this.#checkCapacity();
    return new Promise<void>((resolve, reject) => {
      const context = String(this.#nextReadContext++);
      const timer = setTimeout(() => {
        this.#reads.delete(context);
        reject(
          new BrigadeError(
            "DeadlineExceeded",
            `read not confirmed within ${timeoutMs} ms (leadership may have moved)`,
          ),
        );
      }, timeoutMs);
      this.#reads.set(context, { resolve, reject, timer, index: null });
      const fail = (error: BrigadeError) => {
        if (!this.#reads.delete(context)) return;
        clearTimeout(timer);
        reject(error);
      };
      this.input(() => {
        if (!this.#reads.has(context)) return; // timed out while queued
        const result = this.node.readIndex(Buffer.from(context, "utf8"));
        if (!result.ok) {
          const code = result.error.code === "ReadIndexQueueFull" ? "QueueFull" : "Unavailable";
          fail(new BrigadeError(code, `read not served: ${result.error.code}`));
        }
      }, fail);
    });
  }

  /**
   * Resolves once this replica has applied `index` (a read index the leader confirmed, so
   * a follower can serve a read as fresh as the leader's); DeadlineExceeded after `timeoutMs`.
   */
  appliedThrough(index: number, timeoutMs: number): Promise<void> {
    if (this.#appliedIndex >= index) return Promise.resolve();
    this.#checkCapacity();
    return new Promise<void>((resolve, reject) => {
      const context = `applied-${this.#nextReadContext++}`;
      const timer = setTimeout(() => {
        this.#reads.delete(context);
        reject(
          new BrigadeError(
            "DeadlineExceeded",
            `this replica did not apply index ${index} within ${timeoutMs} ms (it is behind)`,
          ),
        );
      }, timeoutMs);
      // A read whose index is already known: `applyReady` answers it like a confirmed one.
      this.#reads.set(context, { resolve, reject, timer, index });
    });
  }

  /** Step 3 of a Ready, after the host persisted and sent it: restore, apply, answer. */
  applyReady(ready: Ready): void {
    if (ready.snapshot !== null) {
      this.machine.restore(ready.snapshot.data);
      this.#appliedIndex = ready.snapshot.metadata.index;
      this.stats.snapshotsInstalled++;
      // Waiters at or below the snapshot can no longer be matched to their entry: whether
      // theirs is the one the snapshot holds is unknown.
      for (const waiter of [...this.#pending.values()]) {
        if (waiter.ticket.index <= this.#appliedIndex)
          this.#fail(
            waiter,
            new BrigadeError(
              "DeadlineExceeded",
              "a snapshot replaced the log before the command's outcome was seen: it may have applied; retry with the same request id",
            ),
          );
      }
    }
    for (const entry of ready.committedEntries) this.#apply(entry);
    for (const state of ready.readStates) {
      const read = this.#reads.get(Buffer.from(state.context).toString("utf8"));
      if (read !== undefined) read.index = state.index;
    }
    for (const [context, read] of this.#reads) {
      if (read.index === null || read.index > this.#appliedIndex) continue;
      this.#reads.delete(context);
      clearTimeout(read.timer);
      read.resolve();
    }
  }

  /** Rejects every waiting caller (the node stops, or its WAL failed). */
  failEverything(error: BrigadeError): void {
    for (const waiter of this.#pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#pending.clear();
    for (const read of this.#reads.values()) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    this.#reads.clear();
  }

  #checkCapacity(): void {
    const inFlight = this.#pending.size + this.#reads.size + this.#queued;
    if (inFlight >= groupPendingMax)
      throw new BrigadeError("QueueFull", `${inFlight} commands already in flight`);
  }

  #submit(
    timeoutMs: number,
    kind: Waiter<unknown>["kind"],
    append: () => { ok: true; value: ProposalTicket } | { ok: false; error: BrigadeError },
  ): Promise<unknown> {
    this.#checkCapacity();
    return new Promise<unknown>((resolve, reject) => {
      // The deadline runs from now, whether or not the command had to queue: a round that
      // takes long (a slow fsync) must not hold a caller past its deadline.
      let ticket: ProposalTicket | null = null;
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        if (ticket !== null) this.#pending.delete(ticket.index);
        reject(
          new BrigadeError(
            "DeadlineExceeded",
            ticket === null
              ? `not proposed within ${timeoutMs} ms (the node is busy); it was not applied`
              : `not applied within ${timeoutMs} ms (it may still apply)`,
          ),
        );
      }, timeoutMs);
      this.#queued++;
      this.input(
        () => {
          this.#queued--;
          if (settled) return; // timed out while queued: never proposed
          const result = append();
          if (!result.ok) {
            settled = true;
            clearTimeout(timer);
            reject(result.error);
            return;
          }
          ticket = result.value;
          this.#pending.set(ticket.index, { ticket, resolve, reject, timer, kind });
        },
        (error) => {
          this.#queued--;
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  #apply(entry: Entry): void {
    this.stats.entriesApplied++;
    this.#appliedIndex = entry.index;
    const waiter = this.#pending.get(entry.index);
    const result = entry.kind === "command" ? this.machine.apply(entry.index, entry.data) : null;
    if (waiter === undefined) return;
    if (waiter.ticket.term !== entry.term || waiter.kind !== entry.kind) {
      // Another leader's entry took the index: by log matching, ours can never commit.
      this.#fail(
        waiter,
        new BrigadeError(
          "Unavailable",
          "leadership changed before the command committed: it was not applied; retry",
        ),
      );
      return;
    }
    this.#pending.delete(entry.index);
    clearTimeout(waiter.timer);
    waiter.resolve(entry.kind === "config" ? this.node.membership : result);
  }

  #fail(waiter: Waiter<unknown>, error: BrigadeError): void {
    this.#pending.delete(waiter.ticket.index);
    clearTimeout(waiter.timer);
    waiter.reject(error);
  }
}

function proposeError(error: ProposeError): BrigadeError {
  switch (error.code) {
    case "ProposalTooLarge":
      return new BrigadeError(
        "MessageTooLarge",
        `command of ${error.sizeBytes} bytes is over ${error.sizeBytesMax}`,
      );
    case "Overloaded":
      return new BrigadeError("QueueFull", "too many uncommitted bytes; retry later");
    case "NotLeader":
      return new BrigadeError("Unavailable", `leadership moved to ${error.leaderHint}; retry`);
    case "ProposalDropped":
      return new BrigadeError("Unavailable", `no leader (${error.reason}); retry`);
  }
}

function membershipError(error: ChangeMembershipError): BrigadeError {
  switch (error.code) {
    case "NotLeader":
      return new BrigadeError(
        "Unavailable",
        `not the leader (leader: ${error.leaderHint ?? "unknown"}); retry there`,
      );
    case "ChangeInProgress":
      return new BrigadeError(
        "Unavailable",
        `a membership change at index ${error.pendingIndex} is not committed yet; retry`,
      );
    case "NotReady":
      return new BrigadeError("Unavailable", "the new leader has not committed yet; retry");
    case "LearnerNotCaughtUp":
      return new BrigadeError(
        "Unavailable",
        `the learner holds up to ${error.match}, the commit index is ${error.commit}; retry when it caught up`,
      );
    case "InvalidChange":
      return new BrigadeError("InvalidArgument", error.reason);
  }
}
