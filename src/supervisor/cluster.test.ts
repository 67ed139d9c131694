// Goal: a local cluster started by `brigade up` behaves as promised with real processes and
// real faults — nodes connect to each other; injected drop, delay and partition act on their
// real traffic and heal; a SIGKILLed node is noticed by the others, which keep serving; a
// paused node is noticed and comes back on resume; a restarted node rejoins; and SIGTERM to
// the supervisor stops every node and exits 0. Method: the real CLI (`brigade up`,
// `brigade local`, `brigade fault`, `brigade ping`, `brigade status`) against child processes.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { getJson, isProcessAlive, LocalCluster, runCli, waitFor } from "../testkit/index.js";
import type { ManagedNodeInfo } from "./supervisor.js";

let cluster: LocalCluster;

// Short idle timeout so silent links are noticed quickly; inherited by the nodes through the environment.
const env = { BRIGADE_IDLE_TIMEOUT_MS: "1000" };

const api = (id: string): string => cluster.api(id);

async function connectedPeers(id: string): Promise<string[]> {
  const { body } = await getJson(`http://${api(id)}/v1/status`);
  return (body as { peers: { id: string }[] }).peers.map((peer) => peer.id).sort();
}

async function cli(...args: string[]) {
  return runCli(args, { env });
}

before(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env });
});

after(async () => {
  await cluster?.stop();
});

