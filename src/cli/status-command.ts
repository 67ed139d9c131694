/** @module `brigade status` and `brigade ping`: what one node says about itself and its peers. */
import type { Command } from "commander";
import type { NodeStatus } from "../node/api.js";
import { formatDuration, table } from "./format.js";
import { apiBase, callApi } from "./http.js";
import { apiOption } from "./options.js";

export function registerStatusCommands(program: Command): void {
  program
    .command("status")
    .description("print a node's identity, uptime and connected peers")
    .addOption(apiOption())
    .option("--json", "print the status as JSON")
    .action(async (options: { api: string; json?: boolean }) => {
      const status = (await callApi(apiBase(options.api), "GET", "/v1/status")) as NodeStatus;
      if (options.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      const now = Date.now();
      const lines = [
        `node     ${status.id} (cluster ${status.clusterId}, pid ${status.pid})`,
        `uptime   ${formatDuration(status.uptimeMs)}`,
        `peer     ${status.advertise}   api ${status.api}`,
        `data     ${status.dataDir}`,
        `peers    ${status.peers.length} connected of ${status.knownPeers.length} known`,
      ];
      const rows = status.knownPeers.map((peer) => [
        `  ${peer.id ?? "?"}`,
        peer.address,
        peer.connected
          ? `connected ${formatDuration(now - peer.sinceMs)}`
          : `down ${formatDuration(now - peer.sinceMs)}`,
      ]);
      process.stdout.write(`${lines.join("\n")}\n${rows.length ? `${table(rows)}\n` : ""}`);
    });

  program
    .command("ping")
    .description("send round trips from a node to one of its peers over the node-to-node transport")
    .argument("<peer>", "peer node id")
    .addOption(apiOption())
    .option("--count <n>", "round trips to send (1..1000)", "5")
    .option("--timeout-ms <ms>", "deadline of each round trip", "1000")
    .option("--json", "print the result as JSON")
    .action(
      async (
        peer: string,
        options: { api: string; count: string; timeoutMs: string; json?: boolean },
      ) => {
        const query = `count=${encodeURIComponent(options.count)}&timeoutMs=${encodeURIComponent(options.timeoutMs)}`;
        const result = (await callApi(
          apiBase(options.api),
          "POST",
          `/v1/peers/${encodeURIComponent(peer)}/ping?${query}`,
        )) as {
          sent: number;
          ok: number;
          failed: number;
          errors: Record<string, number>;
          latencyMs: { min: number; p50: number; max: number } | null;
        };
        if (options.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        } else {
          const latency = result.latencyMs
            ? `latency min/p50/max ${result.latencyMs.min.toFixed(2)}/${result.latencyMs.p50.toFixed(2)}/${result.latencyMs.max.toFixed(2)} ms`
            : "no replies";
          const errors = Object.entries(result.errors)
            .map(([code, count]) => `${code}×${count}`)
            .join(", ");
          process.stdout.write(
            `${peer}: ${result.ok}/${result.sent} ok, ${latency}${errors ? `; errors: ${errors}` : ""}\n`,
          );
        }
        if (result.failed > 0) process.exitCode = 1;
      },
    );
}
