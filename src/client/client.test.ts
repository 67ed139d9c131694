// Goal: the client library routes each single-key request to the leader of the key's
// shard, retries what may succeed elsewhere or later (refreshing its shard map and reusing
// the write's request id) within the call's deadline, surfaces the server's errors with
// their codes, pages scans, carries values as bytes in both encodings, and keeps a watch
// going across dropped connections. Method: fake nodes (node:http on 127.0.0.1, port 0)
// that record every request and answer as the API specifies.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { BrigadeError, isBrigadeError } from "../lib/errors.js";
import { shardOfKey, slotRange } from "../lib/slots.js";
import { connect } from "./client.js";
import { KeyValue, type KvJson } from "./codec.js";
import { CompareFailedError, ServerError } from "./errors.js";
import { SseParser } from "./sse.js";
import type { KeyspaceInfo, WatchEvent } from "./types.js";

interface Recorded {
  readonly method: string;
  readonly url: URL;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

type Handler = (
  request: Recorded,
  response: http.ServerResponse,
  raw: http.IncomingMessage,
) => void | Promise<void>;

class FakeNode {
  readonly requests: Recorded[] = [];
  handler: Handler = (_request, response) => reply(response, 404, notFound("no route"));

  private constructor(
    readonly server: http.Server,
    readonly address: string,
  ) {}

