/**
 * @module `brigade kv`: put, get, del, scan, txn and watch on a keyspace of the key-value
 * store, through the client library. Also the helpers the `keyspace` and `lease` commands
 * share: the client options (--api, which may list several nodes, --timeout-ms, --json) and
 * turning client errors into one stderr line with exit code 1 (2 for InvalidArgument).
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { type BrigadeClient, connect } from "../client/client.js";
import { type KeyValue, utf8OrNull } from "../client/codec.js";
import { CompareFailedError, ServerError } from "../client/errors.js";
import type { TxnCompare, TxnOp, TxnRequest } from "../client/types.js";
import { BrigadeError } from "../lib/errors.js";
import { CliError } from "./cli-error.js";
import { apiOption } from "./options.js";

export interface ClientCliOptions {
  api: string;
  timeoutMs?: string;
  json?: boolean;
}

/** Adds --api, --timeout-ms and --json to a command that talks to the store. */
export function clientOptions(command: Command, json = "print the result as JSON"): Command {
  return command
    .addOption(apiOption())
    .option("--timeout-ms <ms>", "deadline of each request, retries included", "10000")
    .option("--json", json);
}

/** Options of the action's command, including any inherited from parents. */
export function optionsOf<T>(command: Command): T {
  return command.optsWithGlobals() as T;
}

export function parseInteger(text: string, flag: string, minimum = 0): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum)
    throw new CliError(`${flag} must be an integer >= ${minimum}, got "${text}"`, 2);
  return value;
}

/** Runs `run` with a client for --api (comma-separated addresses allowed), closing it after. */
export async function withClient<T>(
  options: ClientCliOptions,
  run: (client: BrigadeClient) => Promise<T>,
): Promise<T> {
  const deadlineMs = parseInteger(options.timeoutMs ?? "10000", "--timeout-ms", 1);
  const nodes = options.api
    .split(",")
    .map((node) => node.trim())
    .filter((node) => node.length > 0);
  if (nodes.length === 0) throw new CliError("--api needs at least one host:port", 2);
  const client = await connect({ nodes, deadlineMs });
  try {
    return await run(client);
  } catch (error) {
    throw cliError(error);
  } finally {
    client.close();
  }
}

