// Goal: the `brigade` CLI behaves like a good Unix tool — bad input gives one clear line and
// exit code 2, a busy port or a foreign data directory is named and refused, settings follow
// flags > BRIGADE_* env > config file > defaults, and a node serves health, status and
// metrics. Method: run the real CLI as child processes on loopback with temp directories.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, it } from "node:test";
import {
  CliProcess,
  freePort,
  getJson,
  runCli,
  temporaryDirectory,
  waitFor,
} from "../testkit/index.js";

const directory = temporaryDirectory();
const processes: CliProcess[] = [];
after(async () => {
  await Promise.all(processes.map((process) => process.stop("SIGKILL")));
  directory.remove();
});

async function startNode(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ node: CliProcess; api: string }> {
  const apiPort = await freePort();
  const api = `127.0.0.1:${apiPort}`;
  const node = new CliProcess(["node", "--api", api, "--listen", "127.0.0.1:0", ...args], { env });
  processes.push(node);
  await waitFor(
    `node on ${api}`,
    async () => (await getJson(`http://${api}/v1/health`)).status === 200,
  );
  return { node, api };
}

function oneLine(text: string): void {
  assert.equal(text.trim().split("\n").length, 1, `expected one line, got:\n${text}`);
}

describe("brigade CLI", () => {
  it("--help lists every node setting with its default", async () => {
    const run = await runCli(["node", "--help"]);
    assert.equal(run.code, 0);
    for (const flag of [
      "--id",
      "--cluster-id",
      "--listen",
      "--api",
      "--join",
      "--data",
      "--log-level",
      "--config",
    ]) {
      assert.ok(run.stdout.includes(flag), `help lacks ${flag}`);
    }
    assert.match(run.stdout, /default:\s+127\.0\.0\.1:7001/);
  });

  it("an unknown flag is one line and exit code 2", async () => {
    const run = await runCli(["node", "--bogus"]);
    assert.equal(run.code, 2);
    oneLine(run.stderr);
    assert.match(run.stderr, /unknown option '--bogus'/);
  });

  it("an unknown command is exit code 2", async () => {
    const run = await runCli(["frobnicate"]);
    assert.equal(run.code, 2);
  });

  it("a malformed address is one line naming it and exit code 2", async () => {
    const run = await runCli([
      "node",
      "--listen",
      "127.0.0.1:notaport",
      "--data",
      path.join(directory.path, "bad"),
    ]);
    assert.equal(run.code, 2);
    oneLine(run.stderr);
    assert.match(run.stderr, /--listen: malformed address "127\.0\.0\.1:notaport"/);
  });

  it("a malformed config file is one line naming the file and exit code 2", async () => {
    const file = path.join(directory.path, "broken.json");
    writeFileSync(file, "{ not json");
    const run = await runCli(["node", "--config", file]);
    assert.equal(run.code, 2);
    oneLine(run.stderr);
    assert.ok(run.stderr.includes(file));
    const unknownKey = path.join(directory.path, "unknown.json");
    writeFileSync(unknownKey, JSON.stringify({ lisen: "127.0.0.1:1" }));
    const second = await runCli(["node", "--config", unknownKey]);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /unknown setting "lisen"/);
  });

  it("a port already in use is named, exit code 2", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const run = await runCli([
        "node",
        "--listen",
        `127.0.0.1:${port}`,
        "--api",
        "127.0.0.1:0",
        "--data",
        path.join(directory.path, "busy"),
      ]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      const api = await runCli([
        "node",
        "--listen",
        "127.0.0.1:0",
        "--api",
        `127.0.0.1:${port}`,
        "--data",
        path.join(directory.path, "busy2"),
      ]);
      assert.equal(api.code, 2);
      assert.match(api.stderr, new RegExp(`API port ${port} .* already in use`));
    } finally {
      blocker.close();
    }
  });

  it("refuses a data directory that belongs to another node or cluster, and leaves it intact", async () => {
    const data = path.join(directory.path, "owned");
    mkdirSync(data, { recursive: true });
    const identity = JSON.stringify({
      formatVersion: 1,
      nodeId: "n7",
      clusterId: "prod",
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    writeFileSync(path.join(data, "brigade-node.json"), identity);
    const wrongId = await runCli([
      "node",
      "--id",
      "n1",
      "--cluster-id",
      "prod",
      "--data",
      data,
      "--listen",
      "127.0.0.1:0",
      "--api",
      "127.0.0.1:0",
    ]);
    assert.equal(wrongId.code, 2);
    assert.match(wrongId.stderr, /belongs to node "n7" of cluster "prod"/);
    const wrongCluster = await runCli([
      "node",
      "--id",
      "n7",
      "--cluster-id",
      "test",
      "--data",
      data,
      "--listen",
      "127.0.0.1:0",
      "--api",
      "127.0.0.1:0",
    ]);
    assert.equal(wrongCluster.code, 2);
    const { readFileSync } = await import("node:fs");
    assert.equal(readFileSync(path.join(data, "brigade-node.json"), "utf8"), identity);
  });

  it("takes settings from flags over BRIGADE_* env over the config file, and serves status and metrics", async () => {
    const file = path.join(directory.path, "config.json");
    writeFileSync(
      file,
      JSON.stringify({ clusterId: "from-file", id: "file-node", logLevel: "warn" }),
    );
    const data = (name: string) => path.join(directory.path, name);

    const fromFile = await startNode(["--config", file, "--data", data("d1")]);
    const status1 = (await getJson(`http://${fromFile.api}/v1/status`)).body as {
      id: string;
      clusterId: string;
    };
    assert.deepEqual([status1.id, status1.clusterId], ["file-node", "from-file"]);
    await fromFile.node.stop();

    const fromEnv = await startNode(["--config", file, "--data", data("d2")], {
      BRIGADE_CLUSTER_ID: "from-env",
    });
    const status2 = (await getJson(`http://${fromEnv.api}/v1/status`)).body as {
      id: string;
      clusterId: string;
    };
    assert.deepEqual([status2.id, status2.clusterId], ["file-node", "from-env"]);
    await fromEnv.node.stop();

    const fromFlag = await startNode(
      ["--config", file, "--data", data("d3"), "--cluster-id", "from-flag"],
      { BRIGADE_CLUSTER_ID: "from-env" },
    );
    const status = await runCli(["status", "--json", "--api", fromFlag.api]);
    assert.equal(status.code, 0);
    const parsed = JSON.parse(status.stdout) as {
      id: string;
      clusterId: string;
      uptimeMs: number;
      peers: unknown[];
    };
    assert.deepEqual([parsed.id, parsed.clusterId], ["file-node", "from-flag"]);
    assert.equal(typeof parsed.uptimeMs, "number");
    assert.deepEqual(parsed.peers, []);

    const human = await runCli(["status", "--api", fromFlag.api]);
    assert.match(human.stdout, /node\s+file-node \(cluster from-flag/);

    const metrics = await fetch(`http://${fromFlag.api}/metrics`);
    assert.match(String(metrics.headers.get("content-type")), /text\/plain/);
    const text = await metrics.text();
    assert.match(text, /brigade_transport_frames_sent_total\{node="file-node"\} \d+/);
    assert.match(text, /process_cpu_seconds_total/);

    const stopped = await fromFlag.node.stop("SIGTERM");
    assert.equal(stopped.code, 0);
  });

  it("status against a node that is not there fails with exit code 1", async () => {
    const port = await freePort();
    const run = await runCli(["status", "--api", `127.0.0.1:${port}`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot reach/);
  });
});
