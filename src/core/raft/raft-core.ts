/**
 * @module A thin adapter that makes `RaftNode` a `ProtocolCore` (core/sans-io.ts), so the
 * simulator can run it, with a toy state machine so snapshots have something to carry. Pure.
 *
 * Each `takeOutput()` drains the node's Readys and maps them onto the sans-I/O contract,
 * which has the same order as the Ready contract: a received snapshot, the hard state and
 * new entries become one `writes` record with `sync: true` (see `storage.ts`), the messages
 * become `messages`; then a received snapshot becomes a `restore` event, the committed
 * commands `apply` events, committed configurations `config` events and confirmed ReadIndex
 * requests `read` events (after that Ready's applies). `advance()` is called at once: the
 * driver contract guarantees the fsync happens before anything is sent or applied.
 *
 * The state machine is the ordered list of applied commands with their indexes; its
 * snapshot image is their encoding (`encodeCommands`). With `snapshotEvery: N`, once N
 * entries were applied since the last snapshot the adapter takes one at the applied index
 * (`node.snapshot`) and writes it, image inline, as its own synced record. On restart the
 * state machine is restored from the recovered snapshot (a `restore` event) and every
 * committed entry after it is applied again; without one it starts empty and re-applies
 * from index 1.
 *
 * Time: each `tick(nowMs)` call is one Raft tick (the driver ticks at a fixed interval).
 */
import { assert } from "../../lib/assert.js";
import type { CoreContext, CoreOutput, NodeId, ProtocolCore, StorageWrite } from "../sans-io.js";
import type { RaftConfig } from "./config.js";
import { decodeClusterConfig } from "./membership.js";
import { type RaftDefect, RaftNode } from "./raft-node.js";
import { encodeRaftRecord, recoverRaftState } from "./storage.js";
import type {
  ChangeMembershipError,
  ClusterConfig,
  Entry,
  LogIndex,
  MembershipChange,
  ProposalTicket,
  ProposeError,
  RaftMessage,
  ReadIndexError,
  Result,
  Snapshot,
  Term,
} from "./types.js";
import { parseRaftMessage } from "./validate.js";

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
/** A committed configuration entry was applied (the core already acted on it). */
export interface RaftConfigEvent {
  readonly type: "config";
  readonly index: LogIndex;
  readonly term: Term;
  readonly config: ClusterConfig;
}
/**
 * The state machine was replaced by a snapshot's image: at a restart (`restart`) or on
 * installing one received from the leader (`leader`). `commands` is its whole content;
 * `apply` events continue after `index`.
 */
export interface RaftRestoreEvent {
  readonly type: "restore";
  readonly source: "restart" | "leader";
  readonly index: LogIndex;
  readonly term: Term;
  readonly config: ClusterConfig;
  readonly commands: readonly AppliedCommand[];
}
export type RaftEvent = RaftApplyEvent | RaftReadEvent | RaftConfigEvent | RaftRestoreEvent;

export interface AppliedCommand {
  readonly index: LogIndex;
  readonly data: Uint8Array;
}

export interface RaftCoreOptions {
  readonly config?: Partial<RaftConfig>;
  readonly defect?: RaftDefect;
  /**
   * The bootstrap voters (`RaftNodeOptions.voters`): the founders' list on a founder, `[]`
   * on a node that joins later. Default: this node and all its peers.
   */
  readonly voters?: readonly NodeId[];
  /** Take a snapshot once this many entries were applied since the last one; 0: never. */
  readonly snapshotEvery?: number;
}

/** Counters of this incarnation (a restart starts from zero). */
export interface RaftCoreStats {
  snapshotsTaken: number;
  snapshotsRestored: number;
}

export class RaftCore implements ProtocolCore<RaftMessage, RaftEvent> {
  readonly node: RaftNode;
  /** Messages dropped because they were malformed or claimed another sender. */
  invalidMessages = 0;
  readonly stats: RaftCoreStats = { snapshotsTaken: 0, snapshotsRestored: 0 };
  readonly #file: string;
  readonly #snapshotEvery: number;
  #writes: StorageWrite[] = [];
  #events: RaftEvent[] = [];
  /** The state machine: every applied command's encoding, appended in order. */
  #image = new CommandImage();

