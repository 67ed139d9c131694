/**
 * @module Reliable broadcast as a pure sans-I/O core: the demo protocol that proves the
 * simulator. Pure: no I/O, no clock, no `Math.random`; time arrives through `tick`.
 *
 * Guarantees, for every broadcast the origin reported `accepted` (its record is durable):
 * - validity: every node delivers it, once partitions heal and crashed nodes restart;
 * - integrity: a node reports `delivered` for an id at most once, across crashes and restarts;
 * - agreement: if any node delivers an id, every node does.
 *
 * How:
 * - `broadcast(id, payload)` appends a `Broadcast` record with `sync: true`; only that output
 *   reports `accepted` and sends `Data` to every peer (persist-before-send, `core/sans-io.ts`);
 * - a receiver that has not delivered the id appends `Delivered` with `sync: true`, reports
 *   `delivered` and then acks; a duplicate `Data` (network duplicate or retransmit) is only
 *   acked again, so an ack always means "durably delivered here";
 * - the origin resends `Data` every `retransmitIntervalMs` to the peers that have not acked,
 *   until all have (then `Completed`, unsynced: losing it only costs a resend after restart);
 * - on restart the core replays its files: delivered ids (no redelivery) and pending
 *   broadcasts (resent to every peer, since acks are not persisted). Records are self-checking
 *   (`record-log.ts`); a torn tail is counted and skipped, and each incarnation writes a new
 *   file (`broadcast-<generation>.wal`) so it never appends after damage.
 *
 * Gotchas: ids must be unique cluster-wide (prefix them with the node id); the set of
 * delivered ids grows with every broadcast (a production version would keep per-origin
 * sequence watermarks instead). Only the origin retransmits, so an accepted broadcast whose
 * origin never comes back is delivered only where it already arrived.
 *
 * Example:
 *   const core = new ReliableBroadcast(context);
 *   const result = core.broadcast("n1/1", new TextEncoder().encode("hello"));
 *   const { writes, messages, events } = core.takeOutput(); // persist + fsync, send, then events
 */
import { assert, assertNever } from "../../lib/assert.js";
import type { CoreContext, CoreFactory, NodeId, ProtocolCore } from "../sans-io.js";
import { OutputBuffer } from "../sans-io.js";
import { BodyReader, BodyWriter, decodeRecords, encodeRecord } from "./record-log.js";

// ----- messages, events, errors -----

export interface BroadcastData {
  readonly type: "Data";
  readonly id: string;
  readonly origin: NodeId;
  readonly payload: Uint8Array;
}

export interface BroadcastAck {
  readonly type: "Ack";
  readonly id: string;
}

export type BroadcastMessage = BroadcastData | BroadcastAck;

export type BroadcastEvent =
  /** At the origin: the broadcast is durable and will reach every node. Tell the client. */
  | { readonly type: "accepted"; readonly id: string }
  /** The broadcast is delivered at this node (durably: never reported again here). */
  | {
      readonly type: "delivered";
      readonly id: string;
      readonly origin: NodeId;
      readonly payload: Uint8Array;
    }
  /** At the origin: every peer acknowledged; no more resends. */
  | { readonly type: "completed"; readonly id: string }
  /** After a restart: what the files gave back. */
  | {
      readonly type: "recovered";
      readonly deliveredCount: number;
      readonly pendingCount: number;
      readonly damagedBytes: number;
      readonly files: number;
    };

export type BroadcastError =
  | { readonly code: "InvalidId"; readonly idBytesMax: number }
  | { readonly code: "DuplicateId"; readonly id: string }
  | { readonly code: "PayloadTooLarge"; readonly sizeBytes: number; readonly sizeBytesMax: number }
  | { readonly code: "Overloaded"; readonly pending: number; readonly pendingMax: number };

export type BroadcastResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: BroadcastError };

// ----- config -----

/**
 * A deliberately broken variant, for proving that the simulator's checker catches bugs.
 * Never set in production; `"none"` is the default.
 * - `no-retransmit`: send `Data` once and never again (loss then breaks validity);
 * - `no-sync-before-ack`: append `Delivered` without fsync before acking (a crash can then
 *   forget a delivery the node already reported, and a resend delivers it twice).
 */
export type ReliableBroadcastDefect = "none" | "no-retransmit" | "no-sync-before-ack";

