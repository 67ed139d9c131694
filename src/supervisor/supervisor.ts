/**
 * @module The local supervisor behind `brigade up`: starts N node processes on loopback with
 * free ports and data under one directory, streams their logs with a prefix, and can kill
 * (SIGKILL), pause (SIGSTOP), resume (SIGCONT), stop and restart any one of them. It restarts
 * nothing by itself: a dead node stays dead until someone asks, so failures stay visible.
 *
 * Children are spawned with an IPC channel; a node exits when the channel closes, so the
 * cluster never outlives a supervisor that was itself killed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { BrigadeError } from "../lib/errors.js";
import type { LinkFault } from "../transport/faults.js";
import { formatLogLine, isImportantLogLine } from "./log-format.js";

export type ManagedNodeState = "starting" | "running" | "paused" | "stopped" | "exited";

export interface ManagedNodeInfo {
  readonly id: string;
  readonly listen: string;
  readonly api: string;
  readonly dataDir: string;
  readonly pid: number | null;
  readonly state: ManagedNodeState;
  /** How the last process ended, e.g. "signal SIGKILL" or "code 0". */
  readonly lastExit: string | null;
}

export interface SupervisorOptions {
  readonly nodes: number;
  /** Root of the nodes' data directories and of `supervisor.json`. */
  readonly dir: string;
  readonly clusterId: string;
  readonly logLevel: string;
  /** Where log lines and notices go (already formatted, prefixed with the node id). */
  /**
   * Where log lines and notices go. `important` marks what a quiet terminal still shows:
   * the supervisor's notices, warnings and errors, membership changes, and anything a node
   * printed that is not a structured log line (a startup error, say).
   */
  readonly output: (line: string, important: boolean) => void;
  /** Extra flags for every node, e.g. ["--idle-timeout-ms", "1000"]. */
  readonly nodeArgs?: readonly string[];
  /** How long to wait for a started node's API to answer. */
  readonly readyTimeoutMs?: number;
}

/** Most nodes `brigade up` starts: each is a process, and this machine has few cores. */
export const supervisorNodesMax = 64;

interface ManagedNode {
  readonly id: string;
  readonly listen: string;
  readonly api: string;
  readonly dataDir: string;
  child: ChildProcess | null;
  state: ManagedNodeState;
  lastExit: string | null;
}

const cliEntry = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");

export class Supervisor {
  private readonly nodes = new Map<string, ManagedNode>();
  private shuttingDown = false;
  private onChange: () => void = () => {};

  constructor(readonly options: SupervisorOptions) {
    if (
      !Number.isInteger(options.nodes) ||
      options.nodes < 1 ||
      options.nodes > supervisorNodesMax
    ) {
      throw new BrigadeError(
        "InvalidArgument",
        `--nodes must be an integer in 1..${supervisorNodesMax}, got ${options.nodes}`,
      );
    }
  }

  /** Allocates ports, starts every node and waits until each API answers. */
  async start(): Promise<ManagedNodeInfo[]> {
    mkdirSync(this.options.dir, { recursive: true });
    const ports = await freePorts(this.options.nodes * 2);
    for (let index = 0; index < this.options.nodes; index++) {
      const id = `n${index + 1}`;
      this.nodes.set(id, {
        id,
        listen: `127.0.0.1:${ports[index * 2]}`,
        api: `127.0.0.1:${ports[index * 2 + 1]}`,
        dataDir: path.resolve(this.options.dir, id),
        child: null,
        state: "stopped",
        lastExit: null,
      });
    }
    for (const node of this.nodes.values()) this.spawnNode(node);
    await Promise.all([...this.nodes.values()].map((node) => this.waitReady(node)));
    return this.list();
  }