  constructor(context: CoreContext, options: RaftCoreOptions = {}) {
    const recovered = recoverRaftState(context.recovered);
    this.#file = recovered.nextFile;
    this.#snapshotEvery = options.snapshotEvery ?? 0;
    const snapshot = recovered.snapshot;
    this.node = new RaftNode({
      id: context.nodeId,
      voters: options.voters ?? [context.nodeId, ...context.peers].sort(),
      prng: context.prng,
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(recovered.hardState === undefined ? {} : { hardState: recovered.hardState }),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries: recovered.entries,
      ...(options.defect === undefined ? {} : { defect: options.defect }),
    });
    // A new generation opens with a checkpoint of everything recovered (storage.ts).
    this.#writes.push({
      file: this.#file,
      data: encodeRaftRecord({
        checkpoint: true,
        snapshot: snapshot?.metadata ?? null,
        snapshotData: snapshot?.data ?? null,
        hardState: recovered.hardState ?? null,
        entries: recovered.entries,
      }),
      sync: true,
    });
    if (snapshot !== undefined) this.#events.push(this.#restore(snapshot, "restart"));
  }

  receive(source: NodeId, message: RaftMessage): void {
    const parsed = parseRaftMessage(message, source);
    if (parsed === null) {
      this.invalidMessages++;
      return;
    }
    this.node.step(parsed);
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

  changeMembership(change: MembershipChange): Result<ProposalTicket, ChangeMembershipError> {
    return this.node.changeMembership(change);
  }

  takeOutput(): CoreOutput<RaftMessage, RaftEvent> {
    const writes = this.#writes;
    this.#writes = [];
    const events = this.#events;
    this.#events = [];
    const messages: { target: NodeId; message: RaftMessage }[] = [];
    while (this.node.hasReady()) {
      const ready = this.node.ready();
      if (ready.snapshot !== null || ready.hardState !== null || ready.entries.length > 0) {
        writes.push({
          file: this.#file,
          data: encodeRaftRecord({
            checkpoint: false,
            snapshot: ready.snapshot?.metadata ?? null,
            snapshotData: ready.snapshot?.data ?? null,
            hardState: ready.hardState,
            entries: ready.entries,
          }),
          sync: true,
        });
      }
      messages.push(...ready.messages);
      if (ready.snapshot !== null) events.push(this.#restore(ready.snapshot, "leader"));
      for (const entry of ready.committedEntries) {
        if (entry.kind === "command") {
          this.#image.append(entry.index, entry.data);
          events.push(applyEvent(entry));
        } else if (entry.kind === "config") {
          const config = decodeClusterConfig(entry.data);
          if (config !== null)
            events.push({ type: "config", index: entry.index, term: entry.term, config });
        }
      }
      for (const { index, context } of ready.readStates)
        events.push({ type: "read", index, context });
      this.node.advance();
      this.#maybeSnapshot(writes);
    }
    return { messages, writes, events };
  }

  checkInvariants(): void {
    this.node.checkInvariants();
  }

  /** The state machine's content: every applied command, in index order. */
  commands(): AppliedCommand[] {
    return decodeCommands(this.#image.bytes());
  }

  /** Replaces the state machine by the snapshot's image. */
  #restore(snapshot: Snapshot, source: RaftRestoreEvent["source"]): RaftRestoreEvent {
    const commands = decodeCommands(snapshot.data);
    this.#image = new CommandImage();
    for (const command of commands) this.#image.append(command.index, command.data);
    this.stats.snapshotsRestored++;
    const { index, term, config } = snapshot.metadata;
    return { type: "restore", source, index, term, config, commands };
  }

  #maybeSnapshot(writes: StorageWrite[]): void {
    if (this.#snapshotEvery <= 0) return;
    const applied = this.node.applied;
    const last = this.node.snapshotMetadata?.index ?? 0;
    if (applied - last < this.#snapshotEvery) return;
    const data = this.#image.bytes();
    const result = this.node.snapshot(applied, data);
    if (!result.ok) return;
    this.stats.snapshotsTaken++;
    writes.push({
      file: this.#file,
      data: encodeRaftRecord({
        checkpoint: false,
        snapshot: result.value,
        snapshotData: data,
        hardState: null,
        entries: [],
      }),
      sync: true,
    });
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

/**
 * The toy state machine's image, append-only: each command as (varint index, varint
 * length, bytes), so taking a snapshot copies bytes instead of re-encoding everything.
 */
class CommandImage {
  #buffer = new Uint8Array(256);
  #length = 0;

  append(index: number, data: Uint8Array): void {
    this.#reserve(10 + 10 + data.length);
    this.#varint(index);
    this.#varint(data.length);
    this.#buffer.set(data, this.#length);
    this.#length += data.length;
  }

  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#buffer.length) return;
    const next = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + extra));
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
  }

  #varint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest & 0x7f) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
  }
}

/** The commands in a snapshot image (see `CommandImage`); asserts it is well formed. */
export function decodeCommands(image: Uint8Array): AppliedCommand[] {
  const commands: AppliedCommand[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = image[at++];
      assert(byte !== undefined, "truncated snapshot image");
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
  };
  while (at < image.length) {
    const index = varint();
    const length = varint();
    assert(at + length <= image.length, "truncated snapshot image");
    commands.push({ index: index as LogIndex, data: image.slice(at, at + length) });
    at += length;
  }
  return commands;
}