export interface ReliableBroadcastConfig {
  /**
   * Gap between resends to peers that have not acked. Default 100 ms: a few LAN round trips,
   * so a lost packet costs little delay while an idle slow peer costs at most 10 resends/s.
   */
  readonly retransmitIntervalMs: number;
  /** Resent `Data` messages per tick at most, so a backlog cannot flood one tick. Default 256. */
  readonly retransmitsPerTickMax: number;
  /**
   * Own broadcasts not yet acked by every peer; more is `Overloaded`. Default 1024: with
   * 64 KiB payloads at most 64 MiB held for resending.
   */
  readonly pendingMax: number;
  /** Largest payload. Default 64 KiB (bounds the resend buffer above and a WAL record). */
  readonly payloadBytesMax: number;
  /** Longest id in UTF-8 bytes. Default 256. */
  readonly idBytesMax: number;
  /** Test-only broken variant; default "none". */
  readonly defect: ReliableBroadcastDefect;
}

export const reliableBroadcastDefaults: ReliableBroadcastConfig = Object.freeze({
  retransmitIntervalMs: 100,
  retransmitsPerTickMax: 256,
  pendingMax: 1024,
  payloadBytesMax: 64 * 1024,
  idBytesMax: 256,
  defect: "none",
});

export function validateReliableBroadcastConfig(config: ReliableBroadcastConfig): void {
  assert(config.retransmitIntervalMs >= 1, "retransmitIntervalMs must be >= 1");
  assert(config.retransmitsPerTickMax >= 1, "retransmitsPerTickMax must be >= 1");
  assert(config.pendingMax >= 1, "pendingMax must be >= 1");
  assert(config.payloadBytesMax >= 0, "payloadBytesMax must be >= 0");
  assert(config.idBytesMax >= 1, "idBytesMax must be >= 1");
}

// ----- WAL records -----

const walFilePrefix = "broadcast-";
const walFileSuffix = ".wal";

const RecordKind = { broadcast: 1, delivered: 2, completed: 3 } as const;

type WalRecord =
  | { readonly kind: "broadcast"; readonly id: string; readonly payload: Uint8Array }
  | { readonly kind: "delivered"; readonly id: string; readonly origin: NodeId }
  | { readonly kind: "completed"; readonly id: string };

function encodeWalRecord(record: WalRecord, bodyBytesMax: number): Uint8Array {
  const writer = new BodyWriter();
  switch (record.kind) {
    case "broadcast":
      writer.u8(RecordKind.broadcast).string(record.id).bytes(record.payload);
      break;
    case "delivered":
      writer.u8(RecordKind.delivered).string(record.id).string(record.origin);
      break;
    case "completed":
      writer.u8(RecordKind.completed).string(record.id);
      break;
    default:
      assertNever(record);
  }
  return encodeRecord(writer.finish(), bodyBytesMax);
}

/** Null for a body that passed its checksum but does not parse: a bug, counted as damage. */
function decodeWalRecord(body: Uint8Array): WalRecord | null {
  const reader = new BodyReader(body);
  const kind = reader.u8();
  const id = reader.string();
  if (id === null) return null;
  let record: WalRecord | null = null;
  if (kind === RecordKind.broadcast) {
    const payload = reader.bytes();
    if (payload !== null) record = { kind: "broadcast", id, payload };
  } else if (kind === RecordKind.delivered) {
    const origin = reader.string();
    if (origin !== null) record = { kind: "delivered", id, origin };
  } else if (kind === RecordKind.completed) {
    record = { kind: "completed", id };
  }
  return record !== null && reader.atEnd() ? record : null;
}

/** The generation number of a WAL file name, or null for files that are not ours. */
function walGeneration(file: string): number | null {
  if (!file.startsWith(walFilePrefix) || !file.endsWith(walFileSuffix)) return null;
  const digits = file.slice(walFilePrefix.length, file.length - walFileSuffix.length);
  return /^\d{1,9}$/.test(digits) ? Number(digits) : null;
}

// ----- the core -----

interface PendingBroadcast {
  readonly payload: Uint8Array;
  /** Peers that have not acked since this incarnation started. Never empty. */
  readonly awaiting: Set<NodeId>;
  nextSendMs: number;
}

const textEncoder = new TextEncoder();

export class ReliableBroadcast implements ProtocolCore<BroadcastMessage, BroadcastEvent> {
  readonly nodeId: NodeId;
  readonly #peers: readonly NodeId[];
  readonly #peerSet: ReadonlySet<NodeId>;
  readonly #config: ReliableBroadcastConfig;
  readonly #bodyBytesMax: number;
  readonly #output = new OutputBuffer<BroadcastMessage, BroadcastEvent>();
  /** Every id delivered here (own broadcasts included), as persisted. */
  readonly #delivered = new Set<string>();
  /** Own broadcasts still waiting for acks, in broadcast order. */
  readonly #pending = new Map<string, PendingBroadcast>();
  readonly #walFile: string;
  #nowMs: number;
  readonly stats = { badMessages: 0, duplicateData: 0, retransmits: 0, staleAcks: 0 };

