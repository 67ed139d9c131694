/**
 * @module The strongly consistent store on one node: it runs the meta group (the catalog,
 * on up to 5 nodes), starts a Raft group for every shard replica the catalog places here,
 * and serves every request from anywhere in the cluster by routing it to the group that
 * owns the data:
 *
 *   caller (HTTP, client, CLI) → any node → [forward] → the shard's leader → propose / ReadIndex
 *
 * A node that holds a replica knows its group's leader; one that does not forwards to the
 * leader it last heard of, or to a replica, which forwards once more. Answers say which
 * node served them, so the next call goes straight there.
 *
 * Leases follow etcd's design: the shard leader keeps each lease's deadline in memory
 * (a new leader grants every lease a full TTL again, so a lease never expires early
 * because leadership moved), keep-alives go to the leader, and an expiry is proposed
 * through the log so every replica deletes the same keys at the same revision.
 */
import type { Logger } from "pino";
import type { MembershipStep } from "../../core/placement/rebalance.js";
import { BrigadeError } from "../../lib/errors.js";
import { shardOfKey } from "../../lib/slots.js";
import type { TcpTransport } from "../../transport/tcp-transport.js";
import type { RaftGroup } from "../raft/raft-group.js";
import type { RaftHost } from "../raft/raft-host.js";
import {
  Catalog,
  type CatalogCommand,
  type CatalogResult,
  type CatalogView,
  encodeCatalogCommand,
  type KeyspaceRecord,
  type ShardRecord,
} from "./catalog.js";
import {
  filterMatches,
  type KeyValue,
  type KvCommand,
  type KvEvent,
  type KvEventFilter,
  type KvResult,
  type ScanPage,
  type ScanRequest,
} from "./kv-types.js";
import {
  type GroupObservation,
  PlacementDriver,
  type PlacementSettings,
  type PlacementStatus,
  placementDefaults,
} from "./placement-driver.js";
import {
  encodeKvCommand,
  type KvEngine,
  leaseIdsPerShard,
  type ShardStore,
  validateKvCommand,
} from "./shard-store.js";

/** The catalog's Raft group id (shard groups are numbered from 1000). */
export const metaGroupId = 2;
/** The meta group runs on at most this many nodes (the first of the founding voters). */
export const metaVotersMax = 5;
/** Lease ids carry their shard's group: id = group × 2^24 + a per-shard counter. */
export const leaseIdsPerGroup = leaseIdsPerShard;

const callTopic = "kv.call";
/** A request crosses at most this many nodes: entry node → a replica → the leader. */
const forwardHopsMax = 2;
/** How often a node outside the meta group refreshes its copy of the catalog. */
const catalogRefreshMs = 1_000;
/** How often leaders check lease deadlines. */
const leaseCheckMs = 250;
/** Longest a watch's long poll for new events waits on a shard. */
export const eventsWaitMsMax = 10_000;
const eventsLimit = 1_000;
/** The placement driver's observation of a group gives up after this (retried next round). */
const placementCallTimeoutMs = 1_000;
/** How often a replica the catalog moved away checks whether its group has let it go. */
const replicaGcIntervalMs = 2_000;

export type Consistency = "linearizable" | "serializable";

export interface EventsPage {
  readonly events: readonly KvEvent[];
  /** The shard's revision when the page was read; the next page starts after the last event or this. */
  readonly revision: number;
}

export interface LeaseInfo {
  readonly lease: number;
  readonly ttlMs: number;
  /** Time left before the leader expires it (the full TTL right after a leader change). */
  readonly remainingMs: number;
  readonly keys: readonly string[];
}

/** A request as it travels between nodes. */
type KvCall =
  | { readonly kind: "catalog-propose"; readonly command: CatalogCommand }
  | { readonly kind: "catalog-view"; readonly linearizable: boolean }
  | { readonly kind: "write"; readonly group: number; readonly command: KvCommand }
  | {
      readonly kind: "get";
      readonly group: number;
      readonly key: string;
      readonly consistency: Consistency;
    }
  | {
      readonly kind: "scan";
      readonly group: number;
      readonly request: ScanRequest;
      readonly consistency: Consistency;
    }
  | { readonly kind: "meta-read-index" }
  | { readonly kind: "placement-status" }
  | { readonly kind: "group-status"; readonly group: number }
  | { readonly kind: "membership"; readonly group: number; readonly step: MembershipStep }
  | { readonly kind: "keepalive"; readonly group: number; readonly lease: number }
  | { readonly kind: "lease-info"; readonly group: number; readonly lease: number }
  | {
      readonly kind: "events";
      readonly group: number;
      readonly fromRevision: number;
      readonly filter: KvEventFilter;
      readonly waitMs: number;
    };

