/**
 * @module A tiny synchronous network of `RaftNode`s for unit tests (in the spirit of etcd's
 * `rafttest` network): each node has an in-memory "disk" that receives every Ready's
 * snapshot, hard state and entries before its messages are queued, a state machine (the
 * list of applied commands, restored from snapshots), a message queue the test controls
 * (deliver, filter, drop), partitions, restarts from the disk, and nodes that join later
 * with their own bootstrap voters. Pure.
 */
import { assert } from "../../lib/assert.js";
import { prngFromSeed } from "../../lib/prng.js";
import type { NodeId } from "../sans-io.js";
import type { RaftConfig } from "./config.js";
import { type RaftDefect, RaftNode } from "./raft-node.js";
import {
  asIndex,
  type Entry,
  type HardState,
  type RaftMessage,
  type ReadState,
  type Snapshot,
} from "./types.js";

export interface Envelope {
  readonly source: NodeId;
  readonly target: NodeId;
  readonly message: RaftMessage;
}

interface Disk {
  hardState: HardState | undefined;
  /** The last snapshot taken or installed; `entries` continue after it. */
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

/** One applied command of a node's state machine. */
export interface Command {
  readonly index: number;
  readonly text: string;
}

export interface HarnessNodeOptions {
  readonly config?: Partial<RaftConfig>;
  readonly defect?: RaftDefect;
  readonly hardState?: HardState;
  readonly entries?: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * Bootstrap voters: by default the harness's founding ids for founders, and `[]` for a
   * node added later with `addNode` (it learns the configuration from the log or a snapshot).
   */
  readonly voters?: readonly NodeId[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A state machine image: its commands as JSON (what `snapshot()` stores and installs). */
export function encodeMachine(commands: readonly Command[]): Uint8Array {
  return encoder.encode(JSON.stringify(commands.map(({ index, text }) => [index, text])));
}

export function decodeMachine(data: Uint8Array): Command[] {
  const pairs = JSON.parse(decoder.decode(data)) as [number, string][];
  return pairs.map(([index, text]) => ({ index, text }));
}

export class Harness {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly disks = new Map<NodeId, Disk>();
  /** Every node, founders first, then nodes added with `addNode`. */
  readonly ids: NodeId[];
  /** The ids given to the constructor: every founder's default bootstrap voters. */
  readonly founders: readonly NodeId[];
  /** Committed entries each node applied, in order (per incarnation: reset on restart). */
  readonly applied = new Map<NodeId, Entry[]>();
  /** Each node's state machine: commands applied, restored from a snapshot when installed. */
  readonly machines = new Map<NodeId, Command[]>();
  /** Snapshots each node was handed in a Ready (installed from a leader), per incarnation. */
  readonly installed = new Map<NodeId, Snapshot[]>();
  /** Read states each node emitted, in order (per incarnation). */
  readonly readStates = new Map<NodeId, ReadState[]>();
  queue: Envelope[] = [];
  /** Nodes in different groups cannot talk; empty = fully connected. */
  #groups: NodeId[][] = [];
  #seed: number;
  readonly #options = new Map<NodeId, HarnessNodeOptions>();

  constructor(
    ids: readonly NodeId[],
    options: HarnessNodeOptions | ((id: NodeId) => HarnessNodeOptions) = {},
    seed = 1,
  ) {
    this.#seed = seed;
    this.founders = [...ids];
    this.ids = [];
    for (const id of ids) {
      this.#add(id, typeof options === "function" ? options(id) : options, this.founders);
    }
  }

  /** A node that joins later: by default it knows no configuration (`voters: []`). */
  addNode(id: NodeId, options: HarnessNodeOptions = {}): RaftNode {
    this.#add(id, options, []);
    return this.node(id);
  }

  #add(id: NodeId, options: HarnessNodeOptions, voters: readonly NodeId[]): void {
    assert(!this.nodes.has(id), `node ${id} exists`);
    this.ids.push(id);
    this.#options.set(id, { voters, ...options });
    this.disks.set(id, {
      hardState: options.hardState,
      snapshot: options.snapshot,
      entries: [...(options.entries ?? [])],
    });
    this.#start(id);
  }

  node(id: NodeId): RaftNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  #start(id: NodeId): void {
    const options = this.#options.get(id)!;
    const disk = this.disks.get(id)!;
    this.nodes.set(
      id,
      new RaftNode({
        id,
        voters: options.voters ?? this.founders,
        prng: prngFromSeed(this.#seed++),
        ...(options.config === undefined ? {} : { config: options.config }),
        ...(options.defect === undefined ? {} : { defect: options.defect }),
        ...(disk.hardState === undefined ? {} : { hardState: disk.hardState }),
        ...(disk.snapshot === undefined ? {} : { snapshot: disk.snapshot }),
        entries: disk.entries,
      }),
    );
    this.applied.set(id, []);
    this.installed.set(id, []);
    this.readStates.set(id, []);
    // The driver restores the state machine from the stored snapshot before anything else.
    this.machines.set(id, disk.snapshot === undefined ? [] : decodeMachine(disk.snapshot.data));
  }

  /** Drops the node's memory and restarts it from its disk (everything flushed is durable). */
  restart(id: NodeId): void {
    this.queue = this.queue.filter((envelope) => envelope.target !== id);
    this.#start(id);
  }

  /** Persists, then queues messages, then restores and applies, as the Ready contract says. */
  flush(id: NodeId): void {
    const node = this.node(id);
    while (node.hasReady()) {
      const ready = node.ready();
      const disk = this.disks.get(id)!;
      if (ready.snapshot !== null) {
        disk.snapshot = ready.snapshot; // replaces the whole stored log
        disk.entries = [];
      }
      if (ready.hardState !== null) disk.hardState = ready.hardState;
      const first = ready.entries[0];
      if (first !== undefined) {
        disk.entries = disk.entries
          .filter((stored) => stored.index < first.index)
          .concat(ready.entries);
      }
      for (const { target, message } of ready.messages) {
        if (this.connected(id, target)) this.queue.push({ source: id, target, message });
      }
      if (ready.snapshot !== null) {
        this.installed.get(id)!.push(ready.snapshot);
        this.machines.set(id, decodeMachine(ready.snapshot.data));
      }
      const machine = this.machines.get(id)!;
      for (const committed of ready.committedEntries) {
        if (committed.kind === "command")
          machine.push({ index: committed.index, text: decoder.decode(committed.data) });
      }
      this.applied.get(id)!.push(...ready.committedEntries);
      this.readStates.get(id)!.push(...ready.readStates);
      node.advance();
    }
  }

  flushAll(): void {
    for (const id of this.ids) this.flush(id);
  }

  /**
   * Snapshots `id`'s state machine at `index` (default: everything applied) through
   * `node.snapshot`, and on success stores it on the disk, dropping the entries it covers.
   */
  takeSnapshot(
    id: NodeId,
    index: number = this.node(id).applied,
  ): ReturnType<RaftNode["snapshot"]> {
    const commands = this.machines.get(id)!.filter((command) => command.index <= index);
    const data = encodeMachine(commands);
    const result = this.node(id).snapshot(asIndex(index), data);
    if (result.ok) {
      const disk = this.disks.get(id)!;
      disk.snapshot = { metadata: result.value, data };
      disk.entries = disk.entries.filter((stored) => stored.index > index);
    }
    return result;
  }

  /** The commands `id`'s state machine holds, in order. */
  machineText(id: NodeId): string[] {
    return this.machines.get(id)!.map((command) => command.text);
  }

  connected(a: NodeId, b: NodeId): boolean {
    if (this.#groups.length === 0) return true;
    return this.#groups.some((group) => group.includes(a) && group.includes(b));
  }

  partition(...groups: NodeId[][]): void {
    this.#groups = groups;
    this.queue = this.queue.filter((envelope) => this.connected(envelope.source, envelope.target));
  }

  heal(): void {
    this.#groups = [];
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).tick();
      this.flush(id);
    }
  }

