// Goal: service discovery works across real nodes — a node advertises zone, roles, tags and
// services from its config; another node finds the healthy instances (filtered by tags);
// an HTTP health check that starts failing takes the instance out of `find` without marking
// the node dead, and recovery brings it back. Method: two `brigade node` processes joined by
// gossip, and a health endpoint this test controls.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CliProcess,
  freePort,
  getJson,
  runCli,
  temporaryDirectory,
  waitFor,
} from "../testkit/index.js";
import type { MemberView, ServiceInstance } from "./discovery.js";

const directory = temporaryDirectory();
const processes: CliProcess[] = [];
let healthy = true;
let healthServer: http.Server;
let api1 = "";
let api2 = "";

async function startNode(id: string, config: object): Promise<string> {
  const file = path.join(directory.path, `${id}.json`);
  writeFileSync(file, JSON.stringify(config));
  const api = `127.0.0.1:${await freePort()}`;
  const node = new CliProcess(
    ["node", "--config", file, "--api", api, "--data", path.join(directory.path, id)],
    {
      env: { BRIGADE_LOG_LEVEL: "warn", BRIGADE_MEMBERSHIP_PROFILE: "local" },
    },
  );
  processes.push(node);
  // Generous under a loaded CI machine; a node that exits (a port taken meanwhile, say)
  // fails at once with its own output instead of a bare timeout.
  let exited: string | null = null;
  void node.exited.then((exit) => {
    exited = `${id} exited (${exit.code ?? exit.signal}) before its API answered:\n${node.output}`;
  });
  await waitFor(
    `${id} API`,
    async () => {
      if (exited !== null) throw new Error(exited);
      return (await getJson(`http://${api}/v1/health`)).status === 200;
    },
    30_000,
  );
  return api;
}

async function find(api: string, query = ""): Promise<ServiceInstance[]> {
  return (await getJson(`http://${api}/v1/services/web${query}`)).body as ServiceInstance[];
}

before(async () => {
  healthServer = http.createServer((_request, response) => {
    response.statusCode = healthy ? 200 : 503;
    response.end(healthy ? "ok" : "sick");
  });
  await new Promise<void>((resolve) => healthServer.listen(0, "127.0.0.1", resolve));
  const healthUrl = `http://127.0.0.1:${(healthServer.address() as AddressInfo).port}/health`;
  const peerPort = await freePort();
  api1 = await startNode("web-1", {
    id: "web-1",
    listen: `127.0.0.1:${peerPort}`,
    zone: "z1",
    roles: ["frontend"],
    tags: { rack: "r1" },
    services: [
      {
        name: "web",
        port: 8080,
        tags: { version: "2" },
        check: { http: healthUrl, intervalMs: 200, timeoutMs: 500 },
      },
    ],
  });
  api2 = await startNode("db-1", {
    id: "db-1",
    listen: "127.0.0.1:0",
    join: [`127.0.0.1:${peerPort}`],
    services: "db:5432",
  });
});

after(async () => {
  await Promise.all(processes.map((node) => node.stop("SIGKILL")));
  healthServer?.close();
  directory.remove();
});

describe("discovery across real nodes", () => {
  it("gossips zone, roles, tags and services to other members", async () => {
    const view = await waitFor("db-1 to see web-1's services", async () => {
      const members = (await getJson(`http://${api2}/v1/members`)).body as MemberView[];
      const web = members.find((member) => member.id === "web-1");
      return web?.services.some((service) => service.name === "web") ? web : null;
    });
    assert.equal(view.zone, "z1");
    assert.deepEqual(view.roles, ["frontend"]);
    assert.equal(view.userTags.rack, "r1");
    assert.equal(view.api, api1);
  });

  it("finds the healthy instance from another node, filtered by tags", async () => {
    const instances = await waitFor("a passing web instance", async () =>
      (await find(api2)).length === 1 ? find(api2) : null,
    );
    assert.deepEqual(
      instances.map((instance) => [
        instance.nodeId,
        instance.host,
        instance.port,
        instance.status,
        instance.zone,
      ]),
      [["web-1", "127.0.0.1", 8080, "passing", "z1"]],
    );
    assert.equal((await find(api2, "?tag=version=2")).length, 1);
    assert.equal((await find(api2, "?tag=rack=r1")).length, 1, "node tags filter too");
    assert.equal((await find(api2, "?tag=version=3")).length, 0);
    const cli = await runCli(["services", "db", "--json", "--api", api1]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(
      (JSON.parse(cli.stdout) as ServiceInstance[]).map((instance) => [
        instance.nodeId,
        instance.port,
      ]),
      [["db-1", 5432]],
    );
  });

  it("a failing health check hides the instance but not the node; recovery restores it", async () => {
    healthy = false;
    await waitFor("web to drop out of find", async () => (await find(api2)).length === 0);
    const members = (await getJson(`http://${api2}/v1/members`)).body as MemberView[];
    assert.equal(members.find((member) => member.id === "web-1")?.state, "alive");
    const critical = await find(api2, "?includeCritical=true");
    assert.equal(critical[0]?.status, "critical");
    const none = await runCli(["services", "web", "--api", api2]);
    assert.equal(none.code, 1);
    healthy = true;
    await waitFor("web back in find", async () => (await find(api2)).length === 1);
  });
});
