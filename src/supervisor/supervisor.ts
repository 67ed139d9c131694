/**
 * @module The local supervisor behind `brigade up`: starts N node processes on loopback with
 * free ports and data under one directory, streams their logs with a prefix, and can kill
 * (SIGKILL), pause (SIGSTOP), resume (SIGCONT), stop and restart any one of them. It restarts
 * nothing by itself: a dead node stays dead until someone asks, so failures stay visible.
 *
 * It also injects the chaos faults (see `chaos.ts`) and keeps the book of those in force:
 * partitions, isolations, link rules, clock skews, pauses and kills. A node that (re)starts
 * comes up with an empty fault injector, so the supervisor re-applies the network and clock
 * faults still in force to it: a partition survives a restart of one side, as a real one does.
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
import { BrigadeError, isBrigadeErrorCode } from "../lib/errors.js";
import { FaultInjector, type LinkFault, noFault } from "../transport/faults.js";
import type { ActiveFault } from "./chaos.js";
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
  /** Extra environment variables for every node, on top of this process's environment. */
  readonly nodeEnv?: Readonly<Record<string, string>>;
}

/** Longest timed pause (and the most a timer can wait anyway is ~24.8 days). */
export const pauseMsMax = 86_400_000;
/** Largest clock skew a node accepts (`PUT /v1/clock/skew`). */
export const clockSkewMsMax = 3_600_000;

/** A network fault in force: what `status` reports and what a (re)started node gets back. */
type NetworkFault =
  | { readonly kind: "partition"; readonly groups: readonly (readonly string[])[]; since: number }
  | { readonly kind: "isolate"; readonly node: string; since: number }
  | {
      readonly kind: "link";
      readonly a: string;
      readonly b: string;
      /** Both directions (chaos `link`), or only frames `a` sends to `b` (`fault`). */
      readonly bothWays: boolean;
      rule: Partial<LinkFault>;
      since: number;
    };

interface PauseRecord {
  readonly since: number;
  until: number | null;
  timer: NodeJS.Timeout | null;
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
  /** The faults in force, oldest first (order matters: later rules merge over earlier ones). */
  private readonly networkFaults: NetworkFault[] = [];
  private readonly skews = new Map<string, { offsetMs: number; since: number }>();
  private readonly pauses = new Map<string, PauseRecord>();
  private readonly kills = new Map<string, number>();
  /** Nodes a heal did not reach: they may still hold rules or a skew (the next heal retries). */
  private readonly unhealed = new Map<string, number>();
  /**
   * Fault changes run one at a time, so a heal cannot interleave with a re-application that
   * would put back what it just removed.
   */
  private faultQueue: Promise<void> = Promise.resolve();

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
    // An isolation in force cuts the newcomer off from the isolated node too.
    await this.serial(() => this.reapply(node));
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

  /** SIGKILL; resolves once the process is gone. It stays down (a "kill" fault) until `restart`. */
  async kill(id: string): Promise<ManagedNodeInfo> {
    const node = this.running(id, "kill");
    const child = node.child as ChildProcess;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    this.clearPause(id);
    child.kill("SIGKILL");
    this.kills.set(id, Date.now());
    this.notice(id, "killed (SIGKILL)");
    await exited;
    return this.info(node);
  }

  /**
   * SIGSTOP. With `forMs`, the supervisor sends SIGCONT after that long (pausing a paused node
   * again replaces its timer; without `forMs` it stays paused until `resume` or `heal`).
   */
  pause(id: string, forMs?: number): ManagedNodeInfo {
    if (forMs !== undefined && !(Number.isFinite(forMs) && forMs > 0 && forMs <= pauseMsMax))
      throw new BrigadeError(
        "InvalidArgument",
        `a pause lasts more than 0 and at most ${pauseMsMax} ms, got ${forMs}`,
      );
    const node = this.running(id, "pause");
    const record = this.pauses.get(id) ?? { since: Date.now(), until: null, timer: null };
    if (record.timer !== null) clearTimeout(record.timer);
    record.timer = null;
    record.until = null;
    if (forMs !== undefined) {
      record.until = Date.now() + forMs;
      const child = node.child;
      record.timer = setTimeout(() => {
        record.timer = null;
        if (node.child !== child || node.state !== "paused") return;
        try {
          this.resume(id);
        } catch (error) {
          this.notice(id, `timed resume failed: ${(error as Error).message}`);
        }
      }, forMs);
    }
    this.pauses.set(id, record);
    if (node.state === "paused") {
      this.notice(id, forMs === undefined ? "stays paused" : `stays paused for ${forMs} ms`);
      return this.info(node);
    }
    node.child?.kill("SIGSTOP");
    node.state = "paused";
    this.notice(id, `paused (SIGSTOP)${forMs === undefined ? "" : ` for ${forMs} ms`}`);
    this.onChange();
    return this.info(node);
  }

