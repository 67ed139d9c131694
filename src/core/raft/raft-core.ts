/**
 * @module A thin adapter that makes `RaftNode` a `ProtocolCore` (core/sans-io.ts), so the
 * simulator (and later the runtime driver) can run it. Pure.
 *
 * Each `takeOutput()` drains the node's Readys and maps them onto the sans-I/O contract,
 * which has the same order as the Ready contract: the hard state and new entries become one
 * `writes` record with `sync: true` (see `storage.ts`), the messages become `messages`, the
 * committed commands become `apply` events and confirmed ReadIndex requests `read` events
 * (after that Ready's applies). `advance()` is called at once: the driver
 * contract guarantees the fsync happens before anything is sent or applied.
 *
 * Time: each `tick(nowMs)` call is one Raft tick (the driver ticks at a fixed interval).
 * On restart the state machine starts empty, so every committed command is applied again
 * from index 1 (snapshots will change that).
 */
import type { CoreContext, CoreOutput, NodeId, ProtocolCore, StorageWrite } from "../sans-io.js";
import type { RaftConfig } from "./config.js";
import { type RaftDefect, RaftNode } from "./raft-node.js";
import { encodeRaftRecord, recoverRaftState } from "./storage.js";
import type {
  Entry,
  LogIndex,
  ProposalTicket,
  ProposeError,
  RaftMessage,
  ReadIndexError,
  Result,
  Term,
} from "./types.js";

/** A committed command, in log order, for the state machine above. */
export interface RaftApplyEvent {
  readonly type: "apply";
  readonly index: LogIndex;
  readonly term: Term;
  readonly data: Uint8Array;
}
/** A confirmed ReadIndex request: serve it once `apply` events reached `index`. */
export interface RaftReadEvent {
  readonly type: "read";
  readonly index: LogIndex;
  readonly context: Uint8Array;
}
export type RaftEvent = RaftApplyEvent | RaftReadEvent;

export interface RaftCoreOptions {
  readonly config?: Partial<RaftConfig>;
  readonly defect?: RaftDefect;
}

const messageTypes = new Set<string>([
  "request-vote",
  "request-vote-response",
  "append-entries",
  "append-entries-response",
  "heartbeat",
  "heartbeat-response",
  "timeout-now",
]);

export class RaftCore implements ProtocolCore<RaftMessage, RaftEvent> {
  readonly node: RaftNode;
  /** Messages dropped because they were malformed or claimed another sender. */
  invalidMessages = 0;
  readonly #file: string;
  #writes: StorageWrite[] = [];

  constructor(context: CoreContext, options: RaftCoreOptions = {}) {
    const recovered = recoverRaftState(context.recovered);
    this.#file = recovered.nextFile;
    this.node = new RaftNode({
      id: context.nodeId,
      voters: [context.nodeId, ...context.peers].sort(),
      prng: context.prng,
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(recovered.hardState === undefined ? {} : { hardState: recovered.hardState }),
      entries: recovered.entries,
      ...(options.defect === undefined ? {} : { defect: options.defect }),
    });
    // A new generation opens with a checkpoint of everything recovered (storage.ts).
    this.#writes.push({
      file: this.#file,
      data: encodeRaftRecord({
        checkpoint: true,
        hardState: recovered.hardState ?? null,
        entries: recovered.entries,
      }),
      sync: true,
    });
  }

  receive(source: NodeId, message: RaftMessage): void {
    const candidate = message as Partial<RaftMessage> | null;
    if (
      typeof candidate !== "object" ||
      candidate === null ||
      typeof candidate.type !== "string" ||
      !messageTypes.has(candidate.type) ||
      candidate.from !== source ||
      typeof candidate.term !== "number"
    ) {
      this.invalidMessages++;
      return;
    }
    this.node.step(message);
  }

  tick(_nowMs: number): void {
    this.node.tick();
  }

  propose(data: Uint8Array): Result<ProposalTicket, ProposeError> {
    return this.node.propose(data);
  }

  readIndex(context: Uint8Array): Result<void, ReadIndexError> {
    return this.node.readIndex(context);
  }

  takeOutput(): CoreOutput<RaftMessage, RaftEvent> {
    const writes = this.#writes;
    this.#writes = [];
    const messages: { target: NodeId; message: RaftMessage }[] = [];
    const events: RaftEvent[] = [];
    while (this.node.hasReady()) {
      const ready = this.node.ready();
      if (ready.hardState !== null || ready.entries.length > 0) {
        writes.push({
          file: this.#file,
          data: encodeRaftRecord({
            checkpoint: false,
            hardState: ready.hardState,
            entries: ready.entries,
          }),
          sync: true,
        });
      }
      messages.push(...ready.messages);
      for (const entry of ready.committedEntries) {
        if (entry.kind === "command") events.push(applyEvent(entry));
      }
      for (const { index, context } of ready.readStates)
        events.push({ type: "read", index, context });
      this.node.advance();
    }
    return { messages, writes, events };
  }

  checkInvariants(): void {
    this.node.checkInvariants();
  }
}

function applyEvent(entry: Entry): RaftApplyEvent {
  return { type: "apply", index: entry.index, term: entry.term, data: entry.data };
}

export function raftCoreFactory(options: RaftCoreOptions = {}) {
  return function createRaftCore(context: CoreContext): RaftCore {
    return new RaftCore(context, options);
  };
}
