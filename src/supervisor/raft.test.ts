// Goal: the replicated register keeps Raft's promises with real processes — three nodes under
// a write load; SIGKILL of the leader is followed by a new leader committing within 2 s of the
// default election timeout; no acknowledged write is lost; the killed node restarted with its
// data directory catches up from the log, and, once the leader has compacted past it, from a
// snapshot. Method: `brigade up --nodes 3` with a snapshot every 100 entries, concurrent HTTP
// clients incrementing a counter through every node, SIGKILL through `brigade local`.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";
import type { ManagedNodeInfo } from "./supervisor.js";

let cluster: LocalCluster;

/** The default tick (100 ms) × electionTicks (10) × 2: the longest randomized election timeout. */
const electionTimeoutMaxMs = 2_000;

interface RaftStatus {
  role: string;
  term: number;
  leaderId: string | null;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  snapshotIndex: number;
  snapshotsInstalled: number;
}

const api = (id: string): string => cluster.api(id);
const raftStatus = async (id: string) =>
  (await getJson(`http://${api(id)}/v1/raft`)).body as RaftStatus;

async function leader(candidates: string[]): Promise<string> {
  return waitFor("a leader", async () => {
    for (const id of candidates) {
      const status = await raftStatus(id).catch(() => null);
      if (status?.role === "leader") return id;
    }
    return null;
  });
}

