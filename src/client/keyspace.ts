/**
 * @module One keyspace's operations: single-key reads and writes (sent to the leader of the
 * key's shard), scans across shards, single-shard transactions, leases and watches. Writes
 * carry one request id per call, reused by every retry, so a write applies once.
 */
import { randomUUID } from "node:crypto";
import { BrigadeError } from "../lib/errors.js";
import {
  base64Of,
  encodeValue,
  type KeyValue,
  type KvJson,
  keyValueOrNull,
  toBytes,
  utf8OrNull,
  type Value,
} from "./codec.js";
import { type Connection, keyPath, query, segment } from "./connection.js";
import { ServerError } from "./errors.js";
import type {
  CallOptions,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  KeyspaceInfo,
  Lease,
  LeaseInfo,
  LeaseRef,
  PutOptions,
  PutResult,
  ScanOptions,
  ScanPage,
  ScanPageOptions,
  TxnOp,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  WatchOptions,
  WatchTarget,
  WriteOptions,
} from "./types.js";
import { Watch } from "./watch.js";

interface WriteAnswer {
  readonly revision: number;
  readonly shard: number;
  readonly prev: KvJson | null;
  readonly deleted?: boolean;
  readonly duplicate?: boolean;
}

function leaseId(lease: LeaseRef): number {
  const id = typeof lease === "number" ? lease : lease?.id;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0)
    throw new BrigadeError("InvalidArgument", `not a lease id: ${String(id)}`);
  return id;
}

function nonNegativeInteger(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new BrigadeError("InvalidArgument", `${name} must be a non-negative integer`);
  return value;
}

function positiveInteger(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1)
    throw new BrigadeError("InvalidArgument", `${name} must be a positive integer`);
  return value;
}

function requestIdOf(options: WriteOptions | undefined): string {
  const id = options?.requestId ?? randomUUID();
  if (typeof id !== "string" || id.length === 0)
    throw new BrigadeError("InvalidArgument", "requestId must be a non-empty string");
  return id;
}

/** UTF-8 text for a query string; bytes that are not UTF-8 cannot travel there. */
function queryText(value: Value | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value : utf8OrNull(toBytes(value));
  if (text === null)
    throw new BrigadeError(
      "InvalidArgument",
      `${name} is not UTF-8 text; compare bytes with a transaction ({ target: "value" })`,
    );
  return text;
}

function txnResult(result: {
  op?: string;
  prev?: KvJson | null;
  deleted?: boolean;
  kv?: KvJson | null;
}): TxnOpResult {
  switch (result.op) {
    case "put":
      return { op: "put", prev: keyValueOrNull(result.prev) };
    case "delete":
      return { op: "delete", deleted: result.deleted === true, prev: keyValueOrNull(result.prev) };
    case "get":
      return { op: "get", kv: keyValueOrNull(result.kv) };
    default:
      throw new BrigadeError(
        "RemoteError",
        `unexpected transaction result ${JSON.stringify(result)}`,
      );
  }
}

function txnOpJson(op: TxnOp): Record<string, unknown> {
  switch (op?.op) {
    case "put":
      return {
        op: "put",
        key: op.key,
        ...encodeValue(op.value),
        ...(op.lease === undefined ? {} : { lease: leaseId(op.lease) }),
      };
    case "delete":
      return { op: "delete", key: op.key };
    case "get":
      return { op: "get", key: op.key };
    default:
      throw new BrigadeError("InvalidArgument", 'a transaction op is "put", "delete" or "get"');
  }
}

/** A handle on one keyspace (cheap: no I/O until a call). */
export class Keyspace {
  readonly leases: Leases;
  readonly #connection: Connection;
  readonly #path: string;

  constructor(
    readonly name: string,
    connection: Connection,
  ) {
    this.#connection = connection;
    this.#path = segment(name, "a keyspace name");
    this.leases = new Leases(name, connection);
  }

