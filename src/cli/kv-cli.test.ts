// Goal: the `brigade keyspace`, `kv` and `lease` commands behave like the other commands —
// help works, output is one value / a table / lines for people and JSON with --json, bad
// usage is one line and exit 2, a failed compare or a missing key exit 1 — and they speak
// the HTTP API as specified. Method: run the real CLI as child processes against a fake
// node (node:http on 127.0.0.1, port 0) holding a tiny in-memory store.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { slotRange } from "../lib/slots.js";
import {
  brigadeBin,
  type CliRun,
  repositoryRoot,
  runCli,
  temporaryDirectory,
} from "../testkit/index.js";

interface Stored {
  value: Buffer;
  version: number;
  createRevision: number;
  modRevision: number;
  lease: number;
}

interface Recorded {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const store = new Map<string, Stored>();
const requests: Recorded[] = [];
let revision = 1;
let api = "";
let server: http.Server;
const directory = temporaryDirectory();

function kvJson(key: string, stored: Stored) {
  const text = stored.value.toString("utf8");
  const utf8 = Buffer.from(text, "utf8").equals(stored.value);
  return {
    key,
    value: utf8 ? text : stored.value.toString("base64"),
    encoding: utf8 ? "utf8" : "base64",
    version: stored.version,
    createRevision: stored.createRevision,
    modRevision: stored.modRevision,
    lease: stored.lease,
  };
}

function info(name: string, shards = 2) {
  return {
    name,
    consistency: "strong",
    shards,
    replicas: 3,
    epoch: 4,
    state: "ready",
    shardMap: Array.from({ length: shards }, (_, shard) => ({
      shard,
      group: 1000 + shard,
      slots: slotRange(shard, shards),
      replicas: ["n1", "n2", "n3"],
      leader: shard === 0 ? "n1" : null,
      leaderApi: shard === 0 ? api : null,
    })),
  };
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function fail(response: http.ServerResponse, status: number, code: string, message: string): void {
  send(response, status, { error: { code, message, retriable: status === 503 } });
}

function handle(request: Recorded, response: http.ServerResponse): void {
  const { pathname, searchParams } = request.url;
  const parts = pathname.split("/").slice(1); // v1, area, ...
  if (pathname === "/v1/keyspaces" && request.method === "POST") {
    const body = JSON.parse(request.body.toString());
    if (body.name === "seats") return fail(response, 409, "CompareFailed", "keyspace seats exists");
    return send(response, 201, info(body.name, body.shards));
  }
  if (pathname === "/v1/keyspaces") return send(response, 200, { keyspaces: [info("seats")] });
  if (parts[1] === "keyspaces") {
    if (parts[2] !== "seats") return fail(response, 404, "NotFound", `no keyspace ${parts[2]}`);
    return request.method === "DELETE"
      ? send(response, 200, { dropped: "seats" })
      : send(response, 200, info("seats"));
  }
  if (parts[1] === "kv" && parts.length === 3) {
    const prefix = searchParams.get("prefix") ?? "";
    const afterKey = searchParams.get("after");
    const limit = Number(searchParams.get("limit") ?? 1000);
    const keys = [...store.keys()]
      .filter((key) => key.startsWith(prefix) && (afterKey === null || key > afterKey))
      .sort();
    const page = keys.slice(0, Math.min(limit, 2));
    const more = keys.length > page.length;
    return send(response, 200, {
      items: page.map((key) => kvJson(key, store.get(key) as Stored)),
      more,
      next: more ? (page.at(-1) ?? null) : null,
    });
  }
  if (parts[1] === "kv") {
    const key = decodeURIComponent(parts.slice(3).join("/"));
    const current = store.get(key) ?? null;
    if (request.method === "GET") {
      if (current === null) return fail(response, 404, "NotFound", `no key "${key}" in seats`);
      return send(response, 200, { kv: kvJson(key, current), revision, shard: 0 });
    }
    const ifAbsent = searchParams.get("ifAbsent") === "true";
    const ifVersion = searchParams.get("ifVersion");
    if (
      (ifAbsent && current !== null) ||
      (ifVersion !== null && Number(ifVersion) !== (current?.version ?? 0))
    )
      return send(response, 409, {
        error: {
          code: "CompareFailed",
          message: "the compare failed: nothing was written",
          retriable: false,
        },
        current: current === null ? null : kvJson(key, current),
      });
    revision++;
    if (request.method === "DELETE") {
      store.delete(key);
      return send(response, 200, {
        succeeded: true,
        deleted: current !== null,
        revision,
        shard: 0,
        prev: current === null ? null : kvJson(key, current),
      });
    }
    store.set(key, {
      value: request.body,
      version: (current?.version ?? 0) + 1,
      createRevision: current?.createRevision ?? revision,
      modRevision: revision,
      lease: Number(searchParams.get("lease") ?? 0),
    });
    return send(response, 200, {
      succeeded: true,
      revision,
      shard: 0,
      prev: current === null ? null : kvJson(key, current),
    });
  }
  if (parts[1] === "txn") {
    const body = JSON.parse(request.body.toString());
    const succeeded = body.compare?.[0]?.value !== "no";
    return send(response, 200, {
      succeeded,
      revision,
      shard: 0,
      results: (succeeded ? body.success : body.failure).map((op: { op: string; key: string }) =>
        op.op === "get"
          ? {
              op: "get",
              kv: store.has(op.key) ? kvJson(op.key, store.get(op.key) as Stored) : null,
            }
          : op.op === "put"
            ? { op: "put", prev: null }
            : { op: "delete", deleted: false, prev: null },
      ),
    });
  }
  if (parts[1] === "leases") {
    if (request.method === "POST" && parts.length === 3) {
      const body = JSON.parse(request.body.toString());
      return send(response, 201, { lease: 1000 * 2 ** 24 + 7, ttlMs: body.ttlMs });
    }
    if (parts[4] === "keepalive")
      return send(response, 200, { lease: Number(parts[3]), ttlMs: 10_000 });
    if (request.method === "GET")
      return send(response, 200, {
        lease: Number(parts[3]),
        ttlMs: 10_000,
        remainingMs: 7500,
        keys: ["{f1}:lock"],
      });
    return send(response, 200, { revoked: true, revision: 42 });
  }
  if (parts[1] === "watch") {
    response.writeHead(200, { "content-type": "text/event-stream" });
    const event = (type: string, id: string, value: string) =>
      `event: ${type}\nid: ${id}\ndata: ${JSON.stringify({
        type,
        revision: 50,
        shard: 0,
        kv: {
          key: "{f1}:4A",
          value,
          encoding: "utf8",
          version: 1,
          createRevision: 50,
          modRevision: 50,
          lease: 0,
        },
        prev: null,
      })}\n\n`;
    response.write(`: ping\n\n${event("put", "0:51", "alice")}${event("delete", "0:52", "")}`);
    return;
  }
  fail(response, 404, "NotFound", `no route ${pathname}`);
}

before(async () => {
  server = http.createServer((raw, response) => {
    const chunks: Buffer[] = [];
    raw.on("data", (chunk: Buffer) => chunks.push(chunk));
    raw.on("end", () => {
      const request = {
        method: raw.method ?? "GET",
        url: new URL(raw.url ?? "/", "http://fake"),
        headers: raw.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(request);
      handle(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  directory.remove();
});

/** Runs the CLI with `--api` pointing at the fake node, optionally feeding stdin. */
function brigade(args: string[], stdin?: string | Buffer): Promise<CliRun> {
  if (stdin === undefined) return runCli([...args, "--api", api]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [brigadeBin, ...args, "--api", api], {
      cwd: repositoryRoot,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

function oneLine(text: string): void {
  assert.equal(text.trim().split("\n").length, 1, `expected one line, got:\n${text}`);
}

describe("brigade keyspace / kv / lease", () => {
  it("--help works for every new command and lists its flags", async () => {
    const cases: [string[], string[]][] = [
      [
        ["keyspace", "--help"],
        ["create", "list", "describe", "drop"],
      ],
      [
        ["keyspace", "create", "--help"],
        ["--shards", "--replicas", "--consistency", "--api", "--json"],
      ],
      [
        ["kv", "--help"],
        ["put", "get", "del", "scan", "txn", "watch"],
      ],
      [
        ["kv", "put", "--help"],
        ["--lease", "--if-version", "--if-mod-revision", "--if-value", "--if-absent"],
      ],
      [
        ["kv", "get", "--help"],
        ["--serializable", "--json"],
      ],
      [
        ["kv", "scan", "--help"],
        ["--prefix", "--start", "--end", "--limit"],
      ],
      [["kv", "txn", "--help"], ["--file"]],
      [
        ["kv", "watch", "--help"],
        ["--key", "--prefix", "--from", "--count"],
      ],
      [
        ["lease", "--help"],
        ["grant", "keepalive", "revoke", "get"],
      ],
      [["lease", "keepalive", "--help"], ["--once"]],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [index, run] of runs.entries()) {
      const [args, expected] = cases[index] as [string[], string[]];
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      for (const word of expected)
        assert.ok(run.stdout.includes(word), `${args.join(" ")} lacks ${word}`);
    }
    const top = await runCli(["--help"]);
    for (const command of ["keyspace", "kv", "lease"]) assert.ok(top.stdout.includes(command));
  });

  it("bad usage is one line and exit code 2", async () => {
    const runs = await Promise.all([
      brigade(["keyspace", "create", "x", "--shards", "abc"]),
      brigade(["kv", "watch", "seats"]),
      brigade(["lease", "grant", "seats", "10 parsecs"]),
      brigade(["kv", "put", "seats", "k", "v", "--if-version", "-1"]),
      brigade(["kv", "get", "seats", ".."]),
    ]);
    for (const run of runs) {
      assert.equal(run.code, 2, run.stderr);
      oneLine(run.stderr);
    }
    assert.match(runs[0]?.stderr ?? "", /--shards must be an integer/);
    assert.match(runs[1]?.stderr ?? "", /exactly one of --key or --prefix/);
  });

  it("keyspace create, list, describe and drop", async () => {
    const created = await brigade([
      "keyspace",
      "create",
      "flights",
      "--shards",
      "4",
      "--replicas",
      "3",
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created flights: strong, 4 shards × 3 replicas/);
    const body = JSON.parse(
      requests.findLast((r) => r.url.pathname === "/v1/keyspaces")?.body.toString() ?? "{}",
    );
    assert.deepEqual(body, { name: "flights", consistency: "strong", shards: 4, replicas: 3 });
    const exists = await brigade(["keyspace", "create", "seats"]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /CompareFailed/);
    oneLine(exists.stderr);

    const list = await brigade(["keyspace", "list"]);
    assert.match(list.stdout, /NAME\s+CONSISTENCY\s+SHARDS\s+REPLICAS/);
    assert.match(list.stdout, /seats\s+strong\s+2\s+3/);
    const describeRun = await brigade(["keyspace", "describe", "seats"]);
    assert.equal(describeRun.code, 0, describeRun.stderr);
    const lines = describeRun.stdout.trim().split("\n");
    assert.match(lines[1] ?? "", /^SHARD\s+SLOTS\s+REPLICAS\s+LEADER$/);
    assert.match(lines[2] ?? "", new RegExp(`^0\\s+0-2047\\s+n1,n2,n3\\s+n1 \\(${api}\\)$`));
    assert.match(lines[3] ?? "", /^1\s+2048-4095\s+n1,n2,n3\s+-$/);
    const json = await brigade(["keyspace", "describe", "seats", "--json"]);
    assert.equal(JSON.parse(json.stdout).shardMap.length, 2);
    const missing = await brigade(["keyspace", "describe", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NotFound/);
    const dropped = await brigade(["keyspace", "drop", "seats"]);
    assert.equal(dropped.stdout, "dropped seats\n");
  });

  it("kv put, get, del: values from arguments and stdin, CompareFailed and NotFound exit 1", async () => {
    const put = await brigade(["kv", "put", "seats", "{f1}:4A", "alice", "--if-absent"]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^OK \(revision \d+, shard \d+\)\n$/);
    const request = requests.findLast((r) => r.method === "PUT") as Recorded;
    assert.equal(request.url.pathname, `/v1/kv/seats/${encodeURIComponent("{f1}:4A")}`);
    assert.equal(request.url.searchParams.get("ifAbsent"), "true");
    assert.equal(request.body.toString(), "alice");

    const again = await brigade(["kv", "put", "seats", "{f1}:4A", "bob", "--if-absent"]);
    assert.equal(again.code, 1);
    oneLine(again.stderr);
    assert.match(again.stderr, /CompareFailed/);
    assert.match(again.stderr, /version 1/);
    const againJson = await brigade([
      "kv",
      "put",
      "seats",
      "{f1}:4A",
      "bob",
      "--if-absent",
      "--json",
    ]);
    assert.equal(againJson.code, 1);
    assert.equal(JSON.parse(againJson.stdout).current.value, "alice");

    const get = await brigade(["kv", "get", "seats", "{f1}:4A"]);
    assert.equal(get.stdout, "alice\n");
    const record = JSON.parse((await brigade(["kv", "get", "seats", "{f1}:4A", "--json"])).stdout);
    assert.deepEqual(
      { key: record.key, value: record.value, encoding: record.encoding, version: record.version },
      { key: "{f1}:4A", value: "alice", encoding: "utf8", version: 1 },
    );

    const binary = Buffer.from([0xff, 0x00, 0x41, 0x0a]);
    const fromStdin = await brigade(["kv", "put", "seats", "bin/ary"], binary);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(store.get("bin/ary")?.value, binary);
    const raw = await brigade(["kv", "get", "seats", "bin/ary", "--json"]);
    assert.equal(JSON.parse(raw.stdout).encoding, "base64");
    const dash = await brigade(["kv", "put", "seats", "{f1}:5B", "-"], "carol");
    assert.equal(dash.code, 0, dash.stderr);
    assert.equal(store.get("{f1}:5B")?.value.toString(), "carol");

    const missing = await brigade(["kv", "get", "seats", "nope"]);
    assert.equal(missing.code, 1);
    oneLine(missing.stderr);
    assert.match(missing.stderr, /NotFound/);
    assert.equal(missing.stdout, "");

    const del = await brigade(["kv", "del", "seats", "{f1}:5B"]);
    assert.match(del.stdout, /^deleted/);
    const delMissing = await brigade(["kv", "del", "seats", "{f1}:5B"]);
    assert.equal(delMissing.code, 0);
    assert.match(delMissing.stdout, /not found/);
  });

  it("kv scan pages through every key; kv txn reads a file and exits 1 on a failed compare", async () => {
    store.clear();
    for (const key of ["s/a", "s/b", "s/c", "t/x"])
      store.set(key, {
        value: Buffer.from(`v-${key}`),
        version: 1,
        createRevision: 1,
        modRevision: 1,
        lease: 0,
      });
    const scan = await brigade(["kv", "scan", "seats", "--prefix", "s/"]);
    assert.equal(scan.code, 0, scan.stderr);
    assert.equal(scan.stdout, "s/a\tv-s/a\ns/b\tv-s/b\ns/c\tv-s/c\n");
    const limited = await brigade(["kv", "scan", "seats", "--limit", "1", "--json"]);
    assert.deepEqual(
      limited.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).key),
      ["s/a"],
    );

    const file = path.join(directory.path, "txn.json");
    writeFileSync(
      file,
      JSON.stringify({
        compare: [{ key: "s/a", target: "value", op: "==", value: "v-s/a" }],
        success: [
          { op: "put", key: "s/a", value: "/wE=", encoding: "base64" },
          { op: "get", key: "s/b" },
        ],
        failure: [],
      }),
    );
    const txn = await brigade(["kv", "txn", "seats", "--file", file]);
    assert.equal(txn.code, 0, txn.stderr);
    assert.equal(txn.stdout, `SUCCESS (revision ${revision}, shard 0)\nput s/a\nget s/b: v-s/b\n`);
    const sent = JSON.parse(
      requests.findLast((r) => r.url.pathname === "/v1/txn/seats")?.body.toString() ?? "{}",
    );
    assert.deepEqual(sent.success[0], { op: "put", key: "s/a", value: "/wE=", encoding: "base64" });
    assert.ok(sent.requestId);
    const failed = await brigade(
      ["kv", "txn", "seats", "--json"],
      JSON.stringify({
        compare: [{ key: "s/a", target: "value", op: "==", value: "no" }],
        failure: [{ op: "get", key: "t/x" }],
      }),
    );
    assert.equal(failed.code, 1);
    assert.equal(JSON.parse(failed.stdout).succeeded, false);
    const broken = await brigade(["kv", "txn", "seats"], "{ nope");
    assert.equal(broken.code, 2);
  });

  it("kv watch prints one line per event and exits after --count", async () => {
    const watch = await brigade(["kv", "watch", "seats", "--prefix", "{f1}:", "--count", "2"]);
    assert.equal(watch.code, 0, watch.stderr);
    assert.equal(
      watch.stdout,
      "put {f1}:4A alice  [revision 50, shard 0]\ndelete {f1}:4A  [revision 50, shard 0]\n",
    );
    const json = await brigade([
      "kv",
      "watch",
      "seats",
      "--key",
      "{f1}:4A",
      "--count",
      "1",
      "--json",
      "--from",
      "0:9",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const event = JSON.parse(json.stdout);
    assert.deepEqual([event.type, event.id, event.kv.value], ["put", "0:51", "alice"]);
    const request = requests.findLast((r) => r.url.pathname === "/v1/watch/seats") as Recorded;
    assert.equal(request.url.searchParams.get("key"), "{f1}:4A");
    assert.equal(request.url.searchParams.get("from"), "0:9");
  });

  it("lease grant, keepalive --once, get and revoke", async () => {
    const grant = await brigade(["lease", "grant", "seats", "10s", "--key", "{f1}:lock"]);
    assert.equal(grant.code, 0, grant.stderr);
    const id = 1000 * 2 ** 24 + 7;
    assert.equal(grant.stdout, `lease ${id} granted with TTL 10s\n`);
    const body = JSON.parse(
      requests.findLast((r) => r.url.pathname === "/v1/leases/seats")?.body.toString() ?? "{}",
    );
    assert.equal(body.ttlMs, 10_000);
    assert.equal(body.key, "{f1}:lock");
    const keep = await brigade(["lease", "keepalive", "seats", String(id), "--once", "--json"]);
    assert.deepEqual(JSON.parse(keep.stdout), { lease: id, ttlMs: 10_000 });
    const get = await brigade(["lease", "get", "seats", String(id)]);
    assert.equal(get.stdout, `lease ${id}: TTL 10s, remaining 7.5s, 1 key: {f1}:lock\n`);
    const revoke = await brigade(["lease", "revoke", "seats", String(id)]);
    assert.equal(revoke.stdout, `lease ${id} revoked (revision 42)\n`);
  });

  it("a node that is not there: one line, exit 1, within --timeout-ms", async () => {
    const started = Date.now();
    const run = await runCli([
      "kv",
      "get",
      "seats",
      "k",
      "--api",
      "127.0.0.1:1",
      "--timeout-ms",
      "300",
    ]);
    assert.equal(run.code, 1, run.stderr);
    oneLine(run.stderr);
    assert.match(run.stderr, /DeadlineExceeded|Unavailable/);
    assert.ok(Date.now() - started < 5000);
  });
});
