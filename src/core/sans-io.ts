/**
 * @module The sans-I/O contract every protocol core implements (SWIM, Raft, the Dynamo
 * coordinator, the placement driver, and the demo broadcast protocol in `core/broadcast`).
 *
 * A core is a synchronous state machine. It never reads a clock, opens a socket or a file,
 * schedules a timer or calls `Math.random`: time arrives as `tick(nowMs)`, randomness as the
 * injected `prng`, durable state as `recovered` at construction. Two drivers run the same
 * core: the runtime driver (real transport, timers and disk, in `node/`) and the
 * deterministic simulator (virtual time, simulated network and disk, in `sim/`).
 *
 * Ordering contract for the driver, once per `takeOutput()`:
 *   1. append every `writes` record to its file; if any record has `sync: true`, fsync
 *      those files and wait for it to finish;
 *   2. only then send `messages` (delivery is best-effort: lost, late, duplicated or
 *      reordered messages are normal and the core must tolerate them);
 *   3. hand `events` to the layer above (they are already durable where that matters).
 * A core may therefore promise something in a message only about state it has asked to be
 * synced in the same or an earlier output.
 */
import type { Prng } from "../lib/prng.js";

export type NodeId = string;

/** A message addressed to one node. `message` must be plain data (msgpack-encodable). */
export interface Outgoing<Message> {
  readonly target: NodeId;
  readonly message: Message;
}

/**
 * An append to one of the node's durable files. Files are append-only logs named by the
 * core; a crash loses every record not covered by a completed fsync, and the last record
 * written may survive only in part (a torn write), so records should be self-checking.
 */
export interface StorageWrite {
  readonly file: string;
  readonly data: Uint8Array;
  /** Fsync this file (and every earlier record in it) before any message of this output is sent. */
  readonly sync: boolean;
}

export interface CoreOutput<Message, Event> {
  readonly messages: readonly Outgoing<Message>[];
  readonly writes: readonly StorageWrite[];
  readonly events: readonly Event[];
}

/** What a core is given when it is created, and again, from its disk, after a restart. */
export interface CoreContext {
  readonly nodeId: NodeId;
  /** The other members known at start. Later layers learn membership from SWIM instead. */
  readonly peers: readonly NodeId[];
  /** Injected randomness: the only source of nondeterminism a core may use. */
  readonly prng: Prng;
  /** Injected time at creation; later time arrives through `tick`. */
  readonly nowMs: number;
  /** Every durable file's surviving bytes, as the disk returned them after a restart. */
  readonly recovered: ReadonlyMap<string, Uint8Array>;
}

export interface ProtocolCore<Message, Event> {
  /** A message from `source` arrived. Bad input from a peer is counted and ignored, never thrown. */
  receive(source: NodeId, message: Message): void;
  /** Time has advanced to `nowMs` (monotonic, never decreases). */
  tick(nowMs: number): void;
  /** Drains everything produced since the last call; the driver follows the ordering contract above. */
  takeOutput(): CoreOutput<Message, Event>;
}

export type CoreFactory<Message, Event> = (context: CoreContext) => ProtocolCore<Message, Event>;

/** A reusable accumulator so cores do not each re-implement output buffering. */
export class OutputBuffer<Message, Event> {
  private messages: Outgoing<Message>[] = [];
  private writes: StorageWrite[] = [];
  private events: Event[] = [];

  send(target: NodeId, message: Message): void {
    this.messages.push({ target, message });
  }
  write(file: string, data: Uint8Array, sync: boolean): void {
    this.writes.push({ file, data, sync });
  }
  emit(event: Event): void {
    this.events.push(event);
  }
  take(): CoreOutput<Message, Event> {
    const output = { messages: this.messages, writes: this.writes, events: this.events };
    this.messages = [];
    this.writes = [];
    this.events = [];
    return output;
  }
}
