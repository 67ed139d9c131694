/**
 * @module The store's HTTP/JSON API (documented in docs/kv.md): keyspaces, single-key
 * operations, scans, transactions, leases and watches as Server-Sent Events. Every node
 * serves it and routes through `KvService`. Values travel as UTF-8 text when they are valid
 * UTF-8 and as base64 otherwise, and every record says which (`encoding`).
 */
import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BrigadeError } from "../../lib/errors.js";
import { type KeyspaceRecord, validateKeyspaceRequest } from "./catalog.js";
import type { Consistency, KvService } from "./kv-service.js";
import { eventsWaitMsMax } from "./kv-service.js";
import {
  type Compare,
  type KeyValue,
  type KvCommand,
  type KvEventFilter,
  type KvResult,
  kvLimits,
  type TxnOp,
  type TxnOpResult,
} from "./kv-types.js";

/** Request body limit of the data routes: the largest value in base64 JSON, plus room. */
export const kvBodyBytesMax = Math.ceil((kvLimits.valueBytesMax * 4) / 3) + 64 * 1024;
/** A transaction body may carry up to `txnOpsMax` values... but not more than this in all. */
export const txnBodyBytesMax = 4 * 1024 * 1024;
/** How often an idle watch stream sends a comment line (keeps proxies from closing it). */
const watchPingMs = 10_000;
/** Pause before a watch retries a shard whose leader was unreachable. */
const watchRetryMs = 250;

export interface KvJson {
  readonly key: string;
  readonly value: string;
  readonly encoding: "utf8" | "base64";
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: number;
}

export function kvJson(kv: KeyValue): KvJson {
  const bytes = Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength);
  const utf8 = isUtf8(bytes);
  return {
    key: kv.key,
    value: bytes.toString(utf8 ? "utf8" : "base64"),
    encoding: utf8 ? "utf8" : "base64",
    version: kv.version,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    lease: kv.lease,
  };
}

const kvJsonOrNull = (kv: KeyValue | null): KvJson | null => (kv === null ? null : kvJson(kv));