  /** The cached shard map (read from a node if not cached). */
  async info(options?: CallOptions): Promise<KeyspaceInfo> {
    return this.#connection.call(`describe keyspace ${this.name}`, options, (attempt) =>
      this.#connection.keyspaceMap(this.name, attempt),
    );
  }

  /** Writes `key`. With a condition (ifAbsent, ifVersion, ...) that fails: CompareFailedError with `current`. */
  async put(key: string, value: Value, options: PutOptions = {}): Promise<PutResult> {
    const path = `/v1/kv/${this.#path}/${keyPath(key)}`;
    const bytes = toBytes(value);
    const requestId = requestIdOf(options);
    const lease = options.lease === undefined ? undefined : leaseId(options.lease);
    const ifVersion = nonNegativeInteger(options.ifVersion, "ifVersion");
    const ifModRevision = nonNegativeInteger(options.ifModRevision, "ifModRevision");
    const ifValueBytes = options.ifValue === undefined ? undefined : toBytes(options.ifValue);
    const binaryIfValue = ifValueBytes !== undefined && utf8OrNull(ifValueBytes) === null;
    // The raw body carries the value as is; a binary ifValue needs the JSON form (base64).
    const request = binaryIfValue
      ? {
          method: "PUT" as const,
          path,
          json: {
            value: base64Of(bytes),
            encoding: "base64",
            ifValue: base64Of(ifValueBytes),
            lease,
            ifVersion,
            ifModRevision,
            ifAbsent: options.ifAbsent === true ? true : undefined,
            requestId,
          },
        }
      : {
          method: "PUT" as const,
          path: `${path}${query({
            lease,
            ifVersion,
            ifModRevision,
            ifValue: queryText(options.ifValue, "ifValue"),
            ifAbsent: options.ifAbsent === true ? "true" : undefined,
            requestId,
          })}`,
          bytes,
        };
    return this.#connection.call(`put ${this.name}/${key}`, options, async (attempt) => {
      const { base } = await this.#connection.keyTarget(this.name, key, attempt);
      const answer = (
        await this.#connection.sendFor(attempt, base, request, `put ${this.name}/${key}`)
      ).body as WriteAnswer;
      return {
        revision: answer.revision,
        shard: answer.shard,
        prev: keyValueOrNull(answer.prev),
        duplicate: answer.duplicate === true,
      };
    });
  }

  /** Reads `key`; null when it does not exist. */
  async get(key: string, options: GetOptions = {}): Promise<KeyValue | null> {
    const path = `/v1/kv/${this.#path}/${keyPath(key)}${query({ consistency: options.consistency })}`;
    const what = `get ${this.name}/${key}`;
    return this.#connection.call(what, options, async (attempt) => {
      const { base } = await this.#connection.keyTarget(this.name, key, attempt);
      try {
        const answer = await this.#connection.sendFor(attempt, base, { method: "GET", path }, what);
        return keyValueOrNull((answer.body as { kv: KvJson }).kv);
      } catch (error) {
        if (error instanceof ServerError && error.serverCode === "NotFound") return null;
        throw error;
      }
    });
  }

  /** Deletes `key` (`deleted` false when it did not exist). A failed condition: CompareFailedError. */
  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const path = `/v1/kv/${this.#path}/${keyPath(key)}${query({
      ifVersion: nonNegativeInteger(options.ifVersion, "ifVersion"),
      ifModRevision: nonNegativeInteger(options.ifModRevision, "ifModRevision"),
      ifValue: queryText(options.ifValue, "ifValue"),
      requestId: requestIdOf(options),
    })}`;
    const what = `delete ${this.name}/${key}`;
    return this.#connection.call(what, options, async (attempt) => {
      const { base } = await this.#connection.keyTarget(this.name, key, attempt);
      const answer = (
        await this.#connection.sendFor(attempt, base, { method: "DELETE", path }, what)
      ).body as WriteAnswer;
      return {
        deleted: answer.deleted === true,
        revision: answer.revision,
        shard: answer.shard,
        prev: keyValueOrNull(answer.prev),
        duplicate: answer.duplicate === true,
      };
    });
  }

  /** One page of keys in range, in key order across every shard. */
  async scanPage(options: ScanPageOptions = {}): Promise<ScanPage> {
    const path = `/v1/kv/${this.#path}${query({
      prefix: options.prefix,
      start: options.start,
      end: options.end,
      after: options.after,
      limit: positiveInteger(options.limit, "limit"),
      consistency: options.consistency,
    })}`;
    const what = `scan ${this.name}`;
    return this.#connection.call(what, options, async (attempt) => {
      const base = this.#connection.anyNode(attempt.avoid);
      const answer = (await this.#connection.sendFor(attempt, base, { method: "GET", path }, what))
        .body as { items?: KvJson[]; more?: boolean; next?: string | null };
      if (!Array.isArray(answer.items))
        throw new BrigadeError("RemoteError", `${what}: the answer has no items`);
      return {
        items: answer.items.map((item) => keyValueOrNull(item) as KeyValue),
        more: answer.more === true,
        next: typeof answer.next === "string" ? answer.next : null,
      };
    });
  }

  /** Every key in range, in key order, fetching pages as the loop goes (each page has its own deadline). */
  async *scan(options: ScanOptions = {}): AsyncGenerator<KeyValue, void, undefined> {
    let left = positiveInteger(options.limit, "limit") ?? Number.POSITIVE_INFINITY;
    const pageSize = positiveInteger(options.pageSize, "pageSize");
    let after = options.after;
    while (left > 0) {
      const limit = Math.min(pageSize ?? 1000, left);
      const page = await this.scanPage({
        prefix: options.prefix,
        start: options.start,
        end: options.end,
        consistency: options.consistency,
        deadlineMs: options.deadlineMs,
        signal: options.signal,
        after,
        limit,
      });
      for (const item of page.items) yield item;
      left -= page.items.length;
      if (!page.more || page.next === null) return;
      if (page.next === after)
        throw new BrigadeError(
          "RemoteError",
          `scan ${this.name}: the server repeated the page after ${after}`,
        );
      after = page.next;
    }
  }

  /** Runs compares then the success or failure ops, atomically; every key must be on one shard. */
  async txn(request: TxnRequest, options: WriteOptions = {}): Promise<TxnResult> {
    const compare = (request.compare ?? []).map((condition) => {
      if (condition.target === "value") {
        if (typeof condition.value === "number")
          throw new BrigadeError("InvalidArgument", 'a "value" compare takes text or bytes');
        return {
          key: condition.key,
          target: condition.target,
          op: condition.op,
          ...encodeValue(condition.value),
        };
      }
      return {
        key: condition.key,
        target: condition.target,
        op: condition.op,
        value: condition.value,
      };
    });
    const success = (request.success ?? []).map(txnOpJson);
    const failure = (request.failure ?? []).map(txnOpJson);
    const body = { compare, success, failure, requestId: requestIdOf(options) };
    const firstKey = [...compare, ...success, ...failure].find(
      (entry) => typeof entry.key === "string",
    )?.key as string | undefined;
    const what = `txn ${this.name}`;
    return this.#connection.call(what, options, async (attempt) => {
      const base =
        firstKey === undefined
          ? this.#connection.anyNode(attempt.avoid)
          : (await this.#connection.keyTarget(this.name, firstKey, attempt)).base;
      const answer = (
        await this.#connection.sendFor(
          attempt,
          base,
          { method: "POST", path: `/v1/txn/${this.#path}`, json: body },
          what,
        )
      ).body as {
        succeeded: boolean;
        revision: number;
        shard: number;
        results?: unknown[];
        duplicate?: boolean;
      };
      return {
        succeeded: answer.succeeded === true,
        revision: answer.revision,
        shard: answer.shard,
        results: (answer.results ?? []).map((result) =>
          txnResult(result as Parameters<typeof txnResult>[0]),
        ),
        duplicate: answer.duplicate === true,
      };
    });
  }

  /** Streams changes of one key or of every key with a prefix; see `Watch`. */
  watch(target: WatchTarget, options?: WatchOptions): Watch {
    this.#connection.assertOpen();
    return new Watch(this.#connection, this.name, target, options);
  }
}

