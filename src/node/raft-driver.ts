/**
 * @module Runs the Raft core (`core/raft/raft-node.ts`) for real: time from a timer, messages
 * over the TCP transport (batched per destination), durable state in the node's write-ahead
 * log (`storage/wal.ts`, group commit), and committed entries applied to the replicated
 * register. One group for now (the sharded store will run many over the same WAL).
 *
 * The ordering contract of `Ready` is enforced here and only here: persist (and fsync) the
 * hard state and entries, then send, then apply, then `advance()`. While a Ready is being
 * persisted, inputs (ticks, messages, proposals, reads) wait in a bounded queue, because the
 * core accepts no input between `ready()` and `advance()`; all of them are fed before the
 * next Ready, so they share one fsync.
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
import { parseRaftMessage } from "../core/raft/validate.js";
import { AssertionError } from "../lib/assert.js";
import { BrigadeError, isBrigadeError } from "../lib/errors.js";
import { prngFromSeed } from "../lib/prng.js";
import { WriteAheadLog, walDefaults } from "../storage/wal.js";
import type { Logger, TcpTransport } from "../transport/tcp-transport.js";
import {
  encodeCommand,
  parseCommand,
  type RegisterCommand,
  type RegisterResult,
  RegisterStateMachine,
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

/** Inputs that wait while a Ready is persisted; beyond this, messages are dropped (Raft retries) and commands refused. */
const inputQueueMax = 10_000;
/** Commands and reads in flight (queued, proposed or awaiting their index), beyond which they fail with QueueFull. */
const pendingCommandsMax = 10_000;
/** Entry bytes per WAL record: a Ready larger than this is written as several records (one append). */
const walRecordEntryBytesMax = walDefaults.recordBytesMax / 2;
/** Raft message payload bytes per transport frame (the transport's frame limit is 4 MiB). */
const frameMessageBytesMax = 2 * 1024 * 1024;

interface QueuedInput {
  readonly run: () => void;
  /** Called instead of `run` when the input is dropped (queue full, node stopping). */
  readonly fail: (error: BrigadeError) => void;
}

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
  /** Messages from peers refused as malformed or spoofed. */
  messagesRejected: number;
  applied: number;
  entriesPersisted: number;
}

const noop = () => {};

export class RaftDriver {
  readonly stats: RaftDriverStats = {
    proposals: 0,
    readies: 0,
    walAppends: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesRejected: 0,
    applied: 0,
    entriesPersisted: 0,
  };
  /** Durations (ms) of WAL appends and entries per Ready, for metrics. */
  onPersist: (durationMs: number, entries: number) => void = () => {};
  private node: RaftNode | null = null;
  private wal: WriteAheadLog | null = null;
  private readonly register = new RegisterStateMachine();
  private readonly pending = new Map<number, PendingCommand>();
  /** Reads by a context unique to each ReadIndex call (never a client's id: retries reuse those). */
  private readonly reads = new Map<string, PendingRead>();
  private nextReadContext = 1;
  private queuedCommands = 0;
  private appliedIndex = 0;
  private readonly queue: QueuedInput[] = [];
  private processing = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Set when the WAL failed: the group refuses everything until the process restarts. */
  private failed: Error | null = null;
  /** The hard state last handed to the WAL (term and vote decide whether a Ready must sync). */
  private persisted: HardState = {
    term: 0 as HardState["term"],
    vote: null,
    commit: 0 as HardState["commit"],
  };

  constructor(private readonly options: RaftDriverOptions) {}

