/**
 * @module The line protocol between the bench orchestrator and its child processes: the
 * orchestrator writes one JSON command per line on the child's stdin (`{id, cmd, ...}`); the
 * child writes one JSON line per event on stdout (`{type: "ready", ...}` once, then
 * `{type: "reply", id, ok, result | error}` per command). A child exits when its stdin
 * closes, so an orchestrator that dies leaves no load generator behind.
 */
import { createInterface } from "node:readline";

export interface ReadyMessage {
  readonly type: "ready";
  readonly [key: string]: unknown;
}
export interface ReplyMessage {
  readonly type: "reply";
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}
export type ChildMessage = ReadyMessage | ReplyMessage;

export type CommandHandler = (params: Record<string, unknown>) => unknown | Promise<unknown>;

/** What a `run` command asks a bench client to do. */
export interface RunParams {
  readonly inFlight: number;
  readonly payloadBytes: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export function writeMessage(message: ChildMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function positiveInteger(params: Record<string, unknown>, key: string, allowZero = false): number {
  const value = params[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1))
    throw new Error(
      `command field "${key}" must be a ${allowZero ? "non-negative" : "positive"} integer`,
    );
  return value;
}

export function parseRunParams(params: Record<string, unknown>): RunParams {
  return {
    inFlight: positiveInteger(params, "inFlight"),
    payloadBytes: positiveInteger(params, "payloadBytes"),
    warmupMs: positiveInteger(params, "warmupMs", true),
    durationMs: positiveInteger(params, "durationMs"),
  };
}

/**
 * Serves commands from stdin one at a time (runs must not overlap). `exit` or the end of
 * stdin calls `shutdown` and exits the process.
 */
export function serveCommands(
  handlers: Readonly<Record<string, CommandHandler>>,
  shutdown: () => Promise<void>,
): void {
  let chain: Promise<void> = Promise.resolve();
  let exiting = false;
  const exit = () => {
    if (exiting) return;
    exiting = true;
    chain
      .then(shutdown)
      .catch((error: unknown) => process.stderr.write(`shutdown failed: ${String(error)}\n`))
      .finally(() => process.exit(0));
  };
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    let command: Record<string, unknown>;
    try {
      command = JSON.parse(line) as Record<string, unknown>;
    } catch {
      process.stderr.write(`ignoring a line that is not JSON: ${line}\n`);
      return;
    }
    const id = typeof command.id === "number" ? command.id : -1;
    const name = String(command.cmd);
    if (name === "exit") {
      writeMessage({ type: "reply", id, ok: true, result: null });
      exit();
      return;
    }
    chain = chain.then(async () => {
      const handler = handlers[name];
      try {
        if (handler === undefined) throw new Error(`unknown command "${name}"`);
        const result = await handler(command);
        writeMessage({ type: "reply", id, ok: true, result });
      } catch (error) {
        writeMessage({
          type: "reply",
          id,
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
  });
  lines.on("close", exit);
}

/** The process's CPU time so far, in microseconds: total (user + system) and system alone. */
export function cpuTimes(): { cpuMicros: number; cpuSystemMicros: number } {
  const usage = process.cpuUsage();
  return { cpuMicros: usage.user + usage.system, cpuSystemMicros: usage.system };
}

/** CPU used since `before` (from `cpuTimes()`), over warmup + window + drain. */
export function cpuSince(before: { cpuMicros: number; cpuSystemMicros: number }): {
  cpuMicros: number;
  cpuSystemMicros: number;
} {
  const now = cpuTimes();
  return {
    cpuMicros: now.cpuMicros - before.cpuMicros,
    cpuSystemMicros: now.cpuSystemMicros - before.cpuSystemMicros,
  };
}
