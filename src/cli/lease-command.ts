/** @module `brigade lease`: grant, keep alive, inspect and revoke leases of a keyspace. */
import type { Command } from "commander";
import type { Lease } from "../client/types.js";
import { CliError } from "./cli-error.js";
import { formatDuration } from "./format.js";
import {
  type ClientCliOptions,
  clientOptions,
  onInterrupt,
  optionsOf,
  parseInteger,
  printJson,
  withClient,
} from "./kv-command.js";

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "10s", "500ms", "1.5m", "2h"; a bare number is seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = match
    ? Math.round(Number(match[1]) * (unitMs[match[2] ?? "s"] as number))
    : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0)
    throw new CliError(`${flag} must be a duration like 10s, 500ms, 2m or 1h, got "${text}"`, 2);
  return ms;
}

function leaseRef(id: string, key: string | undefined): Lease | number {
  const lease = parseInteger(id, "<id>", 1);
  return key === undefined ? lease : { id: lease, ttlMs: 0, key };
}

function seconds(ms: number): string {
  return ms < 60_000 && ms % 1000 !== 0 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms);
}

export function registerLeaseCommands(program: Command): void {
  const lease = program
    .command("lease")
    .description(
      "leases of a keyspace: keys attached to a lease are deleted when it is revoked or expires",
    );

  clientOptions(
    lease
      .command("grant")
      .description(
        "grant a lease; it lives on the shard of --key (shard 0 without): attach only keys of that shard (same {hash tag})",
      )
      .argument("<keyspace>")
      .argument("<ttl>", "time to live, e.g. 10s, 500ms, 2m (a bare number is seconds)")
      .option("--key <k>", "place the lease on this key's shard"),
    "print the lease as JSON",
  ).action(async (keyspace: string, ttl: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions & { key?: string }>(command);
    const ttlMs = parseDuration(ttl, "<ttl>");
    await withClient(options, async (client) => {
      const granted = await client
        .keyspace(keyspace)
        .leases.grant(ttlMs, options.key === undefined ? {} : { key: options.key });
      if (options.json) printJson({ lease: granted.id, ttlMs: granted.ttlMs });
      else process.stdout.write(`lease ${granted.id} granted with TTL ${seconds(granted.ttlMs)}\n`);
    });
  });

  clientOptions(
    lease
      .command("keepalive")
      .description("keep a lease alive until interrupted (a keep-alive every third of its TTL)")
      .argument("<keyspace>")
      .argument("<id>", "lease id")
      .option("--once", "send one keep-alive and exit")
      .option("--interval <duration>", "time between keep-alives (default: a third of the TTL)")
      .option("--key <k>", "a key on the lease's shard (routes straight to its leader)"),
    "print one JSON line per keep-alive",
  ).action(async (keyspace: string, id: string, _o, command: Command) => {
    const options = optionsOf<
      ClientCliOptions & { once?: boolean; interval?: string; key?: string }
    >(command);
    const ref = leaseRef(id, options.key);
    const intervalMs =
      options.interval === undefined ? undefined : parseDuration(options.interval, "--interval");
    const print = (renewed: Lease) => {
      if (options.json) printJson({ lease: renewed.id, ttlMs: renewed.ttlMs });
      else process.stdout.write(`lease ${renewed.id} kept alive, TTL ${seconds(renewed.ttlMs)}\n`);
    };
    await withClient(options, async (client) => {
      const leases = client.keyspace(keyspace).leases;
      if (options.once) {
        print(await leases.keepAlive(ref));
        return;
      }
      const keeper = leases.keepAliveLoop(ref, intervalMs === undefined ? {} : { intervalMs });
      const removeHandlers = onInterrupt(() => keeper.close());
      try {
        for await (const renewed of keeper) print(renewed);
      } finally {
        removeHandlers();
      }
    });
  });

  clientOptions(
    lease
      .command("get")
      .description("print a lease's TTL, time remaining and attached keys")
      .argument("<keyspace>")
      .argument("<id>", "lease id")
      .option("--key <k>", "a key on the lease's shard (routes straight to its leader)"),
    "print the lease as JSON",
  ).action(async (keyspace: string, id: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions & { key?: string }>(command);
    const ref = leaseRef(id, options.key);
    await withClient(options, async (client) => {
      const info = await client.keyspace(keyspace).leases.get(ref);
      if (options.json) {
        printJson({
          lease: info.id,
          ttlMs: info.ttlMs,
          remainingMs: info.remainingMs,
          keys: info.keys,
        });
        return;
      }
      process.stdout.write(
        `lease ${info.id}: TTL ${seconds(info.ttlMs)}, remaining ${seconds(info.remainingMs)}, ${info.keys.length} key${info.keys.length === 1 ? "" : "s"}${info.keys.length > 0 ? `: ${info.keys.join(", ")}` : ""}\n`,
      );
    });
  });

  clientOptions(
    lease
      .command("revoke")
      .description("revoke a lease now, deleting its keys")
      .argument("<keyspace>")
      .argument("<id>", "lease id")
      .option("--key <k>", "a key on the lease's shard (routes straight to its leader)"),
    "print the result as JSON",
  ).action(async (keyspace: string, id: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions & { key?: string }>(command);
    const ref = leaseRef(id, options.key);
    await withClient(options, async (client) => {
      const result = await client.keyspace(keyspace).leases.revoke(ref);
      if (options.json) printJson(result);
      else
        process.stdout.write(
          `lease ${typeof ref === "number" ? ref : ref.id} revoked (revision ${result.revision})\n`,
        );
    });
  });
}
