// Goal: the real `brigade keyspace`, `kv` and `lease` commands and the real client library
// work against a real cluster, end to end: keyspaces are created, listed, described and
// dropped (people's output and --json); keys are put (from an argument or stdin, bytes as
// they are), read, deleted, scanned across shards and changed in transactions, with a failed
// compare exiting 1; `kv watch --count N` prints the changes another CLI call makes; leases
// are granted, kept alive, inspected and revoked (taking their keys with them). Through
// `connect()`: the same operations, a scan iterator over pages, a watch, a lease that expires
// once nobody keeps it alive, and compare-and-set increments from 8 concurrent clients that
// lose no acknowledged increment. Method: `brigade up --nodes 3`; the CLI as child processes
// (`--api` listing every node); the client imported from the built library.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type BrigadeClient,
  CompareFailedError,
  connect,
  type KeyValue,
  ServerError,
} from "../client/index.js";
import { shardOfKey } from "../lib/slots.js";
import {
  brigadeBin,
  LocalCluster,
  repositoryRoot,
  temporaryDirectory,
  waitFor,
} from "../testkit/index.js";

let cluster: LocalCluster;
let client: BrigadeClient;
const directory = temporaryDirectory("brigade-kv-cli-");
const nodes = ["n1", "n2", "n3"];
let apis = "";

interface Run {
  code: number | null;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/** Runs `brigade <args> --api <every node>`, feeding `stdin` (closed at once when absent). */
function brigade(args: string[], stdin?: string | Buffer, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [brigadeBin, ...args, "--api", apis], {
      cwd: repositoryRoot,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString("utf8"), bytes, stderr });
    });
    child.stdin.on("error", () => {}); // a command that never reads stdin may exit first
    child.stdin.end(stdin);
  });
}

/** Asserts exit 0 and returns the run. */
async function ok(args: string[], stdin?: string | Buffer): Promise<Run> {
  const run = await brigade(args, stdin);
  assert.equal(run.code, 0, `brigade ${args.join(" ")}: ${run.stderr}`);
  return run;
}

function oneLine(text: string): void {
  assert.equal(text.trim().split("\n").length, 1, `expected one line, got:\n${text}`);
}

before(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
  apis = nodes.map((id) => cluster.api(id)).join(",");
  client = await connect({ nodes: nodes.map((id) => cluster.api(id)) });
});

after(async () => {
  client?.close();
  await cluster?.stop();
  directory.remove();
});

