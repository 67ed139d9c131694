// Goal: `brigade chaos` does to a real cluster what it says — a partition cuts real traffic
// between the groups (set on both sides, listed by every node's /v1/faults and by `status`,
// logged as a warning by the nodes) and survives a restart of one side; delay and loss rules
// sit on both nodes of the link and act on round trips; a clock skew moves the node's HLC;
// a timed pause ends by itself; kill and restart work; heal removes every network and clock
// fault and resumes paused nodes; bad usage exits 2 with a clear message. Method: one real
// `brigade up --nodes 3` for the whole file, driven by the real `brigade chaos` CLI, checked
// through the nodes' HTTP API.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { getJson, LocalCluster, runCli, waitFor } from "../testkit/index.js";
import type { LinkFault } from "../transport/faults.js";
import type { ChaosStatus } from "./chaos.js";

let cluster: LocalCluster;

// Short idle timeout so cut links are noticed quickly; inherited by the nodes.
const env = { BRIGADE_IDLE_TIMEOUT_MS: "1000" };
const ids = ["n1", "n2", "n3"];

const api = (id: string): string => cluster.api(id);

function chaos(...args: string[]) {
  return runCli(["chaos", ...args, "--dir", cluster.dir], { env, timeoutMs: 30_000 });
}

async function status(): Promise<ChaosStatus> {
  const run = await chaos("status", "--json");
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as ChaosStatus;
}

interface Faults {
  rules: Record<string, LinkFault>;
  clockSkewMs: number;
}

async function faults(id: string): Promise<Faults> {
  const { status: code, body } = await getJson(`http://${api(id)}/v1/faults`);
  assert.equal(code, 200);
  return body as Faults;
}

/** Round trips over the node-to-node transport from `from` to `to`. */
async function ping(from: string, to: string, count = 1, timeoutMs = 300) {
  const { body } = await getJson(
    `http://${api(from)}/v1/peers/${to}/ping?count=${count}&timeoutMs=${timeoutMs}`,
    { method: "POST" },
  );
  return body as { ok: number; failed: number; latencyMs: { min: number } | null };
}

before(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env });
  for (const id of ids)
    for (const other of ids.filter((candidate) => candidate !== id))
      await waitFor(`${id} reaches ${other}`, async () => (await ping(id, other)).ok === 1);
});

after(async () => {
  await cluster?.stop();
});

