/**
 * @module The catalog: the meta Raft group's state machine, holding the cluster's shard map —
 * the nodes that may hold replicas, the keyspaces, and for each keyspace's shard its Raft
 * group id and replica set. Every change bumps the `epoch`, so a node (or client) holding
 * an older map can tell. Small by design (no user data): kept in memory, imaged whole.
 */
import { pack, unpack } from "msgpackr";
import { placeShards } from "../../core/placement/placement.js";
import { BrigadeError } from "../../lib/errors.js";
import { slotRange } from "../../lib/slots.js";
import type { GroupStateMachine } from "../raft/raft-group.js";

export const keyspaceLimits = {
  shardsDefault: 16,
  shardsMax: 256,
  replicasDefault: 3,
  replicasMax: 7,
  keyspacesMax: 1000,
} as const;

const keyspaceNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Raft group ids of shards start here (below: the node's own groups, e.g. the catalog). */
const firstShardGroupId = 1000;

export interface ShardRecord {
  readonly shard: number;
  readonly group: number;
  readonly slots: readonly [number, number];
  readonly replicas: readonly string[];
  /**
   * The replicas the group was created with: they bootstrap it together. A replica added
   * later starts empty and learns the configuration from the group's leader.
   */
  readonly founders: readonly string[];
}

export interface KeyspaceRecord {
  readonly name: string;
  readonly consistency: "strong";
  readonly shards: number;
  readonly replicas: number;
  readonly shardMap: readonly ShardRecord[];
}

export interface CatalogNode {
  readonly id: string;
  readonly zone: string;
  /** `draining`: decommissioned; the placement driver moves its replicas away. */
  readonly state: "active" | "draining";
}

export type CatalogCommand =
  | { readonly type: "register-node"; readonly id: string; readonly zone: string }
  | {
      readonly type: "create-keyspace";
      readonly name: string;
      readonly shards: number;
      readonly replicas: number;
    }
  | { readonly type: "drop-keyspace"; readonly name: string }
  /** The placement driver's edit of one shard's desired replica set. */
  | { readonly type: "set-replicas"; readonly group: number; readonly replicas: readonly string[] }
  | { readonly type: "decommission-node"; readonly id: string };

export type CatalogResult =
  | { readonly ok: true; readonly epoch: number; readonly keyspace?: KeyspaceRecord }
  | {
      readonly ok: false;
      readonly code: "CompareFailed" | "NotFound" | "InvalidArgument" | "Unavailable";
      readonly message: string;
    };

export interface CatalogView {
  readonly epoch: number;
  readonly nodes: readonly CatalogNode[];
  readonly keyspaces: readonly KeyspaceRecord[];
  /** Shard groups of dropped keyspaces: a node holding one deletes its data. */
  readonly droppedGroups: readonly number[];
}

/** Checks a create request from a user (before it is proposed); throws InvalidArgument. */
export function validateKeyspaceRequest(input: {
  name: unknown;
  shards?: unknown;
  replicas?: unknown;
  consistency?: unknown;
}): { name: string; shards: number; replicas: number } {
  const { name, consistency } = input;
  const shards = input.shards ?? keyspaceLimits.shardsDefault;
  const replicas = input.replicas ?? keyspaceLimits.replicasDefault;
  if (typeof name !== "string" || !keyspaceNamePattern.test(name))
    throw new BrigadeError(
      "InvalidArgument",
      "a keyspace name is 1..63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit",
    );
  if (consistency !== undefined && consistency !== "strong")
    throw new BrigadeError(
      "InvalidArgument",
      `consistency ${JSON.stringify(consistency)} is not available; use "strong"`,
    );
  if (
    !Number.isInteger(shards) ||
    (shards as number) < 1 ||
    (shards as number) > keyspaceLimits.shardsMax
  )
    throw new BrigadeError(
      "InvalidArgument",
      `shards must be an integer in 1..${keyspaceLimits.shardsMax}`,
    );
  if (
    !Number.isInteger(replicas) ||
    (replicas as number) < 1 ||
    (replicas as number) > keyspaceLimits.replicasMax
  )
    throw new BrigadeError(
      "InvalidArgument",
      `replicas must be an integer in 1..${keyspaceLimits.replicasMax}`,
    );
  return { name, shards: shards as number, replicas: replicas as number };
}

export class Catalog implements GroupStateMachine {
  #epoch = 0;
  #nextGroup = firstShardGroupId;
  #nodes = new Map<string, CatalogNode>();
  #keyspaces = new Map<string, KeyspaceRecord>();
  #droppedGroups: number[] = [];
  #shardsByGroup = new Map<number, ShardRecord>();
  readonly #listeners = new Set<() => void>();

  get epoch(): number {
    return this.#epoch;
  }

  view(): CatalogView {
    return {
      epoch: this.#epoch,
      nodes: [...this.#nodes.values()],
      keyspaces: [...this.#keyspaces.values()],
      droppedGroups: this.#droppedGroups,
    };
  }

  keyspace(name: string): KeyspaceRecord | undefined {
    return this.#keyspaces.get(name);
  }

  /** The shard whose Raft group is `group` (an index kept with the keyspaces). */
  shard(group: number): ShardRecord | undefined {
    return this.#shardsByGroup.get(group);
  }

  hasNode(id: string): boolean {
    return this.#nodes.has(id);
  }

  /** Called after every change (apply or restore), on the event loop. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the state with a view fetched from a meta member (nodes outside the meta group). */
  adopt(view: CatalogView): boolean {
    if (view.epoch <= this.#epoch) return false;
    this.#epoch = view.epoch;
    this.#nodes = new Map(view.nodes.map((node) => [node.id, node]));
    this.#keyspaces = new Map(view.keyspaces.map((keyspace) => [keyspace.name, keyspace]));
    this.#droppedGroups = [...view.droppedGroups];
    this.#notify();
    return true;
  }

  apply(_index: number, data: Uint8Array): CatalogResult {
    let command: CatalogCommand;
    try {
      command = unpack(data) as CatalogCommand;
    } catch {
      return { ok: false, code: "InvalidArgument", message: "undecodable catalog command" };
    }
    const result = this.#apply(command);
    if (result.ok) this.#notify();
    return result;
  }

  #apply(command: CatalogCommand): CatalogResult {
    switch (command.type) {
      case "register-node": {
        const known = this.#nodes.get(command.id);
        if (known !== undefined && known.zone === command.zone)
          return { ok: true, epoch: this.#epoch };
        this.#nodes.set(command.id, {
          id: command.id,
          zone: command.zone,
          state: known?.state ?? "active",
        });
        return { ok: true, epoch: ++this.#epoch };
      }
      case "create-keyspace": {
        const existing = this.#keyspaces.get(command.name);
        if (existing !== undefined)
          return {
            ok: false,
            code: "CompareFailed",
            message: `keyspace ${command.name} already exists`,
          };
        if (this.#keyspaces.size >= keyspaceLimits.keyspacesMax)
          return {
            ok: false,
            code: "InvalidArgument",
            message: `the cluster already has ${keyspaceLimits.keyspacesMax} keyspaces`,
          };
        const active = [...this.#nodes.values()].filter((node) => node.state === "active");
        if (command.replicas > active.length)
          // Retriable: right after start-up, nodes are still registering.
          return {
            ok: false,
            code: "Unavailable",
            message: `${command.replicas} replicas need ${command.replicas} nodes; ${active.length} have joined the store so far`,
          };
        const placed = placeShards(
          active.sort((a, b) => (a.id < b.id ? -1 : 1)),
          this.#load(),
          command.shards,
          command.replicas,
        );
        const keyspace: KeyspaceRecord = {
          name: command.name,
          consistency: "strong",
          shards: command.shards,
          replicas: command.replicas,
          shardMap: placed.map((replicas, shard) => ({
            shard,
            group: this.#nextGroup++,
            slots: slotRange(shard, command.shards),
            replicas,
            founders: replicas,
          })),
        };
        this.#keyspaces.set(command.name, keyspace);
        return { ok: true, epoch: ++this.#epoch, keyspace };
      }
      case "drop-keyspace": {
        const keyspace = this.#keyspaces.get(command.name);
        if (keyspace === undefined)
          return { ok: false, code: "NotFound", message: `no keyspace named ${command.name}` };
        this.#keyspaces.delete(command.name);
        this.#droppedGroups = [
          ...this.#droppedGroups,
          ...keyspace.shardMap.map((shard) => shard.group),
        ];
        return { ok: true, epoch: ++this.#epoch };
      }
      case "set-replicas": {
        for (const [name, keyspace] of this.#keyspaces) {
          const index = keyspace.shardMap.findIndex((shard) => shard.group === command.group);
          if (index === -1) continue;
          const shardMap = [...keyspace.shardMap];
          // Founders bootstrap a group only at its creation; anyone added later starts empty.
          shardMap[index] = { ...shardMap[index]!, replicas: [...command.replicas], founders: [] };
          this.#keyspaces.set(name, { ...keyspace, shardMap });
          return { ok: true, epoch: ++this.#epoch };
        }
        return { ok: false, code: "NotFound", message: `no shard group ${command.group}` };
      }
      case "decommission-node": {
        const node = this.#nodes.get(command.id);
        if (node === undefined)
          return { ok: false, code: "NotFound", message: `node ${command.id} holds no data here` };
        if (node.state === "draining") return { ok: true, epoch: this.#epoch };
        this.#nodes.set(command.id, { ...node, state: "draining" });
        return { ok: true, epoch: ++this.#epoch };
      }
      default:
        return { ok: false, code: "InvalidArgument", message: "unknown catalog command" };
    }
  }

  /** Replicas per node across every keyspace (placement puts new ones on the least loaded). */
  #load(): Map<string, number> {
    const load = new Map<string, number>();
    for (const keyspace of this.#keyspaces.values())
      for (const shard of keyspace.shardMap)
        for (const node of shard.replicas) load.set(node, (load.get(node) ?? 0) + 1);
    return load;
  }

  snapshot(): Uint8Array {
    return pack([
      1,
      this.#epoch,
      this.#nextGroup,
      [...this.#nodes.values()],
      [...this.#keyspaces.values()],
      this.#droppedGroups,
    ]);
  }

  restore(data: Uint8Array): void {
    const [format, epoch, nextGroup, nodes, keyspaces, droppedGroups] = unpack(data) as [
      number,
      number,
      number,
      CatalogNode[],
      KeyspaceRecord[],
      number[],
    ];
    if (format !== 1) throw new BrigadeError("SnapshotCorrupt", `catalog image format ${format}`);
    this.#epoch = epoch;
    this.#nextGroup = nextGroup;
    this.#nodes = new Map(nodes.map((node) => [node.id, node]));
    this.#keyspaces = new Map(keyspaces.map((keyspace) => [keyspace.name, keyspace]));
    this.#droppedGroups = droppedGroups;
    this.#notify();
  }

  #notify(): void {
    this.#shardsByGroup = new Map(
      [...this.#keyspaces.values()].flatMap((keyspace) =>
        keyspace.shardMap.map((shard) => [shard.group, shard] as const),
      ),
    );
    for (const listener of this.#listeners) listener();
  }
}

export function encodeCatalogCommand(command: CatalogCommand): Uint8Array {
  return pack(command);
}