  /**
   * SIGCONT. Faults injected while the node was paused (it could not answer its fault API)
   * are applied right after; `settled()` resolves once they are.
   */
  resume(id: string): ManagedNodeInfo {
    const node = this.running(id, "resume");
    this.clearPause(id);
    if (node.state !== "paused") return this.info(node);
    node.child?.kill("SIGCONT");
    node.state = "running";
    this.notice(id, "resumed (SIGCONT)");
    this.onChange();
    this.serial(() => this.reapply(node)).catch((error: Error) =>
      this.notice(id, `could not re-apply faults: ${error.message}`),
    );
    return this.info(node);
  }

  /** Graceful stop (SIGTERM); the node stays down until `restart`. */
  async stop(id: string): Promise<ManagedNodeInfo> {
    const node = this.running(id, "stop");
    this.clearPause(id);
    await this.terminate(node);
    return this.info(node);
  }

  /**
   * Starts the node again with the same id, ports and data directory (killing it first if it
   * runs), then re-applies the network and clock faults in force to it.
   */
  async restart(id: string): Promise<ManagedNodeInfo> {
    const node = this.require(id);
    this.clearPause(id);
    if (node.child !== null) {
      const exited = new Promise((resolve) => node.child?.once("exit", resolve));
      node.child.kill("SIGCONT");
      node.child.kill("SIGKILL");
      await exited;
    }
    this.kills.delete(id);
    this.unhealed.delete(id); // a new process starts with no rules
    this.spawnNode(node);
    await this.waitReady(node);
    await this.serial(() => this.reapply(node));
    return this.info(node);
  }

  /** Resolves once every fault change queued so far (e.g. a re-application on resume) is done. */
  settled(): Promise<void> {
    return this.faultQueue;
  }