  /**
   * Delivers the first queued message matching `filter` (others stay queued); returns it,
   * or undefined if none matched. Messages to a node that does not exist (yet) are lost.
   */
  deliverOne(filter: (envelope: Envelope) => boolean = () => true): Envelope | undefined {
    for (;;) {
      const position = this.queue.findIndex(filter);
      if (position < 0) return undefined;
      const [envelope] = this.queue.splice(position, 1);
      if (!this.connected(envelope!.source, envelope!.target)) continue;
      if (!this.nodes.has(envelope!.target)) continue;
      this.node(envelope!.target).step(envelope!.message);
      this.flush(envelope!.target);
      return envelope;
    }
  }

  /** Delivers queued messages (those matching `filter`; others stay queued) until none match. */
  deliver(filter: (envelope: Envelope) => boolean = () => true, stepsMax = 10_000): number {
    for (let delivered = 0; delivered < stepsMax; delivered++) {
      if (this.deliverOne(filter) === undefined) return delivered;
    }
    throw new Error("deliver: message storm");
  }

  drop(filter: (envelope: Envelope) => boolean): void {
    this.queue = this.queue.filter((envelope) => !filter(envelope));
  }

  /** Elects `id` by campaigning and delivering everything. */
  elect(id: NodeId): void {
    this.node(id).campaign();
    this.flush(id);
    this.deliver();
  }

  propose(id: NodeId, text: string): ReturnType<RaftNode["propose"]> {
    const result = this.node(id).propose(encoder.encode(text));
    this.flush(id);
    return result;
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => this.node(id).role === "leader");
  }

  appliedText(id: NodeId): string[] {
    return this.applied
      .get(id)!
      .filter((entry) => entry.kind === "command")
      .map((entry) => decoder.decode(entry.data));
  }
}

export function entry(index: number, term: number, text = ""): Entry {
  return {
    index: index as Entry["index"],
    term: term as Entry["term"],
    kind: text === "" ? "noop" : "command",
    data: encoder.encode(text),
  };
}
