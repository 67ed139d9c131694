/**
 * @module `brigade placement` (where the store's replicas and leaders are, and moves in
 * progress) and `brigade node decommission <id>` (drain a node's replicas before removing it).
 */
import type { Command } from "commander";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { apiBase, callApi } from "./http.js";
import { apiOption } from "./options.js";

interface PlacementStatus {
  nodes: { id: string; state: string; replicas: number; leaders: number }[];
  moving: number;
  observedAt: string | null;
}

const statusOf = (api: string) =>
  callApi(apiBase(api), "GET", "/v1/placement") as Promise<PlacementStatus>;

function render(status: PlacementStatus): string {
  const rows = status.nodes.map((node) => [
    node.id,
    node.state,
    String(node.replicas),
    String(node.leaders),
  ]);
  return `${table([["NODE", "STATE", "REPLICAS", "LEADERS"], ...rows])}\n${status.moving} shard${status.moving === 1 ? "" : "s"} moving\n`;
}

export function registerPlacementCommands(program: Command): void {
  program
    .command("placement")
    .description("show replicas and leaders of the key-value store per node, and moves in progress")
    .addOption(apiOption())
    .option("--json", "print as JSON")
    .action(async (options: { api: string; json?: boolean }) => {
      const status = await statusOf(options.api);
      process.stdout.write(options.json ? `${JSON.stringify(status)}\n` : render(status));
    });

  const node = program.commands.find((command) => command.name() === "node");
  if (node === undefined) throw new Error("the node command must be registered first");
  node
    .command("decommission")
    .description(
      "move every shard replica and leadership off a node, so it can be stopped without losing redundancy",
    )
    .argument("<id>", "the node to drain")
    .addOption(apiOption())
    .option("--wait", "wait until the node holds no replica")
    .option("--timeout-ms <ms>", "how long --wait waits", "300000")
    .option("--json", "print the final placement as JSON")
    .action(
      async (
        id: string,
        options: { api: string; wait?: boolean; timeoutMs: string; json?: boolean },
        command: Command,
      ) => {
        // `brigade node` has an --api of its own (the address to serve on), which takes the flag.
        const parentApi = command.parent?.opts<{ api?: string }>().api;
        if (parentApi !== undefined) options.api = parentApi;
        await callApi(
          apiBase(options.api),
          "POST",
          `/v1/nodes/${encodeURIComponent(id)}/decommission`,
        );
        if (!options.wait) {
          process.stdout.write(
            options.json ? `${JSON.stringify({ decommissioning: id })}\n` : `${id}: draining\n`,
          );
          return;
        }
        const deadline = Date.now() + Number(options.timeoutMs);
        for (;;) {
          const status = await statusOf(options.api);
          const entry = status.nodes.find((candidate) => candidate.id === id);
          if (
            entry !== undefined &&
            entry.replicas === 0 &&
            entry.leaders === 0 &&
            status.moving === 0
          ) {
            process.stdout.write(
              options.json ? `${JSON.stringify(status)}\n` : `${id}: drained\n${render(status)}`,
            );
            return;
          }
          if (Date.now() > deadline)
            throw new CliError(
              `${id} still holds ${entry?.replicas ?? "?"} replicas after ${options.timeoutMs} ms`,
              1,
            );
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      },
    );
}