  async start(): Promise<void> {
    const { options } = this;
    const wal = await WriteAheadLog.open(path.join(options.dataDir, "wal"));
    this.wal = wal;
    if (this.stopped) return; // stop() ran while opening: it closes the WAL
    let hardState: HardState | undefined;
    let entries: Entry[] = [];
    for await (const record of wal.replay()) {
      if (record.groupId !== registerGroupId) continue;
      const decoded = decodeRaftRecord(record.payload);
      if (decoded === null)
        throw new BrigadeError(
          "DataDirMismatch",
          `unreadable Raft record at WAL sequence ${record.sequence}`,
        );
      if (decoded.hardState !== null) hardState = decoded.hardState;
      const first = decoded.entries[0];
      if (first === undefined) continue;
      if (first.index > entries.length + 1) {
        throw new BrigadeError(
          "DataDirMismatch",
          `Raft log gap at WAL sequence ${record.sequence}: entry ${first.index} after ${entries.length}`,
        );
      }
      entries = entries.slice(0, first.index - 1).concat(decoded.entries);
    }
    if (hardState !== undefined && hardState.commit > entries.length) {
      throw new BrigadeError(
        "DataDirMismatch",
        `Raft commit index ${hardState.commit} is past the recovered log (${entries.length} entries)`,
      );
    }
    if (this.stopped) return;
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
    options.transport.onMessage(messagesTopic, (payload, context) => {
      if (!Array.isArray(payload)) {
        this.stats.messagesRejected++;
        return;
      }
      for (const raw of payload) {
        const message = parseRaftMessage(raw, context.source);
        if (message === null) this.stats.messagesRejected++;
        else this.input(() => this.node?.step(message as RaftMessage), noop);
      }
    });
    options.transport.handle(proposeTopic, (payload, context) =>
      this.execute(payload as RegisterCommand, context.timeoutMs, false),
    );
    this.timer = setInterval(() => this.input(() => this.node?.tick(), noop), options.tickMs);
  }

  status() {
    const node = this.node;
    if (node === null) return null;
    return {
      ...node.status(),
      voters: this.options.voters,
      pendingCommands: this.pending.size,
      pendingReads: this.reads.size,
      failed: this.failed?.message ?? null,
    };
  }

  /**
   * Applies `command` through the log (a "get" through ReadIndex) and resolves with its
   * result once applied here. On a follower the command is forwarded to the leader (once).
   * Typed errors: Unavailable (no leader yet: retry), DeadlineExceeded (the outcome is
   * unknown: retry with the same request id), QueueFull, MessageTooLarge, InvalidArgument.
   */
  async execute(
    input: RegisterCommand,
    timeoutMs = this.options.commandTimeoutMs,
    mayForward = true,
  ): Promise<RegisterResult> {
    const command = parseCommand(input);
    const node = this.node;
    if (node === null || this.stopped || this.failed !== null)
      throw new BrigadeError("Unavailable", "raft is not running on this node");
    if (node.role !== "leader") {
      const leader = node.leaderId;
      if (leader === null || !mayForward || leader === this.options.nodeId) {
        throw new BrigadeError("Unavailable", "no leader is known yet; retry shortly");
      }
      return (await this.options.transport.request(leader, proposeTopic, command, {
        timeoutMs,
      })) as RegisterResult;
    }
    const inFlight = this.pending.size + this.reads.size + this.queuedCommands;
    if (inFlight >= pendingCommandsMax)
      throw new BrigadeError("QueueFull", `${inFlight} commands already in flight`);
    if (command.op === "get") return this.read(node, command.key, timeoutMs);
    return new Promise<RegisterResult>((resolve, reject) => {
      // The deadline runs from now, whether or not the command had to queue.
      const deadline = Date.now() + timeoutMs;
      this.queuedCommands++;
      this.input(
        () => {
          this.queuedCommands--;
          const result = node.propose(encodeCommand(command));
          this.stats.proposals++;
          if (!result.ok) {
            const error = result.error;
            if (error.code === "ProposalTooLarge")
              reject(
                new BrigadeError(
                  "MessageTooLarge",
                  `command of ${error.sizeBytes} bytes is too large`,
                ),
              );
            else if (error.code === "Overloaded")
              reject(new BrigadeError("QueueFull", "too many uncommitted bytes; retry later"));
            else if (error.code === "NotLeader")
              reject(
                new BrigadeError("Unavailable", `leadership moved to ${error.leaderHint}; retry`),
              );
            else reject(new BrigadeError("Unavailable", `no leader (${error.reason}); retry`));
            return;
          }
          const ticket = result.value;
          const timer = setTimeout(
            () => {
              this.pending.delete(ticket.index);
              reject(
                new BrigadeError(
                  "DeadlineExceeded",
                  `command not applied within ${timeoutMs} ms (it may still apply)`,
                ),
              );
            },
            Math.max(0, deadline - Date.now()),
          );
          this.pending.set(ticket.index, {
            ticket,
            requestId: command.requestId,
            resolve,
            reject,
            timer,
          });
        },
        (error) => {
          this.queuedCommands--;
          reject(error);
        },
      );
    });
  }