export function registerKvRoutes(
  app: FastifyInstance,
  service: () => KvService | null,
  nodeApi: (nodeId: string) => string | null,
): void {
  const kv = (): KvService => {
    const current = service();
    if (current === null)
      throw new BrigadeError(
        "NotFound",
        "this node runs no key-value store (start it with --raft-voters)",
      );
    return current;
  };

  // Raw values: any content type but JSON arrives as bytes.
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("text/plain", { parseAs: "buffer" }, (_request, body, done) =>
    done(null, body),
  );

  // ---- Keyspaces ----
  const describe = async (record: KeyspaceRecord) => {
    const leaders = await kv().leaders(record);
    return {
      name: record.name,
      consistency: record.consistency,
      shards: record.shards,
      replicas: record.replicas,
      epoch: kv().catalog.epoch,
      state: "ready",
      shardMap: record.shardMap.map((shard, index) => {
        const leader = leaders[index] ?? null;
        return {
          shard: shard.shard,
          group: shard.group,
          slots: shard.slots,
          replicas: shard.replicas,
          leader,
          leaderApi: leader === null ? null : nodeApi(leader),
        };
      }),
    };
  };
  app.post<{ Body: Record<string, unknown> }>("/v1/keyspaces", async (request, reply) => {
    const body = jsonBody(request.body);
    const valid = validateKeyspaceRequest(body as Parameters<typeof validateKeyspaceRequest>[0]);
    const record = await kv().createKeyspace(valid);
    return reply.code(201).send(await describe(record));
  });
  app.get("/v1/keyspaces", async () => ({
    keyspaces: await Promise.all(
      kv()
        .catalog.view()
        .keyspaces.map((record) => describe(record)),
    ),
  }));
  app.get<{ Params: { name: string } }>("/v1/keyspaces/:name", async (request) =>
    describe(await kv().keyspace(request.params.name)),
  );
  app.delete<{ Params: { name: string } }>("/v1/keyspaces/:name", async (request) => {
    await kv().keyspace(request.params.name);
    await kv().dropKeyspace(request.params.name);
    return { dropped: request.params.name };
  });

  // ---- Placement ----
  app.get("/v1/placement", async () => kv().placementStatus());
  app.post<{ Params: { id: string } }>("/v1/nodes/:id/decommission", async (request) => {
    await kv().decommission(request.params.id);
    return { decommissioning: request.params.id };
  });

  // ---- Single keys ----
  type KeyRequest = FastifyRequest<{
    Params: { ks: string; "*": string };
    Querystring: Record<string, string | undefined>;
    Body: unknown;
  }>;

  app.put("/v1/kv/:ks/*", { bodyLimit: kvBodyBytesMax }, async (request: KeyRequest, reply) => {
    const { ks } = request.params;
    const key = keyParam(request);
    const options = putOptions(request);
    const compare = compareFrom(key, options);
    const command: KvCommand = {
      type: "put",
      requestId: requestIdOf(options.requestId),
      key,
      value: options.value,
      lease: options.lease,
      compare,
    };
    const { shard, result } = await kv().write(ks, command);
    return writeReply(reply, shard, result);
  });

  app.get("/v1/kv/:ks/*", async (request: KeyRequest) => {
    const key = keyParam(request);
    const consistency = consistencyOf(request.query.consistency);
    const answer = await kv().get(request.params.ks, key, consistency);
    if (answer.kv === null)
      throw new BrigadeError("NotFound", `no key ${JSON.stringify(key)} in ${request.params.ks}`);
    return {
      kv: kvJson(answer.kv),
      revision: answer.revision,
      shard: answer.shard,
      ...(answer.stale ? { stale: true } : {}),
    };
  });

  app.delete("/v1/kv/:ks/*", async (request: KeyRequest, reply) => {
    const key = keyParam(request);
    const query = request.query;
    const command: KvCommand = {
      type: "delete",
      requestId: requestIdOf(query.requestId),
      key,
      compare: compareFrom(key, {
        ifVersion: integerOption(query.ifVersion, "ifVersion"),
        ifModRevision: integerOption(query.ifModRevision, "ifModRevision"),
        ifValue: query.ifValue === undefined ? undefined : Buffer.from(query.ifValue, "utf8"),
        ifAbsent: false,
      }),
    };
    const { shard, result } = await kv().write(request.params.ks, command);
    return writeReply(reply, shard, result);
  });

  // ---- Scans ----
  app.get<{ Params: { ks: string }; Querystring: Record<string, string | undefined> }>(
    "/v1/kv/:ks",
    async (request) => {
      const query = request.query;
      const limit = integerOption(query.limit, "limit") ?? kvLimits.scanLimitDefault;
      if (limit < 1 || limit > kvLimits.scanLimitMax)
        throw new BrigadeError("InvalidArgument", `limit must be in 1..${kvLimits.scanLimitMax}`);
      const consistency = consistencyOf(query.consistency);
      const page = await kv().scan(
        request.params.ks,
        {
          prefix: query.prefix ?? null,
          start: query.start ?? null,
          end: query.end ?? null,
          after: query.after ?? null,
          limit,
        },
        consistency,
      );
      return {
        items: page.items.map(kvJson),
        more: page.more,
        next: page.more && page.items.length > 0 ? page.items.at(-1)!.key : null,
        ...(consistency === "serializable" ? { stale: true } : {}),
      };
    },
  );

  // ---- Transactions ----
  app.post<{ Params: { ks: string }; Body: unknown }>(
    "/v1/txn/:ks",
    { bodyLimit: txnBodyBytesMax },
    async (request) => {
      const body = jsonBody(request.body);
      const command: KvCommand = {
        type: "txn",
        requestId: requestIdOf(body.requestId),
        compare: arrayOf(body.compare, "compare").map(parseCompare),
        success: arrayOf(body.success, "success").map(parseTxnOp),
        failure: arrayOf(body.failure, "failure").map(parseTxnOp),
      };
      const { shard, result } = await kv().write(request.params.ks, command);
      if (result.type !== "txn") throw new BrigadeError("RemoteError", "unexpected answer");
      return {
        succeeded: result.succeeded,
        revision: result.revision,
        shard,
        results: result.results.map(txnResultJson),
        ...(result.duplicate ? { duplicate: true } : {}),
      };
    },
  );

  // ---- Leases ----
  app.post<{ Params: { ks: string }; Body: unknown }>("/v1/leases/:ks", async (request, reply) => {
    const body = jsonBody(request.body);
    const ttlMs = body.ttlMs;
    if (typeof ttlMs !== "number" || !Number.isInteger(ttlMs))
      throw new BrigadeError("InvalidArgument", "ttlMs must be an integer number of milliseconds");
    if (body.key !== undefined && typeof body.key !== "string")
      throw new BrigadeError("InvalidArgument", "key must be a string");
    const granted = await kv().grantLease(
      request.params.ks,
      ttlMs,
      (body.key as string | undefined) ?? null,
      requestIdOf(body.requestId),
    );
    return reply.code(201).send(granted);
  });
  app.post<{ Params: { ks: string; id: string } }>(
    "/v1/leases/:ks/:id/keepalive",
    async (request) => kv().keepAlive(request.params.ks, leaseParam(request.params.id)),
  );
  app.get<{ Params: { ks: string; id: string } }>("/v1/leases/:ks/:id", async (request) =>
    kv().leaseInfo(request.params.ks, leaseParam(request.params.id)),
  );
  app.delete<{ Params: { ks: string; id: string }; Querystring: { requestId?: string } }>(
    "/v1/leases/:ks/:id",
    async (request) => {
      const { result } = await kv().write(request.params.ks, {
        type: "lease-revoke",
        requestId: requestIdOf(request.query.requestId),
        lease: leaseParam(request.params.id),
      });
      return { revoked: true, revision: "revision" in result ? result.revision : 0 };
    },
  );

  // ---- Watches (Server-Sent Events) ----
  app.get<{ Params: { ks: string }; Querystring: Record<string, string | undefined> }>(
    "/v1/watch/:ks",
    async (request, reply) => watch(request, reply, kv()),
  );
}

