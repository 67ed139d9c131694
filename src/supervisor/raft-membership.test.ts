// Goal: membership change works on real processes: a brand-new node added to a group whose
// leader has compacted its log is brought up from a snapshot as a learner, promoted once it
// has caught up, and a founder is removed; writes keep committing and the new voter holds
// the same state. Method: `brigade up --nodes 3` (snapshot every 50 entries), `brigade local
// add` for n4, `brigade raft member ...` through the CLI, HTTP clients incrementing a counter.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";
import type { ManagedNodeInfo } from "./supervisor.js";

let cluster: LocalCluster;
const apis = new Map<string, string>();

interface RaftStatus {
  role: string;
  commit: number;
  applied: number;
  firstIndex: number;
  snapshotsInstalled: number;
  config: { voters: string[]; learners: string[] };
}

const raftStatus = async (id: string) =>
  (await getJson(`http://${apis.get(id)}/v1/raft`)).body as RaftStatus;

async function leader(candidates: readonly string[]): Promise<string> {
  return waitFor("a leader", async () => {
    for (const id of candidates) {
      const status = await raftStatus(id).catch(() => null);
      if (status?.role === "leader") return id;
    }
    return null;
  });
}

async function increment(id: string, requestId: string): Promise<boolean> {
  try {
    const response = await fetch(
      `http://${apis.get(id)}/v1/register/counter/incr?requestId=${requestId}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ delta: 1 }),
        signal: AbortSignal.timeout(3_000),
      },
    );
    return response.ok;
  } catch {
    return false;
  }
}

/** Runs `brigade raft member <change> <node>` against `via` until it succeeds (503s are retried). */
async function member(change: string, node: string, via: () => Promise<string>) {
  return waitFor(
    `${change} ${node}`,
    async () => {
      const result = await runCli([
        "raft",
        "member",
        change,
        node,
        "--json",
        "--api",
        apis.get(await via()) as string,
      ]);
      return result.code === 0
        ? (JSON.parse(result.stdout) as { config: RaftStatus["config"] }).config
        : null;
    },
    20_000,
    100,
  );
}

before(async () => {
  cluster = await LocalCluster.start({
    nodes: 3,
    env: { ...process.env, BRIGADE_RAFT_SNAPSHOT_ENTRIES: "50" },
  });
  for (const id of ["n1", "n2", "n3"]) apis.set(id, cluster.api(id));
});

after(async () => {
  await cluster?.stop();
});

describe("raft membership change with real processes", () => {
  const founders = ["n1", "n2", "n3"];
  let voters = [...founders];

  it("a new node is added as a learner and caught up from a snapshot", async () => {
    const first = await leader(founders);
    // Enough writes that no log starts at 1 any more (50-75 per snapshot, 256 kept).
    let written = 0;
    await waitFor(
      "every founder to compact its log",
      async () => {
        const batch = await Promise.all(
          Array.from({ length: 16 }, (_, client) => increment(first, `w-${client}-${written}`)),
        );
        written += batch.filter(Boolean).length;
        // Every founder, so whichever leads later must send n4 a snapshot.
        const statuses = await Promise.all(founders.map((id) => raftStatus(id)));
        return statuses.every((status) => status.firstIndex > 1);
      },
      60_000,
      1,
    );
    const added = await runCli(["local", "add", "--json", "--dir", cluster.dir]);
    assert.equal(added.code, 0, added.stderr);
    const info = JSON.parse(added.stdout) as ManagedNodeInfo;
    assert.equal(info.id, "n4");
    cluster.track(info.pid);
    apis.set("n4", info.api);
    const outside = await raftStatus("n4");
    assert.deepEqual(outside.config.voters, [], "an added node starts outside the group");

    const config = await member("add-learner", "n4", () => leader(voters));
    assert.deepEqual(config.learners, ["n4"]);
    const target = (await raftStatus(await leader(voters))).commit;
    const caughtUp = await waitFor(
      "n4 to catch up",
      async () => {
        const status = await raftStatus("n4");
        return status.applied >= target ? status : null;
      },
      20_000,
    );
    assert.ok(caughtUp.snapshotsInstalled >= 1, "n4 was not brought up from a snapshot");
    assert.deepEqual(caughtUp.config.learners, ["n4"]);
  });

  it("the learner is promoted, a founder removed, and writes keep committing", async () => {
    const promoted = await member("promote", "n4", () => leader(voters));
    assert.deepEqual([...promoted.voters].sort(), ["n1", "n2", "n3", "n4"]);
    voters = promoted.voters;
    const current = await leader(voters);
    const removed = founders.find((id) => id !== current) as string;
    const shrunk = await member("remove", removed, () => leader(voters));
    assert.ok(!shrunk.voters.includes(removed));
    voters = shrunk.voters;
    // The removed node is gone for good: kill it; the other three still commit.
    assert.equal((await runCli(["local", "kill", removed, "--dir", cluster.dir])).code, 0);
    const survivors = voters;
    let acknowledged = 0;
    await waitFor(
      "writes through every remaining voter",
      async () => {
        for (const id of survivors)
          if (await increment(id, `after-${id}-${acknowledged}`)) acknowledged++;
        return acknowledged >= 6;
      },
      20_000,
    );
    // n4 holds the same state as the leader (its own replica, read locally).
    const finalLeader = await leader(survivors);
    const expected = (await getJson(`http://${apis.get(finalLeader)}/v1/register/counter`))
      .body as { value: string };
    await waitFor("n4 to hold the leader's value", async () => {
      const local = (
        await getJson(`http://${apis.get("n4")}/v1/register/counter?consistency=serializable`)
      ).body as { value: string };
      return local.value === expected.value;
    });
  });
});