  /** A linearizable read without a log write (ReadIndex). */
  private read(node: RaftNode, key: string, timeoutMs: number): Promise<RegisterResult> {
    return new Promise<RegisterResult>((resolve, reject) => {
      const context = String(this.nextReadContext++);
      const timer = setTimeout(() => {
        this.reads.delete(context);
        reject(
          new BrigadeError(
            "DeadlineExceeded",
            `read not confirmed within ${timeoutMs} ms (leadership may have moved)`,
          ),
        );
      }, timeoutMs);
      this.reads.set(context, { key, resolve, reject, timer, index: null });
      const fail = (error: BrigadeError) => {
        if (!this.reads.delete(context)) return;
        clearTimeout(timer);
        reject(error);
      };
      this.input(() => {
        if (!this.reads.has(context)) return; // timed out while queued
        const result = node.readIndex(Buffer.from(context, "utf8"));
        if (!result.ok)
          fail(
            new BrigadeError(
              result.error.code === "ReadIndexQueueFull" ? "QueueFull" : "Unavailable",
              `read not served: ${result.error.code}`,
            ),
          );
      }, fail);
    });
  }

  /** Answers the confirmed reads whose index has been applied. */
  private answerReads(): void {
    for (const [context, read] of this.reads) {
      if (read.index === null || read.index > this.appliedIndex) continue;
      this.reads.delete(context);
      clearTimeout(read.timer);
      read.resolve({ ok: true, value: this.register.read(read.key), index: read.index });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.failEverything(
      new BrigadeError(
        "DeadlineExceeded",
        "node stopping: the outcome is unknown; retry with the same request id",
      ),
    );
    while (this.processing) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.wal?.close();
  }

  /** Rejects every queued input, proposal and read (stop, or a WAL failure). */
  private failEverything(error: BrigadeError): void {
    for (const queued of this.queue.splice(0)) queued.fail(error);
    for (const command of this.pending.values()) {
      clearTimeout(command.timer);
      command.reject(error);
    }
    this.pending.clear();
    for (const read of this.reads.values()) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    this.reads.clear();
  }

  /** Runs an input now, or queues it while a Ready is being persisted; then handles Readies. */
  private input(run: () => void, fail: (error: BrigadeError) => void): void {
    if (this.stopped || this.failed !== null || this.node === null) {
      fail(new BrigadeError("Unavailable", "raft is not running on this node"));
      return;
    }
    if (this.processing) {
      if (this.queue.length >= inputQueueMax) {
        this.stats.messagesDropped++;
        fail(new BrigadeError("QueueFull", `${this.queue.length} inputs waiting for the disk`));
        return;
      }
      this.queue.push({ run, fail });
      return;
    }
    this.runInput(run);
    void this.drainReadies();
  }

  /** An input's own failure (a bad command) is contained; the core's assertions still crash. */
  private runInput(run: () => void): void {
    try {
      run();
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      this.options.logger.error({ err: error }, "raft input failed");
    }
  }

  private async drainReadies(): Promise<void> {
    const node = this.node as RaftNode;
    if (this.processing) return;
    this.processing = true;
    try {
      while (!this.stopped) {
        // Feed every input that waited before taking the next Ready, so they share one WAL
        // write and one fsync: the core batches them.
        for (const queued of this.queue.splice(0)) this.runInput(queued.run);
        if (!node.hasReady()) break;
        const ready = node.ready();
        this.stats.readies++;
        await this.persist(ready.hardState, ready.entries);
        this.send(ready.messages);
        for (const entry of ready.committedEntries) this.applyEntry(entry);
        for (const state of ready.readStates) {
          const read = this.reads.get(Buffer.from(state.context).toString("utf8"));
          if (read !== undefined) read.index = state.index;
        }
        this.answerReads();
        node.advance();
      }
    } catch (error) {
      if (error instanceof AssertionError) throw error;
      // The WAL failed: this group can no longer promise durability. Refuse everything.
      this.failed = error as Error;
      this.options.logger.error({ err: error }, "raft stopped: cannot persist");
      this.failEverything(
        new BrigadeError("Unavailable", `raft stopped on this node: ${(error as Error).message}`),
      );
    } finally {
      this.processing = false;
    }
  }

  /**
   * Step 1 of a Ready: hard state and entries to the WAL, fsynced (group commit), split into
   * records under the WAL's record limit. A hard state that differs only in its commit index
   * is not worth an fsync (the commit index is learned again from the leader; etcd MustSync).
   */
  private async persist(hardState: HardState | null, entries: readonly Entry[]): Promise<void> {
    const mustSync =
      entries.length > 0 ||
      (hardState !== null &&
        (hardState.term !== this.persisted.term || hardState.vote !== this.persisted.vote));
    if (hardState !== null) this.persisted = hardState;
    if (!mustSync) return;
    const records: Array<{ type: "entries"; groupId: number; payload: Uint8Array }> = [];
    let chunk: Entry[] = [];
    let chunkBytes = 0;
    let hard = hardState; // goes with the first record
    const flushChunk = () => {
      records.push({
        type: "entries",
        groupId: registerGroupId,
        payload: encodeRaftRecordBody({ checkpoint: false, hardState: hard, entries: chunk }),
      });
      hard = null;
      chunk = [];
      chunkBytes = 0;
    };
    for (const entry of entries) {
      if (chunk.length > 0 && chunkBytes + entry.data.length > walRecordEntryBytesMax) flushChunk();
      chunk.push(entry);
      chunkBytes += entry.data.length + 32;
    }
    if (chunk.length > 0 || hard !== null) flushChunk();
    const started = performance.now();
    // Appends in batches under the WAL's batch limit, in order; nothing was sent yet.
    let batch: typeof records = [];
    let batchBytes = 0;
    for (const record of records) {
      if (batch.length > 0 && batchBytes + record.payload.length > walDefaults.batchBytesMax / 2) {
        await (this.wal as WriteAheadLog).append(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(record);
      batchBytes += record.payload.length;
    }
    if (batch.length > 0) await (this.wal as WriteAheadLog).append(batch);
    this.stats.walAppends++;
    this.stats.entriesPersisted += entries.length;
    this.onPersist(performance.now() - started, entries.length);
  }

  /** Step 2: messages to each destination, in frames under the transport's size limit. */
  private send(messages: ReadonlyArray<{ target: string; message: RaftMessage }>): void {
    const byTarget = new Map<string, RaftMessage[][]>();
    const bytesByTarget = new Map<string, number>();
    for (const { target, message } of messages) {
      const size = messageBytes(message);
      let frames = byTarget.get(target);
      if (frames === undefined) {
        frames = [[]];
        byTarget.set(target, frames);
        bytesByTarget.set(target, 0);
      }
      if (
        (bytesByTarget.get(target) as number) + size > frameMessageBytesMax &&
        (frames.at(-1) as RaftMessage[]).length > 0
      ) {
        frames.push([]);
        bytesByTarget.set(target, 0);
      }
      (frames.at(-1) as RaftMessage[]).push(message);
      bytesByTarget.set(target, (bytesByTarget.get(target) as number) + size);
    }
    for (const [target, frames] of byTarget) {
      for (const frame of frames) {
        try {
          this.options.transport.send(target, messagesTopic, frame);
          this.stats.messagesSent += frame.length;
        } catch (error) {
          // Unknown or unreachable peer, full queue, oversize: Raft retries by itself.
          this.stats.messagesDropped += frame.length;
          if (!isBrigadeError(error)) throw error;
        }
      }
    }
  }

  /** Step 3: one committed entry to the register, answering the command that waited for it. */
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

function messageBytes(message: RaftMessage): number {
  if (message.type !== "append-entries") return 64;
  let bytes = 64;
  for (const entry of message.entries) bytes += entry.data.length + 32;
  return bytes;
}
