/** @module `brigade keyspace`: create, list, describe and drop keyspaces of the key-value store. */
import type { Command } from "commander";
import type { KeyspaceInfo } from "../client/types.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import {
  type ClientCliOptions,
  clientOptions,
  optionsOf,
  parseInteger,
  printJson,
  withClient,
} from "./kv-command.js";

function summary(info: KeyspaceInfo): string {
  return `${info.name}: ${info.consistency}, ${info.shards} shard${info.shards === 1 ? "" : "s"} × ${info.replicas} replica${info.replicas === 1 ? "" : "s"}, epoch ${info.epoch}, ${info.state}`;
}

export function registerKeyspaceCommands(program: Command): void {
  const keyspace = program
    .command("keyspace")
    .description("manage keyspaces of the key-value store: create, list, describe, drop");

  clientOptions(
    keyspace
      .command("create")
      .description("create a keyspace split into shards, each a Raft group of replicas")
      .argument("<name>", "1..63 characters: a-z, 0-9, '-' and '_'")
      .option("--consistency <level>", "consistency level (only strong is available)", "strong")
      .option("--shards <n>", "number of shards, 1..256", "16")
      .option("--replicas <n>", "replicas of each shard, 1..7", "3"),
    "print the keyspace (with its shard map) as JSON",
  ).action(async (name: string, _o, command: Command) => {
    const options = optionsOf<
      ClientCliOptions & { consistency: string; shards: string; replicas: string }
    >(command);
    const shards = parseInteger(options.shards, "--shards", 1);
    const replicas = parseInteger(options.replicas, "--replicas", 1);
    if (options.consistency !== "strong")
      throw new CliError(`--consistency must be "strong", got "${options.consistency}"`, 2);
    await withClient(options, async (client) => {
      const info = await client.keyspaces.create({
        name,
        consistency: "strong",
        shards,
        replicas,
      });
      if (options.json) printJson(info);
      else process.stdout.write(`created ${summary(info)}\n`);
    });
  });

  clientOptions(
    keyspace.command("list").description("list the keyspaces"),
    "print the keyspaces as JSON",
  ).action(async (_o, command: Command) => {
    const options = optionsOf<ClientCliOptions>(command);
    await withClient(options, async (client) => {
      const keyspaces = await client.keyspaces.list();
      if (options.json) {
        printJson({ keyspaces });
        return;
      }
      if (keyspaces.length === 0) {
        process.stdout.write("no keyspaces\n");
        return;
      }
      const rows = keyspaces.map((info) => [
        info.name,
        info.consistency,
        String(info.shards),
        String(info.replicas),
        String(info.epoch),
        info.state,
      ]);
      process.stdout.write(
        `${table([["NAME", "CONSISTENCY", "SHARDS", "REPLICAS", "EPOCH", "STATE"], ...rows])}\n`,
      );
    });
  });

  clientOptions(
    keyspace
      .command("describe")
      .description("print a keyspace's shard map: each shard's slots, replicas and leader")
      .argument("<name>"),
    "print the keyspace (with its shard map) as JSON",
  ).action(async (name: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions>(command);
    await withClient(options, async (client) => {
      const info = await client.keyspaces.describe(name);
      if (options.json) {
        printJson(info);
        return;
      }
      const rows = info.shardMap.map((shard) => [
        String(shard.shard),
        `${shard.slots[0]}-${shard.slots[1]}`,
        shard.replicas.join(","),
        shard.leader === null
          ? "-"
          : `${shard.leader}${shard.leaderApi === null ? "" : ` (${shard.leaderApi})`}`,
      ]);
      process.stdout.write(
        `${summary(info)}\n${table([["SHARD", "SLOTS", "REPLICAS", "LEADER"], ...rows])}\n`,
      );
    });
  });

  clientOptions(
    keyspace
      .command("drop")
      .description("drop a keyspace and delete all its keys")
      .argument("<name>"),
  ).action(async (name: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions>(command);
    await withClient(options, async (client) => {
      const result = await client.keyspaces.drop(name);
      if (options.json) printJson(result);
      else process.stdout.write(`dropped ${result.dropped}\n`);
    });
  });
}
