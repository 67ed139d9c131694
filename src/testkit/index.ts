/**
 * @module Helpers for tests that use real sockets and real processes: waiting for a
 * condition with a deadline (never sleeping as synchronisation), temp directories, and
 * running the real `brigade` CLI as a child process that is always stopped by its PID.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import type { ManagedNodeInfo } from "../supervisor/supervisor.js";

export const repositoryRoot = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
);
export const brigadeBin = path.join(repositoryRoot, "bin", "brigade");

/** A logger that drops everything, for transports under test. */
export const silentLogger = pino({ level: "silent" });

/** Polls `condition` until it returns a truthy value or the deadline passes (then throws, naming `what`). */
export async function waitFor<T>(
  what: string,
  condition: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`,
  );
}

export function temporaryDirectory(prefix = "brigade-test-"): { path: string; remove: () => void } {
  const directory = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { path: directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `brigade <args>` to completion (killed after `timeoutMs`). */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [brigadeBin, ...args], {
      cwd: options.cwd ?? repositoryRoot,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running `brigade` process (a node, or `up`) whose output is collected. */
export class CliProcess {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [brigadeBin, ...args], {
      cwd: options.cwd ?? repositoryRoot,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (chunk) => (this.output += chunk));
    this.child.stderr?.on("data", (chunk) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Sends `signal` and waits for the exit; SIGKILLs after `graceMs`. */
  async stop(
    signal: NodeJS.Signals = "SIGTERM",
    graceMs = 10_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }
}

/** True while a process with this PID exists. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000), ...init });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: response.status, body };
}

/**
 * A cluster started through the real `brigade up` in a temp directory, for tests. `stop()`
 * SIGKILLs the supervisor and every node PID it ever saw (restarted ones too, via `track`),
 * then removes the directory.
 */
export class LocalCluster {
  readonly pids = new Set<number>();

  private constructor(
    readonly up: CliProcess,
    readonly dir: string,
    readonly nodes: ManagedNodeInfo[],
    private readonly removeDirectory: () => void,
  ) {
    for (const node of nodes) this.track(node.pid);
  }

  /** Starts `brigade up --nodes N --quiet` and waits until every node is running. */
  static async start(options: { nodes: number; env?: NodeJS.ProcessEnv }): Promise<LocalCluster> {
    const directory = temporaryDirectory();
    const dir = path.join(directory.path, "cluster");
    const up = new CliProcess(
      ["up", "--nodes", String(options.nodes), "--dir", dir, "--quiet"],
      options.env ? { env: options.env } : {},
    );
    const file = path.join(dir, "supervisor.json");
    try {
      const nodes = await waitFor(
        `${options.nodes} nodes running`,
        () => {
          if (!existsSync(file)) return null;
          const state = JSON.parse(readFileSync(file, "utf8")) as { nodes: ManagedNodeInfo[] };
          const running =
            state.nodes.length === options.nodes &&
            state.nodes.every((node) => node.state === "running");
          return running ? state.nodes : null;
        },
        30_000,
      );
      return new LocalCluster(up, dir, nodes, directory.remove);
    } catch (error) {
      await up.stop("SIGKILL");
      directory.remove();
      throw error;
    }
  }

  node(id: string): ManagedNodeInfo {
    const found = this.nodes.find((candidate) => candidate.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  api(id: string): string {
    return this.node(id).api;
  }

  /** Remembers a node PID (e.g. after `brigade local restart`) so `stop()` can clean it up. */
  track(pid: number | null): void {
    if (pid) this.pids.add(pid);
  }

  async stop(): Promise<void> {
    await this.up.stop("SIGKILL");
    for (const pid of this.pids) if (isProcessAlive(pid)) process.kill(pid, "SIGKILL");
    this.removeDirectory();
  }
}
