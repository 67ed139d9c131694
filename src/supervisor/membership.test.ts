// Goal: SWIM membership keeps its promises with real processes and real faults — five nodes
// started by `brigade up` agree on membership; a SIGKILLed node is declared dead by every
// other node within the bound; a node paused (SIGSTOP) past the bound is suspected, then
// declared dead, and on SIGCONT refutes and is alive everywhere again; a killed node
// restarted with its id and data directory rejoins; garbage, foreign-cluster and oversize
// input is dropped and counted without a crash. Method: the real CLI and UDP datagrams.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, before, describe, it } from "node:test";
import type { MemberView } from "../node/discovery.js";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";
import { encodeDatagram } from "../transport/datagram.js";
import type { ManagedNodeInfo } from "./supervisor.js";

let cluster: LocalCluster;

// Faster probing than the local profile's default, inherited by every node through the environment.
const probeIntervalMs = 500;
const env = { BRIGADE_PROBE_INTERVAL_MS: String(probeIntervalMs), BRIGADE_PROBE_TIMEOUT_MS: "200" };
/**
 * The detection bound for n = 5 with the local profile (suspicionMult 3): a few probe periods
 * to be probed and fail, plus the longest suspicion, 6 × 3 × max(1, log10 5) periods, plus
 * dissemination — 22 periods, 11 s; the wait allows 25 s so a slow CI machine does not flake.
 */
const detectionBoundMs = 25_000;
const ids = ["n1", "n2", "n3", "n4", "n5"];

const node = (id: string): ManagedNodeInfo => cluster.node(id);

async function members(id: string): Promise<MemberView[]> {
  return (await getJson(`http://${node(id).api}/v1/members`)).body as MemberView[];
}

async function stateOf(observer: string, subject: string): Promise<string | undefined> {
  return (await members(observer)).find((member) => member.id === subject)?.state;
}

async function everyoneSees(subject: string, state: string, observers: string[]): Promise<boolean> {
  for (const observer of observers) if ((await stateOf(observer, subject)) !== state) return false;
  return true;
}

before(async () => {
  cluster = await LocalCluster.start({ nodes: 5, env });
});

after(async () => {
  await cluster?.stop();
});