/**
 * Streams the events of one key (one shard) or a prefix (every shard). The resume token is
 * `shard:nextRevision` per shard, comma-separated: a reconnecting client sends the last
 * event's id and gets every later event once, in revision order per shard.
 */
async function watch(
  request: FastifyRequest<{
    Params: { ks: string };
    Querystring: Record<string, string | undefined>;
  }>,
  reply: FastifyReply,
  kv: KvService,
): Promise<void> {
  const { ks } = request.params;
  const { key, prefix } = request.query;
  if ((key === undefined) === (prefix === undefined))
    throw new BrigadeError("InvalidArgument", "watch takes exactly one of key= or prefix=");
  const filter: KvEventFilter = key !== undefined ? { key } : { prefix: prefix as string };
  const record = await kv.keyspace(ks);
  const shards =
    key !== undefined ? [kv.shardOf(record, key).shard] : record.shardMap.map((s) => s.shard);
  const token = request.query.from ?? (request.headers["last-event-id"] as string | undefined);
  const next = new Map<number, number>(shards.map((shard) => [shard, 0]));
  if (token !== undefined) {
    for (const part of token.split(",")) {
      const [shardText, revisionText] = part.split(":");
      const shard = Number(shardText);
      const revision = Number(revisionText);
      // Revision 0: from the shard's current revision on.
      if (!Number.isSafeInteger(shard) || !Number.isSafeInteger(revision) || revision < 0)
        throw new BrigadeError(
          "InvalidArgument",
          `bad watch resume token ${JSON.stringify(token)}`,
        );
      // A token from a prefix watch names shards a key watch does not read: ignored.
      if (next.has(shard)) next.set(shard, revision);
    }
  }
  // Before the stream starts (so errors get their status: 410 Compacted, 503): where each
  // shard starts, checked against its history.
  await Promise.all(
    shards.map(async (shard) => {
      const from = next.get(shard)!;
      const page = await kv.events(ks, shard, from, filter, 0);
      if (from === 0) next.set(shard, page.revision + 1);
    }),
  );
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  let open = true;
  request.raw.on("close", () => {
    open = false;
  });
  const ping = setInterval(() => out.write(": ping\n\n"), watchPingMs);
  const tokenOf = () => [...next].map(([shard, revision]) => `${shard}:${revision}`).join(",");
  // The starting point, so a client that reconnects before the first event misses nothing.
  out.write(`event: ready\nid: ${tokenOf()}\ndata: {}\n\n`);
  // Events go out as each shard delivers them; a single writer keeps lines whole.
  const pollShard = async (shard: number): Promise<void> => {
    while (open) {
      try {
        const from = next.get(shard)!;
        const page = await kv.events(ks, shard, from, filter, eventsWaitMsMax);
        if (!open) return;
        for (const event of page.events) {
          next.set(shard, event.revision + 1);
          const data = {
            type: event.type,
            revision: event.revision,
            shard,
            kv: kvJson(event.kv),
            prev: kvJsonOrNull(event.prev),
          };
          out.write(`event: ${event.type}\nid: ${tokenOf()}\ndata: ${JSON.stringify(data)}\n\n`);
        }
      } catch (error) {
        if (!open) return;
        if (error instanceof BrigadeError && !error.retriable) {
          out.write(
            `event: error\ndata: ${JSON.stringify({ code: error.code, message: error.message })}\n\n`,
          );
          open = false;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, watchRetryMs));
      }
    }
  };
  try {
    await Promise.all(shards.map(pollShard));
  } finally {
    clearInterval(ping);
    out.end();
  }
}