interface CallAnswer {
  /** The node that served the call (for a leader-only call: the leader). */
  readonly by: string;
  readonly result: unknown;
}

export interface KvServiceOptions {
  readonly nodeId: string;
  readonly zone: string;
  /** Founding voters of the cluster; the first `metaVotersMax` found the meta group. */
  readonly founders: readonly string[];
  readonly host: RaftHost;
  readonly engine: KvEngine;
  readonly transport: TcpTransport;
  readonly logger: Logger;
  /** How long a command may wait to be applied (or a read to be confirmed). */
  readonly requestTimeoutMs: number;
  /** Membership's state of each member it knows ("alive", "suspect", "dead", "left"). */
  readonly memberStates: () => ReadonlyMap<string, string>;
  readonly placement?: Partial<PlacementSettings>;
}

interface LocalShard {
  readonly record: ShardRecord;
  readonly keyspace: string;
  readonly group: RaftGroup;
  readonly store: ShardStore;
}

/** The leader-side lease clock of one shard, valid for the term it was built in. */
interface LeaseClock {
  readonly term: number;
  readonly deadlines: Map<number, number>;
  readonly expiring: Set<number>;
}

export class KvService {
  readonly catalog = new Catalog();
  readonly #shards = new Map<number, LocalShard>();
  /** The node that last answered a leader-only call for a group. */
  readonly #leaderHints = new Map<number, string>();
  readonly #leaseClocks = new Map<number, LeaseClock>();
  readonly #metaVoters: readonly string[];
  #metaGroup: RaftGroup | null = null;
  #reconciling: Promise<void> = Promise.resolve();
  #reconcileAgain = false;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;

  readonly #placement: PlacementDriver;

  /**
   * TEST ONLY (`BRIGADE_TEST_UNSAFE_LOCAL_READS=1`): linearizable reads are answered by
   * whichever replica receives them, with no ReadIndex, so a partitioned or lagging replica
   * returns stale values. It exists so `brigade verify` can be shown to catch a real bug.
   */
  readonly #unsafeLocalReads = process.env.BRIGADE_TEST_UNSAFE_LOCAL_READS === "1";

