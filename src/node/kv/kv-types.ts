/**
 * @module The strongly consistent key-value store's vocabulary: keys, values, the commands a
 * shard's Raft log carries and what applying them returns. Shared by the shard state machine
 * (`shard-store.ts`), the service that routes requests (`kv-service.ts`), the HTTP API and
 * the client. Values are bytes; keys are UTF-8 strings.
 */

/** Limits with their defaults; a violation is InvalidArgument or MessageTooLarge and writes nothing. */
export const kvLimits = {
  /** Longest key in UTF-8 bytes. */
  keyBytesMax: 4096,
  /** Largest value. */
  valueBytesMax: 1024 * 1024,
  /** Most operations in one transaction (compares, success and failure ops each). */
  txnOpsMax: 128,
  /** Default and largest number of items one scan page returns. */
  scanLimitDefault: 1000,
  scanLimitMax: 10_000,
  /** Longest client request id (deduplicates a retried write). */
  requestIdBytesMax: 128,
  /** Lease time to live bounds. */
  leaseTtlMsMin: 1000,
  leaseTtlMsMax: 7 * 24 * 3600 * 1000,
} as const;

/** One key's current state in a shard. `lease` 0 = no lease. Revisions are per shard. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  /** 1 on creation, +1 per put; a delete resets the key. */
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: number;
}

/** A condition on one key's current state; a missing key has version 0, revisions 0, lease 0 and no value. */
export interface Compare {
  readonly key: string;
  readonly target: "value" | "version" | "createRevision" | "modRevision" | "lease";
  readonly op: "==" | "!=" | "<" | ">";
  /** Bytes for target "value" (compared bytewise; a missing key's value never matches "=="), a number otherwise. */
  readonly operand: Uint8Array | number;
}

export type TxnOp =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array; readonly lease: number }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "get"; readonly key: string };

export type TxnOpResult =
  | { readonly op: "put"; readonly prev: KeyValue | null }
  | { readonly op: "delete"; readonly deleted: boolean; readonly prev: KeyValue | null }
  | { readonly op: "get"; readonly kv: KeyValue | null };

/**
 * What a shard's log carries. Every command but "compact" and "lease-expire" carries the
 * client's request id: a command whose id was already applied returns the first result
 * again (marked `duplicate`) and changes nothing. Single-key put and delete are
 * transactions with one compare at most; they have their own shape because they are most
 * of the traffic.
 */
export type KvCommand =
  | {
      readonly type: "put";
      readonly requestId: string;
      readonly key: string;
      readonly value: Uint8Array;
      readonly lease: number;
      /** Optional compare on the same key (compare-and-set, put-if-absent = version == 0). */
      readonly compare: Compare | null;
    }
  | {
      readonly type: "delete";
      readonly requestId: string;
      readonly key: string;
      readonly compare: Compare | null;
    }
  | {
      readonly type: "txn";
      readonly requestId: string;
      readonly compare: readonly Compare[];
      readonly success: readonly TxnOp[];
      readonly failure: readonly TxnOp[];
    }
  | { readonly type: "lease-grant"; readonly requestId: string; readonly ttlMs: number }
  | { readonly type: "lease-revoke"; readonly requestId: string; readonly lease: number }
  /** Proposed by the shard leader when a lease's TTL ran out without a keep-alive. */
  | { readonly type: "lease-expire"; readonly lease: number }
  /** Forgets history before `revision` (watches from older revisions get Compacted). */
  | { readonly type: "compact"; readonly revision: number };

/** What applying a command returns (to the proposer on this node). */
export type KvResult =
  | {
      readonly type: "write";
      /** False when the compare failed: nothing changed. */
      readonly succeeded: boolean;
      /** The shard's revision after the command. */
      readonly revision: number;
      /** put/delete: the previous state; a failed compare: the current state. */
      readonly prev: KeyValue | null;
      /** delete: whether the key existed. */
      readonly deleted?: boolean;
      readonly duplicate?: boolean;
    }
  | {
      readonly type: "txn";
      readonly succeeded: boolean;
      readonly revision: number;
      readonly results: readonly TxnOpResult[];
      readonly duplicate?: boolean;
    }
  | {
      readonly type: "lease";
      readonly lease: number;
      readonly ttlMs: number;
      readonly revision: number;
      readonly duplicate?: boolean;
    }
  /** The command could not apply (e.g. unknown lease): the same on every replica, nothing changed. */
  | {
      readonly type: "error";
      readonly code: "NotFound" | "InvalidArgument";
      readonly message: string;
    };

/** One change, as watches deliver it. `kv` of a delete holds the key with an empty value. */
export interface KvEvent {
  readonly type: "put" | "delete";
  readonly revision: number;
  readonly kv: KeyValue;
  readonly prev: KeyValue | null;
}

/** Which keys a watch (or an events read) follows: one key, or every key with a prefix. */
export type KvEventFilter = { readonly key: string } | { readonly prefix: string };

export function filterMatches(filter: KvEventFilter, key: string): boolean {
  return "key" in filter ? key === filter.key : key.startsWith(filter.prefix);
}

/** Keys are ordered by their UTF-8 bytes. All bounds combine (a key must satisfy each given one). */
export interface ScanRequest {
  /** Only keys starting with this; null = any. */
  readonly prefix: string | null;
  /** First key (inclusive); null = no lower bound. */
  readonly start: string | null;
  /** End key (exclusive); null = no upper bound. */
  readonly end: string | null;
  /** Continue after this key (exclusive), from a previous page's last key. */
  readonly after: string | null;
  readonly limit: number;
}

export interface ScanPage {
  readonly items: readonly KeyValue[];
  /** True when more keys in range follow the last item. */
  readonly more: boolean;
}
