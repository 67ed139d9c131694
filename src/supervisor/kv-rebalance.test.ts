// Goal: the placement driver moves data without losing it or failing clients — under a
// steady write load, (1) adding 2 nodes to 3 spreads the 48 replicas and 16 leaderships of a
// 16-shard keyspace to within one per node; (2) `brigade node decommission n3 --wait` drains
// n3 and spreads the rest again; (3) a node SIGKILLed and declared dead for longer than the
// replace delay (3 s here) has its replicas re-created on the others. No request fails except
// retriable ones the client absorbs; afterwards every acknowledged write reads back, from
// the leader and from every replica. Method: `brigade up --nodes 3`, `brigade local add`,
// the TypeScript client (`connect`) writing through every node, the placement endpoint.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type BrigadeClient, connect } from "../client/index.js";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";

let cluster: LocalCluster;
let client: BrigadeClient;
const apis: string[] = [];
/** API address of every node, the added ones included. */
const apiOf = new Map<string, string>();

interface Placement {
  nodes: { id: string; state: string; replicas: number; leaders: number }[];
  moving: number;
}

const placement = async () =>
  (await getJson(`http://${cluster.api("n1")}/v1/placement`)).body as Placement;

/** Waits until the active nodes (all but `excluded`) hold replicas and leaders within one of each other. */
async function waitBalanced(active: string[], excluded: string[], timeoutMs: number) {
  let last: Placement | null = null;
  try {
    return await waitFor(
      `replicas and leaders spread over ${active.join(",")}`,
      async () => {
        const status = await placement().catch(() => null);
        last = status;
        if (status === null || status.moving > 0) return null;
        const counted = status.nodes.filter((node) => active.includes(node.id));
        if (counted.length !== active.length) return null;
        const replicas = counted.map((node) => node.replicas);
        const leaders = counted.map((node) => node.leaders);
        const others = status.nodes.filter((node) => excluded.includes(node.id));
        const spread = (values: number[]) => Math.max(...values) - Math.min(...values);
        const ok =
          replicas.reduce((a, b) => a + b, 0) === 48 &&
          leaders.reduce((a, b) => a + b, 0) === 16 &&
          spread(replicas) <= 1 &&
          spread(leaders) <= 1 &&
          others.every((node) => node.replicas === 0 && node.leaders === 0);
        return ok ? status : null;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last placement ${JSON.stringify(last)}`);
  }
}

before(async () => {
  cluster = await LocalCluster.start({
    nodes: 3,
    env: { ...process.env, BRIGADE_PLACEMENT_DEAD_DELAY_MS: "3000" },
  });
  for (const id of ["n1", "n2", "n3"]) {
    apis.push(cluster.api(id));
    apiOf.set(id, cluster.api(id));
  }
  client = await connect({ nodes: apis, deadlineMs: 20_000 });
  await client.keyspaces.create({ name: "orders", shards: 16, replicas: 3 });
  await waitBalanced(["n1", "n2", "n3"], [], 30_000);
});

after(async () => {
  client?.close();
  await cluster?.stop();
});

describe("placement driver with real processes (3 → 5 nodes, decommission, a dead node)", () => {
  const acknowledged = new Map<string, string>();
  const failures: string[] = [];
  let writing = true;
  let load: Promise<void> = Promise.resolve();

  it("starts a steady write load through the client", async () => {
    const orders = client.keyspace("orders");
    const writer = async (worker: number) => {
      for (let sequence = 0; writing; sequence++) {
        const key = `w${worker}-${sequence % 200}`;
        const value = `${worker}:${sequence}`;
        try {
          await orders.put(key, value);
          acknowledged.set(key, value);
        } catch (error) {
          failures.push(`${key}: ${(error as Error).message}`);
        }
      }
    };
    load = Promise.all([0, 1, 2, 3].map(writer)).then(() => undefined);
    await waitFor("some writes", () => (acknowledged.size >= 50 ? true : null), 20_000);
  });

  it("two new nodes take their share of replicas and leaders", async () => {
    for (let index = 0; index < 2; index++) {
      const added = await runCli(["local", "add", "--json", "--dir", cluster.dir]);
      assert.equal(added.code, 0, added.stderr);
      const info = JSON.parse(added.stdout) as { id: string; pid: number; api: string };
      cluster.track(info.pid);
      apiOf.set(info.id, info.api);
    }
    const status = await waitBalanced(["n1", "n2", "n3", "n4", "n5"], [], 90_000);
    for (const node of status.nodes) assert.ok(node.replicas >= 9 && node.replicas <= 10);
  });

  it("brigade node decommission n3 --wait drains it and spreads the rest", async () => {
    const drained = await runCli(
      ["node", "decommission", "n3", "--wait", "--timeout-ms", "90000", "--api", apis[0]!],
      { timeoutMs: 100_000 },
    );
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /n3: drained/);
    await waitBalanced(["n1", "n2", "n4", "n5"], ["n3"], 60_000);
  });

  it("a node dead for longer than the replace delay has its replicas re-created elsewhere", async () => {
    const kill = await runCli(["local", "kill", "n5", "--dir", cluster.dir]);
    assert.equal(kill.code, 0, kill.stderr);
    await waitBalanced(["n1", "n2", "n4"], ["n3", "n5"], 90_000);
  });

  it("no request failed, and every acknowledged write reads back from the leader and every replica", async () => {
    writing = false;
    await load;
    assert.deepEqual(failures, [], "the client absorbed every retriable error");
    const orders = client.keyspace("orders");
    const info = await client.keyspaces.describe("orders");
    for (const [key, value] of acknowledged) {
      const kv = await orders.get(key);
      assert.equal(kv?.text(), value, key);
    }
    // Every replica holds the same data: serializable reads are served by the node's own replica.
    let compared = 0;
    for (const [key, value] of [...acknowledged].slice(0, 100)) {
      const record = await getJson(
        `http://${cluster.api("n1")}/v1/kv/orders/${encodeURIComponent(key)}?consistency=serializable`,
      );
      const shard = (record.body as { shard: number }).shard;
      for (const replica of info.shardMap[shard]!.replicas) {
        const api = apiOf.get(replica);
        assert.ok(api !== undefined, `shard ${shard} has a replica on ${replica}`);
        await waitFor(`${key} on ${replica}`, async () => {
          const local = await getJson(
            `http://${api}/v1/kv/orders/${encodeURIComponent(key)}?consistency=serializable`,
          );
          return (local.body as { kv?: { value: string } }).kv?.value === value ? true : null;
        });
        compared++;
      }
    }
    assert.ok(compared >= 300);
  });
});