  constructor(private readonly options: KvServiceOptions) {
    this.#metaVoters = options.founders.slice(0, metaVotersMax);
    if (this.#unsafeLocalReads)
      options.logger.warn(
        {},
        "BRIGADE_TEST_UNSAFE_LOCAL_READS=1: linearizable reads skip ReadIndex (a deliberate bug for tests)",
      );
    this.#placement = new PlacementDriver({
      catalog: this.catalog,
      logger: options.logger.child({ component: "placement" }),
      isMetaLeader: () => this.#metaGroup?.node.role === "leader",
      memberStates: options.memberStates,
      observeGroup: async (group) =>
        (await this.#route(
          { kind: "group-status", group },
          placementCallTimeoutMs,
        )) as GroupObservation,
      applyStep: async (group, step) => {
        await this.#route({ kind: "membership", group, step });
      },
      proposeCatalog: async (command) => {
        await this.#proposeCatalog(command);
      },
      settings: { ...placementDefaults, ...options.placement },
    });
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  async start(): Promise<void> {
    const { host, transport, nodeId } = this.options;
    transport.handle(callTopic, async (payload, context) => {
      const { call, hops } = payload as { call: KvCall; hops: number };
      return this.#dispatch(call, hops, context.timeoutMs);
    });
    this.catalog.onChange(() => this.#scheduleReconcile());
    if (this.#metaVoters.includes(nodeId)) {
      this.#metaGroup = await host.addGroup(metaGroupId, this.#metaVoters, this.catalog);
    } else {
      this.#timers.push(setInterval(() => void this.#refreshCatalog(), catalogRefreshMs));
    }
    this.#timers.push(setInterval(() => this.#checkLeases(), leaseCheckMs));
    // Replicas the catalog moved away wait here until their group has removed this node.
    this.#timers.push(
      setInterval(() => {
        if (this.localShards().some((shard) => !this.#placedHere(shard.record.group)))
          this.#scheduleReconcile();
      }, replicaGcIntervalMs),
    );
    this.#placement.start();
    void this.#registerSelf();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#placement.stop();
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await this.#reconciling;
  }

  // ---- Keyspaces -------------------------------------------------------------------------

  async createKeyspace(request: {
    name: string;
    shards: number;
    replicas: number;
  }): Promise<KeyspaceRecord> {
    const result = await this.#proposeCatalog({ type: "create-keyspace", ...request });
    await this.#showChangeHere();
    return result.keyspace as KeyspaceRecord;
  }

  async dropKeyspace(name: string): Promise<void> {
    await this.#proposeCatalog({ type: "drop-keyspace", name });
    await this.#showChangeHere();
  }

  /** Marks a node as leaving: the placement driver moves its replicas and leaderships away. */
  async decommission(nodeId: string): Promise<void> {
    await this.#proposeCatalog({ type: "decommission-node", id: nodeId });
    await this.#showChangeHere();
  }

  /** Replicas and leaders per node and moves in progress, as the meta leader last saw them. */
  async placementStatus(): Promise<PlacementStatus> {
    if (this.#metaGroup?.node.role === "leader") return this.#placement.status;
    return (await this.#route({ kind: "placement-status" })) as PlacementStatus;
  }

  /**
   * A keyspace's record. A name this node's catalog lacks is looked up again through the
   * meta leader (ReadIndex), so "not found" is never an artefact of a catalog still loading
   * after a restart or a node that has not refreshed yet.
   */
  async keyspace(name: string): Promise<KeyspaceRecord> {
    let keyspace = this.catalog.keyspace(name);
    if (keyspace === undefined) {
      await this.#catalogCaughtUp();
      keyspace = this.catalog.keyspace(name);
    }
    if (keyspace === undefined)
      throw new BrigadeError("NotFound", `no keyspace named ${JSON.stringify(name)}`);
    return keyspace;
  }

  /** The leader this node believes a shard group has (its own view when it holds a replica). */
  leaderOf(group: number): string | null {
    const local = this.#shards.get(group);
    if (local !== undefined) return local.group.node.leaderId;
    return this.#leaderHints.get(group) ?? null;
  }

  /** The leader of each shard: known locally, or asked of the group (null when it has none). */
  async leaders(keyspace: KeyspaceRecord): Promise<(string | null)[]> {
    return Promise.all(
      keyspace.shardMap.map(async (shard) => {
        const known = this.leaderOf(shard.group);
        if (known !== null) return known;
        try {
          const observed = (await this.#route(
            { kind: "group-status", group: shard.group },
            placementCallTimeoutMs,
          )) as GroupObservation;
          return observed.leader;
        } catch {
          return null;
        }
      }),
    );
  }

  shardOf(keyspace: KeyspaceRecord, key: string): ShardRecord {
    return keyspace.shardMap[shardOfKey(key, keyspace.shards)]!;
  }

  // ---- Data operations (any node; routed to the owning group) ------------------------------

  async write(keyspace: string, command: KvCommand): Promise<{ shard: number; result: KvResult }> {
    validateKvCommand(command);
    const record = await this.keyspace(keyspace);
    const shard = this.#shardForCommand(record, command);
    for (const [key, lease] of leasedKeys(command)) {
      if (lease !== 0 && Math.floor(lease / leaseIdsPerGroup) !== shard.group)
        throw new BrigadeError(
          "InvalidArgument",
          `lease ${lease} lives on another shard than ${JSON.stringify(key)}: a lease and its keys share a shard (grant the lease with that key, and put related keys under one hash tag)`,
        );
    }
    const result = (await this.#route({ kind: "write", group: shard.group, command })) as KvResult;
    if (result.type === "error") throw new BrigadeError(result.code, result.message);
    return { shard: shard.shard, result };
  }

  async get(
    keyspace: string,
    key: string,
    consistency: Consistency,
  ): Promise<{ shard: number; kv: KeyValue | null; revision: number; stale: boolean }> {
    const shard = this.shardOf(await this.keyspace(keyspace), key);
    const answer = (await this.#route({ kind: "get", group: shard.group, key, consistency })) as {
      kv: KeyValue | null;
      revision: number;
    };
    return { shard: shard.shard, ...answer, stale: consistency === "serializable" };
  }

  /** One page of a scan over every shard, merged in key order. */
  async scan(keyspace: string, request: ScanRequest, consistency: Consistency): Promise<ScanPage> {
    const record = await this.keyspace(keyspace);
    const pages = await Promise.all(
      record.shardMap.map(
        (shard) =>
          this.#route({
            kind: "scan",
            group: shard.group,
            request,
            consistency,
          }) as Promise<ScanPage>,
      ),
    );
    const merged = pages.flatMap((page) => page.items);
    merged.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    const items = merged.slice(0, request.limit);
    const more = merged.length > request.limit || pages.some((page) => page.more);
    return { items, more };
  }

  async keepAlive(keyspace: string, lease: number): Promise<{ lease: number; ttlMs: number }> {
    const group = this.#leaseGroup(await this.keyspace(keyspace), lease);
    return (await this.#route({ kind: "keepalive", group, lease })) as {
      lease: number;
      ttlMs: number;
    };
  }

  async leaseInfo(keyspace: string, lease: number): Promise<LeaseInfo> {
    const group = this.#leaseGroup(await this.keyspace(keyspace), lease);
    return (await this.#route({ kind: "lease-info", group, lease })) as LeaseInfo;
  }

  /**
   * Events of one shard from `fromRevision` (0: none, just the current revision), waiting up
   * to `waitMs` for the first one. Served by any replica: committed events are the same on all.
   */
  async events(
    keyspace: string,
    shard: number,
    fromRevision: number,
    filter: KvEventFilter,
    waitMs: number,
  ): Promise<EventsPage> {
    const record = (await this.keyspace(keyspace)).shardMap[shard];
    if (record === undefined) throw new BrigadeError("InvalidArgument", `no shard ${shard}`);
    return (await this.#route(
      { kind: "events", group: record.group, fromRevision, filter, waitMs },
      waitMs + this.options.requestTimeoutMs,
    )) as EventsPage;
  }

  // ---- Routing ------------------------------------------------------------------------------

  #shardForCommand(keyspace: KeyspaceRecord, command: KvCommand): ShardRecord {
    switch (command.type) {
      case "put":
      case "delete":
        return this.shardOf(keyspace, command.key);
      case "txn": {
        const keys = [
          ...command.compare.map((compare) => compare.key),
          ...command.success.map((op) => op.key),
          ...command.failure.map((op) => op.key),
        ];
        if (keys.length === 0)
          throw new BrigadeError("InvalidArgument", "a transaction needs at least one key");
        const shard = this.shardOf(keyspace, keys[0]!);
        for (const key of keys) {
          if (this.shardOf(keyspace, key) !== shard)
            throw new BrigadeError(
              "InvalidArgument",
              `keys ${JSON.stringify(keys[0])} and ${JSON.stringify(key)} are on different shards; a transaction stays in one shard (put related keys under one hash tag, e.g. {order-7}:a and {order-7}:b)`,
            );
        }
        return shard;
      }
      case "lease-revoke":
      case "lease-expire":
        return shardOfGroup(keyspace, this.#leaseGroup(keyspace, command.lease));
      case "lease-grant":
      case "compact":
        throw new BrigadeError("InvalidArgument", `${command.type} is routed by its caller`);
    }
  }

  /** Grants a lease on the shard of `key` (shard 0 without one): keys under it must live there. */
  async grantLease(
    keyspace: string,
    ttlMs: number,
    key: string | null,
    requestId: string,
  ): Promise<{ lease: number; ttlMs: number }> {
    const record = await this.keyspace(keyspace);
    const shard = key === null ? record.shardMap[0]! : this.shardOf(record, key);
    const command: KvCommand = { type: "lease-grant", requestId, ttlMs };
    validateKvCommand(command);
    const result = (await this.#route({ kind: "write", group: shard.group, command })) as KvResult;
    if (result.type === "error") throw new BrigadeError(result.code, result.message);
    if (result.type !== "lease") throw new BrigadeError("RemoteError", "unexpected lease answer");
    return { lease: result.lease, ttlMs: result.ttlMs };
  }

  #leaseGroup(keyspace: KeyspaceRecord, lease: number): number {
    const group = Math.floor(lease / leaseIdsPerGroup);
    if (!Number.isSafeInteger(lease) || !keyspace.shardMap.some((shard) => shard.group === group))
      throw new BrigadeError("NotFound", `no lease ${lease} in keyspace ${keyspace.name}`);
    return group;
  }

  /** Sends `call` to the node that should serve it, and remembers who did. */
  #unsafeRead(call: KvCall): boolean {
    return this.#unsafeLocalReads && (call.kind === "get" || call.kind === "scan");
  }

  async #route(call: KvCall, timeoutMs = this.options.requestTimeoutMs): Promise<unknown> {
    const answer = await this.#dispatch(call, 0, timeoutMs);
    return answer.result;
  }

  /**
   * Serves `call` here if this node may (a replica for replica-served calls, the leader
   * otherwise), else forwards it; `hops` counts the nodes it already crossed.
   */
  async #dispatch(call: KvCall, hops: number, timeoutMs: number): Promise<CallAnswer> {
    const groupId = groupOfCall(call);
    const local = groupId === metaGroupId ? this.#metaGroup : this.#shards.get(groupId)?.group;
    if (local !== undefined && local !== null) {
      if (servedByAnyReplica(call) || local.node.role === "leader" || this.#unsafeRead(call))
        return {
          by: this.options.nodeId,
          result: await this.#serveLocally(call, local, timeoutMs),
        };
      const leader = local.node.leaderId;
      if (leader !== null && leader !== this.options.nodeId)
        return this.#forward(leader, call, hops, timeoutMs);
      // A replica that was just added (or cut off) may not know the leader while the others
      // do: ask one of them, unless this call already travelled.
      const other = hops === 0 ? this.#forwardTarget(groupId) : null;
      if (other !== null) return this.#forward(other, call, forwardHopsMax - 1, timeoutMs);
      throw new BrigadeError(
        "Unavailable",
        `group ${groupId} has no leader right now (an election, or no quorum); retry`,
      );
    }
    const target = this.#forwardTarget(groupId);
    if (target === null)
      throw new BrigadeError("Unavailable", `no node is known to hold group ${groupId}; retry`);
    return this.#forward(target, call, hops, timeoutMs);
  }

  async #forward(
    target: string,
    call: KvCall,
    hops: number,
    timeoutMs: number,
  ): Promise<CallAnswer> {
    if (hops >= forwardHopsMax)
      throw new BrigadeError(
        "Unavailable",
        `request for group ${groupOfCall(call)} forwarded ${hops} times without reaching its leader; retry`,
      );
    const groupId = groupOfCall(call);
    if (!this.options.transport.isConnected(target)) {
      // Fail fast rather than wait out the deadline for a node we cannot reach (down, or on
      // the other side of a partition): the caller retries, perhaps elsewhere.
      this.#rotateHint(groupId, target);
      throw new BrigadeError(
        "Unavailable",
        `group ${groupId}: no connection to ${target} right now (down or partitioned); retry`,
      );
    }
    try {
      const answer = (await this.options.transport.request(
        target,
        callTopic,
        { call, hops: hops + 1 },
        { timeoutMs },
      )) as CallAnswer;
      if (!servedByAnyReplica(call)) this.#leaderHints.set(groupId, answer.by);
      return answer;
    } catch (error) {
      // The hint was wrong or the node is down: the next call tries another replica.
      this.#rotateHint(groupId, target);
      if (error instanceof BrigadeError && error.code === "UnknownPeer")
        throw new BrigadeError(
          "Unavailable",
          `group ${groupId}: ${target} is not reachable; retry`,
        );
      throw error;
    }
  }

  /** Where to send a call for a group this node holds no replica of. */
  #forwardTarget(groupId: number): string | null {
    const connected = (node: string) => this.options.transport.isConnected(node);
    const hint = this.#leaderHints.get(groupId);
    if (hint !== undefined && connected(hint)) return hint;
    const replicas =
      groupId === metaGroupId
        ? this.#metaVoters
        : (this.catalog.shard(groupId)?.replicas ?? ([] as readonly string[]));
    const others = replicas.filter((node) => node !== this.options.nodeId);
    if (others.length === 0) return null;
    // Round-robin over the replicas, preferring one we are connected to.
    const start = this.#rotation++;
    for (let offset = 0; offset < others.length; offset++) {
      const node = others[(start + offset) % others.length]!;
      if (connected(node)) return node;
    }
    return others[start % others.length]!;
  }

  #rotation = 0;

  #rotateHint(groupId: number, failed: string): void {
    if (this.#leaderHints.get(groupId) === failed) this.#leaderHints.delete(groupId);
    this.#rotation++;
  }

  async #serveLocally(call: KvCall, group: RaftGroup, timeoutMs: number): Promise<unknown> {
    if (call.kind === "catalog-view") {
      if (call.linearizable) await group.linearizableRead(timeoutMs);
      return this.catalog.view();
    }
    if (call.kind === "catalog-propose")
      return group.propose(encodeCatalogCommand(call.command), timeoutMs);
    if (call.kind === "meta-read-index") {
      await group.linearizableRead(timeoutMs);
      return group.appliedIndex;
    }
    if (call.kind === "placement-status") return this.#placement.status;
    if (call.kind === "group-status") {
      const { voters, learners } = group.node.membership;
      return { leader: this.options.nodeId, voters, learners } satisfies GroupObservation;
    }
    if (call.kind === "membership") {
      const { step } = call;
      if (step.type === "transfer-leadership") return group.transferLeadership(step.to);
      return group.changeMembership(step, timeoutMs);
    }
    const shard = this.#shards.get(call.group);
    if (shard === undefined)
      throw new BrigadeError("Unavailable", `group ${call.group} moved; retry`);
    const { store } = shard;
    switch (call.kind) {
      case "write":
        return group.propose(encodeKvCommand(call.command), timeoutMs);
      case "get":
        if (call.consistency === "linearizable" && !this.#unsafeLocalReads)
          await group.linearizableRead(timeoutMs);
        return { kv: store.get(call.key), revision: store.revision };
      case "scan":
        if (call.consistency === "linearizable" && !this.#unsafeLocalReads)
          await group.linearizableRead(timeoutMs);
        return store.scan(call.request);
      case "keepalive": {
        const clock = this.#leaseClock(shard);
        const lease = store.lease(call.lease);
        if (clock === null) throw new BrigadeError("Unavailable", "leadership moved; retry");
        if (lease === null || clock.expiring.has(call.lease))
          throw new BrigadeError("NotFound", `lease ${call.lease} does not exist or expired`);
        clock.deadlines.set(call.lease, Date.now() + lease.ttlMs);
        return { lease: call.lease, ttlMs: lease.ttlMs };
      }
      case "lease-info": {
        await group.linearizableRead(timeoutMs);
        const clock = this.#leaseClock(shard);
        const lease = store.lease(call.lease);
        if (lease === null || clock === null)
          throw new BrigadeError("NotFound", `lease ${call.lease} does not exist or expired`);
        const deadline = clock.deadlines.get(call.lease) ?? Date.now() + lease.ttlMs;
        return {
          lease: call.lease,
          ttlMs: lease.ttlMs,
          remainingMs: Math.max(0, deadline - Date.now()),
          keys: store.leaseKeys(call.lease),
        } satisfies LeaseInfo;
      }
      case "events":
        return this.#eventsPage(store, call, Math.min(call.waitMs, eventsWaitMsMax));
    }
  }

  async #eventsPage(
    store: ShardStore,
    call: Extract<KvCall, { kind: "events" }>,
    waitMs: number,
  ): Promise<EventsPage> {
    if (call.fromRevision === 0) return { events: [], revision: store.revision };
    const read = (): EventsPage => ({
      events: store.events(call.fromRevision, call.filter, eventsLimit),
      revision: store.revision,
    });
    const first = read();
    if (first.events.length > 0 || waitMs <= 0) return first;
    // Wait for the next applied write that matches, or the deadline.
    return new Promise<EventsPage>((resolve, reject) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe();
        try {
          resolve(read());
        } catch (error) {
          reject(error);
        }
      };
      const timer = setTimeout(finish, waitMs);
      const unsubscribe = store.onEvents((events) => {
        if (events.some((event) => filterMatches(call.filter, event.kv.key))) finish();
      });
    });
  }

  // ---- Catalog --------------------------------------------------------------------------------

  async #proposeCatalog(command: CatalogCommand): Promise<Extract<CatalogResult, { ok: true }>> {
    const answer = (await this.#route({ kind: "catalog-propose", command })) as CatalogResult;
    if (!answer.ok) throw new BrigadeError(answer.code, answer.message);
    return answer;
  }

  /**
   * After a catalog change this node proposed: waits until its own copy shows the change, so
   * a describe right after sees it. Best effort: the change is committed either way.
   */
  async #showChangeHere(): Promise<void> {
    await this.#catalogCaughtUp().catch(() => undefined);
  }

  /**
   * Brings this node's catalog up to the meta leader's commit (ReadIndex, thesis §6.4: the
   * leader confirms its commit index; a member waits until it applied that far). Afterwards
   * the catalog reflects every change acknowledged before the call.
   */
  async #catalogCaughtUp(): Promise<void> {
    const meta = this.#metaGroup;
    if (meta === null) {
      const view = (await this.#route({ kind: "catalog-view", linearizable: true })) as CatalogView;
      this.catalog.adopt(view);
      return;
    }
    const index = (await this.#route({ kind: "meta-read-index" })) as number;
    await meta.appliedThrough(index, this.options.requestTimeoutMs);
  }

  async #refreshCatalog(): Promise<void> {
    if (this.#stopped) return;
    try {
      const view = (await this.#route({
        kind: "catalog-view",
        linearizable: false,
      })) as CatalogView;
      this.catalog.adopt(view);
    } catch (error) {
      this.options.logger.debug({ err: error }, "catalog refresh failed");
    }
  }

  /** Adds this node to the catalog's placement candidates (retried until it is there). */
  async #registerSelf(): Promise<void> {
    const { nodeId, zone } = this.options;
    while (!this.#stopped) {
      const known = this.catalog.view().nodes.find((node) => node.id === nodeId);
      if (known !== undefined && known.zone === zone) return;
      try {
        await this.#proposeCatalog({ type: "register-node", id: nodeId, zone });
      } catch (error) {
        this.options.logger.debug({ err: error }, "catalog registration failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  // ---- Replicas on this node -----------------------------------------------------------------

  #scheduleReconcile(): void {
    this.#reconcileAgain = true;
    this.#reconciling = this.#reconciling.then(async () => {
      while (this.#reconcileAgain && !this.#stopped) {
        this.#reconcileAgain = false;
        try {
          await this.#reconcile();
        } catch (error) {
          this.options.logger.error({ err: error }, "starting shard replicas failed");
        }
      }
    });
  }

  /** Starts the groups the catalog places here and removes those of dropped keyspaces. */
  #placedHere(groupId: number): boolean {
    return this.catalog.shard(groupId)?.replicas.includes(this.options.nodeId) ?? false;
  }

  async #reconcile(): Promise<void> {
    const { host, engine, nodeId } = this.options;
    const view = this.catalog.view();
    for (const keyspace of view.keyspaces) {
      for (const record of keyspace.shardMap) {
        if (!record.replicas.includes(nodeId) || this.#shards.has(record.group)) continue;
        const store = engine.shard(record.group, { leaseIdBase: record.group * leaseIdsPerGroup });
        const founders = record.founders.includes(nodeId) ? record.founders : [];
        const group = await host.addGroup(record.group, founders, store);
        this.#shards.set(record.group, { record, keyspace: keyspace.name, group, store });
      }
    }
    // Removing data is final: decide it on a catalog confirmed current, never on a state
    // replayed halfway after a restart.
    const placedHere = (groupId: number) => this.#placedHere(groupId);
    const dropped = new Set(view.droppedGroups);
    const candidates = [...this.#shards.keys()].filter((groupId) => !placedHere(groupId));
    if (candidates.length > 0) await this.#catalogCaughtUp();
    const confirmed = new Set(this.catalog.view().droppedGroups);
    for (const groupId of [...this.#shards.keys(), ...host.recoveredGroupIds()]) {
      const gone = dropped.has(groupId) && confirmed.has(groupId);
      const movedAway =
        !gone &&
        candidates.includes(groupId) &&
        !placedHere(groupId) &&
        (await this.#removedFromGroup(groupId));
      if (!gone && !movedAway) continue;
      this.options.logger.info({ group: groupId, dropped: gone }, "removing a shard replica");
      this.#shards.delete(groupId);
      this.#leaseClocks.delete(groupId);
      await host.removeGroup(groupId);
      engine.dropShard(groupId);
    }
  }

  /**
   * Whether the group's leader no longer counts this node as a member. The catalog drops a
   * replica before the group's configuration does; deleting the data in between would take
   * a voter away while the group still needs it for its majority. A removed node stops
   * hearing from the leader, so it asks the replicas the catalog names.
   */
  async #removedFromGroup(groupId: number): Promise<boolean> {
    const { nodeId } = this.options;
    const replicas = this.catalog.shard(groupId)?.replicas ?? [];
    for (const replica of replicas) {
      if (replica === nodeId) continue;
      try {
        const answer = await this.#forward(
          replica,
          { kind: "group-status", group: groupId },
          0,
          placementCallTimeoutMs,
        );
        const observed = answer.result as GroupObservation;
        return (
          observed.leader !== nodeId &&
          !observed.voters.includes(nodeId) &&
          !observed.learners.includes(nodeId)
        );
      } catch {
        // try the next replica
      }
    }
    return false;
  }

  /** Shard groups on this node (for status and metrics). */
  localShards(): readonly LocalShard[] {
    return [...this.#shards.values()];
  }

  // ---- Leases ---------------------------------------------------------------------------------

  /** This shard's lease clock if this node leads it, rebuilt with full TTLs in a new term. */
  #leaseClock(shard: LocalShard): LeaseClock | null {
    const node = shard.group.node;
    if (node.role !== "leader") {
      this.#leaseClocks.delete(shard.record.group);
      return null;
    }
    let clock = this.#leaseClocks.get(shard.record.group);
    if (clock === undefined || clock.term !== node.term) {
      clock = { term: node.term, deadlines: new Map(), expiring: new Set() };
      this.#leaseClocks.set(shard.record.group, clock);
    }
    const now = Date.now();
    for (const lease of shard.store.leases())
      if (!clock.deadlines.has(lease.lease)) clock.deadlines.set(lease.lease, now + lease.ttlMs);
    return clock;
  }

  /** On each shard this node leads: proposes the expiry of every lease past its deadline. */
  #checkLeases(): void {
    const now = Date.now();
    for (const shard of this.#shards.values()) {
      const clock = this.#leaseClock(shard);
      if (clock === null) continue;
      for (const [lease, deadline] of clock.deadlines) {
        if (deadline > now || clock.expiring.has(lease)) continue;
        if (shard.store.lease(lease) === null) {
          clock.deadlines.delete(lease); // revoked
          continue;
        }
        clock.expiring.add(lease);
        const command: KvCommand = { type: "lease-expire", lease };
        shard.group.propose(encodeKvCommand(command), this.options.requestTimeoutMs).then(
          () => {
            clock.deadlines.delete(lease);
            clock.expiring.delete(lease);
          },
          (error: unknown) => {
            clock.expiring.delete(lease); // try again next check
            this.options.logger.debug({ err: error, lease }, "lease expiry not committed yet");
          },
        );
      }
    }
  }
}

/** The (key, lease) pairs a command writes. */
function leasedKeys(command: KvCommand): [string, number][] {
  if (command.type === "put") return [[command.key, command.lease]];
  if (command.type !== "txn") return [];
  return [...command.success, ...command.failure].flatMap((op) =>
    op.op === "put" ? [[op.key, op.lease] as [string, number]] : [],
  );
}

function groupOfCall(call: KvCall): number {
  return "group" in call ? call.group : metaGroupId;
}

/** Calls any replica may answer from its own state (possibly stale, and they say so). */
function servedByAnyReplica(call: KvCall): boolean {
  return (
    (call.kind === "catalog-view" && !call.linearizable) ||
    call.kind === "events" ||
    ((call.kind === "get" || call.kind === "scan") && call.consistency === "serializable")
  );
}

function shardOfGroup(keyspace: KeyspaceRecord, group: number): ShardRecord {
  const shard = keyspace.shardMap.find((record) => record.group === group);
  if (shard === undefined) throw new BrigadeError("NotFound", `no shard group ${group}`);
  return shard;
}