describe("brigade up: a real three-node cluster", () => {
  it("starts three nodes that connect to each other", async () => {
    for (const id of ["n1", "n2", "n3"]) {
      const others = ["n1", "n2", "n3"].filter((other) => other !== id);
      await waitFor(
        `${id} connected to ${others}`,
        async () => (await connectedPeers(id)).join() === others.join(),
      );
    }
    const status = await cli("status", "--api", api("n1"));
    assert.equal(status.code, 0);
    assert.match(status.stdout, /peers\s+2 connected/);
  });

  it("injected drop makes real round trips fail, and heal restores them", async () => {
    const set = await cli("fault", "set", "n2", "--drop", "100%", "--api", api("n1"));
    assert.equal(set.code, 0, set.stderr);
    const ping = await cli(
      "ping",
      "n2",
      "--count",
      "3",
      "--timeout-ms",
      "300",
      "--json",
      "--api",
      api("n1"),
    );
    assert.equal(ping.code, 1);
    assert.deepEqual(JSON.parse(ping.stdout).errors, { DeadlineExceeded: 3 });
    const faults = await getJson(`http://${api("n1")}/v1/faults`);
    assert.ok((faults.body as { droppedFrames: number }).droppedFrames >= 3);
    assert.equal((await cli("fault", "heal", "--api", api("n1"))).code, 0);
    const healed = await cli("ping", "n2", "--count", "3", "--api", api("n1"));
    assert.equal(healed.code, 0, healed.stdout + healed.stderr);
  });

  it("injected delay shows in real round-trip latency", async () => {
    await cli("fault", "set", "n3", "--delay", "200", "--api", api("n1"));
    const ping = await cli("ping", "n3", "--count", "3", "--json", "--api", api("n1"));
    await cli("fault", "heal", "n3", "--api", api("n1"));
    assert.equal(ping.code, 0);
    // Timers may fire a millisecond early; an undelayed loopback ping takes well under 5 ms.
    const minimumMs = JSON.parse(ping.stdout).latencyMs.min;
    assert.ok(minimumMs >= 198, `fastest ping took ${minimumMs} ms`);
  });

  it("a partition cuts both directions between two real nodes, and heal restores the link", async () => {
    assert.equal((await cli("fault", "set", "n3", "--partition", "--api", api("n1"))).code, 0);
    await waitFor(
      "n1 and n3 to lose each other",
      async () =>
        !(await connectedPeers("n1")).includes("n3") &&
        !(await connectedPeers("n3")).includes("n1"),
    );
    assert.deepEqual(
      await connectedPeers("n2"),
      ["n1", "n3"],
      "the partition must not touch other links",
    );
    const listed = await cli("fault", "list", "--json", "--api", api("n1"));
    assert.equal(JSON.parse(listed.stdout).rules.n3.partitioned, true);
    await cli("fault", "heal", "--api", api("n1"));
    await waitFor(
      "n1 and n3 reconnected",
      async () =>
        (await connectedPeers("n1")).includes("n3") && (await connectedPeers("n3")).includes("n1"),
    );
  });

  it("the supervisor partitions two nodes symmetrically and heals every node", async () => {
    assert.equal((await cli("local", "partition", "n1", "n2", "--dir", cluster.dir)).code, 0);
    await waitFor(
      "n1 and n2 to lose each other",
      async () =>
        !(await connectedPeers("n1")).includes("n2") &&
        !(await connectedPeers("n2")).includes("n1"),
    );
    assert.equal((await cli("local", "heal", "--dir", cluster.dir)).code, 0);
    await waitFor(
      "n1 and n2 reconnected",
      async () =>
        (await connectedPeers("n1")).includes("n2") && (await connectedPeers("n2")).includes("n1"),
    );
    for (const id of ["n1", "n2", "n3"]) {
      const { body } = await getJson(`http://${api(id)}/v1/faults`);
      assert.deepEqual((body as { rules: object }).rules, {}, `${id} still has faults`);
    }
  });

  it("a paused node is noticed by the others and comes back on resume", async () => {
    assert.equal((await cli("local", "pause", "n3", "--dir", cluster.dir)).code, 0);
    await waitFor(
      "n1 and n2 to notice n3 is silent",
      async () =>
        !(await connectedPeers("n1")).includes("n3") &&
        !(await connectedPeers("n2")).includes("n3"),
    );
    assert.equal((await cli("local", "resume", "n3", "--dir", cluster.dir)).code, 0);
    await waitFor(
      "n3 back everywhere",
      async () =>
        (await connectedPeers("n1")).includes("n3") && (await connectedPeers("n2")).includes("n3"),
    );
  });

  it("SIGKILL of one node: the other two notice and keep serving", async () => {
    const killed = await cli("local", "kill", "n2", "--json", "--dir", cluster.dir);
    assert.equal(killed.code, 0, killed.stderr);
    const info = JSON.parse(killed.stdout) as ManagedNodeInfo;
    assert.equal(info.state, "exited");
    assert.equal(info.lastExit, "signal SIGKILL");
    await waitFor(
      "n1 and n3 to notice n2 is gone",
      async () =>
        (await connectedPeers("n1")).join() === "n3" &&
        (await connectedPeers("n3")).join() === "n1",
    );
    const ping = await cli("ping", "n3", "--count", "5", "--api", api("n1"));
    assert.equal(ping.code, 0);
    assert.equal((await getJson(`http://${api("n3")}/v1/health`)).status, 200);
    const toDead = await cli(
      "ping",
      "n2",
      "--count",
      "1",
      "--timeout-ms",
      "200",
      "--api",
      api("n1"),
    );
    assert.equal(toDead.code, 1);
  });

  it("a restarted node rejoins with its data directory", async () => {
    const restarted = await cli("local", "restart", "n2", "--json", "--dir", cluster.dir);
    assert.equal(restarted.code, 0, restarted.stderr);
    const info = JSON.parse(restarted.stdout) as ManagedNodeInfo;
    cluster.track(info.pid);
    for (const id of ["n1", "n3"])
      await waitFor(`${id} sees n2 again`, async () => (await connectedPeers(id)).includes("n2"));
    assert.deepEqual(await connectedPeers("n2"), ["n1", "n3"]);
  });

  it("SIGTERM to the supervisor stops every node and exits 0", async () => {
    const listed = await cli("local", "list", "--json", "--dir", cluster.dir);
    const pids = (JSON.parse(listed.stdout) as ManagedNodeInfo[]).map((node) => node.pid as number);
    const result = await cluster.up.stop("SIGTERM");
    assert.equal(result.code, 0, cluster.up.output);
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `node pid ${pid} still alive`);
    assert.equal(existsSync(path.join(cluster.dir, "supervisor.json")), false);
  });
});
