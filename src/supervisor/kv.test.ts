// Goal: the strongly consistent store keeps its promises through the real HTTP API of real
// processes — every operation (put, get, delete, compare-and-set, put-if-absent, scans
// across shards with pagination, transactions on one shard, limits), concurrent
// compare-and-set increments that lose no acknowledged one, a watch that delivers every
// change once and in order across the SIGKILL of its shard's leader, a lease whose keys go
// when its holder stops renewing it, and every acknowledged write surviving the SIGKILL and
// restart of every node. Method: `brigade up --nodes 3`, a keyspace of 16 shards × 3
// replicas, HTTP requests to every node (followers forward), SIGKILL via `brigade local`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";

let cluster: LocalCluster;
const nodes = ["n1", "n2", "n3"];
const url = (id: string, path: string) => `http://${cluster.api(id)}${path}`;
const keyPath = (key: string) => `/v1/kv/seats/${encodeURIComponent(key)}`;

interface KvJson {
  key: string;
  value: string;
  encoding: string;
  version: number;
  createRevision: number;
  modRevision: number;
  lease: number;
}

async function call(
  id: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Uint8Array) {
      init.body = body;
      (init.headers as Record<string, string>)["content-type"] ??= "application/octet-stream";
    } else {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
  }
  const response = await getJson(url(id, path), init);
  return response as { status: number; body: Record<string, unknown> };
}

/** Retries a request that failed with a retriable status (no leader yet, leader moved). */
async function retrying(
  attempt: () => Promise<{ status: number; body: Record<string, unknown> }>,
  deadlineMs = 15_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const response = await attempt().catch(() => ({ status: 599, body: {} }));
    if (![503, 504, 599].includes(response.status) || Date.now() > deadline) return response;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

before(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
  const created = await retrying(() =>
    call("n1", "POST", "/v1/keyspaces", { name: "seats", shards: 16, replicas: 3 }),
  );
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // Every shard has a leader before the tests start.
  await waitFor(
    "a leader for each of the 16 shards",
    async () => {
      const described = await call("n2", "GET", "/v1/keyspaces/seats");
      const shardMap = described.body.shardMap as { leader: string | null }[];
      return shardMap.every((shard) => shard.leader !== null) ? true : null;
    },
    20_000,
  );
  // And the placement driver has spread the leaders (its transfers would fail requests).
  await waitFor(
    "leaders spread over the nodes",
    async () => {
      const placement = (await call("n1", "GET", "/v1/placement")).body as {
        nodes?: { leaders: number }[];
        moving?: number;
      };
      const leaders = (placement.nodes ?? []).map((node) => node.leaders);
      const spread = Math.max(...leaders) - Math.min(...leaders);
      return leaders.length === 3 && placement.moving === 0 && spread <= 1 ? true : null;
    },
    20_000,
  );
});

after(async () => {
  await cluster?.stop();
});