  constructor(context: CoreContext, config: ReliableBroadcastConfig = reliableBroadcastDefaults) {
    validateReliableBroadcastConfig(config);
    assert(!context.peers.includes(context.nodeId), "peers must not include the node itself");
    // A resend round goes to every unacked peer in one tick, so one round must fit the budget.
    assert(
      context.peers.length <= config.retransmitsPerTickMax,
      `${context.peers.length} peers > retransmitsPerTickMax ${config.retransmitsPerTickMax}`,
    );
    this.nodeId = context.nodeId;
    this.#peers = [...context.peers];
    this.#peerSet = new Set(context.peers);
    this.#config = config;
    // A body holds a tag, an id and a payload (or two ids), each with a 4-byte length.
    this.#bodyBytesMax = 1 + 4 + config.idBytesMax + 4 + Math.max(config.payloadBytesMax, 4096);
    this.#nowMs = context.nowMs;
    this.#walFile = `${walFilePrefix}${this.#recover(context.recovered)}${walFileSuffix}`;
  }

  /**
   * Broadcasts `payload` under `id` (unique cluster-wide). `ok` means the request is queued in
   * this output; the client learns it is durable from the `accepted` event, which the driver
   * hands over only after the fsync.
   */
  broadcast(id: string, payload: Uint8Array): BroadcastResult {
    const idBytes = textEncoder.encode(id).length;
    if (idBytes === 0 || idBytes > this.#config.idBytesMax) {
      return { ok: false, error: { code: "InvalidId", idBytesMax: this.#config.idBytesMax } };
    }
    if (payload.length > this.#config.payloadBytesMax) {
      return {
        ok: false,
        error: {
          code: "PayloadTooLarge",
          sizeBytes: payload.length,
          sizeBytesMax: this.#config.payloadBytesMax,
        },
      };
    }
    if (this.#delivered.has(id)) return { ok: false, error: { code: "DuplicateId", id } };
    if (this.#pending.size >= this.#config.pendingMax) {
      return {
        ok: false,
        error: {
          code: "Overloaded",
          pending: this.#pending.size,
          pendingMax: this.#config.pendingMax,
        },
      };
    }
    const copy = payload.slice();
    this.#append({ kind: "broadcast", id, payload: copy }, true);
    this.#delivered.add(id);
    this.#output.emit({ type: "accepted", id });
    this.#output.emit({ type: "delivered", id, origin: this.nodeId, payload: copy });
    if (this.#peers.length === 0) {
      this.#complete(id);
      return { ok: true };
    }
    this.#pending.set(id, {
      payload: copy,
      awaiting: new Set(this.#peers),
      nextSendMs: this.#nowMs + this.#config.retransmitIntervalMs,
    });
    for (const peer of this.#peers) this.#sendData(peer, id, copy);
    return { ok: true };
  }

  receive(source: NodeId, message: BroadcastMessage): void {
    if (!this.#peerSet.has(source) || !this.#isValidMessage(message)) {
      this.stats.badMessages++;
      return;
    }
    switch (message.type) {
      case "Data":
        this.#onData(source, message);
        break;
      case "Ack":
        this.#onAck(source, message);
        break;
      default:
        assertNever(message);
    }
  }

  tick(nowMs: number): void {
    assert(nowMs >= this.#nowMs, `time went backwards: ${nowMs} < ${this.#nowMs}`);
    this.#nowMs = nowMs;
    if (this.#config.defect === "no-retransmit") return;
    this.#tickRetransmit();
  }

  takeOutput() {
    return this.#output.take();
  }

  /** Cheap structural invariants; the simulator calls this after every step. */
  checkInvariants(): void {
    assert(this.#pending.size <= this.#config.pendingMax, "pending over its limit");
    for (const [id, pending] of this.#pending) {
      assert(this.#delivered.has(id), `pending ${id} not delivered at its origin`);
      assert(pending.awaiting.size > 0, `pending ${id} awaits nobody`);
      for (const peer of pending.awaiting)
        assert(this.#peerSet.has(peer), `awaits non-peer ${peer}`);
    }
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  hasDelivered(id: string): boolean {
    return this.#delivered.has(id);
  }

  #onData(source: NodeId, message: BroadcastData): void {
    if (source !== message.origin) {
      // Only origins send Data; anything else is a confused or malicious peer.
      this.stats.badMessages++;
      return;
    }
    if (this.#delivered.has(message.id)) {
      this.stats.duplicateData++;
    } else {
      const sync = this.#config.defect !== "no-sync-before-ack";
      this.#append({ kind: "delivered", id: message.id, origin: message.origin }, sync);
      this.#delivered.add(message.id);
      this.#output.emit({
        type: "delivered",
        id: message.id,
        origin: message.origin,
        payload: message.payload,
      });
    }
    // Sent after the Delivered record in this same output, so the driver fsyncs it first.
    this.#output.send(source, { type: "Ack", id: message.id });
  }

  #onAck(source: NodeId, message: BroadcastAck): void {
    const pending = this.#pending.get(message.id);
    if (pending === undefined || !pending.awaiting.delete(source)) {
      this.stats.staleAcks++;
      return;
    }
    if (pending.awaiting.size === 0) {
      this.#pending.delete(message.id);
      this.#complete(message.id);
    }
  }

  #complete(id: string): void {
    assert(!this.#pending.has(id));
    this.#append({ kind: "completed", id }, false);
    this.#output.emit({ type: "completed", id });
  }

  #tickRetransmit(): void {
    let budget = this.#config.retransmitsPerTickMax;
    for (const [id, pending] of this.#pending) {
      if (pending.nextSendMs > this.#nowMs) continue;
      if (budget < pending.awaiting.size) return; // resend whole rounds only; the rest next tick
      for (const peer of pending.awaiting) {
        this.#sendData(peer, id, pending.payload);
        this.stats.retransmits++;
        budget--;
      }
      pending.nextSendMs = this.#nowMs + this.#config.retransmitIntervalMs;
    }
  }

  #sendData(peer: NodeId, id: string, payload: Uint8Array): void {
    this.#output.send(peer, { type: "Data", id, origin: this.nodeId, payload });
  }

  #append(record: WalRecord, sync: boolean): void {
    this.#output.write(this.#walFile, encodeWalRecord(record, this.#bodyBytesMax), sync);
  }

  #isValidMessage(message: unknown): message is BroadcastMessage {
    if (typeof message !== "object" || message === null) return false;
    const candidate = message as Record<string, unknown>;
    const id = candidate.id;
    if (typeof id !== "string" || id.length === 0) return false;
    if (textEncoder.encode(id).length > this.#config.idBytesMax) return false;
    if (candidate.type === "Ack") return true;
    return (
      candidate.type === "Data" &&
      typeof candidate.origin === "string" &&
      candidate.payload instanceof Uint8Array &&
      candidate.payload.length <= this.#config.payloadBytesMax
    );
  }

  /** Replays every WAL file in generation order; returns the generation to write next. */
  #recover(recovered: ReadonlyMap<string, Uint8Array>): number {
    const files: { generation: number; bytes: Uint8Array }[] = [];
    for (const [file, bytes] of recovered) {
      const generation = walGeneration(file);
      if (generation !== null) files.push({ generation, bytes });
    }
    if (files.length === 0) return 0;
    files.sort((left, right) => left.generation - right.generation);
    let damagedBytes = 0;
    for (const { bytes } of files) {
      const decoded = decodeRecords(bytes, this.#bodyBytesMax);
      damagedBytes += decoded.damagedBytes;
      for (const body of decoded.bodies) {
        const record = decodeWalRecord(body);
        assert(record !== null, "a WAL record passed its checksum but does not parse");
        this.#replay(record);
      }
    }
    this.#output.emit({
      type: "recovered",
      deliveredCount: this.#delivered.size,
      pendingCount: this.#pending.size,
      damagedBytes,
      files: files.length,
    });
    return files.at(-1)!.generation + 1;
  }

  #replay(record: WalRecord): void {
    switch (record.kind) {
      case "broadcast":
        this.#delivered.add(record.id);
        if (this.#peers.length > 0) {
          // Acks are not persisted: every peer is asked again (a duplicate is only re-acked).
          this.#pending.set(record.id, {
            payload: record.payload,
            awaiting: new Set(this.#peers),
            nextSendMs: this.#nowMs,
          });
        }
        return;
      case "delivered":
        this.#delivered.add(record.id);
        return;
      case "completed":
        this.#pending.delete(record.id);
        return;
      default:
        assertNever(record);
    }
  }
}

/** A `CoreFactory` for the simulator and the runtime driver. */
export function reliableBroadcastFactory(
  config: ReliableBroadcastConfig = reliableBroadcastDefaults,
): CoreFactory<BroadcastMessage, BroadcastEvent> & ((context: CoreContext) => ReliableBroadcast) {
  return function createReliableBroadcast(context: CoreContext): ReliableBroadcast {
    return new ReliableBroadcast(context, config);
  };
}