describe("brigade keyspace / kv / lease and the client against brigade up --nodes 3", () => {
  it("keyspace create, list, describe and drop (people's output and --json)", async () => {
    // Right after start-up the nodes may still be registering: the client retries (Unavailable).
    const created = await ok([
      "keyspace",
      "create",
      "flights",
      "--shards",
      "4",
      "--replicas",
      "3",
      "--timeout-ms",
      "20000",
    ]);
    assert.match(
      created.stdout,
      /^created flights: strong, 4 shards × 3 replicas, epoch \d+, ready\n$/,
    );
    const scratch = JSON.parse(
      (await ok(["keyspace", "create", "scratch", "--shards", "2", "--replicas", "1", "--json"]))
        .stdout,
    );
    assert.equal(scratch.name, "scratch");
    assert.equal(scratch.shards, 2);
    assert.equal(scratch.replicas, 1);
    assert.equal(scratch.shardMap.length, 2);

    const exists = await brigade(["keyspace", "create", "flights"]);
    assert.equal(exists.code, 1, exists.stderr);
    oneLine(exists.stderr);
    assert.match(exists.stderr, /CompareFailed/);

    const [list, listJson] = await Promise.all([
      ok(["keyspace", "list"]),
      ok(["keyspace", "list", "--json"]),
    ]);
    const listLines = list.stdout.trim().split("\n");
    assert.match(listLines[0]!, /^NAME\s+CONSISTENCY\s+SHARDS\s+REPLICAS\s+EPOCH\s+STATE$/);
    assert.ok(listLines.some((line) => /^flights\s+strong\s+4\s+3\s+\d+\s+ready$/.test(line)));
    assert.ok(listLines.some((line) => /^scratch\s+strong\s+2\s+1\s+\d+\s+ready$/.test(line)));
    assert.deepEqual(
      (JSON.parse(listJson.stdout).keyspaces as { name: string }[]).map((k) => k.name).sort(),
      ["flights", "scratch"],
    );

    // Every shard has a leader once its group elected one; describe shows each.
    const described = await waitFor(
      "describe to show a leader for each shard",
      async () => {
        const run = await ok(["keyspace", "describe", "flights"]);
        return run.stdout.includes(" - ") || /\s-\n/.test(run.stdout) ? null : run;
      },
      20_000,
      200,
    );
    const lines = described.stdout.trim().split("\n");
    assert.match(lines[0]!, /^flights: strong, 4 shards × 3 replicas, epoch \d+, ready$/);
    assert.match(lines[1]!, /^SHARD\s+SLOTS\s+REPLICAS\s+LEADER$/);
    assert.equal(lines.length, 6);
    const slots = ["0-1023", "1024-2047", "2048-3071", "3072-4095"];
    for (const [index, line] of lines.slice(2).entries()) {
      const match = /^(\d+)\s+(\S+)\s+(\S+)\s+(n\d) \((\S+)\)$/.exec(line);
      assert.ok(match, line);
      assert.equal(Number(match[1]), index);
      assert.equal(match[2], slots[index]);
      assert.deepEqual(match[3]!.split(",").sort(), nodes);
      assert.equal(match[5], cluster.api(match[4]!));
    }
    const [describedJson, missing] = await Promise.all([
      ok(["keyspace", "describe", "flights", "--json"]),
      brigade(["keyspace", "describe", "nope"]),
    ]);
    const json = JSON.parse(describedJson.stdout);
    assert.equal(json.shards, 4);
    assert.deepEqual(
      json.shardMap.map((shard: { slots: number[] }) => shard.slots.join("-")),
      slots,
    );

    assert.equal(missing.code, 1);
    oneLine(missing.stderr);
    assert.match(missing.stderr, /NotFound/);

    assert.equal((await ok(["keyspace", "drop", "scratch"])).stdout, "dropped scratch\n");
    const after = JSON.parse((await ok(["keyspace", "list", "--json"])).stdout);
    assert.deepEqual(
      after.keyspaces.map((k: { name: string }) => k.name),
      ["flights"],
    );
    const dropAgain = await brigade(["keyspace", "drop", "scratch", "--json"]);
    assert.equal(dropAgain.code, 1);
    assert.match(dropAgain.stderr, /NotFound/);
  });

  it("kv put, get, del: argument and stdin values, --if-absent conflict exits 1, --json", async () => {
    const put = await ok(["kv", "put", "flights", "{f1}:4A", "alice", "--if-absent"]);
    assert.match(put.stdout, /^OK \(revision \d+, shard \d\)\n$/);
    assert.equal((await ok(["kv", "get", "flights", "{f1}:4A"])).stdout, "alice\n");

    const [conflict, conflictJson] = await Promise.all([
      brigade(["kv", "put", "flights", "{f1}:4A", "bob", "--if-absent"]),
      brigade(["kv", "put", "flights", "{f1}:4A", "bob", "--if-absent", "--json"]),
    ]);
    assert.equal(conflict.code, 1, conflict.stderr);
    oneLine(conflict.stderr);
    assert.match(
      conflict.stderr,
      /^brigade: CompareFailed: .*\(current: version 1, mod revision \d+, value "alice"\)\n$/,
    );
    assert.equal(conflictJson.code, 1);
    const current = JSON.parse(conflictJson.stdout);
    assert.equal(current.succeeded, false);
    assert.equal(current.current.value, "alice");
    assert.equal(current.current.version, 1);

    // The client sees what the CLI wrote.
    const record = (await client.keyspace("flights").get("{f1}:4A"))!;
    assert.equal(record.text(), "alice");
    const got = JSON.parse((await ok(["kv", "get", "flights", "{f1}:4A", "--json"])).stdout);
    assert.deepEqual(got, {
      key: "{f1}:4A",
      value: "alice",
      encoding: "utf8",
      version: 1,
      createRevision: record.createRevision,
      modRevision: record.modRevision,
      lease: 0,
    });
    const swapped = JSON.parse(
      (
        await ok([
          "kv",
          "put",
          "flights",
          "{f1}:4A",
          "carol",
          "--if-mod-revision",
          String(record.modRevision),
          "--json",
        ])
      ).stdout,
    );
    assert.equal(swapped.succeeded, true);
    assert.equal(swapped.prev.value, "alice");
    assert.ok(swapped.revision > record.modRevision);

    // Values from stdin: bytes as they are (not UTF-8 here), and "-" for text.
    const binary = Buffer.from([0xff, 0x00, 0x41, 0x0a, 0xfe]);
    await ok(["kv", "put", "flights", "bin/ary"], binary);
    const [raw, binaryRun] = await Promise.all([
      ok(["kv", "get", "flights", "bin/ary", "--raw"]),
      ok(["kv", "get", "flights", "bin/ary", "--json"]),
    ]);
    assert.deepEqual(raw.bytes, binary);
    const binaryJson = JSON.parse(binaryRun.stdout);
    assert.equal(binaryJson.encoding, "base64");
    assert.deepEqual(Buffer.from(binaryJson.value, "base64"), binary);
    assert.deepEqual(Buffer.from((await client.keyspace("flights").get("bin/ary"))!.value), binary);
    await ok(["kv", "put", "flights", "{f1}:5B", "-"], "dave from stdin");
    assert.equal((await ok(["kv", "get", "flights", "{f1}:5B"])).stdout, "dave from stdin\n");

    const deleted = await ok(["kv", "del", "flights", "{f1}:5B"]);
    assert.match(deleted.stdout, /^deleted \(revision \d+, shard \d\)\n$/);
    const again = await ok(["kv", "del", "flights", "{f1}:5B", "--json"]);
    assert.equal(JSON.parse(again.stdout).deleted, false);
    assert.equal(
      (await ok(["kv", "del", "flights", "{f1}:5B"])).stdout,
      "not found: nothing deleted\n",
    );
    const missing = await brigade(["kv", "get", "flights", "{f1}:5B"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    oneLine(missing.stderr);
    assert.match(missing.stderr, /NotFound/);
    assert.equal(await client.keyspace("flights").get("{f1}:5B"), null);
    const wrongVersion = await brigade(["kv", "del", "flights", "{f1}:4A", "--if-version", "9"]);
    assert.equal(wrongVersion.code, 1);
    assert.match(wrongVersion.stderr, /CompareFailed/);
  });

  it("kv scan lists keys of every shard in key order; kv txn runs a file and exits 1 when a compare fails", async () => {
    const flights = client.keyspace("flights");
    const keys = Array.from({ length: 12 }, (_, index) => `scan/${String(index).padStart(2, "0")}`);
    const shards = new Set(
      await Promise.all(keys.map(async (key) => (await flights.put(key, `v-${key}`)).shard)),
    );
    assert.ok(shards.size > 1, "the keys span several shards");
    const scan = await ok(["kv", "scan", "flights", "--prefix", "scan/"]);
    assert.equal(scan.stdout, keys.map((key) => `${key}\tv-${key}\n`).join(""));
    const keysOnly = await ok(["kv", "scan", "flights", "--prefix", "scan/", "--keys-only"]);
    assert.equal(keysOnly.stdout, keys.map((key) => `${key}\n`).join(""));
    const limited = await ok([
      "kv",
      "scan",
      "flights",
      "--start",
      "scan/03",
      "--end",
      "scan/09",
      "--limit",
      "4",
      "--json",
    ]);
    const items = limited.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      items.map((item) => item.key),
      ["scan/03", "scan/04", "scan/05", "scan/06"],
    );
    assert.equal(items[0].value, "v-scan/03");

    const file = path.join(directory.path, "order.json");
    writeFileSync(
      file,
      JSON.stringify({
        compare: [{ key: "{order-1}:a", target: "version", op: "==", value: 0 }],
        success: [
          { op: "put", key: "{order-1}:a", value: "1" },
          { op: "put", key: "{order-1}:b", value: "AQI=", encoding: "base64" },
        ],
        failure: [{ op: "get", key: "{order-1}:a" }],
      }),
    );
    const first = await ok(["kv", "txn", "flights", "--file", file]);
    assert.match(
      first.stdout,
      /^SUCCESS \(revision \d+, shard \d\)\nput \{order-1\}:a\nput \{order-1\}:b\n$/,
    );
    const second = await brigade(["kv", "txn", "flights", "--file", file]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(
      second.stdout,
      /^FAILURE: a compare did not hold; ran the failure ops \(revision \d+, shard \d\)\nget \{order-1\}:a: 1\n$/,
    );
    const a = (await flights.get("{order-1}:a"))!;
    const b = (await flights.get("{order-1}:b"))!;
    assert.equal(a.modRevision, b.modRevision, "one revision for the whole transaction");
    assert.deepEqual([...b.value], [1, 2]);
    const fromStdin = await brigade(
      ["kv", "txn", "flights", "--json"],
      JSON.stringify({
        compare: [{ key: "{order-1}:a", target: "value", op: "==", value: "1" }],
        success: [{ op: "delete", key: "{order-1}:b" }],
      }),
    );
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    const result = JSON.parse(fromStdin.stdout);
    assert.equal(result.succeeded, true);
    assert.equal(result.results[0].deleted, true);
    assert.equal(await flights.get("{order-1}:b"), null);
    // Keys on two shards: refused as bad usage (exit 2), naming the hash-tag rule.
    let crossShard: Run | null = null;
    for (let index = 0; index < 20 && crossShard === null; index++) {
      const x = `x-${index}`;
      const y = `y-${index}`;
      const [px, py] = await Promise.all([flights.put(x, "1"), flights.put(y, "1")]);
      if (px.shard === py.shard) continue;
      crossShard = await brigade(
        ["kv", "txn", "flights"],
        JSON.stringify({
          success: [
            { op: "put", key: x, value: "2" },
            { op: "put", key: y, value: "2" },
          ],
        }),
      );
    }
    assert.ok(crossShard !== null);
    assert.equal(crossShard.code, 2, crossShard.stderr);
    assert.match(crossShard.stderr, /hash tag/);
  });

  it("kv watch --count N prints the changes other CLI calls make, then exits", async () => {
    // From a resume token: exactly the next changes, as JSON lines with their ids.
    const start = JSON.parse((await ok(["kv", "put", "flights", "{w}:k", "v0", "--json"])).stdout);
    const from = `${start.shard}:${start.revision + 1}`;
    const watching = brigade(
      ["kv", "watch", "flights", "--key", "{w}:k", "--from", from, "--count", "3", "--json"],
      undefined,
      30_000,
    );
    await ok(["kv", "put", "flights", "{w}:k", "v1"]);
    await ok(["kv", "put", "flights", "{w}:k", "v2"]);
    await ok(["kv", "del", "flights", "{w}:k"]);
    const watched = await watching;
    assert.equal(watched.code, 0, watched.stderr);
    const events = watched.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      events.map((event) => [event.type, event.kv.key, event.kv.value, event.prev?.value]),
      [
        ["put", "{w}:k", "v1", "v0"],
        ["put", "{w}:k", "v2", "v1"],
        ["delete", "{w}:k", "", "v2"],
      ],
    );
    for (const [index, event] of events.entries()) {
      assert.equal(event.shard, start.shard);
      assert.equal(event.id, `${start.shard}:${event.revision + 1}`);
      if (index > 0) assert.ok(event.revision > events[index - 1].revision);
    }

    // From now (no token), people's output: puts made while it runs, each once, in order.
    const live = brigade(
      ["kv", "watch", "flights", "--prefix", "{live}:", "--count", "2"],
      undefined,
      30_000,
    );
    let exited = false;
    void live.then(() => {
      exited = true;
    });
    const written: string[] = [];
    for (let index = 0; !exited && index < 60; index++) {
      await ok(["kv", "put", "flights", "{live}:k", `v${index}`]);
      written.push(`v${index}`);
    }
    const run = await live;
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines.length, 2, run.stdout);
    const values = lines.map((line) => {
      const match = /^put \{live\}:k (v\d+) {2}\[revision \d+, shard \d\]$/.exec(line);
      assert.ok(match, line);
      return match[1]!;
    });
    const at = written.indexOf(values[0]!);
    assert.ok(at >= 0);
    assert.deepEqual(values, written.slice(at, at + 2), "consecutive changes, none skipped");
  });

  it("lease grant, keepalive --once, get and revoke (which deletes the lease's keys)", async () => {
    const granted = await ok(["lease", "grant", "flights", "4s", "--key", "{sess}:lock"]);
    const match = /^lease (\d+) granted with TTL 4s\n$/.exec(granted.stdout);
    assert.ok(match, granted.stdout);
    const id = match[1]!;
    await ok(["kv", "put", "flights", "{sess}:lock", "me", "--lease", id]);
    const [keptJson, keptText, info, infoRun, onKeyRun] = await Promise.all([
      ok(["lease", "keepalive", "flights", id, "--once", "--json"]),
      ok(["lease", "keepalive", "flights", id, "--once", "--key", "{sess}:lock"]),
      ok(["lease", "get", "flights", id]),
      ok(["lease", "get", "flights", id, "--json"]),
      ok(["kv", "get", "flights", "{sess}:lock", "--json"]),
    ]);
    assert.deepEqual(JSON.parse(keptJson.stdout), { lease: Number(id), ttlMs: 4000 });
    assert.equal(keptText.stdout, `lease ${id} kept alive, TTL 4s\n`);
    assert.match(
      info.stdout,
      new RegExp(`^lease ${id}: TTL 4s, remaining [\\d.]+s, 1 key: \\{sess\\}:lock\\n$`),
    );
    const infoJson = JSON.parse(infoRun.stdout);
    assert.equal(infoJson.lease, Number(id));
    assert.deepEqual(infoJson.keys, ["{sess}:lock"]);
    assert.ok(infoJson.remainingMs > 0 && infoJson.remainingMs <= 4000);
    const onKey = JSON.parse(onKeyRun.stdout);
    assert.equal(onKey.lease, Number(id));

    const revoked = await ok(["lease", "revoke", "flights", id]);
    assert.match(revoked.stdout, new RegExp(`^lease ${id} revoked \\(revision \\d+\\)\\n$`));
    const gone = await brigade(["kv", "get", "flights", "{sess}:lock"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /NotFound/);
    const late = await brigade(["lease", "keepalive", "flights", id, "--once"]);
    assert.equal(late.code, 1);
    oneLine(late.stderr);
    assert.match(late.stderr, /NotFound/);
  });

  it("client: put, get, delete, compare failures, a scan iterator over pages, transactions", async () => {
    const seats = client.keyspace("flights");
    const put = await seats.put("{c}:1", "one");
    assert.equal(put.prev, null);
    assert.equal(put.duplicate, false);
    const second = await seats.put("{c}:1", new Uint8Array([0, 1, 2]));
    assert.equal(second.prev?.text(), "one");
    assert.ok(second.revision > put.revision);
    const got = (await seats.get("{c}:1"))!;
    assert.deepEqual([...got.value], [0, 1, 2]);
    assert.equal(got.version, 2);
    const serializable = await seats.get("{c}:1", { consistency: "serializable" });
    assert.ok(serializable === null || serializable.version <= 2);
    await assert.rejects(
      seats.put("{c}:1", "x", { ifAbsent: true }),
      (error: unknown) => error instanceof CompareFailedError && error.current?.version === 2,
    );
    await assert.rejects(
      seats.delete("{c}:1", { ifVersion: 1 }),
      (error: unknown) => error instanceof CompareFailedError,
    );
    const deleted = await seats.delete("{c}:1", { ifVersion: 2 });
    assert.equal(deleted.deleted, true);
    assert.equal(await seats.get("{c}:1"), null);
    assert.equal((await seats.delete("{c}:1")).deleted, false);

    // A retried put with the same request id applies once.
    const firstTry = await seats.put("{c}:idem", "v", { requestId: "client-req-1" });
    const retry = await seats.put("{c}:idem", "v", { requestId: "client-req-1" });
    assert.equal(firstTry.duplicate, false);
    assert.equal(retry.duplicate, true);
    assert.equal((await seats.get("{c}:idem"))!.version, 1);

    const keys = Array.from({ length: 25 }, (_, index) => `iter/${String(index).padStart(2, "0")}`);
    for (let index = 0; index < keys.length; index += 5)
      await Promise.all(
        keys.slice(index, index + 5).map((key) => seats.put(key, key.toUpperCase())),
      );
    const seen: KeyValue[] = [];
    for await (const item of seats.scan({ prefix: "iter/", pageSize: 7 })) seen.push(item);
    assert.deepEqual(
      seen.map((item) => item.key),
      keys,
    );
    assert.deepEqual(
      seen.map((item) => item.text()),
      keys.map((key) => key.toUpperCase()),
    );
    const limited: string[] = [];
    for await (const item of seats.scan({ prefix: "iter/", after: "iter/20", limit: 3 }))
      limited.push(item.key);
    assert.deepEqual(limited, ["iter/21", "iter/22", "iter/23"]);
    const page = await seats.scanPage({ prefix: "iter/", limit: 10 });
    assert.equal(page.items.length, 10);
    assert.equal(page.more, true);
    assert.equal(page.next, "iter/09");

    const txn = await seats.txn({
      compare: [{ key: "{acct}:a", target: "version", op: "==", value: 0 }],
      success: [
        { op: "put", key: "{acct}:a", value: "100" },
        { op: "put", key: "{acct}:b", value: "0" },
      ],
      failure: [{ op: "get", key: "{acct}:a" }],
    });
    assert.equal(txn.succeeded, true);
    assert.deepEqual(
      txn.results.map((result) => result.op),
      ["put", "put"],
    );
    const transfer = await seats.txn({
      compare: [{ key: "{acct}:a", target: "value", op: "==", value: "100" }],
      success: [
        { op: "put", key: "{acct}:a", value: "70" },
        { op: "put", key: "{acct}:b", value: "30" },
        { op: "get", key: "{acct}:b" },
      ],
    });
    assert.equal(transfer.succeeded, true);
    const read = transfer.results[2]!;
    assert.ok(read.op === "get" && read.kv?.text() === "30");
    const failed = await seats.txn({
      compare: [{ key: "{acct}:a", target: "value", op: "==", value: "100" }],
      success: [{ op: "put", key: "{acct}:a", value: "0" }],
      failure: [{ op: "get", key: "{acct}:a" }],
    });
    assert.equal(failed.succeeded, false);
    const current = failed.results[0]!;
    assert.ok(current.op === "get" && current.kv?.text() === "70");
    let other = 0;
    while (shardOfKey(`other-${other}`, 4) === shardOfKey("{acct}:a", 4)) other++;
    await assert.rejects(
      seats.txn({
        success: [
          { op: "put", key: "{acct}:a", value: "1" },
          { op: "put", key: `other-${other}`, value: "1" },
        ],
      }),
      (error: unknown) => error instanceof ServerError && error.serverCode === "InvalidArgument",
    );
  });

  it("client: a watch delivers each change once, in order, with resume ids", async () => {
    const seats = client.keyspace("flights");
    const start = await seats.put("{cw}:k", "v0");
    const watch = seats.watch({ key: "{cw}:k" }, { from: `${start.shard}:${start.revision + 1}` });
    const events: { type: string; value: string; prev: string | null; id: string | null }[] = [];
    const reading = (async () => {
      for await (const event of watch) {
        events.push({
          type: event.type,
          value: event.kv.text(),
          prev: event.prev?.text() ?? null,
          id: event.id,
        });
        if (events.length === 4) break;
      }
    })();
    await seats.put("{cw}:k", "v1");
    await seats.put("{cw}:k", "v2");
    await seats.delete("{cw}:k");
    await seats.put("{cw}:k", "v3");
    await waitFor("4 watch events", () => events.length >= 4, 15_000);
    await reading;
    assert.deepEqual(
      events.map((event) => [event.type, event.value, event.prev]),
      [
        ["put", "v1", "v0"],
        ["put", "v2", "v1"],
        ["delete", "", "v2"],
        ["put", "v3", null],
      ],
    );
    assert.equal(watch.closed, true);
    assert.equal(watch.lastId, events[3]!.id);

    // Resuming from the second event's id yields exactly the two after it.
    const resumed = seats.watch({ key: "{cw}:k" }, { from: events[1]!.id! });
    const again: string[] = [];
    for await (const event of resumed) {
      again.push(`${event.type}:${event.kv.text()}`);
      if (again.length === 2) break;
    }
    assert.deepEqual(again, ["delete:", "put:v3"]);
  });

  it("client: a lease kept alive outlives its TTL; without keep-alives it expires and takes its key", async () => {
    const leases = client.keyspace("flights").leases;
    const seats = client.keyspace("flights");
    const lease = await leases.grant(1_500, { key: "{lc}:lock" });
    assert.equal(lease.ttlMs, 1_500);
    await seats.put("{lc}:lock", "held", { lease });
    const keeper = leases.keepAliveLoop(lease, { intervalMs: 400 });
    const started = Date.now();
    let renewals = 0;
    for await (const renewed of keeper) {
      assert.equal(renewed.id, lease.id);
      renewals++;
      if (Date.now() - started > 3_000) break;
    }
    assert.ok(renewals >= 5, `${renewals} renewals`);
    assert.equal(keeper.closed, true);
    // Twice the TTL later than the grant, the key is still there: the keep-alives worked.
    assert.equal((await seats.get("{lc}:lock"))?.text(), "held");
    const info = await leases.get(lease);
    assert.deepEqual(info.keys, ["{lc}:lock"]);
    // Nobody renews it any more: the leader expires it through the log.
    await waitFor(
      "the leased key to be deleted",
      async () => ((await seats.get("{lc}:lock")) === null ? true : null),
      8_000,
      100,
    );
    await assert.rejects(
      leases.keepAlive(lease),
      (error: unknown) => error instanceof ServerError && error.serverCode === "NotFound",
    );
  });

  it("client: 8 concurrent clients × 10 compare-and-set increments lose no acknowledged one", async () => {
    const key = "{counter}:hits";
    await client.keyspace("flights").put(key, "0");
    let acknowledged = 0;
    let conflicts = 0;
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => connect({ nodes: nodes.map((id) => cluster.api(id)) })),
    );
    try {
      await Promise.all(
        clients.map(async (mine) => {
          const counter = mine.keyspace("flights");
          for (let done = 0; done < 10; ) {
            const current = (await counter.get(key))!;
            try {
              await counter.put(key, String(Number(current.text()) + 1), {
                ifModRevision: current.modRevision,
              });
              done++;
              acknowledged++;
            } catch (error) {
              if (!(error instanceof CompareFailedError)) throw error;
              conflicts++;
            }
          }
        }),
      );
    } finally {
      for (const mine of clients) mine.close();
    }
    const final = (await client.keyspace("flights").get(key))!;
    assert.equal(acknowledged, 80);
    assert.equal(Number(final.text()), acknowledged, `${conflicts} conflicts along the way`);
    assert.equal(final.version, 81);
    assert.ok(conflicts > 0, "the clients really contended");
  });
});