describe("brigade chaos against a real three-node cluster", () => {
  it("refuses bad usage with exit code 2 and a clear message", async () => {
    const cases: [string[], RegExp][] = [
      [["kill", "n9"], /no node "n9"/],
      [["loss", "n1", "n2", "150%"], /loss rate must be between 0% and 100%/],
      [["pause", "n1", "--for", "soon"], /malformed --for duration "soon"/],
      [["partition", "n1,n2"], /at least two groups/],
      [["partition", "n1", "/", "n7"], /no node "n7"/],
      [["skew", "n1", "+2h"], /within ±3600000 ms/],
      [["delay", "n1", "n2"], /missing required argument/],
    ];
    for (const [args, message] of cases) {
      const run = await chaos(...args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message, args.join(" "));
    }
    const help = await runCli(["chaos", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /partition.*isolate|isolate[\s\S]*partition/s);
    const nowhere = await runCli(["chaos", "status", "--dir", path.join(cluster.dir, "none")]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /no running `brigade up` found/);
    assert.deepEqual((await status()).faults, [], "refused commands leave no fault behind");
  });

  it("partition n1 / n2,n3 cuts n1 off on both sides, and status lists it", async () => {
    const run = await chaos("partition", "n1", "/", "n2,n3");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /partitioned n1 \/ n2,n3/);
    const n1 = await faults("n1");
    assert.equal(n1.rules.n2?.partitioned, true);
    assert.equal(n1.rules.n3?.partitioned, true);
    assert.equal((await faults("n2")).rules.n1?.partitioned, true);
    assert.equal((await faults("n3")).rules.n1?.partitioned, true);
    assert.equal((await faults("n2")).rules.n3, undefined, "n2-n3 is on one side");
    // Real traffic: n1 cannot reach the other side; the other side still reaches itself.
    assert.equal((await ping("n1", "n2")).ok, 0);
    assert.equal((await ping("n3", "n1")).ok, 0);
    assert.equal((await ping("n2", "n3")).ok, 1);
    const { faults: inForce } = await status();
    assert.equal(inForce.length, 1);
    assert.equal(inForce[0]?.kind, "partition");
    assert.deepEqual(inForce[0]?.nodes, ["n1", "n2", "n3"]);
    assert.equal(inForce[0]?.detail, "n1 / n2,n3");
    // Each node logs the fault at warn (the supervisor relays warnings even with --quiet).
    await waitFor("n1's warning in its log", () =>
      /n1\s*\|.*WARN\s+fault injected.*peer=n2/.test(cluster.up.output),
    );
  });

  it("a restarted node gets the partition in force back", async () => {
    const run = await chaos("restart", "n2");
    assert.equal(run.code, 0, run.stderr);
    const n2 = (await status()).nodes.find((node) => node.id === "n2");
    cluster.track(n2?.pid ?? null);
    assert.equal(n2?.state, "running");
    assert.equal((await faults("n2")).rules.n1?.partitioned, true);
    assert.equal((await ping("n2", "n1")).ok, 0);
  });

  it("heal removes the partition everywhere and traffic flows again", async () => {
    const run = await chaos("heal");
    assert.equal(run.code, 0, run.stderr);
    for (const id of ids) assert.deepEqual((await faults(id)).rules, {}, id);
    assert.deepEqual((await status()).faults, []);
    await waitFor("n1 reaches n2 again", async () => (await ping("n1", "n2")).ok === 1);
    await waitFor("n3 reaches n1 again", async () => (await ping("n3", "n1")).ok === 1);
  });

  it("delay and loss rules sit on both nodes of the link and act on round trips", async () => {
    assert.equal((await chaos("delay", "n1", "n2", "200ms", "--jitter", "50ms")).code, 0);
    assert.equal((await chaos("loss", "n1", "n3", "10%")).code, 0);
    assert.deepEqual(
      [(await faults("n1")).rules.n2, (await faults("n2")).rules.n1].map((rule) => [
        rule?.delayMs,
        rule?.jitterMs,
      ]),
      [
        [200, 50],
        [200, 50],
      ],
    );
    assert.equal((await faults("n1")).rules.n3?.dropRate, 0.1);
    assert.equal((await faults("n3")).rules.n1?.dropRate, 0.1);
    // The request waits at n1 and the response at n2: at least 2 × 200 ms (timers may fire 1 ms early).
    const slow = await ping("n1", "n2", 2, 3_000);
    assert.equal(slow.ok, 2);
    assert.ok((slow.latencyMs?.min ?? 0) >= 396, `fastest ping took ${slow.latencyMs?.min} ms`);
    const details = (await status()).faults.map((fault) => `${fault.kind} ${fault.detail}`);
    assert.deepEqual(details, ["link n1↔n2 delay 200ms±50ms", "link n1↔n3 loss 10%"]);
    assert.equal((await chaos("heal")).code, 0);
    assert.deepEqual((await faults("n2")).rules, {});
  });

  it("skew runs a node's HLC ahead (or behind), and 0 resets it", async () => {
    const run = await chaos("skew", "n3", "+500ms");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /n3: clock runs 500ms ahead/);
    assert.equal((await faults("n3")).clockSkewMs, 500);
    await waitFor("n3's HLC 500 ms ahead of real time", async () => {
      const before = Date.now();
      const { body } = await getJson(`http://${api("n3")}/v1/status`);
      return (body as { hlc: { wallMs: number } }).hlc.wallMs >= before + 500;
    });
    // A negative offset reads as an offset, not as an option.
    assert.equal((await chaos("skew", "n2", "-200ms")).code, 0);
    assert.equal((await faults("n2")).clockSkewMs, -200);
    assert.equal((await chaos("skew", "n2", "0")).code, 0);
    assert.equal((await faults("n2")).clockSkewMs, 0);
    const skews = (await status()).faults.filter((fault) => fault.kind === "skew");
    assert.deepEqual(
      skews.map((fault) => [fault.nodes, fault.detail]),
      [[["n3"], "+500ms"]],
    );
    await waitFor("n3's skew warning in its log", () =>
      /n3\s*\|.*WARN\s+clock skew injected.*skewMs=500/.test(cluster.up.output),
    );
  });

  it("pause --for 1s stops a node and resumes it by itself", async () => {
    const started = Date.now();
    const run = await chaos("pause", "n2", "--for", "1s");
    assert.equal(run.code, 0, run.stderr);
    const paused = await status();
    assert.equal(paused.nodes.find((node) => node.id === "n2")?.state, "paused");
    const fault = paused.faults.find((candidate) => candidate.kind === "pause");
    assert.deepEqual(fault?.nodes, ["n2"]);
    assert.ok(fault?.until !== undefined, "a timed pause says when it ends");
    assert.ok(Math.abs(fault.until - fault.since - 1_000) <= 5, "it ends 1 s after it began");
    await waitFor(
      "n2 running again",
      async () => (await status()).nodes.find((node) => node.id === "n2")?.state === "running",
      5_000,
    );
    assert.ok(Date.now() - started >= 900, "resumed too early");
    assert.equal((await status()).faults.filter((f) => f.kind === "pause").length, 0);
    assert.equal((await getJson(`http://${api("n2")}/v1/health`)).status, 200);
  });

  it("kill takes a node down until restart", async () => {
    const killed = await chaos("kill", "n2");
    assert.equal(killed.code, 0, killed.stderr);
    const down = await status();
    assert.equal(down.nodes.find((node) => node.id === "n2")?.state, "exited");
    assert.ok(down.faults.some((fault) => fault.kind === "kill" && fault.nodes[0] === "n2"));
    const restarted = await chaos("restart", "n2");
    assert.equal(restarted.code, 0, restarted.stderr);
    const up = await status();
    const n2 = up.nodes.find((node) => node.id === "n2");
    cluster.track(n2?.pid ?? null);
    assert.equal(n2?.state, "running");
    assert.equal(up.faults.filter((fault) => fault.kind === "kill").length, 0);
  });

  it("heal removes every network and clock fault and resumes paused nodes", async () => {
    // In force now: n3's +500 ms skew. Add a partition, a link rule and an open-ended pause.
    assert.equal((await chaos("isolate", "n1")).code, 0);
    assert.equal((await chaos("loss", "n2", "n3", "0.5")).code, 0);
    assert.equal((await chaos("pause", "n3")).code, 0);
    const before = await status();
    assert.deepEqual(before.faults.map((fault) => fault.kind).sort(), [
      "isolate",
      "link",
      "pause",
      "skew",
    ]);
    const healed = await chaos("heal");
    assert.equal(healed.code, 0, healed.stderr);
    const after = await status();
    assert.deepEqual(after.faults, []);
    assert.deepEqual(
      after.nodes.map((node) => node.state),
      ["running", "running", "running"],
    );
    for (const id of ids) {
      const inForce = await faults(id);
      assert.deepEqual(inForce.rules, {}, id);
      assert.equal(inForce.clockSkewMs, 0, id);
    }
    await waitFor("n1 reaches n3 again", async () => (await ping("n1", "n3")).ok === 1);
  });
});