  /** Stops every node: SIGTERM, then SIGKILL whatever is left after `graceMs`. */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.shuttingDown = true;
    for (const id of [...this.pauses.keys()]) this.clearPause(id);
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
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      ...(this.options.nodeEnv === undefined
        ? {}
        : { env: { ...process.env, ...this.options.nodeEnv } }),
    });
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
      this.clearPause(node.id);
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
    checkRule(source, target, rule);
    await this.serial(async () => {
      this.recordLink(from.id, to.id, rule, false);
      if (rule.partitioned) this.recordLink(to.id, from.id, { partitioned: true }, false);
      await this.applyRules([
        [from.id, to.id, rule],
        ...(rule.partitioned ? [[to.id, from.id, { partitioned: true }] as const] : []),
      ]);
    });
    this.notice(source, `fault toward ${target}: ${JSON.stringify(rule)}`);
  }

  /**
   * Cuts every link between nodes of different groups, on both sides of each pair. Nodes in
   * no group keep all their links.
   */
  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    const cleaned = groups.map((group) => [...group]);
    if (cleaned.length < 2 || cleaned.some((group) => group.length === 0))
      throw new BrigadeError(
        "InvalidArgument",
        "a partition needs at least two non-empty groups of nodes",
      );
    const seen = new Set<string>();
    for (const id of cleaned.flat()) {
      this.require(id);
      if (seen.has(id))
        throw new BrigadeError("InvalidArgument", `node ${id} is in more than one group`);
      seen.add(id);
    }
    const pairs: [string, string, Partial<LinkFault>][] = [];
    for (const [index, group] of cleaned.entries())
      for (const other of cleaned.slice(index + 1))
        for (const a of group)
          for (const b of other)
            pairs.push([a, b, { partitioned: true }], [b, a, { partitioned: true }]);
    const detail = describeGroups(cleaned);
    await this.serial(async () => {
      this.networkFaults.push({ kind: "partition", groups: cleaned, since: Date.now() });
      await this.applyRules(pairs);
    });
    this.options.output(`*** partition ${detail}`, true);
  }

  /** Cuts every link of `id`, on both sides. */
  async isolate(id: string): Promise<void> {
    this.require(id);
    const pairs: [string, string, Partial<LinkFault>][] = [];
    for (const other of this.nodes.keys())
      if (other !== id)
        pairs.push([id, other, { partitioned: true }], [other, id, { partitioned: true }]);
    await this.serial(async () => {
      this.networkFaults.push({ kind: "isolate", node: id, since: Date.now() });
      await this.applyRules(pairs);
    });
    this.notice(id, "isolated from every other node");
  }

  /** Adds `rule` (merged into any rule already on the link) in both directions between `a` and `b`. */
  async link(a: string, b: string, rule: Partial<LinkFault>): Promise<void> {
    this.require(a);
    this.require(b);
    checkRule(a, b, rule);
    await this.serial(async () => {
      this.recordLink(a, b, rule, true);
      await this.applyRules([
        [a, b, rule],
        [b, a, rule],
      ]);
    });
    this.options.output(`*** link ${a}↔${b}: ${describeRule(rule)}`, true);
  }

  /** Runs the node's HLC physical clock `offsetMs` ahead (negative: behind); 0 resets it. */
  async skew(id: string, offsetMs: number): Promise<void> {
    const node = this.require(id);
    if (!(Number.isFinite(offsetMs) && Math.abs(offsetMs) <= clockSkewMsMax))
      throw new BrigadeError(
        "InvalidArgument",
        `a clock skew must be within ±${clockSkewMsMax} ms, got ${offsetMs}`,
      );
    await this.serial(async () => {
      if (offsetMs === 0) this.skews.delete(id);
      else this.skews.set(id, { offsetMs, since: Date.now() });
      // A node that is down or paused gets it when it runs again.
      if (node.state === "running")
        await nodeApi(node, "PUT", "/v1/clock/skew", { skewMs: offsetMs });
    });
    this.notice(id, offsetMs === 0 ? "clock skew reset" : `clock skewed ${formatSigned(offsetMs)}`);
  }

  /**
   * Removes every fault: resumes paused nodes first (a stopped process cannot answer its
   * fault API), then clears network faults and clock skew on every running node. Killed
   * nodes stay down.
   */
  async heal(): Promise<void> {
    await this.serial(async () => {
      const paused = [...this.nodes.values()].filter(
        (node) => node.child !== null && node.state === "paused",
      );
      for (const node of paused) this.resume(node.id);
      this.networkFaults.length = 0;
      this.skews.clear();
      const running = [...this.nodes.values()].filter(
        (node) => node.child !== null && node.state === "running",
      );
      const results = await Promise.allSettled(
        running.map((node) => nodeApi(node, "DELETE", "/v1/faults")),
      );
      const failed: string[] = [];
      results.forEach((result, i) => {
        const { id } = running[i] as ManagedNode;
        if (result.status === "fulfilled") this.unhealed.delete(id);
        else {
          this.unhealed.set(id, Date.now());
          failed.push((result.reason as Error).message);
        }
      });
      if (failed.length > 0)
        throw new BrigadeError("Unavailable", `heal incomplete: ${failed.join("; ")}`);
      this.options.output(
        paused.length === 0
          ? "*** all faults healed"
          : `*** all faults healed (resumed ${paused.map((node) => node.id).join(", ")})`,
        true,
      );
    });
  }

  /** The faults in force, oldest first. */
  faults(): ActiveFault[] {
    const faults: ActiveFault[] = [...this.unhealed].map(([id, since]) => ({
      kind: "unhealed",
      nodes: [id],
      detail: `the last heal did not reach ${id}: it may still hold rules or a skew`,
      since,
    }));
    for (const fault of this.networkFaults) {
      switch (fault.kind) {
        case "partition":
          faults.push({
            kind: "partition",
            nodes: fault.groups.flat(),
            detail: describeGroups(fault.groups),
            since: fault.since,
          });
          break;
        case "isolate":
          faults.push({
            kind: "isolate",
            nodes: [fault.node],
            detail: `${fault.node} / every other node`,
            since: fault.since,
          });
          break;
        case "link":
          faults.push({
            kind: "link",
            nodes: [fault.a, fault.b],
            detail: `${fault.a}${fault.bothWays ? "↔" : "→"}${fault.b} ${describeRule(fault.rule)}`,
            since: fault.since,
          });
          break;
      }
    }
    for (const [id, skew] of this.skews)
      faults.push({
        kind: "skew",
        nodes: [id],
        detail: formatSigned(skew.offsetMs),
        since: skew.since,
      });
    for (const [id, pause] of this.pauses)
      faults.push({
        kind: "pause",
        nodes: [id],
        detail:
          pause.until === null ? "SIGSTOP until resume or heal" : "SIGSTOP, resumes by itself",
        since: pause.since,
        ...(pause.until === null ? {} : { until: pause.until }),
      });
    for (const [id, since] of this.kills)
      faults.push({ kind: "kill", nodes: [id], detail: "SIGKILL, down until restart", since });
    return faults.sort((a, b) => a.since - b.since);
  }

  /** Runs fault changes one at a time (see `faultQueue`). */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const result = this.faultQueue.then(task);
    this.faultQueue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private clearPause(id: string): void {
    const record = this.pauses.get(id);
    if (record?.timer) clearTimeout(record.timer);
    this.pauses.delete(id);
  }

  /** Records a link rule, merged into the rule already recorded for the same link. */
  private recordLink(a: string, b: string, rule: Partial<LinkFault>, bothWays: boolean): void {
    const index = this.networkFaults.findIndex(
      (fault) =>
        fault.kind === "link" &&
        fault.bothWays === bothWays &&
        ((fault.a === a && fault.b === b) || (bothWays && fault.a === b && fault.b === a)),
    );
    const previous = index < 0 ? undefined : this.networkFaults[index];
    if (index >= 0) this.networkFaults.splice(index, 1);
    // Moved to the end: the node merges rules in the order they arrive, and so does `rulesFor`.
    this.networkFaults.push({
      kind: "link",
      a,
      b,
      bothWays,
      rule: { ...(previous?.kind === "link" ? previous.rule : {}), ...rule },
      since: previous?.since ?? Date.now(),
    });
  }

  /**
   * Sends each rule to its source node, if it runs; one that is down or paused gets the
   * faults in force when it runs again (`reapply`).
   */
  private async applyRules(
    rules: readonly (readonly [string, string, Partial<LinkFault>])[],
  ): Promise<void> {
    const results = await Promise.allSettled(
      rules.map(([source, target, rule]) => {
        const node = this.require(source);
        return node.state === "running" ? putFault(node, target, rule) : Promise.resolve();
      }),
    );
    const failed = results.flatMap((result) =>
      result.status === "rejected" ? [(result.reason as Error).message] : [],
    );
    if (failed.length > 0)
      throw new BrigadeError(
        "Unavailable",
        `fault recorded but not applied everywhere: ${[...new Set(failed)].join("; ")}`,
      );
  }

  /** The rule in force on every link from `source`, merged in the order the faults came. */
  private rulesFor(source: string): Map<string, Partial<LinkFault>> {
    const rules = new Map<string, Partial<LinkFault>>();
    const merge = (target: string, rule: Partial<LinkFault>) =>
      rules.set(target, { ...(rules.get(target) ?? {}), ...rule });
    for (const fault of this.networkFaults) {
      switch (fault.kind) {
        case "partition": {
          const mine = fault.groups.findIndex((group) => group.includes(source));
          if (mine < 0) break;
          for (const [index, group] of fault.groups.entries())
            if (index !== mine) for (const target of group) merge(target, { partitioned: true });
          break;
        }
        case "isolate":
          for (const target of this.nodes.keys())
            if (target !== source && (source === fault.node || target === fault.node))
              merge(target, { partitioned: true });
          break;
        case "link":
          if (fault.a === source) merge(fault.b, fault.rule);
          else if (fault.bothWays && fault.b === source) merge(fault.a, fault.rule);
          break;
      }
    }
    return rules;
  }

  /**
   * Gives a node that just (re)started or resumed the faults in force: its own rules and
   * skew, and every running peer's rule toward it (a peer's rules survive the restart, but a
   * node added since an isolation has none yet).
   */
  private async reapply(node: ManagedNode): Promise<void> {
    if (node.state !== "running") return;
    const rules: [string, string, Partial<LinkFault>][] = [];
    for (const [target, rule] of this.rulesFor(node.id)) rules.push([node.id, target, rule]);
    for (const other of this.nodes.values()) {
      if (other.id === node.id || other.state !== "running") continue;
      const rule = this.rulesFor(other.id).get(node.id);
      if (rule !== undefined) rules.push([other.id, node.id, rule]);
    }
    const skew = this.skews.get(node.id);
    if (rules.length === 0 && skew === undefined) return;
    await this.applyRules(rules);
    if (skew !== undefined) await nodeApi(node, "PUT", "/v1/clock/skew", { skewMs: skew.offsetMs });
    this.notice(
      node.id,
      `re-applied the faults in force (${rules.length} link rule(s)${skew === undefined ? "" : `, skew ${formatSigned(skew.offsetMs)}`})`,
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
    const text = await response.text();
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      // not JSON: report the text
    }
    const code =
      error?.code !== undefined && isBrigadeErrorCode(error.code)
        ? error.code
        : response.status < 500
          ? "InvalidArgument"
          : "Unavailable";
    throw new BrigadeError(
      code,
      `node ${node.id} refused ${method} ${pathname}: ${error?.message ?? text}`,
    );
  }
}

