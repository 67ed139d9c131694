/** @module `brigade local`: control the nodes of a cluster started by `brigade up` (through its supervisor). */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { ManagedNodeInfo } from "../supervisor/supervisor.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { callApi } from "./http.js";

function controlUrl(dir: string): string {
  const file = path.resolve(dir, "supervisor.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { control: string }).control;
  } catch {
    throw new CliError(
      `no running \`brigade up\` found (${file} is missing); start one or pass --dir`,
      1,
    );
  }
}

export function registerLocalCommands(program: Command): void {
  const local = program
    .command("local")
    .description("control the nodes of a local cluster started by `brigade up`");
  local
    .command("list")
    .description("list the supervised nodes")
    .option("--dir <path>", "the `brigade up` directory", ".brigade")
    .option("--json", "print as JSON")
    .action(async (options: { dir: string; json?: boolean }) => {
      const nodes = (await callApi(controlUrl(options.dir), "GET", "/nodes")) as ManagedNodeInfo[];
      if (options.json) process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
      else
        process.stdout.write(
          `${table(nodes.map((node) => [node.id, node.state, `pid ${node.pid ?? "-"}`, `api ${node.api}`, node.lastExit ?? ""]))}\n`,
        );
    });
  local
    .command("add")
    .description(
      "start one more node: it joins the cluster, outside the register's Raft group until added (brigade raft member add-learner)",
    )
    .option("--dir <path>", "the `brigade up` directory", ".brigade")
    .option("--json", "print the new node as JSON")
    .action(async (options: { dir: string; json?: boolean }) => {
      const node = (await callApi(
        controlUrl(options.dir),
        "POST",
        "/nodes",
        undefined,
        30_000,
      )) as ManagedNodeInfo;
      if (options.json) process.stdout.write(`${JSON.stringify(node, null, 2)}\n`);
      else process.stdout.write(`${node.id}: ${node.state} (pid ${node.pid}, api ${node.api})\n`);
    });
  local
    .command("partition")
    .description(
      "cut the network between two nodes, both directions (heal with `brigade local heal`)",
    )
    .argument("<a>", "node id")
    .argument("<b>", "node id")
    .option("--dir <path>", "the `brigade up` directory", ".brigade")
    .action(async (a: string, b: string, options: { dir: string }) => {
      await callApi(controlUrl(options.dir), "POST", "/faults", {
        from: a,
        to: b,
        rule: { partitioned: true },
      });
      process.stdout.write(`partitioned ${a} from ${b}\n`);
    });
  local
    .command("heal")
    .description(
      "remove every injected network and clock fault on every node and resume paused nodes",
    )
    .option("--dir <path>", "the `brigade up` directory", ".brigade")
    .action(async (options: { dir: string }) => {
      await callApi(controlUrl(options.dir), "DELETE", "/faults");
      process.stdout.write("healed\n");
    });
  const describe: Record<string, string> = {
    kill: "SIGKILL a node",
    pause: "SIGSTOP a node",
    resume: "SIGCONT a paused node",
    restart: "start a node again (same id, ports and data), killing it first if it runs",
    stop: "stop a node gracefully (SIGTERM)",
  };
  for (const [action, description] of Object.entries(describe)) {
    local
      .command(action)
      .description(description)
      .argument("<node>", "node id, e.g. n2")
      .option("--dir <path>", "the `brigade up` directory", ".brigade")
      .option("--json", "print the node's new state as JSON")
      .action(async (id: string, options: { dir: string; json?: boolean }) => {
        const node = (await callApi(
          controlUrl(options.dir),
          "POST",
          `/nodes/${encodeURIComponent(id)}/${action}`,
          undefined,
          30_000,
        )) as ManagedNodeInfo;
        if (options.json) process.stdout.write(`${JSON.stringify(node, null, 2)}\n`);
        else
          process.stdout.write(
            `${node.id}: ${node.state}${node.pid ? ` (pid ${node.pid})` : ""}\n`,
          );
      });
  }
}