/** One increment through `id`; resolves with the result, or null if it failed (indeterminate). */
async function increment(
  id: string,
  requestId: string,
): Promise<{ value: string; index: number } | null> {
  try {
    const response = await fetch(
      `http://${api(id)}/v1/register/counter/incr?requestId=${requestId}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ delta: 1 }),
        signal: AbortSignal.timeout(3_000),
      },
    );
    if (!response.ok) return null;
    return (await response.json()) as { value: string; index: number };
  } catch {
    return null;
  }
}

before(async () => {
  cluster = await LocalCluster.start({
    nodes: 3,
    env: { ...process.env, BRIGADE_RAFT_SNAPSHOT_ENTRIES: "100" },
  });
});

after(async () => {
  await cluster?.stop();
});

describe("raft with real processes (brigade up --nodes 3)", () => {
  const acknowledged: number[] = [];
  let attempted = 0;
  let killed = "";

  it("elects one leader and applies writes through any node", async () => {
    const first = await leader(["n1", "n2", "n3"]);
    const followers = ["n1", "n2", "n3"].filter((id) => id !== first);
    for (const id of followers) {
      const result = await waitFor(`a write through ${id}`, () => increment(id, `warmup-${id}`));
      acknowledged.push(result.index);
      attempted++;
    }
    const cli = await runCli(["register", "get", "counter", "--api", api(followers[0] as string)]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), "2");
  });

  it("SIGKILL of the leader under load: a new leader commits within 2 s of the election timeout, nothing acknowledged is lost", async () => {
    killed = await leader(["n1", "n2", "n3"]);
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== killed);
    let stop = false;
    let sequence = 0;
    // Four clients, each writing through a survivor in turn, for the whole test.
    const clients = Array.from({ length: 4 }, async (_, client) => {
      while (!stop) {
        const target = survivors[(sequence + client) % survivors.length] as string;
        const requestId = `load-${client}-${sequence++}`;
        attempted++;
        const result = await increment(target, requestId);
        if (result !== null) acknowledged.push(result.index);
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    await waitFor("some load before the kill", () => acknowledged.length >= 20);
    const killedAt = Date.now();
    assert.equal((await runCli(["local", "kill", killed, "--dir", cluster.dir])).code, 0);
    const before = acknowledged.length;
    await waitFor(
      "a commit under a new leader",
      () => acknowledged.length > before + 5,
      15_000,
      10,
    );
    const failoverMs = Date.now() - killedAt;
    stop = true;
    await Promise.all(clients);
    assert.ok(failoverMs < electionTimeoutMaxMs + 2_000, `failover took ${failoverMs} ms`);

    // Every acknowledged increment is in the final value, and each got its own log index.
    const read = await increment(survivors[0] as string, "final-read-marker");
    assert.ok(read !== null);
    const final = Number(read.value) - 1; // the read itself was an increment
    assert.equal(
      new Set(acknowledged).size,
      acknowledged.length,
      "two writes acknowledged at one index",
    );
    assert.ok(
      final >= acknowledged.length,
      `final ${final} < ${acknowledged.length} acknowledged: a write was lost`,
    );
    assert.ok(final <= attempted, `final ${final} > ${attempted} attempted: a write applied twice`);
  });

  it("the killed node, restarted with its data directory, catches up from the log", async () => {
    const restarted = await runCli(["local", "restart", killed, "--json", "--dir", cluster.dir]);
    assert.equal(restarted.code, 0, restarted.stderr);
    const info = JSON.parse(restarted.stdout) as ManagedNodeInfo;
    cluster.track(info.pid);
    const current = await leader(["n1", "n2", "n3"].filter((id) => id !== killed));
    const target = (await raftStatus(current)).commit;
    await waitFor(
      `${killed} to apply up to ${target}`,
      async () => (await raftStatus(killed)).applied >= target,
      15_000,
    );
  });

  it("a follower the leader compacted past catches up from a snapshot, and holds the same state", async () => {
    const current = await leader(["n1", "n2", "n3"]);
    const follower = ["n1", "n2", "n3"].find((id) => id !== current) as string;
    const others = ["n1", "n2", "n3"].filter((id) => id !== follower);
    // Cut it off before killing it: appends the others sent to a dead peer would otherwise
    // wait in their transport queues and catch it up from the log after the restart.
    for (const other of others) {
      const cut = await runCli(["local", "partition", follower, other, "--dir", cluster.dir]);
      assert.equal(cut.code, 0, cut.stderr);
    }
    assert.equal((await runCli(["local", "kill", follower, "--dir", cluster.dir])).code, 0);
    const behind = (await raftStatus(current)).lastIndex;
    // Write until no log holds what the follower needs next (each keeps 256 entries behind
    // each snapshot, and snapshots every 100 to 150 applied entries).
    let written = 0;
    await waitFor(
      "every running node to compact past the stopped follower",
      async () => {
        const batch = await Promise.all(
          Array.from({ length: 16 }, (_, client) =>
            increment(current, `compact-${client}-${written}`),
          ),
        );
        written += batch.filter((result) => result !== null).length;
        // Both running nodes, so whichever leads when the follower returns needs a snapshot
        // to catch it up (leadership may move under load; replicas compact independently).
        const statuses = await Promise.all(others.map((id) => raftStatus(id)));
        return statuses.every((status) => status.firstIndex > behind + 1);
      },
      60_000,
      1,
    );
    assert.equal((await runCli(["local", "heal", "--dir", cluster.dir])).code, 0);
    const restarted = await runCli(["local", "restart", follower, "--json", "--dir", cluster.dir]);
    assert.equal(restarted.code, 0, restarted.stderr);
    cluster.track((JSON.parse(restarted.stdout) as ManagedNodeInfo).pid);
    const target = (await raftStatus(current)).commit;
    const caughtUp = await waitFor(
      `${follower} to apply up to ${target}`,
      async () => {
        const status = await raftStatus(follower).catch(() => null);
        return status !== null && status.applied >= target ? status : null;
      },
      20_000,
    );
    assert.ok(
      caughtUp.snapshotsInstalled >= 1,
      `the follower did not install a snapshot: behind=${behind} follower=${JSON.stringify(caughtUp)} leader=${JSON.stringify(await raftStatus(current))}`,
    );
    // Its own replica (a serializable read, served locally) equals the leader's value.
    const linearizable = (await getJson(`http://${api(current)}/v1/register/counter`)).body as {
      value: string;
    };
    const local = (
      await getJson(`http://${api(follower)}/v1/register/counter?consistency=serializable`)
    ).body as { value: string; stale: boolean };
    assert.equal(local.stale, true);
    assert.equal(local.value, linearizable.value);
  });
});