  static async start(handler?: Handler): Promise<FakeNode> {
    let node: FakeNode | undefined;
    const server = http.createServer((raw, response) => {
      const chunks: Buffer[] = [];
      raw.on("data", (chunk: Buffer) => chunks.push(chunk));
      raw.on("end", () => {
        const request = {
          method: raw.method ?? "GET",
          url: new URL(raw.url ?? "/", "http://fake"),
          headers: raw.headers,
          body: Buffer.concat(chunks),
        };
        node?.requests.push(request);
        Promise.resolve(node?.handler(request, response, raw)).catch((error: unknown) => {
          response.destroy(error as Error);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    node = new FakeNode(server, `127.0.0.1:${port}`);
    if (handler) node.handler = handler;
    nodes.push(node);
    return node;
  }

  /** Requests whose path starts with `prefix` (and method, if given). */
  hits(prefix: string, method?: string): Recorded[] {
    return this.requests.filter(
      (request) =>
        request.url.pathname.startsWith(prefix) &&
        (method === undefined || request.method === method),
    );
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const nodes: FakeNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

function reply(
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(text);
}

function notFound(message: string) {
  return { error: { code: "NotFound", message, retriable: false } };
}

function unavailable(code = "Unavailable") {
  return { error: { code, message: `${code}: retry`, retriable: true } };
}

function kvJson(key: string, value: string | Uint8Array, version = 1, modRevision = 7): KvJson {
  const utf8 = typeof value === "string";
  return {
    key,
    value: utf8 ? value : Buffer.from(value).toString("base64"),
    encoding: utf8 ? "utf8" : "base64",
    version,
    createRevision: modRevision - version + 1,
    modRevision,
    lease: 0,
  };
}

/** A keyspace of `shards` shards whose leaders are `leaders[shard % leaders.length]` (null = unknown). */
function keyspaceInfo(name: string, shards: number, leaders: (string | null)[]): KeyspaceInfo {
  return {
    name,
    consistency: "strong",
    shards,
    replicas: 3,
    epoch: 3,
    state: "ready",
    shardMap: Array.from({ length: shards }, (_, shard) => {
      const leaderApi = leaders[shard % leaders.length] ?? null;
      return {
        shard,
        group: 1000 + shard,
        slots: slotRange(shard, shards) as [number, number],
        replicas: ["n1", "n2", "n3"],
        leader: leaderApi === null ? null : `n${(shard % leaders.length) + 1}`,
        leaderApi,
      };
    }),
  };
}

/** A key of `shard` out of `shards`. */
function keyOnShard(shard: number, shards: number, prefix = "key"): string {
  for (let index = 0; ; index++) {
    const key = `${prefix}-${index}`;
    if (shardOfKey(key, shards) === shard) return key;
  }
}

/** A seed node serving the keyspace map from `map()` (called per request). */
async function seed(map: () => KeyspaceInfo): Promise<FakeNode> {
  return FakeNode.start((request, response) => {
    if (request.method === "GET" && request.url.pathname.startsWith("/v1/keyspaces/"))
      return reply(response, 200, map());
    reply(response, 404, notFound(`nothing at ${request.url.pathname}`));
  });
}

function okPut(shard: number, revision = 10) {
  return { succeeded: true, revision, shard, prev: null };
}

describe("client: routing and retries", () => {
  it("sends single-key requests to the leader of the key's shard and caches the map", async () => {
    const leaderA = await FakeNode.start();
    const leaderB = await FakeNode.start();
    const map = keyspaceInfo("seats", 4, [leaderA.address, leaderB.address]);
    const seedNode = await seed(() => map);
    leaderA.handler = (_request, response) => reply(response, 200, okPut(0));
    leaderB.handler = (request, response) =>
      reply(response, 200, {
        kv: kvJson(decodeURIComponent(request.url.pathname.split("/")[4] ?? ""), "bob"),
        revision: 9,
        shard: 1,
      });
    const client = await connect({ nodes: [seedNode.address] });
    const seats = client.keyspace("seats");
    const onA = keyOnShard(0, 4, "a/x");
    const onB = keyOnShard(1, 4, "b/y");
    const put = await seats.put(onA, "alice", { ifAbsent: true });
    assert.deepEqual(
      { revision: put.revision, shard: put.shard, prev: put.prev },
      { revision: 10, shard: 0, prev: null },
    );
    const got = await seats.get(onB);
    assert.equal(got?.text(), "bob");
    assert.equal(got?.key, onB);
    await seats.put(keyOnShard(2, 4), "c"); // shard 2 → leader A too
    assert.equal(seedNode.hits("/v1/keyspaces").length, 1, "the map is read once and cached");
    const puts = leaderA.hits("/v1/kv/seats/", "PUT");
    assert.equal(puts.length, 2);
    const first = puts[0] as Recorded;
    assert.equal(decodeURIComponent(first.url.pathname.slice("/v1/kv/seats/".length)), onA);
    assert.equal(first.url.pathname.includes("/x"), false, "a / in a key is percent-encoded");
    assert.equal(first.body.toString(), "alice");
    assert.equal(first.headers["content-type"], "application/octet-stream");
    assert.equal(first.url.searchParams.get("ifAbsent"), "true");
    assert.ok((first.url.searchParams.get("requestId") ?? "").length > 0);
    assert.equal(leaderB.hits("/v1/kv/seats/", "GET").length, 1);
    assert.equal(leaderB.hits("/v1/kv/", "PUT").length, 0);
    client.close();
  });

  it("falls back to a configured node when the shard has no known leader", async () => {
    const map = keyspaceInfo("seats", 2, [null]);
    const seedNode = await seed(() => map);
    const inner = seedNode.handler;
    seedNode.handler = (request, response, raw) =>
      request.url.pathname.startsWith("/v1/kv/")
        ? reply(response, 200, okPut(1))
        : inner(request, response, raw);
    const client = await connect({ nodes: [seedNode.address] });
    await client.keyspace("seats").put("k", "v");
    assert.equal(seedNode.hits("/v1/kv/seats/k", "PUT").length, 1);
    client.close();
  });

  it("on 503 Unavailable (leader moved) refreshes the map and retries at the new leader with the same request id", async () => {
    const oldLeader = await FakeNode.start((_request, response) =>
      reply(response, 503, unavailable("Unavailable"), { "retry-after": "1" }),
    );
    const newLeader = await FakeNode.start((_request, response) =>
      reply(response, 200, okPut(0, 11)),
    );
    let reads = 0;
    const seedNode = await seed(() =>
      keyspaceInfo("seats", 1, [reads++ === 0 ? oldLeader.address : newLeader.address]),
    );
    const client = await connect({ nodes: [seedNode.address], backoffBaseMs: 5 });
    const started = Date.now();
    const result = await client.keyspace("seats").put("{f1}:4A", "alice");
    assert.equal(result.revision, 11);
    assert.ok(Date.now() - started < 900, "Unavailable backs off with jitter, not retry-after");
    assert.equal(seedNode.hits("/v1/keyspaces/seats").length, 2, "the map was refreshed");
    const first = oldLeader.hits("/v1/kv/seats/")[0] as Recorded;
    const second = newLeader.hits("/v1/kv/seats/")[0] as Recorded;
    assert.ok(first && second);
    assert.equal(
      second.url.searchParams.get("requestId"),
      first.url.searchParams.get("requestId"),
      "a retried write reuses its request id",
    );
    client.close();
  });

  it("retries a node that refuses connections elsewhere, and a 503 Unavailable, keeping the txn's request id", async () => {
    const gone = await FakeNode.start();
    const goneAddress = gone.address;
    await gone.close();
    let answers = 0;
    const leader = await FakeNode.start((_request, response) => {
      if (answers++ === 0) return reply(response, 503, unavailable());
      reply(response, 200, {
        succeeded: true,
        revision: 5,
        shard: 0,
        results: [{ op: "put", prev: null }],
      });
    });
    let reads = 0;
    const seedNode = await seed(() =>
      keyspaceInfo("seats", 1, [reads++ === 0 ? goneAddress : leader.address]),
    );
    const client = await connect({ nodes: [seedNode.address], backoffBaseMs: 5 });
    const result = await client
      .keyspace("seats")
      .txn({ success: [{ op: "put", key: "{f1}:4A", value: "alice" }] });
    assert.equal(result.succeeded, true);
    const bodies = leader
      .hits("/v1/txn/seats", "POST")
      .map((request) => JSON.parse(request.body.toString()));
    assert.equal(bodies.length, 2);
    assert.equal(bodies[0].requestId, bodies[1].requestId);
    assert.ok(typeof bodies[0].requestId === "string" && bodies[0].requestId.length > 0);
    assert.ok(seedNode.hits("/v1/keyspaces/seats").length >= 2);
    client.close();
  });

  it("gives up with DeadlineExceeded when the deadline passes, retries included", async () => {
    const busy = await FakeNode.start((_request, response) => reply(response, 503, unavailable()));
    const client = await connect({ nodes: [busy.address], deadlineMs: 300, backoffBaseMs: 10 });
    const started = Date.now();
    await assert.rejects(client.keyspace("seats").get("k"), (error: unknown) => {
      assert.ok(isBrigadeError(error, "DeadlineExceeded"), String(error));
      assert.match((error as Error).message, /deadline of 300 ms/);
      assert.match((error as Error).message, /Unavailable/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`);
    assert.ok(busy.requests.length >= 2, "it retried");

    const silent = await FakeNode.start(() => {
      // never answers
    });
    const slow = await connect({ nodes: [silent.address], deadlineMs: 250 });
    const start2 = Date.now();
    await assert.rejects(
      slow.keyspace("seats").put("k", "v", { deadlineMs: 200 }),
      (error: unknown) => isBrigadeError(error, "DeadlineExceeded"),
    );
    assert.ok(Date.now() - start2 < 1500);
    client.close();
    slow.close();
  });

  it("throws non-retriable errors at once with the server's code; NotFound on get is null", async () => {
    const map = keyspaceInfo("seats", 1, [null]);
    const node = await FakeNode.start((request, response) => {
      if (request.url.pathname === "/v1/keyspaces/seats") return reply(response, 200, map);
      if (request.url.pathname === "/v1/keyspaces/nope")
        return reply(response, 404, notFound("no keyspace nope"));
      if (request.method === "GET") return reply(response, 404, notFound("no key"));
      if (request.url.pathname.endsWith("/big"))
        return reply(response, 413, {
          error: { code: "MessageTooLarge", message: "too big", retriable: false },
        });
      reply(response, 410, {
        error: { code: "Compacted", message: "history compacted", retriable: false },
      });
    });
    const client = await connect({ nodes: [node.address] });
    const seats = client.keyspace("seats");
    assert.equal(await seats.get("missing"), null);
    await assert.rejects(seats.put("big", "x"), (error: unknown) => {
      assert.ok(error instanceof ServerError);
      assert.equal(error.code, "MessageTooLarge");
      assert.equal(error.status, 413);
      return true;
    });
    await assert.rejects(seats.put("other", "x"), (error: unknown) => {
      assert.ok(error instanceof BrigadeError);
      assert.equal((error as ServerError).serverCode, "Compacted");
      assert.ok(error.code === "RemoteError" || (error.code as string) === "Compacted");
      return true;
    });
    await assert.rejects(client.keyspace("nope").get("k"), (error: unknown) =>
      isBrigadeError(error, "NotFound"),
    );
    await assert.rejects(seats.get(".."), (error: unknown) =>
      isBrigadeError(error, "InvalidArgument"),
    );
    assert.equal(node.hits("/v1/kv/seats/big").length, 1, "not retried");
    client.close();
  });

  it("a failed compare is CompareFailedError carrying the key's current state", async () => {
    const map = keyspaceInfo("seats", 1, [null]);
    const node = await FakeNode.start((request, response) => {
      if (request.url.pathname === "/v1/keyspaces/seats") return reply(response, 200, map);
      reply(response, 409, {
        error: {
          code: "CompareFailed",
          message: "the compare failed: nothing was written",
          retriable: false,
        },
        current: kvJson("{f1}:4A", "bob", 2, 17),
        revision: 17,
        shard: 0,
      });
    });
    const client = await connect({ nodes: [node.address] });
    await assert.rejects(
      client.keyspace("seats").put("{f1}:4A", "alice", { ifVersion: 0 }),
      (error: unknown) => {
        assert.ok(error instanceof CompareFailedError);
        assert.ok(isBrigadeError(error, "CompareFailed"));
        assert.equal(error.current?.text(), "bob");
        assert.equal(error.current?.version, 2);
        assert.equal(error.current?.modRevision, 17);
        return true;
      },
    );
    assert.equal(node.hits("/v1/kv/seats/").length, 1, "not retried");
    assert.equal(node.hits("/v1/kv/seats/")[0]?.url.searchParams.get("ifVersion"), "0");
    client.close();
  });

  it("routes lease calls by the key's shard or the lease id's group", async () => {
    const leaderA = await FakeNode.start();
    const leaderB = await FakeNode.start();
    const map = keyspaceInfo("seats", 2, [leaderA.address, leaderB.address]);
    const seedNode = await seed(() => map);
    const leaseOnB = 1001 * 2 ** 24 + 1; // group 1001 = shard 1
    for (const node of [leaderA, leaderB])
      node.handler = (request, response) => {
        if (request.method === "POST" && request.url.pathname === "/v1/leases/seats")
          return reply(response, 201, { lease: leaseOnB, ttlMs: 10_000 });
        if (request.url.pathname.endsWith("/keepalive"))
          return reply(response, 200, { lease: leaseOnB, ttlMs: 10_000 });
        if (request.method === "GET")
          return reply(response, 200, {
            lease: leaseOnB,
            ttlMs: 10_000,
            remainingMs: 9000,
            keys: ["{f1}:lock"],
          });
        reply(response, 200, { revoked: true, revision: 31 });
      };
    const client = await connect({ nodes: [seedNode.address] });
    const leases = client.keyspace("seats").leases;
    const key = keyOnShard(1, 2, "{f");
    const lease = await leases.grant(10_000, { key });
    assert.deepEqual(lease, { id: leaseOnB, ttlMs: 10_000, key });
    const grant = JSON.parse(
      (leaderB.hits("/v1/leases/seats", "POST")[0] as Recorded).body.toString(),
    );
    assert.equal(grant.ttlMs, 10_000);
    assert.equal(grant.key, key);
    assert.ok(grant.requestId);
    await leases.keepAlive(leaseOnB);
    assert.deepEqual((await leases.get(leaseOnB)).keys, ["{f1}:lock"]);
    assert.deepEqual(await leases.revoke(lease), { revoked: true, revision: 31 });
    assert.equal(leaderA.requests.length, 0, "every lease call went to shard 1's leader");
    const revoke = leaderB.hits(`/v1/leases/seats/${leaseOnB}`, "DELETE")[0] as Recorded;
    assert.ok(revoke.url.searchParams.get("requestId"));
    client.close();
  });
});

describe("client: scans and values", () => {
  it("scan pages through `next` across requests and stops at the limit", async () => {
    const keys = ["{f1}:1A", "{f1}:1B", "{f1}:2A", "{f1}:2B", "{f1}:3A"];
    const node = await FakeNode.start((request, response) => {
      const after = request.url.searchParams.get("after");
      const limit = Number(request.url.searchParams.get("limit") ?? 1000);
      const start = after === null ? 0 : keys.indexOf(after) + 1;
      const items = keys.slice(start, start + Math.min(limit, 2));
      const more = start + items.length < keys.length;
      reply(response, 200, {
        items: items.map((key) => kvJson(key, `v${key}`)),
        more,
        next: more ? (items.at(-1) ?? null) : null,
      });
    });
    const client = await connect({ nodes: [node.address] });
    const seats = client.keyspace("seats");
    const all: string[] = [];
    for await (const kv of seats.scan({ prefix: "{f1}:" })) all.push(`${kv.key}=${kv.text()}`);
    assert.deepEqual(
      all,
      keys.map((key) => `${key}=v${key}`),
    );
    const scans = node.hits("/v1/kv/seats", "GET");
    assert.equal(scans.length, 3);
    assert.deepEqual(
      scans.map((request) => request.url.searchParams.get("after")),
      [null, "{f1}:1B", "{f1}:2B"],
    );
    assert.ok(scans.every((request) => request.url.searchParams.get("prefix") === "{f1}:"));
    const limited: string[] = [];
    for await (const kv of seats.scan({ prefix: "{f1}:", limit: 3 })) limited.push(kv.key);
    assert.deepEqual(limited, keys.slice(0, 3));
    assert.equal(node.hits("/v1/kv/seats", "GET").at(-1)?.url.searchParams.get("limit"), "1");
    const page = await seats.scanPage({ after: "{f1}:2B" });
    assert.deepEqual(
      { keys: page.items.map((item) => item.key), more: page.more, next: page.next },
      { keys: ["{f1}:3A"], more: false, next: null },
    );
    client.close();
  });

  it("values are bytes: utf8 and base64 on the wire, raw bytes in a put body", async () => {
    const binary = new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x41]);
    const map = keyspaceInfo("blobs", 1, [null]);
    const node = await FakeNode.start((request, response) => {
      if (request.url.pathname === "/v1/keyspaces/blobs") return reply(response, 200, map);
      if (request.method === "GET") {
        const key = decodeURIComponent(request.url.pathname.slice("/v1/kv/blobs/".length));
        return reply(response, 200, {
          kv: key === "bin" ? kvJson("bin", binary) : kvJson(key, "héllo ✓"),
          revision: 3,
          shard: 0,
        });
      }
      if (request.url.pathname === "/v1/txn/blobs")
        return reply(response, 200, {
          succeeded: false,
          revision: 3,
          shard: 0,
          results: [{ op: "get", kv: kvJson("bin", binary) }],
        });
      reply(response, 200, { succeeded: true, revision: 4, shard: 0, prev: kvJson("bin", binary) });
    });
    const client = await connect({ nodes: [node.address] });
    const blobs = client.keyspace("blobs");
    const bin = await blobs.get("bin", { consistency: "serializable" });
    assert.ok(bin?.value instanceof Uint8Array);
    assert.deepEqual([...(bin?.value ?? [])], [...binary]);
    assert.equal(
      node.hits("/v1/kv/blobs/bin")[0]?.url.searchParams.get("consistency"),
      "serializable",
    );
    assert.deepEqual(JSON.parse(JSON.stringify(bin)), kvJson("bin", binary));
    const text = await blobs.get("text");
    assert.equal(text?.text(), "héllo ✓");
    assert.deepEqual(text?.value, new TextEncoder().encode("héllo ✓"));
    assert.equal(JSON.parse(JSON.stringify(text)).encoding, "utf8");

    const put = await blobs.put("bin", binary);
    assert.deepEqual([...(put.prev?.value ?? [])], [...binary]);
    const body = node.hits("/v1/kv/blobs/bin", "PUT")[0]?.body;
    assert.deepEqual([...(body ?? [])], [...binary], "the raw body carries the bytes unchanged");
    await blobs.put("bin", "new", { ifValue: binary });
    const jsonPut = node.hits("/v1/kv/blobs/bin", "PUT")[1] as Recorded;
    assert.equal(jsonPut.headers["content-type"], "application/json");
    const jsonBody = JSON.parse(jsonPut.body.toString());
    assert.equal(jsonBody.encoding, "base64");
    assert.equal(
      Buffer.from(jsonBody.ifValue, "base64").toString("hex"),
      Buffer.from(binary).toString("hex"),
    );
    assert.equal(Buffer.from(jsonBody.value, "base64").toString(), "new");

    const txn = await blobs.txn({
      compare: [
        { key: "bin", target: "value", op: "==", value: binary },
        { key: "bin", target: "version", op: ">", value: 0 },
      ],
      success: [{ op: "put", key: "bin", value: "text", lease: 42 }],
      failure: [{ op: "get", key: "bin" }],
    });
    assert.equal(txn.succeeded, false);
    const result = txn.results[0];
    assert.ok(result?.op === "get");
    assert.deepEqual([...(result.kv?.value ?? [])], [...binary]);
    const sent = JSON.parse((node.hits("/v1/txn/blobs")[0] as Recorded).body.toString());
    assert.deepEqual(sent.compare[0], {
      key: "bin",
      target: "value",
      op: "==",
      value: Buffer.from(binary).toString("base64"),
      encoding: "base64",
    });
    assert.deepEqual(sent.compare[1], { key: "bin", target: "version", op: ">", value: 0 });
    assert.deepEqual(sent.success[0], {
      op: "put",
      key: "bin",
      value: "text",
      encoding: "utf8",
      lease: 42,
    });
    client.close();
  });

  it("KeyValue.text() decodes UTF-8 and toJSON picks the encoding", () => {
    const kv = KeyValue.fromJson({
      key: "k",
      value: "4pyT",
      encoding: "base64",
      version: 1,
      createRevision: 2,
      modRevision: 2,
      lease: 0,
    });
    assert.equal(kv.text(), "✓");
    assert.deepEqual(kv.toJSON().encoding, "utf8");
  });
});

describe("client: watches", () => {
  it("SseParser handles CRLF, lone CR, split chunks, multi-line data and comments", () => {
    const parser = new SseParser();
    const events = [
      ...parser.push(": ping\r\n\r\nevent: put\r"),
      ...parser.push('\nid: 0:5\r\ndata: {"a":'),
      ...parser.push("1}\r\n\r\n"),
      ...parser.push("event: delete\nid: 0:6\ndata: line1\ndata:line2\n\n"),
      ...parser.push("data: no event\rid\r\r"),
    ];
    assert.deepEqual(events, [
      { event: "put", data: '{"a":1}', id: "0:5" },
      { event: "delete", data: "line1\nline2", id: "0:6" },
      { event: "message", data: "no event", id: "" },
    ]);
  });

  it("parses events and reconnects with Last-Event-ID after the connection drops", async () => {
    const connections: Recorded[] = [];
    const node = await FakeNode.start((request, response) => {
      connections.push(request);
      response.writeHead(200, { "content-type": "text/event-stream" });
      const event = (type: string, id: string, revision: number, value: string) =>
        `event: ${type}\r\nid: ${id}\r\ndata: ${JSON.stringify({
          type,
          revision,
          shard: 0,
          kv: kvJson("{f1}:4A", value, 1, revision),
          prev: null,
        })}\r\n\r\n`;
      if (connections.length === 1) {
        response.write(": ping\n\n");
        const first = event("put", "0:6", 5, "alice");
        response.write(first.slice(0, 20));
        setTimeout(() => {
          response.write(first.slice(20) + event("delete", "0:7", 6, ""));
          setTimeout(() => response.destroy(), 20);
        }, 20);
      } else {
        response.write(event("put", "0:8", 7, "carol"));
      }
    });
    const client = await connect({ nodes: [node.address], backoffBaseMs: 5 });
    const watch = client.keyspace("seats").watch({ prefix: "{f1}:" }, { from: "0:3" });
    const seen: WatchEvent[] = [];
    for await (const event of watch) {
      seen.push(event);
      if (seen.length === 3) break;
    }
    assert.deepEqual(
      seen.map((event) => [event.type, event.kv.key, event.kv.text(), event.revision, event.id]),
      [
        ["put", "{f1}:4A", "alice", 5, "0:6"],
        ["delete", "{f1}:4A", "", 6, "0:7"],
        ["put", "{f1}:4A", "carol", 7, "0:8"],
      ],
    );
    assert.equal(watch.closed, true, "breaking out of the loop closes the watch");
    assert.equal(watch.lastId, "0:8");
    assert.equal(connections.length, 2);
    const [first, second] = connections as [Recorded, Recorded];
    assert.equal(first.url.pathname, "/v1/watch/seats");
    assert.equal(first.url.searchParams.get("prefix"), "{f1}:");
    assert.equal(first.url.searchParams.get("from"), "0:3");
    assert.equal(first.headers["last-event-id"], undefined);
    assert.equal(second.headers["last-event-id"], "0:7");
    assert.equal(second.url.searchParams.get("from"), null);
    client.close();
  });

  it("reconnects when a stream stays silent past the idle timeout", async () => {
    let connections = 0;
    const node = await FakeNode.start((_request, response) => {
      connections++;
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.flushHeaders();
      if (connections === 1) return; // silent: no pings, no events
      const data = { type: "put", revision: 2, shard: 0, kv: kvJson("a", "x", 1, 2), prev: null };
      response.write(`event: put\nid: 0:3\ndata: ${JSON.stringify(data)}\n\n`);
    });
    const client = await connect({ nodes: [node.address], backoffBaseMs: 5 });
    const watch = client.keyspace("seats").watch({ prefix: "a" }, { idleTimeoutMs: 100 });
    for await (const event of watch) {
      assert.equal(event.kv.text(), "x");
      break;
    }
    assert.equal(connections, 2);
    assert.equal(watch.connections, 2);
    client.close();
  });

  it("an error event such as Compacted ends the watch with that error", async () => {
    const node = await FakeNode.start((request, response) => {
      if (request.url.pathname.startsWith("/v1/keyspaces/"))
        return reply(response, 404, notFound("no keyspace seats"));
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(
        `event: error\ndata: ${JSON.stringify({ code: "Compacted", message: "revision 3 is compacted" })}\n\n`,
      );
    });
    const client = await connect({ nodes: [node.address] });
    const watch = client.keyspace("seats").watch({ key: "k" }, { from: "0:3" });
    // A key watch needs the map: the node answers 404 for it, which ends the watch too.
    await assert.rejects(
      (async () => {
        for await (const _event of watch) assert.fail("no event expected");
      })(),
      (error: unknown) => isBrigadeError(error, "NotFound"),
    );
    const prefix = client.keyspace("seats").watch({ prefix: "" });
    await assert.rejects(
      (async () => {
        for await (const _event of prefix) assert.fail("no event expected");
      })(),
      (error: unknown) => {
        assert.ok(error instanceof ServerError);
        assert.equal(error.serverCode, "Compacted");
        assert.match(error.message, /revision 3 is compacted/);
        return true;
      },
    );
    client.close();
  });

  it("close() ends a waiting watch and later calls fail with ConnectionClosed", async () => {
    const node = await FakeNode.start((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(": ping\n\n");
    });
    const client = await connect({ nodes: [node.address] });
    const watch = client.keyspace("seats").watch({ prefix: "a" });
    const done = (async () => {
      let count = 0;
      for await (const _event of watch) count++;
      return count;
    })();
    setTimeout(() => client.close(), 50);
    assert.equal(await done, 0);
    assert.equal(watch.closed, true);
    await assert.rejects(client.keyspace("seats").get("k"), (error: unknown) =>
      isBrigadeError(error, "ConnectionClosed"),
    );
  });
});