/** A client error as the CLI reports it: "Code: message", exit 1 (2 for a bad argument). */
export function cliError(error: unknown): unknown {
  if (!(error instanceof BrigadeError)) return error;
  const code = error instanceof ServerError && error.code === "RemoteError" ? null : error.code;
  const usage = error.code === "InvalidArgument" || error.code === "InvalidConfig";
  let message = code === null ? error.message : `${code}: ${error.message}`;
  if (error instanceof CompareFailedError)
    message +=
      error.current === null
        ? " (the key does not exist)"
        : ` (current: ${describe(error.current)})`;
  return new CliError(message, usage ? 2 : 1);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A value for a line of text: the text when it is UTF-8, else "base64:" and the bytes in base64. */
export function displayValue(bytes: Uint8Array): string {
  const text = utf8OrNull(bytes);
  return text ?? `base64:${Buffer.from(bytes).toString("base64")}`;
}

function describe(kv: KeyValue): string {
  const shown = displayValue(kv.value);
  const value = shown.length > 60 ? `${shown.slice(0, 57)}...` : shown;
  return `version ${kv.version}, mod revision ${kv.modRevision}, value ${JSON.stringify(value)}`;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Stops `stop` on SIGINT/SIGTERM; returns a function that removes the handlers. */
export function onInterrupt(stop: () => void): () => void {
  const handler = () => stop();
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.removeListener("SIGINT", handler);
    process.removeListener("SIGTERM", handler);
  };
}

interface PutCliOptions extends ClientCliOptions {
  lease?: string;
  ifVersion?: string;
  ifModRevision?: string;
  ifValue?: string;
  ifAbsent?: boolean;
  requestId?: string;
}

interface TxnFileOp {
  op?: unknown;
  key?: unknown;
  value?: unknown;
  encoding?: unknown;
  lease?: unknown;
  target?: unknown;
}

function fileValue(entry: TxnFileOp, where: string): string | Uint8Array {
  if (typeof entry.value !== "string") throw new CliError(`${where}: value must be a string`, 2);
  if (entry.encoding === "base64") return new Uint8Array(Buffer.from(entry.value, "base64"));
  if (entry.encoding !== undefined && entry.encoding !== "utf8")
    throw new CliError(`${where}: encoding must be "utf8" or "base64"`, 2);
  return entry.value;
}

/** A transaction in the API's JSON form (values with an optional encoding) → the client's. */
export function txnFromJson(text: string, source: string): TxnRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${source} is not JSON: ${(error as Error).message}`, 2);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new CliError(`${source} must hold an object {compare, success, failure}`, 2);
  const body = parsed as Record<string, unknown>;
  const list = (name: string): TxnFileOp[] => {
    const value = body[name];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new CliError(`${source}: ${name} must be an array`, 2);
    return value.map((entry, index) => {
      if (
        typeof entry !== "object" ||
        entry === null ||
        typeof (entry as TxnFileOp).key !== "string"
      )
        throw new CliError(`${source}: ${name}[${index}] must be an object with a string key`, 2);
      return entry as TxnFileOp;
    });
  };
  const op = (entry: TxnFileOp, where: string): TxnOp => {
    const key = entry.key as string;
    switch (entry.op) {
      case "put":
        return {
          op: "put",
          key,
          value: fileValue(entry, where),
          ...(typeof entry.lease === "number" && entry.lease > 0 ? { lease: entry.lease } : {}),
        };
      case "delete":
        return { op: "delete", key };
      case "get":
        return { op: "get", key };
      default:
        throw new CliError(`${where}: op must be "put", "delete" or "get"`, 2);
    }
  };
  return {
    compare: list("compare").map((entry, index): TxnCompare => {
      const where = `${source}: compare[${index}]`;
      const value =
        entry.target === "value"
          ? fileValue(entry, where)
          : typeof entry.value === "number"
            ? entry.value
            : Number.NaN;
      if (typeof value === "number" && !Number.isFinite(value))
        throw new CliError(
          `${where}: value must be a number for target ${String(entry.target)}`,
          2,
        );
      return {
        key: entry.key as string,
        target: entry.target as TxnCompare["target"],
        op: (entry as { op?: unknown }).op as TxnCompare["op"],
        value,
      };
    }),
    success: list("success").map((entry, index) => op(entry, `${source}: success[${index}]`)),
    failure: list("failure").map((entry, index) => op(entry, `${source}: failure[${index}]`)),
  };
}

export function registerKvCommands(program: Command): void {
  const kv = program
    .command("kv")
    .description(
      "read and write keys of a keyspace in the strongly consistent key-value store (put, get, del, scan, txn, watch)",
    );

  clientOptions(
    kv
      .command("put")
      .description(
        'write a key; the value comes from the argument, or stdin when omitted or "-" (bytes as they are)',
      )
      .argument("<keyspace>")
      .argument("<key>")
      .argument("[value]", 'the value (text), or "-" for stdin')
      .option("--lease <id>", "attach the key to this lease (deleted when it ends)")
      .option("--if-version <n>", "write only if the key's version is n (0 = absent)")
      .option("--if-mod-revision <n>", "write only if the key was last modified at revision n")
      .option("--if-value <text>", "write only if the key holds this value")
      .option("--if-absent", "write only if the key does not exist")
      .option(
        "--request-id <id>",
        "idempotency key: a retried write with the same id applies once",
      ),
    "print the result (revision, shard, previous record) as JSON",
  ).action(
    async (keyspace: string, key: string, value: string | undefined, _o, command: Command) => {
      const options = optionsOf<PutCliOptions>(command);
      const putOptions = {
        ...(options.lease === undefined
          ? {}
          : { lease: parseInteger(options.lease, "--lease", 1) }),
        ...(options.ifVersion === undefined
          ? {}
          : { ifVersion: parseInteger(options.ifVersion, "--if-version") }),
        ...(options.ifModRevision === undefined
          ? {}
          : { ifModRevision: parseInteger(options.ifModRevision, "--if-mod-revision") }),
        ...(options.ifValue === undefined ? {} : { ifValue: options.ifValue }),
        ...(options.ifAbsent ? { ifAbsent: true } : {}),
        ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
      };
      let bytes: string | Uint8Array;
      if (value === undefined || value === "-") {
        if (value === undefined && process.stdin.isTTY)
          throw new CliError('give the value as an argument, or pipe it on stdin (or pass "-")', 2);
        bytes = new Uint8Array(await readStdin());
      } else {
        bytes = value;
      }
      await withClient(options, async (client) => {
        try {
          const result = await client.keyspace(keyspace).put(key, bytes, putOptions);
          if (options.json) printJson({ succeeded: true, ...result });
          else process.stdout.write(`OK (revision ${result.revision}, shard ${result.shard})\n`);
        } catch (error) {
          if (error instanceof CompareFailedError && options.json)
            printJson({ succeeded: false, current: error.current });
          throw error;
        }
      });
    },
  );

  clientOptions(
    kv
      .command("get")
      .description(
        "print a key's value (the whole record with --json); exit 1 if the key does not exist",
      )
      .argument("<keyspace>")
      .argument("<key>")
      .option("--serializable", "read from a replica without a quorum round trip (may be stale)")
      .option("--raw", "write the value's bytes exactly, without a newline"),
    "print the record (key, value, encoding, version, revisions, lease) as JSON",
  ).action(async (keyspace: string, key: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions & { serializable?: boolean; raw?: boolean }>(
      command,
    );
    await withClient(options, async (client) => {
      const record = await client
        .keyspace(keyspace)
        .get(key, options.serializable ? { consistency: "serializable" } : {});
      if (record === null)
        throw new CliError(`NotFound: no key ${JSON.stringify(key)} in keyspace ${keyspace}`, 1);
      if (options.json) printJson(record);
      else if (options.raw) process.stdout.write(record.value);
      else process.stdout.write(Buffer.concat([record.value, Buffer.from("\n")]));
    });
  });

  clientOptions(
    kv
      .command("del")
      .alias("delete")
      .description("delete a key (succeeds when it does not exist, printing so)")
      .argument("<keyspace>")
      .argument("<key>")
      .option("--if-version <n>", "delete only if the key's version is n")
      .option("--if-mod-revision <n>", "delete only if the key was last modified at revision n")
      .option("--if-value <text>", "delete only if the key holds this value")
      .option(
        "--request-id <id>",
        "idempotency key: a retried delete with the same id applies once",
      ),
  ).action(async (keyspace: string, key: string, _o, command: Command) => {
    const options = optionsOf<PutCliOptions>(command);
    await withClient(options, async (client) => {
      try {
        const result = await client.keyspace(keyspace).delete(key, {
          ...(options.ifVersion === undefined
            ? {}
            : { ifVersion: parseInteger(options.ifVersion, "--if-version") }),
          ...(options.ifModRevision === undefined
            ? {}
            : { ifModRevision: parseInteger(options.ifModRevision, "--if-mod-revision") }),
          ...(options.ifValue === undefined ? {} : { ifValue: options.ifValue }),
          ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
        });
        if (options.json) printJson(result);
        else
          process.stdout.write(
            result.deleted
              ? `deleted (revision ${result.revision}, shard ${result.shard})\n`
              : `not found: nothing deleted\n`,
          );
      } catch (error) {
        if (error instanceof CompareFailedError && options.json)
          printJson({ succeeded: false, current: error.current });
        throw error;
      }
    });
  });

  clientOptions(
    kv
      .command("scan")
      .description(
        'list keys in key order across shards, one "key<TAB>value" line each (values that are not UTF-8 as base64:...)',
      )
      .argument("<keyspace>")
      .option("--prefix <p>", "only keys starting with p")
      .option("--start <s>", "first key (inclusive)")
      .option("--end <e>", "end key (exclusive)")
      .option("--limit <n>", "at most n keys")
      .option("--keys-only", "print keys without values")
      .option("--serializable", "read from replicas without a quorum round trip (may be stale)"),
    "print one JSON record per line (JSONL)",
  ).action(async (keyspace: string, _o, command: Command) => {
    const options = optionsOf<
      ClientCliOptions & {
        prefix?: string;
        start?: string;
        end?: string;
        limit?: string;
        keysOnly?: boolean;
        serializable?: boolean;
      }
    >(command);
    const limit =
      options.limit === undefined ? undefined : parseInteger(options.limit, "--limit", 1);
    await withClient(options, async (client) => {
      const items = client.keyspace(keyspace).scan({
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
        ...(options.start === undefined ? {} : { start: options.start }),
        ...(options.end === undefined ? {} : { end: options.end }),
        ...(limit === undefined ? {} : { limit }),
        ...(options.serializable ? { consistency: "serializable" as const } : {}),
      });
      for await (const item of items) {
        if (options.json) printJson(item);
        else if (options.keysOnly) process.stdout.write(`${item.key}\n`);
        else process.stdout.write(`${item.key}\t${displayValue(item.value)}\n`);
      }
    });
  });

  clientOptions(
    kv
      .command("txn")
      .description(
        "run a transaction from a JSON file {compare, success, failure} (the API's form); exit 1 when the compares fail",
      )
      .argument("<keyspace>")
      .option("--file <path>", 'the transaction ("-" or omitted: stdin)')
      .option(
        "--request-id <id>",
        "idempotency key: a retried transaction with the same id applies once",
      ),
    "print the result (succeeded, revision, shard, results) as JSON",
  ).action(async (keyspace: string, _o, command: Command) => {
    const options = optionsOf<ClientCliOptions & { file?: string; requestId?: string }>(command);
    const fromStdin = options.file === undefined || options.file === "-";
    if (fromStdin && options.file === undefined && process.stdin.isTTY)
      throw new CliError("give the transaction with --file, or pipe it on stdin", 2);
    let text: string;
    try {
      text = fromStdin
        ? (await readStdin()).toString("utf8")
        : readFileSync(options.file as string, "utf8");
    } catch (error) {
      throw new CliError(`cannot read ${options.file}: ${(error as Error).message}`, 2);
    }
    const request = txnFromJson(text, fromStdin ? "stdin" : (options.file as string));
    await withClient(options, async (client) => {
      const result = await client
        .keyspace(keyspace)
        .txn(request, options.requestId === undefined ? {} : { requestId: options.requestId });
      if (options.json) printJson(result);
      else {
        const ops = (result.succeeded ? request.success : request.failure) ?? [];
        const lines = [
          result.succeeded
            ? `SUCCESS (revision ${result.revision}, shard ${result.shard})`
            : `FAILURE: a compare did not hold; ran the failure ops (revision ${result.revision}, shard ${result.shard})`,
          ...result.results.map((entry, index) => {
            const key = ops[index]?.key ?? "?";
            switch (entry.op) {
              case "put":
                return `put ${key}`;
              case "delete":
                return `delete ${key}: ${entry.deleted ? "deleted" : "not found"}`;
              case "get":
                return `get ${key}: ${entry.kv === null ? "(not found)" : displayValue(entry.kv.value)}`;
            }
            return "";
          }),
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      if (!result.succeeded) process.exitCode = 1;
    });
  });

  clientOptions(
    kv
      .command("watch")
      .description(
        "print changes of a key or prefix as they happen, one line each, until interrupted (reconnects on its own)",
      )
      .argument("<keyspace>")
      .option("--key <k>", "watch this key")
      .option("--prefix <p>", "watch every key starting with p")
      .option("--from <token>", "resume after this event id (from a previous --json line's id)")
      .option("--count <n>", "exit after n events"),
    "print one JSON event per line (JSONL) with its resume id",
  ).action(async (keyspace: string, _o, command: Command) => {
    const options = optionsOf<
      ClientCliOptions & { key?: string; prefix?: string; from?: string; count?: string }
    >(command);
    if ((options.key === undefined) === (options.prefix === undefined))
      throw new CliError("give exactly one of --key or --prefix", 2);
    const count =
      options.count === undefined ? undefined : parseInteger(options.count, "--count", 1);
    await withClient(options, async (client) => {
      const watch = client
        .keyspace(keyspace)
        .watch(
          options.key !== undefined ? { key: options.key } : { prefix: options.prefix as string },
          options.from === undefined ? {} : { from: options.from },
        );
      let interrupted = false;
      const removeHandlers = onInterrupt(() => {
        interrupted = true;
        watch.close();
      });
      let seen = 0;
      try {
        for await (const event of watch) {
          if (options.json) printJson(event);
          else
            process.stdout.write(
              `${event.type} ${event.kv.key}${event.type === "put" ? ` ${displayValue(event.kv.value)}` : ""}  [revision ${event.revision}, shard ${event.shard}]\n`,
            );
          seen++;
          if (count !== undefined && seen >= count) break;
        }
      } finally {
        removeHandlers();
      }
      if (interrupted && !options.json && watch.lastId !== null)
        process.stderr.write(`resume with --from '${watch.lastId}'\n`);
    });
  });
}
