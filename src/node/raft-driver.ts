/**
 * @module Runs the Raft core (`core/raft/raft-node.ts`) for real: time from a timer, messages
 * over the TCP transport (all messages for one node in one frame), durable state in the node's
 * write-ahead log (`storage/wal.ts`, group commit), and committed entries applied to the
 * replicated register. One group for now (the sharded store will run many over the same WAL).
 *
 * The ordering contract of `Ready` is enforced here and only here: persist (and fsync) the
 * hard state and entries, then send, then apply, then `advance()`. While a Ready is being
 * persisted, inputs (ticks, messages, proposals) wait in a bounded queue, because the core
 * accepts no input between `ready()` and `advance()`.
 *
 * Any node accepts a command: a follower forwards it to the leader, which answers once the
 * command is applied. Reads ("get") are linearizable without a log write: the leader asks the
 * core for a ReadIndex (confirmed by a quorum's heartbeat answers) and answers once it has
 * applied up to that index (thesis §6.4).
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { RaftNode } from "../core/raft/raft-node.js";
import { decodeRaftRecord, encodeRaftRecordBody } from "../core/raft/storage.js";
import type { Entry, HardState, ProposalTicket, RaftMessage } from "../core/raft/types.js";
import { BrigadeError, isBrigadeError } from "../lib/errors.js";
import { prngFromSeed } from "../lib/prng.js";
import { WriteAheadLog } from "../storage/wal.js";
import type { Logger, TcpTransport } from "../transport/tcp-transport.js";
import {
  encodeCommand,
  type RegisterCommand,
  type RegisterResult,
  RegisterStateMachine,
  validateCommand,
} from "./register.js";

const messagesTopic = "raft.messages";
const proposeTopic = "raft.propose";
/** The demo register's Raft group in the shared WAL. */
const registerGroupId = 1;

export interface RaftDriverOptions {
  readonly nodeId: string;
  /** Every voter's node id, this one included. */
  readonly voters: readonly string[];
  readonly transport: TcpTransport;
  readonly dataDir: string;
  readonly logger: Logger;
  /** Wall time of one Raft tick. Election timeout = electionTicks (10) to 2× that, heartbeat = 1 tick. */
  readonly tickMs: number;
  /** How long a command may wait to be applied before it fails with DeadlineExceeded. */
  readonly commandTimeoutMs: number;
}

export const raftDriverDefaults = { tickMs: 100, commandTimeoutMs: 5_000 } as const;

/** Inputs that wait while a Ready is persisted; beyond this, messages are dropped (Raft retries). */
const inputQueueMax = 10_000;
/** Commands awaiting their entry's application, beyond which proposals fail with Overloaded. */
const pendingCommandsMax = 10_000;

interface PendingRead {
  readonly key: string;
  readonly resolve: (result: RegisterResult) => void;
  readonly reject: (error: BrigadeError) => void;
  readonly timer: NodeJS.Timeout;
  /** Set once the core confirmed the read: answer when applied reaches it. */
  index: number | null;
}

interface PendingCommand {
  readonly ticket: ProposalTicket;
  readonly requestId: string;
  readonly resolve: (result: RegisterResult) => void;
  readonly reject: (error: BrigadeError) => void;
  readonly timer: NodeJS.Timeout;
}

export interface RaftDriverStats {
  proposals: number;
  readies: number;
  walAppends: number;
  messagesSent: number;
  messagesDropped: number;
  applied: number;
  /** Sum and count of entries persisted per Ready, for the average batch size. */
  entriesPersisted: number;
}

export class RaftDriver {
  readonly stats: RaftDriverStats = {
    proposals: 0,
    readies: 0,
    walAppends: 0,
    messagesSent: 0,
    messagesDropped: 0,
    applied: 0,
    entriesPersisted: 0,
  };
  /** Durations (ms) of WAL appends, for the fsync latency histogram. */
  onPersist: (durationMs: number, entries: number) => void = () => {};
  private node: RaftNode | null = null;
  private wal: WriteAheadLog | null = null;
  private readonly register = new RegisterStateMachine();
  private readonly pending = new Map<number, PendingCommand>();
  private readonly reads = new Map<string, PendingRead>();
  private appliedIndex = 0;
  private readonly queue: Array<() => void> = [];
  private processing = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The hard state last handed to the WAL (term and vote decide whether a Ready must sync). */
  private persisted: HardState = {
    term: 0 as HardState["term"],
    vote: null,
    commit: 0 as HardState["commit"],
  };

  constructor(private readonly options: RaftDriverOptions) {}