  /**
   * Starts one more node (the next id) that joins the cluster's membership but is not a
   * founding voter of the register's Raft group: it waits outside the group until a leader
   * adds it (`POST /v1/raft/members`).
   */
  async add(): Promise<ManagedNodeInfo> {
    if (this.nodes.size >= supervisorNodesMax)
      throw new BrigadeError("InvalidArgument", `at most ${supervisorNodesMax} nodes`);
    const [listenPort, apiPort] = await freePorts(2);
    let number = this.nodes.size + 1;
    while (this.nodes.has(`n${number}`)) number++;
    const id = `n${number}`;
    const node: ManagedNode = {
      id,
      listen: `127.0.0.1:${listenPort}`,
      api: `127.0.0.1:${apiPort}`,
      dataDir: path.resolve(this.options.dir, id),
      child: null,
      state: "stopped",
      lastExit: null,
    };
    this.nodes.set(id, node);
    this.notice(id, "added (outside the Raft group until a leader adds it)");
    this.spawnNode(node);
    await this.waitReady(node);
    return this.info(node);
  }

  /** Called after every state change (used to keep `supervisor.json` current). */
  setChangeListener(listener: () => void): void {
    this.onChange = listener;
  }

  list(): ManagedNodeInfo[] {
    return [...this.nodes.values()].map((node) => ({
      id: node.id,
      listen: node.listen,
      api: node.api,
      dataDir: node.dataDir,
      pid: node.child?.pid ?? null,
      state: node.state,
      lastExit: node.lastExit,
    }));
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(id: string): Promise<ManagedNodeInfo> {
    const node = this.running(id, "kill");
    const child = node.child as ChildProcess;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    this.notice(id, "killed (SIGKILL)");
    await exited;
    return this.info(node);
  }

  pause(id: string): ManagedNodeInfo {
    const node = this.running(id, "pause");
    if (node.state === "paused") return this.info(node);
    node.child?.kill("SIGSTOP");
    node.state = "paused";
    this.notice(id, "paused (SIGSTOP)");
    this.onChange();
    return this.info(node);
  }

  resume(id: string): ManagedNodeInfo {
    const node = this.running(id, "resume");
    if (node.state !== "paused") return this.info(node);
    node.child?.kill("SIGCONT");
    node.state = "running";
    this.notice(id, "resumed (SIGCONT)");
    this.onChange();
    return this.info(node);
  }

  /** Graceful stop (SIGTERM); the node stays down until `restart`. */
  async stop(id: string): Promise<ManagedNodeInfo> {
    const node = this.running(id, "stop");
    await this.terminate(node);
    return this.info(node);
  }

  /** Starts the node again with the same id, ports and data directory (killing it first if it runs). */
  async restart(id: string): Promise<ManagedNodeInfo> {
    const node = this.require(id);
    if (node.child !== null) {
      const exited = new Promise((resolve) => node.child?.once("exit", resolve));
      node.child.kill("SIGCONT");
      node.child.kill("SIGKILL");
      await exited;
    }
    this.spawnNode(node);
    await this.waitReady(node);
    return this.info(node);
  }

  /** Stops every node: SIGTERM, then SIGKILL whatever is left after `graceMs`. */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.shuttingDown = true;
    await Promise.all([...this.nodes.values()].map((node) => this.terminate(node, graceMs)));
  }