// ---- Parsing helpers ----

function jsonBody(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Buffer.isBuffer(body) || Array.isArray(body))
    throw new BrigadeError("InvalidArgument", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

function keyParam(request: { params: { "*": string } }): string {
  const key = request.params["*"];
  if (key === undefined || key.length === 0)
    throw new BrigadeError("InvalidArgument", "the key is missing from the path");
  return key;
}

function requestIdOf(value: unknown): string {
  if (value === undefined) return randomUUID();
  if (
    typeof value !== "string" ||
    value.length === 0 ||
    Buffer.byteLength(value) > kvLimits.requestIdBytesMax
  )
    throw new BrigadeError(
      "InvalidArgument",
      `requestId must be a string of 1..${kvLimits.requestIdBytesMax} bytes`,
    );
  return value;
}

function consistencyOf(value: string | undefined): Consistency {
  if (value === undefined || value === "linearizable") return "linearizable";
  if (value === "serializable") return "serializable";
  throw new BrigadeError("InvalidArgument", 'consistency must be "linearizable" or "serializable"');
}

function integerOption(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(number) || number < 0)
    throw new BrigadeError("InvalidArgument", `${name} must be a non-negative integer`);
  return number;
}

function leaseParam(text: string): number {
  const lease = Number(text);
  if (!Number.isSafeInteger(lease) || lease <= 0)
    throw new BrigadeError("InvalidArgument", `lease id ${JSON.stringify(text)} is not a lease id`);
  return lease;
}

function decodeValue(value: unknown, encoding: unknown, field: string): Buffer {
  if (typeof value !== "string")
    throw new BrigadeError("InvalidArgument", `${field} must be a string`);
  if (encoding === undefined || encoding === "utf8") return Buffer.from(value, "utf8");
  if (encoding === "base64") return Buffer.from(value, "base64");
  throw new BrigadeError("InvalidArgument", 'encoding must be "utf8" or "base64"');
}

interface PutOptions {
  value: Buffer;
  lease: number;
  ifVersion: number | undefined;
  ifModRevision: number | undefined;
  ifValue: Buffer | undefined;
  ifAbsent: boolean;
  requestId: unknown;
}

/** A PUT carries the raw value as its body (options in the query), or JSON with options. */
function putOptions(request: {
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  query: Record<string, string | undefined>;
}): PutOptions {
  const json = String(request.headers["content-type"] ?? "").startsWith("application/json");
  if (json) {
    const body = jsonBody(request.body);
    return {
      value: decodeValue(body.value, body.encoding, "value"),
      lease: integerOption(body.lease, "lease") ?? 0,
      ifVersion: integerOption(body.ifVersion, "ifVersion"),
      ifModRevision: integerOption(body.ifModRevision, "ifModRevision"),
      ifValue:
        body.ifValue === undefined
          ? undefined
          : decodeValue(body.ifValue, body.encoding, "ifValue"),
      ifAbsent: body.ifAbsent === true,
      requestId: body.requestId,
    };
  }
  const query = request.query;
  const body = request.body;
  return {
    value: Buffer.isBuffer(body) ? body : Buffer.alloc(0),
    lease: integerOption(query.lease, "lease") ?? 0,
    ifVersion: integerOption(query.ifVersion, "ifVersion"),
    ifModRevision: integerOption(query.ifModRevision, "ifModRevision"),
    ifValue: query.ifValue === undefined ? undefined : Buffer.from(query.ifValue, "utf8"),
    ifAbsent: query.ifAbsent === "true" || query.ifAbsent === "1",
    requestId: query.requestId,
  };
}