/** Refuses a rule the nodes would refuse, before any node has it (the nodes check again). */
function checkRule(a: string, b: string, rule: Partial<LinkFault>): void {
  if (a === b) throw new BrigadeError("InvalidArgument", `a link needs two nodes, got ${a} twice`);
  if (Object.keys(rule).length === 0)
    throw new BrigadeError("InvalidArgument", "the link rule is empty");
  for (const [key, value] of Object.entries(rule)) {
    const type = key === "partitioned" ? "boolean" : key in noFault ? "number" : null;
    if (type === null)
      throw new BrigadeError(
        "InvalidArgument",
        `unknown link rule field "${key}" (use ${Object.keys(noFault).join(", ")})`,
      );
    if (typeof value !== type)
      throw new BrigadeError(
        "InvalidArgument",
        `${key} must be a ${type}, got ${JSON.stringify(value)}`,
      );
  }
  for (const key of ["delayMs", "jitterMs"] as const) {
    const value = rule[key];
    if (value !== undefined && !Number.isInteger(value))
      throw new BrigadeError("InvalidArgument", `${key} must be whole milliseconds, got ${value}`);
  }
  new FaultInjector().set(b, rule); // throws InvalidArgument for a rule out of range
}

function describeGroups(groups: readonly (readonly string[])[]): string {
  return groups.map((group) => group.join(",")).join(" / ");
}

/** "partitioned, delay 200ms±50ms, loss 10%". */
export function describeRule(rule: Partial<LinkFault>): string {
  const percent = (rate: number) => `${Number((rate * 100).toFixed(2))}%`;
  const parts: string[] = [];
  if (rule.partitioned !== undefined) parts.push(rule.partitioned ? "partitioned" : "connected");
  if (rule.delayMs || rule.jitterMs)
    parts.push(`delay ${rule.delayMs ?? 0}ms${rule.jitterMs ? `±${rule.jitterMs}ms` : ""}`);
  if (rule.dropRate !== undefined) parts.push(`loss ${percent(rule.dropRate)}`);
  if (rule.duplicateRate !== undefined) parts.push(`duplicate ${percent(rule.duplicateRate)}`);
  return parts.length === 0 ? "no change" : parts.join(", ");
}

function formatSigned(ms: number): string {
  return `${ms >= 0 ? "+" : "-"}${Math.abs(ms)}ms`;
}
