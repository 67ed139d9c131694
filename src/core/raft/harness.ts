/**
 * @module A tiny synchronous network of `RaftNode`s for unit tests (in the spirit of etcd's
 * `rafttest` network): each node has an in-memory "disk" that receives every Ready's hard
 * state and entries before its messages are queued, a message queue the test controls
 * (deliver, filter, drop), partitions, and restarts from the disk. Pure.
 */
import { assert } from "../../lib/assert.js";
import { prngFromSeed } from "../../lib/prng.js";
import type { NodeId } from "../sans-io.js";
import type { RaftConfig } from "./config.js";
import { type RaftDefect, RaftNode } from "./raft-node.js";
import type { Entry, HardState, RaftMessage, ReadState } from "./types.js";

export interface Envelope {
  readonly source: NodeId;
  readonly target: NodeId;
  readonly message: RaftMessage;
}

interface Disk {
  hardState: HardState | undefined;
  entries: Entry[];
}

export interface HarnessNodeOptions {
  readonly config?: Partial<RaftConfig>;
  readonly defect?: RaftDefect;
  readonly hardState?: HardState;
  readonly entries?: readonly Entry[];
}

export class Harness {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly disks = new Map<NodeId, Disk>();
  /** Committed entries each node applied, in order (per incarnation: reset on restart). */
  readonly applied = new Map<NodeId, Entry[]>();
  /** Read states each node emitted, in order (per incarnation). */
  readonly readStates = new Map<NodeId, ReadState[]>();
  queue: Envelope[] = [];
  /** Nodes in different groups cannot talk; empty = fully connected. */
  #groups: NodeId[][] = [];
  #seed: number;
  readonly #options = new Map<NodeId, HarnessNodeOptions>();

  constructor(
    readonly ids: readonly NodeId[],
    options: HarnessNodeOptions | ((id: NodeId) => HarnessNodeOptions) = {},
    seed = 1,
  ) {
    this.#seed = seed;
    for (const id of ids) {
      const nodeOptions = typeof options === "function" ? options(id) : options;
      this.#options.set(id, nodeOptions);
      this.disks.set(id, {
        hardState: nodeOptions.hardState,
        entries: [...(nodeOptions.entries ?? [])],
      });
      this.#start(id);
    }
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
        voters: this.ids,
        prng: prngFromSeed(this.#seed++),
        ...(options.config === undefined ? {} : { config: options.config }),
        ...(options.defect === undefined ? {} : { defect: options.defect }),
        ...(disk.hardState === undefined ? {} : { hardState: disk.hardState }),
        entries: disk.entries,
      }),
    );
    this.applied.set(id, []);
    this.readStates.set(id, []);
  }

  /** Drops the node's memory and restarts it from its disk (everything flushed is durable). */
  restart(id: NodeId): void {
    this.queue = this.queue.filter((envelope) => envelope.target !== id);
    this.#start(id);
  }

  /** Persists, then queues messages, then applies, as the Ready contract says. */
  flush(id: NodeId): void {
    const node = this.node(id);
    while (node.hasReady()) {
      const ready = node.ready();
      const disk = this.disks.get(id)!;
      if (ready.hardState !== null) disk.hardState = ready.hardState;
      const first = ready.entries[0];
      if (first !== undefined)
        disk.entries = disk.entries.slice(0, first.index - 1).concat(ready.entries);
      for (const { target, message } of ready.messages) {
        if (this.connected(id, target)) this.queue.push({ source: id, target, message });
      }
      this.applied.get(id)!.push(...ready.committedEntries);
      this.readStates.get(id)!.push(...ready.readStates);
      node.advance();
    }
  }

  flushAll(): void {
    for (const id of this.ids) this.flush(id);
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

  /** Delivers queued messages (those matching `filter`; others stay queued) until none match. */
  deliver(filter: (envelope: Envelope) => boolean = () => true, stepsMax = 10_000): number {
    let delivered = 0;
    for (let steps = 0; steps < stepsMax; steps++) {
      const position = this.queue.findIndex(filter);
      if (position < 0) return delivered;
      const [envelope] = this.queue.splice(position, 1);
      if (!this.connected(envelope!.source, envelope!.target)) continue;
      this.node(envelope!.target).step(envelope!.message);
      this.flush(envelope!.target);
      delivered++;
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
    const result = this.node(id).propose(new TextEncoder().encode(text));
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
      .map((entry) => new TextDecoder().decode(entry.data));
  }
}

export function entry(index: number, term: number, text = ""): Entry {
  return {
    index: index as Entry["index"],
    term: term as Entry["term"],
    kind: text === "" ? "noop" : "command",
    data: new TextEncoder().encode(text),
  };
}