  async start(): Promise<void> {
    const { options } = this;
    this.wal = await WriteAheadLog.open(path.join(options.dataDir, "wal"));
    let hardState: HardState | undefined;
    let entries: Entry[] = [];
    for await (const record of this.wal.replay()) {
      if (record.groupId !== registerGroupId) continue;
      const decoded = decodeRaftRecord(record.payload);
      if (decoded === null)
        throw new BrigadeError(
          "DataDirMismatch",
          `unreadable Raft record at WAL sequence ${record.sequence}`,
        );
      if (decoded.hardState !== null) hardState = decoded.hardState;
      const first = decoded.entries[0];
      if (first !== undefined) entries = entries.slice(0, first.index - 1).concat(decoded.entries);
    }
    if (hardState !== undefined) this.persisted = hardState;
    this.node = new RaftNode({
      id: options.nodeId,
      voters: options.voters,
      prng: prngFromSeed(Number.parseInt(randomUUID().slice(0, 8), 16) | 0),
      ...(hardState === undefined ? {} : { hardState }),
      entries,
    });
    options.logger.info(
      { term: hardState?.term ?? 0, entries: entries.length, voters: options.voters },
      "raft started",
    );
    options.transport.onMessage(messagesTopic, (payload) => {
      if (!Array.isArray(payload)) return;
      for (const message of payload) this.input(() => this.node?.step(message as RaftMessage));
    });
    options.transport.handle(proposeTopic, (payload, context) =>
      this.execute(payload as RegisterCommand, context.timeoutMs, false),
    );
    this.timer = setInterval(() => this.input(() => this.node?.tick()), options.tickMs);
  }

  status() {
    const node = this.node;
    if (node === null) return null;
    return { ...node.status(), voters: this.options.voters, pendingCommands: this.pending.size };
  }

  /**
   * Applies `command` through the log and resolves with its result once applied here. On a
   * follower the command is forwarded to the leader (once). Typed errors: Unavailable (no
   * leader yet, retriable), DeadlineExceeded, QueueFull (Overloaded), MessageTooLarge.
   */
  async execute(
    command: RegisterCommand,
    timeoutMs = this.options.commandTimeoutMs,
    mayForward = true,
  ): Promise<RegisterResult> {
    validateCommand(command);
    const node = this.node;
    if (node === null || this.stopped) throw new BrigadeError("Unavailable", "raft is not running");
    if (node.role !== "leader") {
      const leader = node.leaderId;
      if (leader === null || !mayForward || leader === this.options.nodeId) {
        throw new BrigadeError("Unavailable", "no leader is known yet; retry shortly");
      }
      return (await this.options.transport.request(leader, proposeTopic, command, {
        timeoutMs,
      })) as RegisterResult;
    }
    const inFlight = this.pending.size + this.reads.size;
    if (inFlight >= pendingCommandsMax)
      throw new BrigadeError("QueueFull", `${inFlight} commands already in flight`);
    if (command.op === "get") return this.read(node, command.key, command.requestId, timeoutMs);
    return new Promise<RegisterResult>((resolve, reject) => {
      this.input(() => {
        const result = node.propose(encodeCommand(command));
        this.stats.proposals++;
        if (!result.ok) {
          const error = result.error;
          const message =
            error.code === "NotLeader"
              ? `not the leader (try ${error.leaderHint})`
              : error.code === "ProposalDropped"
                ? "no leader"
                : error.code;
          reject(
            new BrigadeError(
              error.code === "ProposalTooLarge"
                ? "MessageTooLarge"
                : error.code === "Overloaded"
                  ? "QueueFull"
                  : "Unavailable",
              message,
            ),
          );
          return;
        }
        const ticket = result.value;
        const timer = setTimeout(() => {
          this.pending.delete(ticket.index);
          reject(
            new BrigadeError(
              "DeadlineExceeded",
              `command not applied within ${timeoutMs} ms (it may still apply)`,
            ),
          );
        }, timeoutMs);
        this.pending.set(ticket.index, {
          ticket,
          requestId: command.requestId,
          resolve,
          reject,
          timer,
        });
      });
    });
  }

  /** A linearizable read without a log write (ReadIndex). */
  private read(
    node: RaftNode,
    key: string,
    requestId: string,
    timeoutMs: number,
  ): Promise<RegisterResult> {
    return new Promise<RegisterResult>((resolve, reject) => {
      this.input(() => {
        if (this.reads.has(requestId)) {
          reject(
            new BrigadeError(
              "InvalidArgument",
              `a read with request id ${requestId} is already in flight`,
            ),
          );
          return;
        }
        const result = node.readIndex(Buffer.from(requestId, "utf8"));
        if (!result.ok) {
          const code = result.error.code === "ReadIndexQueueFull" ? "QueueFull" : "Unavailable";
          reject(new BrigadeError(code, `read not served: ${result.error.code}`));
          return;
        }
        const timer = setTimeout(() => {
          this.reads.delete(requestId);
          reject(
            new BrigadeError(
              "DeadlineExceeded",
              `read not confirmed within ${timeoutMs} ms (leadership may have moved)`,
            ),
          );
        }, timeoutMs);
        this.reads.set(requestId, { key, resolve, reject, timer, index: null });
      });
    });
  }