describe("key-value store over HTTP (brigade up --nodes 3, 16 shards × 3 replicas)", () => {
  const acknowledged = new Map<string, string>();

  it("describes the keyspace: 16 shards covering the slots, 3 replicas each, on every node", async () => {
    for (const id of nodes) {
      const { status, body } = await call(id, "GET", "/v1/keyspaces/seats");
      assert.equal(status, 200);
      assert.equal(body.shards, 16);
      const shardMap = body.shardMap as { slots: [number, number]; replicas: string[] }[];
      assert.equal(shardMap.length, 16);
      assert.equal(shardMap[0]!.slots[0], 0);
      assert.equal(shardMap.at(-1)!.slots[1], 4095);
      for (const shard of shardMap) assert.deepEqual([...shard.replicas].sort(), nodes);
    }
    const list = await call("n3", "GET", "/v1/keyspaces");
    assert.deepEqual(
      (list.body.keyspaces as { name: string }[]).map((keyspace) => keyspace.name),
      ["seats"],
    );
    const duplicate = await call("n1", "POST", "/v1/keyspaces", { name: "seats" });
    assert.equal(duplicate.status, 409);
    const badName = await call("n1", "POST", "/v1/keyspaces", { name: "Bad Name" });
    assert.equal(badName.status, 400);
  });

  it("puts through any node and reads linearizably from any other", async () => {
    for (let index = 0; index < 30; index++) {
      const key = `{flight-${index % 5}}:seat-${index}`;
      const value = `passenger-${index}`;
      const put = await retrying(() => call(nodes[index % 3]!, "PUT", keyPath(key), value));
      assert.equal(put.status, 200, JSON.stringify(put.body));
      acknowledged.set(key, value);
      const got = await call(nodes[(index + 1) % 3]!, "GET", keyPath(key));
      assert.equal(got.status, 200);
      const kv = got.body.kv as KvJson;
      assert.equal(kv.value, value);
      assert.equal(kv.version, 1);
      assert.equal(kv.modRevision, put.body.revision);
    }
    const missing = await call("n2", "GET", keyPath("no-such-key"));
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, "NotFound");
  });

  it("serializable reads are served locally and say they may be stale", async () => {
    const key = "{flight-0}:seat-0";
    const got = await call("n3", "GET", `${keyPath(key)}?consistency=serializable`);
    assert.equal(got.status, 200);
    assert.equal(got.body.stale, true);
  });

  it("compare-and-set, put-if-absent and conditional delete answer 409 with the current state", async () => {
    const key = "{flight-9}:seat-1A";
    const first = await call("n1", "PUT", `${keyPath(key)}?ifAbsent=true`, "alice");
    assert.equal(first.status, 200);
    const second = await call("n2", "PUT", `${keyPath(key)}?ifAbsent=true`, "bob");
    assert.equal(second.status, 409);
    assert.equal((second.body.current as KvJson).value, "alice");
    const stale = await call("n3", "PUT", `${keyPath(key)}?ifVersion=7`, "carol");
    assert.equal(stale.status, 409);
    const swapped = await call("n3", "PUT", `${keyPath(key)}?ifValue=alice`, "carol");
    assert.equal(swapped.status, 200);
    assert.equal((swapped.body.prev as KvJson).value, "alice");
    const json = await call("n1", "PUT", keyPath(key), {
      value: Buffer.from([0, 255, 1]).toString("base64"),
      encoding: "base64",
      ifVersion: 2,
    });
    assert.equal(json.status, 200, JSON.stringify(json.body));
    const binary = (await call("n2", "GET", keyPath(key))).body.kv as KvJson;
    assert.equal(binary.encoding, "base64");
    assert.deepEqual([...Buffer.from(binary.value, "base64")], [0, 255, 1]);
    assert.equal(binary.version, 3);
    const wrongDelete = await call("n1", "DELETE", `${keyPath(key)}?ifVersion=1`);
    assert.equal(wrongDelete.status, 409);
    const deleted = await call("n1", "DELETE", `${keyPath(key)}?ifVersion=3`);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.deleted, true);
    assert.equal((await call("n3", "GET", keyPath(key))).status, 404);
  });

  it("scans every shard, merged in key order, in pages", async () => {
    const expected = [...acknowledged.keys()].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const query: string = `?limit=7${after === null ? "" : `&after=${encodeURIComponent(after)}`}`;
      const { status, body } = await call(nodes[page % 3]!, "GET", `/v1/kv/seats${query}`);
      assert.equal(status, 200);
      const items = body.items as KvJson[];
      assert.ok(items.length <= 7);
      seen.push(...items.map((item) => item.key));
      if (!body.more) break;
      after = body.next as string;
    }
    assert.deepEqual(seen, expected);
    const prefixed = await call(
      "n2",
      "GET",
      `/v1/kv/seats?prefix=${encodeURIComponent("{flight-1}:")}`,
    );
    assert.deepEqual(
      (prefixed.body.items as KvJson[]).map((item) => item.key),
      expected.filter((key) => key.startsWith("{flight-1}:")),
    );
  });

  it("transactions on one shard are atomic; keys on two shards are refused", async () => {
    const a = "{order-7}:a";
    const b = "{order-7}:b";
    // One request id per transaction: a retry after an unknown outcome applies it once.
    const txn = (success: unknown[], compare: unknown[] = []) => {
      const body = { compare, success, failure: [{ op: "get", key: a }], requestId: randomUUID() };
      return retrying(() => call("n2", "POST", "/v1/txn/seats", body));
    };
    const first = await txn(
      [
        { op: "put", key: a, value: "1" },
        { op: "put", key: b, value: "1" },
      ],
      [{ key: a, target: "version", op: "==", value: 0 }],
    );
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.succeeded, true);
    const again = await txn(
      [{ op: "put", key: a, value: "2" }],
      [{ key: a, target: "version", op: "==", value: 0 }],
    );
    assert.equal(again.body.succeeded, false);
    const results = again.body.results as { op: string; kv: KvJson }[];
    assert.equal(results[0]!.kv.value, "1");
    const kvA = (await call("n3", "GET", keyPath(a))).body.kv as KvJson;
    const kvB = (await call("n3", "GET", keyPath(b))).body.kv as KvJson;
    assert.equal(kvA.modRevision, kvB.modRevision, "one revision for the whole transaction");
    let crossShard: { status: number; body: Record<string, unknown> } | null = null;
    for (let index = 0; index < 50 && crossShard === null; index++) {
      const response = await txn([
        { op: "put", key: `x-${index}`, value: "1" },
        { op: "put", key: `y-${index}`, value: "1" },
      ]);
      if (response.status === 400) crossShard = response;
    }
    assert.ok(crossShard !== null, "two plain keys on different shards were refused");
    assert.match((crossShard.body.error as { message: string }).message, /hash tag/);
  });

  it("refuses oversized keys, values and transactions with a clear 4xx, writing nothing", async () => {
    const longKey = "k".repeat(4097);
    const tooLong = await call("n1", "PUT", keyPath(longKey), "v");
    assert.equal(tooLong.status, 400);
    const big = await call("n1", "PUT", keyPath("big"), new Uint8Array(1024 * 1024 + 1));
    assert.equal(big.status, 413);
    assert.equal((await call("n1", "GET", keyPath("big"))).status, 404);
    const ops = Array.from({ length: 129 }, (_, index) => ({
      op: "put",
      key: `{t}:${index}`,
      value: "v",
    }));
    const tooMany = await call("n1", "POST", "/v1/txn/seats", { success: ops });
    assert.equal(tooMany.status, 400);
    assert.equal((await call("n1", "GET", keyPath("{t}:0"))).status, 404);
    const maxKey = "m".repeat(4096);
    const okLong = await call("n2", "PUT", keyPath(maxKey), "fits");
    assert.equal(okLong.status, 200, JSON.stringify(okLong.body));
    acknowledged.set(maxKey, "fits");
  });

  it("concurrent compare-and-set increments: the final value equals the acknowledged increments", async () => {
    const key = "{counter}:hits";
    await call("n1", "PUT", keyPath(key), "0");
    let acknowledgedIncrements = 0;
    const client = async (id: string, increments: number) => {
      let done = 0;
      while (done < increments) {
        const got = await retrying(() => call(id, "GET", keyPath(key)));
        const kv = got.body.kv as KvJson;
        const next = String(Number(kv.value) + 1);
        const put = await retrying(() =>
          call(id, "PUT", `${keyPath(key)}?ifModRevision=${kv.modRevision}`, next),
        );
        if (put.status === 200) {
          done++;
          acknowledgedIncrements++;
        } else assert.equal(put.status, 409, JSON.stringify(put.body));
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, index) => client(nodes[index % 3]!, 10)));
    const final = (await call("n2", "GET", keyPath(key))).body.kv as KvJson;
    assert.equal(Number(final.value), acknowledgedIncrements);
    assert.equal(acknowledgedIncrements, 60);
    acknowledged.set(key, final.value);
  });

  it("a retried put with the same request id applies once", async () => {
    const key = "{retry}:k";
    const first = await call("n1", "PUT", `${keyPath(key)}?requestId=req-42`, "v1");
    const retry = await call("n2", "PUT", `${keyPath(key)}?requestId=req-42`, "v1");
    assert.equal(first.status, 200);
    assert.equal(retry.status, 200);
    assert.equal(retry.body.duplicate, true);
    assert.equal(((await call("n3", "GET", keyPath(key))).body.kv as KvJson).version, 1);
    acknowledged.set(key, "v1");
  });

  it("a lease's keys are deleted once its holder stops renewing it", async () => {
    const key = "{session-1}:lock";
    const granted = await call("n1", "POST", "/v1/leases/seats", { ttlMs: 2_000, key });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    const lease = granted.body.lease as number;
    const put = await call("n2", "PUT", `${keyPath(key)}?lease=${lease}`, "held");
    assert.equal(put.status, 200, JSON.stringify(put.body));
    for (let beat = 0; beat < 3; beat++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const renewed = await call(nodes[beat % 3]!, "POST", `/v1/leases/seats/${lease}/keepalive`);
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    }
    // Still held after 3 s of a 2 s TTL: the keep-alives worked.
    assert.equal((await call("n3", "GET", keyPath(key))).status, 200);
    const info = await call("n3", "GET", `/v1/leases/seats/${lease}`);
    assert.deepEqual(info.body.keys, [key]);
    // The holder "dies": no more keep-alives. The leader expires it through the log.
    await waitFor(
      "the leased key to be deleted",
      async () => ((await call("n1", "GET", keyPath(key))).status === 404 ? true : null),
      6_000,
    );
    const gone = await call("n2", "POST", `/v1/leases/seats/${lease}/keepalive`);
    assert.equal(gone.status, 404);
  });

  it("a watch delivers every change once, in revision order, across a SIGKILL of the shard leader", async () => {
    const key = "{watched}:k";
    const described = await call("n1", "GET", "/v1/keyspaces/seats");
    const shardMap = described.body.shardMap as { shard: number; leader: string }[];
    const first = await call("n1", "PUT", keyPath(key), "v0");
    const shard = first.body.shard as number;
    const leader = shardMap[shard]!.leader;
    const watcher = nodes.find((id) => id !== leader)!;
    const controller = new AbortController();
    const events: { revision: number; value: string }[] = [];
    const response = await fetch(
      url(
        watcher,
        `/v1/watch/seats?key=${encodeURIComponent(key)}&from=${shard}:${(first.body.revision as number) + 1}`,
      ),
      { signal: controller.signal },
    );
    assert.equal(response.status, 200);
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end = buffer.indexOf("\n\n");
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const lines = block.split("\n");
            const type = lines.find((line) => line.startsWith("event: "))?.slice(7);
            const data = lines.find((line) => line.startsWith("data: "));
            if (data !== undefined && (type === "put" || type === "delete")) {
              const event = JSON.parse(data.slice(6)) as { revision: number; kv: KvJson };
              events.push({ revision: event.revision, value: event.kv.value });
            }
            end = buffer.indexOf("\n\n");
          }
        }
      } catch {
        // aborted at the end of the test
      }
    })();
    const written: string[] = [];
    const writer = nodes.find((id) => id !== leader && id !== watcher)!;
    for (let index = 1; index <= 10; index++) {
      const put = await retrying(() => call(writer, "PUT", keyPath(key), `v${index}`));
      assert.equal(put.status, 200);
      written.push(`v${index}`);
    }
    const kill = await runCli(["local", "kill", leader, "--dir", cluster.dir]);
    assert.equal(kill.code, 0, kill.stderr);
    for (let index = 11; index <= 20; index++) {
      const put = await retrying(() => call(writer, "PUT", keyPath(key), `v${index}`));
      assert.equal(put.status, 200, JSON.stringify(put.body));
      written.push(`v${index}`);
    }
    await waitFor("20 watch events", () => (events.length >= 20 ? true : null), 15_000);
    controller.abort();
    await reading;
    assert.deepEqual(
      events.map((event) => event.value),
      written,
    );
    for (let index = 1; index < events.length; index++)
      assert.ok(events[index]!.revision > events[index - 1]!.revision);
    acknowledged.set(key, "v20");
    const restarted = await runCli(["local", "restart", leader, "--dir", cluster.dir, "--json"]);
    assert.equal(restarted.code, 0, restarted.stderr);
    cluster.track((JSON.parse(restarted.stdout) as { pid: number }).pid);
  });

  it("every acknowledged write survives a SIGKILL of every node and a restart", async () => {
    for (const id of nodes) {
      const kill = await runCli(["local", "kill", id, "--dir", cluster.dir]);
      assert.equal(kill.code, 0, kill.stderr);
    }
    for (const id of nodes) {
      const restarted = await runCli(["local", "restart", id, "--dir", cluster.dir, "--json"]);
      assert.equal(restarted.code, 0, restarted.stderr);
      cluster.track((JSON.parse(restarted.stdout) as { pid: number }).pid);
    }
    for (const [key, value] of acknowledged) {
      const got = await retrying(() => call(nodes[key.length % 3]!, "GET", keyPath(key)), 30_000);
      assert.equal(got.status, 200, `${key}: ${JSON.stringify(got.body)}`);
      assert.equal((got.body.kv as KvJson).value, value, key);
    }
  });
});