describe("membership with real processes (brigade up --nodes 5)", () => {
  it("every node sees all five alive, and `brigade members` prints the table", async () => {
    for (const observer of ids) {
      await waitFor(
        `${observer} to see five alive members`,
        async () =>
          (await members(observer)).filter((member) => member.state === "alive").length === 5,
        // Generous: the suite runs another multi-node test beside this one on 2 cores.
        30_000,
      );
    }
    const table = await runCli(["members", "--api", node("n3").api]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^ID\s+ADDRESS\s+STATE\s+INC\s+ZONE\s+TAGS/);
    assert.equal(table.stdout.trim().split("\n").length, 6);
  });

  it("drops garbage, foreign-cluster and malformed datagrams, counting them, without a crash", async () => {
    const target = node("n1");
    const port = Number(target.listen.split(":")[1]);
    const socket = dgram.createSocket("udp4");
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => socket.send(bytes, port, "127.0.0.1", () => resolve()));
    await send(Buffer.from("definitely not gossip"));
    await send(
      encodeDatagram(
        {
          clusterId: "another-cluster",
          senderId: "intruder",
          hlc: { wallMs: Date.now(), logical: 0 },
          payload: { type: "gossip" },
        },
        null,
      ),
    );
    await send(
      encodeDatagram(
        {
          clusterId: "brigade-local",
          senderId: "intruder",
          hlc: { wallMs: Date.now(), logical: 0 },
          payload: { type: "ping", nonsense: true },
        },
        null,
      ),
    );
    // Well-formed but poisonous: an address that cannot be dialed must neither crash the node nor spread.
    const stamp = () => ({ wallMs: Date.now(), logical: 0 });
    await send(
      encodeDatagram(
        {
          clusterId: "brigade-local",
          senderId: "intruder",
          hlc: stamp(),
          payload: {
            type: "ping",
            from: "intruder",
            fromAddress: "x",
            seq: 1,
            target: "n1",
            updates: [],
          },
        },
        null,
      ),
    );
    await send(
      encodeDatagram(
        {
          clusterId: "brigade-local",
          senderId: "intruder",
          hlc: stamp(),
          payload: {
            type: "gossip",
            from: "intruder",
            fromAddress: "127.0.0.1:9",
            updates: [{ kind: "alive", id: "bogus", address: "bogus", incarnation: 1, tags: {} }],
          },
        },
        null,
      ),
    );
    socket.close();
    const metric = async (name: string) => {
      const text = await (await fetch(`http://${target.api}/metrics`)).text();
      return Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? "NaN");
    };
    await waitFor(
      "the datagrams to be counted",
      async () =>
        (await metric("brigade_gossip_datagrams_malformed_total")) >= 1 &&
        (await metric("brigade_gossip_datagrams_wrong_cluster_total")) >= 1,
    );
    assert.equal((await getJson(`http://${target.api}/v1/health`)).status, 200);
    for (const observer of ids) {
      const seen = (await members(observer)).map((member) => member.id);
      assert.ok(
        !seen.includes("intruder") && !seen.includes("bogus"),
        `${observer} took in a bad member: ${seen}`,
      );
    }
  });

  it("refuses oversize metadata with a clear error and changes nothing", async () => {
    const run = await runCli(["tags", `blob=${"x".repeat(600)}`, "--api", node("n2").api]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /413 MetadataTooLarge.*exceeds the limit of 512 bytes/);
    const seen = (await members("n1")).find((member) => member.id === "n2");
    assert.equal(seen?.userTags.blob, undefined);
    const ok = await runCli(["tags", "rack=r7", "--api", node("n2").api]);
    assert.equal(ok.code, 0, ok.stderr);
    await waitFor(
      "n1 to see n2's new tag",
      async () =>
        (await members("n1")).find((member) => member.id === "n2")?.userTags.rack === "r7",
    );
  });

  it("SIGKILL: every other node declares the node dead within the bound", async () => {
    const started = Date.now();
    assert.equal((await runCli(["local", "kill", "n4", "--dir", cluster.dir])).code, 0);
    const observers = ids.filter((id) => id !== "n4");
    await waitFor(
      "n4 dead everywhere",
      () => everyoneSees("n4", "dead", observers),
      detectionBoundMs,
      100,
    );
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs < detectionBoundMs, `detection took ${elapsedMs} ms`);
  });

  it("SIGSTOP past the bound: suspected, then dead; SIGCONT: it refutes and is alive everywhere", async () => {
    assert.equal((await runCli(["local", "pause", "n5", "--dir", cluster.dir])).code, 0);
    const observers = ["n1", "n2", "n3"];
    const seen = new Set<string>();
    await waitFor(
      "n5 suspected, then dead, everywhere",
      async () => {
        const state = await stateOf("n1", "n5");
        if (state) seen.add(state);
        return everyoneSees("n5", "dead", observers);
      },
      detectionBoundMs,
      50,
    );
    assert.ok(
      seen.has("suspect"),
      `n1 went through ${[...seen].join(", ")} without suspecting first`,
    );
    const before = (await members("n1")).find((member) => member.id === "n5")?.incarnation ?? 0;
    assert.equal((await runCli(["local", "resume", "n5", "--dir", cluster.dir])).code, 0);
    await waitFor(
      "n5 alive everywhere again",
      () => everyoneSees("n5", "alive", observers),
      detectionBoundMs,
      100,
    );
    const after = (await members("n1")).find((member) => member.id === "n5")?.incarnation ?? 0;
    assert.ok(after > before, `n5 must refute with a higher incarnation (${before} → ${after})`);
  });

  it("a killed node restarted with its id and data directory rejoins", async () => {
    const restarted = await runCli(["local", "restart", "n4", "--json", "--dir", cluster.dir]);
    assert.equal(restarted.code, 0, restarted.stderr);
    const info = JSON.parse(restarted.stdout) as ManagedNodeInfo;
    cluster.track(info.pid);
    await waitFor(
      "n4 alive everywhere",
      () => everyoneSees("n4", "alive", ids),
      detectionBoundMs,
      100,
    );
    await waitFor(
      "n4 sees everyone alive",
      async () => (await members("n4")).filter((member) => member.state === "alive").length === 5,
    );
  });

  it("a graceful stop is seen as left, not dead", async () => {
    assert.equal((await runCli(["local", "stop", "n3", "--dir", cluster.dir])).code, 0);
    await waitFor(
      "n3 left everywhere",
      () => everyoneSees("n3", "left", ["n1", "n2", "n4", "n5"]),
      10_000,
      100,
    );
  });
});