  private async terminate(node: ManagedNode, graceMs = 5_000): Promise<void> {
    const child = node.child;
    if (child === null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGCONT"); // a paused process cannot handle SIGTERM
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    node.state = "stopped";
    this.onChange();
  }

  private spawnNode(node: ManagedNode): void {
    const others = [...this.nodes.values()]
      .filter((other) => other.id !== node.id)
      .map((other) => other.listen);
    const args = [
      cliEntry,
      "node",
      "--id",
      node.id,
      "--cluster-id",
      this.options.clusterId,
      "--listen",
      node.listen,
      "--api",
      node.api,
      "--data",
      node.dataDir,
      "--log-level",
      this.options.logLevel,
      // One machine: loopback round trips are tiny (memberlist's DefaultLocalConfig).
      "--membership-profile",
      "local",
      // The nodes `brigade up` started are the founding voters of the register's Raft
      // group; nodes added later start outside it.
      "--raft-voters",
      Array.from({ length: this.options.nodes }, (_, index) => `n${index + 1}`).join(","),
      ...(others.length > 0 ? ["--join", others.join(",")] : []),
      ...(this.options.nodeArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe", "ipc"] });
    node.child = child;
    node.state = "starting";
    const prefix = `${node.id.padEnd(4)}|`;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on("line", (line) =>
        this.options.output(`${prefix} ${formatLogLine(line)}`, isImportantLogLine(line)),
      );
    }
    child.on("exit", (code, signal) => {
      if (node.child !== child) return;
      node.child = null;
      node.lastExit = signal ? `signal ${signal}` : `code ${code}`;
      if (node.state !== "stopped") node.state = "exited";
      if (!this.shuttingDown) this.notice(node.id, `exited (${node.lastExit}); not restarting`);
      this.onChange();
    });
    child.on("error", (error) => this.notice(node.id, `failed to start: ${error.message}`));
    this.onChange();
  }

  private async waitReady(node: ManagedNode): Promise<void> {
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (node.child === null) {
        throw new BrigadeError(
          "Unavailable",
          `node ${node.id} exited during start (${node.lastExit})`,
        );
      }
      try {
        const response = await fetch(`http://${node.api}/v1/health`, {
          signal: AbortSignal.timeout(500),
        });
        if (response.ok) {
          node.state = "running";
          this.onChange();
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new BrigadeError(
      "DeadlineExceeded",
      `node ${node.id} did not answer on http://${node.api} in time`,
    );
  }

  /**
   * Injects a network fault on real traffic through the nodes' fault API. A partition is
   * set on both nodes (blocking both directions); drop, delay and duplicate act on what
   * `source` sends to `target`.
   */
  async fault(source: string, target: string, rule: Partial<LinkFault>): Promise<void> {
    const from = this.require(source);
    const to = this.require(target);
    await putFault(from, to.id, rule);
    if (rule.partitioned) await putFault(to, from.id, { partitioned: true });
    this.notice(source, `fault toward ${target}: ${JSON.stringify(rule)}`);
  }

  /** Removes every fault on every running node. */
  async heal(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()]
        .filter((node) => node.child !== null && node.state !== "paused")
        .map((node) => nodeApi(node, "DELETE", "/v1/faults")),
    );
    const paused = [...this.nodes.values()]
      .filter((node) => node.state === "paused")
      .map((node) => node.id);
    this.options.output(
      paused.length === 0
        ? "*** all faults healed"
        : `*** faults healed (paused, not healed: ${paused.join(", ")})`,
      true,
    );
  }

  private require(id: string): ManagedNode {
    const node = this.nodes.get(id);
    if (node === undefined) {
      throw new BrigadeError(
        "InvalidArgument",
        `no node "${id}" (nodes: ${[...this.nodes.keys()].join(", ")})`,
      );
    }
    return node;
  }

  private running(id: string, action: string): ManagedNode {
    const node = this.require(id);
    if (node.child === null)
      throw new BrigadeError(
        "InvalidArgument",
        `cannot ${action} ${id}: it is not running (${node.state})`,
      );
    return node;
  }

  private info(node: ManagedNode): ManagedNodeInfo {
    return this.list().find((info) => info.id === node.id) as ManagedNodeInfo;
  }

  private notice(id: string, text: string): void {
    this.options.output(`${id.padEnd(4)}| *** ${text}`, true);
  }
}

/** Writes the supervisor's state for other tools (`brigade local`, tests) atomically. */
export function writeSupervisorFile(dir: string, contents: object): void {
  const file = path.join(dir, "supervisor.json");
  writeFileSync(`${file}.tmp`, `${JSON.stringify(contents, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Ports the kernel considers free right now (bound to port 0, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

async function putFault(node: ManagedNode, peer: string, rule: Partial<LinkFault>): Promise<void> {
  await nodeApi(node, "PUT", `/v1/faults/${encodeURIComponent(peer)}`, rule);
}

async function nodeApi(
  node: ManagedNode,
  method: string,
  pathname: string,
  body?: unknown,
): Promise<void> {
  let response: Response;
  try {
    response = await fetch(`http://${node.api}${pathname}`, {
      method,
      signal: AbortSignal.timeout(5_000),
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new BrigadeError(
      "Unavailable",
      `node ${node.id} did not answer on http://${node.api}: ${(error as Error).message}`,
    );
  }
  if (!response.ok) {
    throw new BrigadeError(
      "InvalidArgument",
      `node ${node.id} refused ${method} ${pathname}: ${await response.text()}`,
    );
  }
}