/**
 * Leases: keys attached to a lease are deleted when it is revoked or its TTL runs out
 * without a keep-alive. A lease lives on one shard (of the key given at grant, shard 0
 * otherwise): keys attached to it must hash there, so share a hash tag.
 */
export class Leases {
  readonly #connection: Connection;
  readonly #path: string;

  constructor(
    readonly keyspace: string,
    connection: Connection,
  ) {
    this.#connection = connection;
    this.#path = segment(keyspace, "a keyspace name");
  }

  async grant(ttlMs: number, options: WriteOptions & { key?: string } = {}): Promise<Lease> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0)
      throw new BrigadeError("InvalidArgument", "ttlMs must be a positive integer");
    const key = options.key;
    if (key !== undefined) keyPath(key);
    const body = { ttlMs, ...(key === undefined ? {} : { key }), requestId: requestIdOf(options) };
    const what = `grant a lease in ${this.keyspace}`;
    return this.#connection.call(what, options, async (attempt) => {
      const info = await this.#connection.keyspaceMap(this.keyspace, attempt);
      const base =
        key === undefined
          ? this.#connection.shardTarget(info, 0, attempt)
          : (await this.#connection.keyTarget(this.keyspace, key, attempt)).base;
      const answer = (
        await this.#connection.sendFor(
          attempt,
          base,
          { method: "POST", path: `/v1/leases/${this.#path}`, json: body },
          what,
        )
      ).body as { lease: number; ttlMs: number };
      return { id: answer.lease, ttlMs: answer.ttlMs, ...(key === undefined ? {} : { key }) };
    });
  }

  /** Restarts the lease's TTL; NotFound when it already expired or was revoked. */
  async keepAlive(lease: LeaseRef, options?: CallOptions): Promise<Lease> {
    const id = leaseId(lease);
    const key = typeof lease === "number" ? undefined : lease.key;
    const what = `keep lease ${id} alive`;
    return this.#connection.call(what, options, async (attempt) => {
      const base = await this.#connection.leaseTarget(this.keyspace, id, key, attempt);
      const answer = (
        await this.#connection.sendFor(
          attempt,
          base,
          { method: "POST", path: `/v1/leases/${this.#path}/${id}/keepalive` },
          what,
        )
      ).body as { lease: number; ttlMs: number };
      return { id: answer.lease ?? id, ttlMs: answer.ttlMs, ...(key === undefined ? {} : { key }) };
    });
  }

  async get(lease: LeaseRef, options?: CallOptions): Promise<LeaseInfo> {
    const id = leaseId(lease);
    const key = typeof lease === "number" ? undefined : lease.key;
    const what = `get lease ${id}`;
    return this.#connection.call(what, options, async (attempt) => {
      const base = await this.#connection.leaseTarget(this.keyspace, id, key, attempt);
      const answer = (
        await this.#connection.sendFor(
          attempt,
          base,
          { method: "GET", path: `/v1/leases/${this.#path}/${id}` },
          what,
        )
      ).body as { lease: number; ttlMs: number; remainingMs: number; keys?: string[] };
      return {
        id: answer.lease ?? id,
        ttlMs: answer.ttlMs,
        remainingMs: answer.remainingMs,
        keys: answer.keys ?? [],
      };
    });
  }

  /** Ends the lease and deletes its keys. */
  async revoke(
    lease: LeaseRef,
    options?: WriteOptions,
  ): Promise<{ revoked: boolean; revision: number }> {
    const id = leaseId(lease);
    const key = typeof lease === "number" ? undefined : lease.key;
    const path = `/v1/leases/${this.#path}/${id}${query({ requestId: requestIdOf(options) })}`;
    const what = `revoke lease ${id}`;
    return this.#connection.call(what, options, async (attempt) => {
      const base = await this.#connection.leaseTarget(this.keyspace, id, key, attempt);
      const answer = (
        await this.#connection.sendFor(attempt, base, { method: "DELETE", path }, what)
      ).body as { revoked?: boolean; revision?: number };
      return { revoked: answer.revoked !== false, revision: Number(answer.revision ?? 0) };
    });
  }

  /**
   * Keeps the lease alive until closed: a keep-alive now, then every `intervalMs`
   * (default a third of the TTL). Iterate it to see each renewal; it throws when the lease
   * is gone (NotFound) or a keep-alive fails for longer than its deadline.
   */
  keepAliveLoop(
    lease: LeaseRef,
    options: { intervalMs?: number; signal?: AbortSignal } = {},
  ): LeaseKeeper {
    this.#connection.assertOpen();
    return new LeaseKeeper(this, lease, options);
  }
}

