/** @module The client's public types: options, keyspace descriptions and operation results. */
import type { KeyValue, Value } from "./codec.js";

export interface ConnectOptions {
  /** API addresses ("host:port" or "http://host:port") of one or more nodes. */
  readonly nodes: readonly string[];
  /** Default deadline of one call, retries included (default 10 000 ms). */
  readonly deadlineMs?: number;
  /** Longest wait for one HTTP attempt before trying again (default 5 000 ms, capped by the deadline). */
  readonly attemptTimeoutMs?: number;
  /** Exponential backoff with full jitter between attempts: first ceiling and cap (default 50 and 1 000 ms). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/** Options every call takes. */
export interface CallOptions {
  /** This call's deadline, retries included (default: the client's `deadlineMs`). */
  readonly deadlineMs?: number;
  /** Aborts the call (it rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** Options of writes: the idempotency key (one is generated per call when absent). */
export interface WriteOptions extends CallOptions {
  /** Deduplicates retries: a write with an id the shard already applied applies once (1..128 bytes). */
  readonly requestId?: string;
}

export type Consistency = "linearizable" | "serializable";

export interface KeyspaceSpec {
  readonly name: string;
  readonly consistency?: "strong";
  /** 1..256, default 16. */
  readonly shards?: number;
  /** 1..7, default 3. */
  readonly replicas?: number;
}

export interface ShardInfo {
  readonly shard: number;
  /** The shard's Raft group id. */
  readonly group: number;
  /** Slots [first, last] the shard owns. */
  readonly slots: readonly [number, number];
  /** Node ids holding a replica. */
  readonly replicas: readonly string[];
  /** Node id of the leader, null when unknown (an election). */
  readonly leader: string | null;
  /** "host:port" of the leader's HTTP API, null when unknown. */
  readonly leaderApi: string | null;
}

export interface KeyspaceInfo {
  readonly name: string;
  readonly consistency: string;
  readonly shards: number;
  readonly replicas: number;
  /** The catalog's epoch when this map was read; every change bumps it. */
  readonly epoch: number;
  readonly state: "creating" | "ready";
  readonly shardMap: readonly ShardInfo[];
}

/** A lease: `id` is what keys carry; `key`, when given at grant, routes later calls to its shard. */
export interface Lease {
  readonly id: number;
  readonly ttlMs: number;
  readonly key?: string;
}

export type LeaseRef = Lease | number;

export interface LeaseInfo {
  readonly id: number;
  readonly ttlMs: number;
  readonly remainingMs: number;
  readonly keys: readonly string[];
}

export interface PutOptions extends WriteOptions {
  /** Attach the key to this lease (deleted when the lease ends); must live on the key's shard. */
  readonly lease?: LeaseRef;
  /** At most one of these conditions (several: use `txn`). */
  readonly ifVersion?: number;
  readonly ifModRevision?: number;
  readonly ifValue?: Value;
  /** Put only if the key does not exist. */
  readonly ifAbsent?: boolean;
}

export interface PutResult {
  /** The shard's revision after the put. */
  readonly revision: number;
  readonly shard: number;
  /** The key's state before the put, null if it did not exist. */
  readonly prev: KeyValue | null;
  /** True when the server had applied this request id already (a retry). */
  readonly duplicate: boolean;
}

export interface GetOptions extends CallOptions {
  /** "serializable" may answer from a replica that is behind (no quorum round trip). */
  readonly consistency?: Consistency;
}

export interface DeleteOptions extends WriteOptions {
  readonly ifVersion?: number;
  readonly ifModRevision?: number;
  readonly ifValue?: Value;
}

export interface DeleteResult {
  /** Whether the key existed. */
  readonly deleted: boolean;
  readonly revision: number;
  readonly shard: number;
  readonly prev: KeyValue | null;
  readonly duplicate: boolean;
}

/** Key bounds combine; keys are ordered by their UTF-8 bytes. */
export interface ScanRange {
  readonly prefix?: string;
  /** First key, inclusive. */
  readonly start?: string;
  /** Last key, exclusive. */
  readonly end?: string;
  readonly consistency?: Consistency;
}

export interface ScanPageOptions extends ScanRange, CallOptions {
  /** Continue after this key (a previous page's `next`). */
  readonly after?: string;
  /** Items in this page, 1..10 000 (server default 1 000). */
  readonly limit?: number;
}

export interface ScanOptions extends ScanRange, CallOptions {
  readonly after?: string;
  /** Most items in all (default: every key in range). */
  readonly limit?: number;
  /** Items per request (default 1 000). The deadline applies to each page. */
  readonly pageSize?: number;
}

export interface ScanPage {
  readonly items: readonly KeyValue[];
  /** True when more keys in range follow. */
  readonly more: boolean;
  /** Pass as `after` to get the next page; null at the end. */
  readonly next: string | null;
}

export interface TxnCompare {
  readonly key: string;
  readonly target: "value" | "version" | "createRevision" | "modRevision" | "lease";
  readonly op: "==" | "!=" | "<" | ">";
  /** Text or bytes for target "value", an integer otherwise. */
  readonly value: Value | number;
}

export type TxnOp =
  | { readonly op: "put"; readonly key: string; readonly value: Value; readonly lease?: LeaseRef }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "get"; readonly key: string };

/** Every key must live on one shard (share a `{hash tag}`). */
export interface TxnRequest {
  readonly compare?: readonly TxnCompare[];
  readonly success?: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export type TxnOpResult =
  | { readonly op: "put"; readonly prev: KeyValue | null }
  | { readonly op: "delete"; readonly deleted: boolean; readonly prev: KeyValue | null }
  | { readonly op: "get"; readonly kv: KeyValue | null };

export interface TxnResult {
  /** True when every compare held (the success ops ran), false when the failure ops ran. */
  readonly succeeded: boolean;
  readonly revision: number;
  readonly shard: number;
  readonly results: readonly TxnOpResult[];
  readonly duplicate: boolean;
}

export type WatchTarget = { readonly key: string } | { readonly prefix: string };

export interface WatchOptions {
  /** Resume after this token (a previous event's `id`); default: changes from now on. */
  readonly from?: string;
  /** Ends the watch like `close()`. */
  readonly signal?: AbortSignal;
  /** Reconnect after this long without a byte (the server pings every 10 s; default 30 000 ms). */
  readonly idleTimeoutMs?: number;
  /** Give up (throw Unavailable) after failing to reconnect for this long (default 60 000 ms). */
  readonly reconnectForMs?: number;
}

export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly revision: number;
  readonly shard: number;
  /** A delete's `kv` holds the key with an empty value. */
  readonly kv: KeyValue;
  readonly prev: KeyValue | null;
  /** Resume token: pass as `from` to continue after this event. */
  readonly id: string | null;
}