/** The one compare a single-key write may carry (several at once: use a transaction). */
function compareFrom(
  key: string,
  options: Pick<PutOptions, "ifVersion" | "ifModRevision" | "ifValue" | "ifAbsent">,
): Compare | null {
  const given = [
    options.ifAbsent ? ({ key, target: "version", op: "==", operand: 0 } as const) : null,
    options.ifVersion === undefined
      ? null
      : ({ key, target: "version", op: "==", operand: options.ifVersion } as const),
    options.ifModRevision === undefined
      ? null
      : ({ key, target: "modRevision", op: "==", operand: options.ifModRevision } as const),
    options.ifValue === undefined
      ? null
      : ({ key, target: "value", op: "==", operand: options.ifValue } as const),
  ].filter((compare) => compare !== null);
  if (given.length > 1)
    throw new BrigadeError(
      "InvalidArgument",
      "give at most one of ifAbsent, ifVersion, ifModRevision, ifValue (several: use a transaction)",
    );
  return given[0] ?? null;
}

function arrayOf(value: unknown, field: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new BrigadeError("InvalidArgument", `${field} must be an array`);
  return value;
}

const compareTargets = new Set(["value", "version", "createRevision", "modRevision", "lease"]);
const compareOps = new Set(["==", "!=", "<", ">"]);

function parseCompare(input: unknown): Compare {
  const compare = jsonBody(input);
  if (typeof compare.key !== "string")
    throw new BrigadeError("InvalidArgument", "compare.key must be a string");
  if (!compareTargets.has(compare.target as string))
    throw new BrigadeError(
      "InvalidArgument",
      "compare.target must be value, version, createRevision, modRevision or lease",
    );
  if (!compareOps.has(compare.op as string))
    throw new BrigadeError("InvalidArgument", 'compare.op must be "==", "!=", "<" or ">"');
  const operand =
    compare.target === "value"
      ? decodeValue(compare.value, compare.encoding, "compare.value")
      : integerOption(compare.value, "compare.value");
  if (operand === undefined) throw new BrigadeError("InvalidArgument", "compare.value is missing");
  return {
    key: compare.key,
    target: compare.target as Compare["target"],
    op: compare.op as Compare["op"],
    operand,
  };
}

function parseTxnOp(input: unknown): TxnOp {
  const op = jsonBody(input);
  if (typeof op.key !== "string")
    throw new BrigadeError("InvalidArgument", "op.key must be a string");
  switch (op.op) {
    case "put":
      return {
        op: "put",
        key: op.key,
        value: decodeValue(op.value, op.encoding, "op.value"),
        lease: integerOption(op.lease, "op.lease") ?? 0,
      };
    case "delete":
      return { op: "delete", key: op.key };
    case "get":
      return { op: "get", key: op.key };
    default:
      throw new BrigadeError("InvalidArgument", 'op.op must be "put", "delete" or "get"');
  }
}

function txnResultJson(result: TxnOpResult) {
  switch (result.op) {
    case "put":
      return { op: "put", prev: kvJsonOrNull(result.prev) };
    case "delete":
      return { op: "delete", deleted: result.deleted, prev: kvJsonOrNull(result.prev) };
    case "get":
      return { op: "get", kv: kvJsonOrNull(result.kv) };
  }
}

/** A write's answer: 200, or 409 CompareFailed with the key's current state. */
function writeReply(reply: FastifyReply, shard: number, result: KvResult): FastifyReply {
  if (result.type !== "write") throw new BrigadeError("RemoteError", "unexpected answer");
  if (!result.succeeded) {
    return reply.code(409).send({
      error: {
        code: "CompareFailed",
        message: "the compare failed: nothing was written",
        retriable: false,
      },
      current: kvJsonOrNull(result.prev),
      revision: result.revision,
      shard,
    });
  }
  return reply.send({
    succeeded: true,
    revision: result.revision,
    shard,
    prev: kvJsonOrNull(result.prev),
    ...(result.deleted === undefined ? {} : { deleted: result.deleted }),
    ...(result.duplicate ? { duplicate: true } : {}),
  });
}