/** A running keep-alive loop (see `Leases.keepAliveLoop`). */
export class LeaseKeeper implements AsyncIterable<Lease> {
  readonly #stopper = new AbortController();
  readonly #intervalMs: number | undefined;

  constructor(
    private readonly leases: Leases,
    private readonly lease: LeaseRef,
    options: { intervalMs?: number; signal?: AbortSignal },
  ) {
    this.#intervalMs = positiveInteger(options.intervalMs, "intervalMs");
    options.signal?.addEventListener("abort", () => this.close(), { once: true });
    if (options.signal?.aborted) this.close();
  }

  get closed(): boolean {
    return this.#stopper.signal.aborted;
  }

  close(): void {
    this.#stopper.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Lease, void, undefined> {
    const signal = this.#stopper.signal;
    // A keep-alive may keep retrying until the lease would expire.
    let expiresAt =
      typeof this.lease === "number" || !(this.lease.ttlMs > 0)
        ? null
        : Date.now() + this.lease.ttlMs;
    try {
      while (!this.closed) {
        let renewed: Lease;
        try {
          const deadlineMs =
            expiresAt === null ? undefined : Math.max(1000, expiresAt - Date.now());
          renewed = await this.leases.keepAlive(this.lease, {
            signal,
            ...(deadlineMs === undefined ? {} : { deadlineMs }),
          });
        } catch (error) {
          if (this.closed) return;
          throw error;
        }
        expiresAt = Date.now() + renewed.ttlMs;
        yield renewed;
        const wait = this.#intervalMs ?? Math.max(100, Math.floor(renewed.ttlMs / 3));
        await new Promise<void>((resolve) => {
          if (signal.aborted) return resolve();
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, wait);
          signal.addEventListener("abort", done, { once: true });
        });
      }
    } finally {
      this.close();
    }
  }
}