  /** Answers the confirmed reads whose index has been applied. */
  private answerReads(): void {
    for (const [requestId, read] of this.reads) {
      if (read.index === null || read.index > this.appliedIndex) continue;
      this.reads.delete(requestId);
      clearTimeout(read.timer);
      read.resolve({ ok: true, value: this.register.read(read.key), index: read.index });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const command of this.pending.values()) {
      clearTimeout(command.timer);
      command.reject(new BrigadeError("Unavailable", "node stopping"));
    }
    this.pending.clear();
    for (const read of this.reads.values()) {
      clearTimeout(read.timer);
      read.reject(new BrigadeError("Unavailable", "node stopping"));
    }
    this.reads.clear();
    while (this.processing) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.wal?.close();
  }

  /** Runs an input now, or queues it while a Ready is being persisted; then handles Readies. */
  private input(apply: () => void): void {
    if (this.stopped || this.node === null) return;
    if (this.processing) {
      if (this.queue.length >= inputQueueMax) {
        this.stats.messagesDropped++;
        return;
      }
      this.queue.push(apply);
      return;
    }
    apply();
    void this.drainReadies();
  }

  private async drainReadies(): Promise<void> {
    const node = this.node as RaftNode;
    if (this.processing) return;
    this.processing = true;
    try {
      while (!this.stopped) {
        // Feed every input that waited (proposals, messages, ticks) before taking the next
        // Ready, so they share one WAL write and one fsync: the core batches them.
        while (this.queue.length > 0) (this.queue.shift() as () => void)();
        if (!node.hasReady()) break;
        const ready = node.ready();
        this.stats.readies++;
        // 1. Persist: hard state and entries in one WAL record, fsynced (group commit). A hard
        // state that differs only in its commit index is not worth an fsync (the commit index
        // is safe to lose: it is learned again from the leader), as in etcd's MustSync.
        const hardState = ready.hardState;
        const mustSync =
          ready.entries.length > 0 ||
          (hardState !== null &&
            (hardState.term !== this.persisted.term || hardState.vote !== this.persisted.vote));
        if (hardState !== null) this.persisted = hardState;
        if (mustSync) {
          const started = performance.now();
          const payload = encodeRaftRecordBody({
            checkpoint: false,
            hardState: ready.hardState,
            entries: ready.entries,
          });
          await (this.wal as WriteAheadLog).append([
            { type: "entries", groupId: registerGroupId, payload },
          ]);
          this.stats.walAppends++;
          this.stats.entriesPersisted += ready.entries.length;
          this.onPersist(performance.now() - started, ready.entries.length);
        }
        // 2. Send, one frame per destination.
        const byTarget = new Map<string, RaftMessage[]>();
        for (const { target, message } of ready.messages) {
          const list = byTarget.get(target);
          if (list === undefined) byTarget.set(target, [message]);
          else list.push(message);
        }
        for (const [target, messages] of byTarget) {
          try {
            this.options.transport.send(target, messagesTopic, messages);
            this.stats.messagesSent += messages.length;
          } catch (error) {
            // Unknown or unreachable peer, full queue: Raft retries by itself.
            this.stats.messagesDropped += messages.length;
            if (!isBrigadeError(error)) throw error;
          }
        }
        // 3. Apply, then answer the commands waiting for these entries.
        for (const entry of ready.committedEntries) this.applyEntry(entry);
        // 4. Reads the core confirmed: answer each once its index is applied.
        for (const state of ready.readStates) {
          const read = this.reads.get(Buffer.from(state.context).toString("utf8"));
          if (read !== undefined) read.index = state.index;
        }
        this.answerReads();
        node.advance();
      }
    } catch (error) {
      // A WAL failure is fatal for this group's safety: stop taking inputs.
      this.options.logger.error({ err: error }, "raft stopped: cannot persist");
      this.stopped = true;
    } finally {
      this.processing = false;
    }
  }

  private applyEntry(entry: Entry): void {
    this.stats.applied++;
    this.appliedIndex = entry.index;
    const waiting = this.pending.get(entry.index);
    if (entry.kind === "noop") {
      if (waiting !== undefined) this.failOverwritten(waiting);
      return;
    }
    const { requestId, result } = this.register.apply(entry.index, entry.data);
    if (waiting === undefined) return;
    this.pending.delete(entry.index);
    clearTimeout(waiting.timer);
    if (waiting.ticket.term === entry.term && waiting.requestId === requestId)
      waiting.resolve(result);
    else this.failOverwritten(waiting);
  }

  private failOverwritten(waiting: PendingCommand): void {
    this.pending.delete(waiting.ticket.index);
    clearTimeout(waiting.timer);
    waiting.reject(
      new BrigadeError("Unavailable", "leadership changed before the command committed; retry"),
    );
  }
}
