/** @module `brigade fault`: inject and heal network faults on one node's real traffic. */
import type { Command } from "commander";
import type { LinkFault } from "../transport/faults.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { apiBase, callApi } from "./http.js";
import { apiOption } from "./options.js";

function number(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.replace(/%$/, "")) / (text.endsWith("%") ? 100 : 1);
  if (!Number.isFinite(value) || value < 0 || value > max)
    throw new CliError(`--${name} must be a number in 0..${max}, got "${text}"`, 2);
  return value;
}

export function registerFaultCommands(program: Command): void {
  const fault = program
    .command("fault")
    .description("inject network faults between a node and its peers (acts on real traffic)");
  fault
    .command("set")
    .description(
      "add a fault on the link from the node to <peer> (partition blocks both directions)",
    )
    .argument("<peer>", "peer node id")
    .addOption(apiOption())
    .option("--drop <rate>", "drop this fraction of frames to the peer (0..1 or N%)")
    .option("--delay <ms>", "delay frames to the peer by this many milliseconds")
    .option("--jitter <ms>", "add up to this many random milliseconds of delay")
    .option("--duplicate <rate>", "send this fraction of frames twice (0..1 or N%)")
    .option("--partition", "block all traffic with the peer, both directions")
    .action(
      async (
        peer: string,
        options: {
          api: string;
          drop?: string;
          delay?: string;
          jitter?: string;
          duplicate?: string;
          partition?: boolean;
        },
      ) => {
        const rule: Partial<LinkFault> = {
          ...(options.drop === undefined ? {} : { dropRate: number(options.drop, "drop", 1) }),
          ...(options.delay === undefined
            ? {}
            : { delayMs: number(options.delay, "delay", 600_000) }),
          ...(options.jitter === undefined
            ? {}
            : { jitterMs: number(options.jitter, "jitter", 600_000) }),
          ...(options.duplicate === undefined
            ? {}
            : { duplicateRate: number(options.duplicate, "duplicate", 1) }),
          ...(options.partition ? { partitioned: true } : {}),
        };
        if (Object.keys(rule).length === 0)
          throw new CliError(
            "give at least one of --drop, --delay, --jitter, --duplicate, --partition",
            2,
          );
        const result = await callApi(
          apiBase(options.api),
          "PUT",
          `/v1/faults/${encodeURIComponent(peer)}`,
          rule,
        );
        process.stdout.write(`${JSON.stringify(result)}\n`);
      },
    );
  fault
    .command("list")
    .description("list the faults in force on the node")
    .addOption(apiOption())
    .option("--json", "print as JSON")
    .action(async (options: { api: string; json?: boolean }) => {
      const result = (await callApi(apiBase(options.api), "GET", "/v1/faults")) as {
        rules: Record<string, LinkFault>;
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const rows = Object.entries(result.rules).map(([peer, rule]) => [
        peer,
        rule.partitioned ? "partitioned" : "",
        rule.dropRate ? `drop ${rule.dropRate}` : "",
        rule.delayMs || rule.jitterMs ? `delay ${rule.delayMs}ms±${rule.jitterMs}` : "",
        rule.duplicateRate ? `duplicate ${rule.duplicateRate}` : "",
      ]);
      process.stdout.write(rows.length === 0 ? "no faults\n" : `${table(rows)}\n`);
    });
  fault
    .command("heal")
    .description("remove the faults toward one peer, or all faults")
    .argument("[peer]", "peer node id (default: all)")
    .addOption(apiOption())
    .action(async (peer: string | undefined, options: { api: string }) => {
      const result = await callApi(
        apiBase(options.api),
        "DELETE",
        peer ? `/v1/faults/${encodeURIComponent(peer)}` : "/v1/faults",
      );
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}
