/**
 * @module Chaos on a local cluster: the faults `brigade chaos` and `brigade verify`'s nemeses
 * inject. Process faults go through the supervisor (SIGKILL, SIGSTOP/SIGCONT, restart);
 * network and clock faults through each node's fault API (`/v1/faults`, `/v1/clock/skew`).
 *
 * Two implementations: `SupervisorChaos` drives a `Supervisor` in this process (verify
 * starting its own cluster), `ControlApiChaos` drives a running `brigade up` through its
 * control API (chaos and verify attaching to a cluster).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { BrigadeError, isBrigadeErrorCode } from "../lib/errors.js";
import type { LinkFault } from "../transport/faults.js";
import type { ManagedNodeInfo, Supervisor } from "./supervisor.js";

/** One fault in force, as `status` reports it. */
export interface ActiveFault {
  readonly kind: "partition" | "isolate" | "link" | "skew" | "pause" | "kill" | "unhealed";
  /** The nodes it acts on (for a partition, every node named in any group). */
  readonly nodes: readonly string[];
  /** Human-readable detail: "n1,n2 / n3,n4,n5", "n1→n2 delay 200ms±50", "+500ms", ... */
  readonly detail: string;
  /** Wall-clock ms when it was injected. */
  readonly since: number;
  /** Wall-clock ms when it ends by itself (a timed pause), if it does. */
  readonly until?: number;
}

export interface ChaosStatus {
  readonly nodes: readonly ManagedNodeInfo[];
  readonly faults: readonly ActiveFault[];
}

export interface ChaosControl {
  nodes(): Promise<ManagedNodeInfo[]>;
  /** SIGKILL. */
  kill(node: string): Promise<void>;
  /** Start a node again (same id, ports and data); kills it first if it runs. */
  restart(node: string): Promise<void>;
  /** SIGSTOP; with `forMs`, SIGCONT after that long (the supervisor keeps the timer). */
  pause(node: string, forMs?: number): Promise<void>;
  /** SIGCONT. */
  resume(node: string): Promise<void>;
  /**
   * Cut every link between nodes of different groups, both directions. Nodes named in no
   * group keep all their links (they bridge the sides).
   */
  partition(groups: readonly (readonly string[])[]): Promise<void>;
  /** Cut every link of `node`, both directions. */
  isolate(node: string): Promise<void>;
  /** Delay / drop / duplicate frames on the link, in both directions. */
  link(a: string, b: string, rule: Partial<LinkFault>): Promise<void>;
  /** Run the node's injected clock (its HLC's physical time) `offsetMs` ahead (negative: behind). */
  skew(node: string, offsetMs: number): Promise<void>;
  /** Remove every network and clock fault and resume paused nodes; killed nodes stay down. */
  heal(): Promise<void>;
  status(): Promise<ChaosStatus>;
}

/** Drives a `Supervisor` in this process. */
export class SupervisorChaos implements ChaosControl {
  constructor(readonly supervisor: Supervisor) {}

  async nodes(): Promise<ManagedNodeInfo[]> {
    return this.supervisor.list();
  }

  async kill(node: string): Promise<void> {
    await this.supervisor.kill(node);
  }

  async restart(node: string): Promise<void> {
    await this.supervisor.restart(node);
  }

  async pause(node: string, forMs?: number): Promise<void> {
    this.supervisor.pause(node, forMs);
  }

  async resume(node: string): Promise<void> {
    this.supervisor.resume(node);
    // The faults injected while it was paused reach it right after SIGCONT.
    await this.supervisor.settled();
  }

  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    await this.supervisor.partition(groups);
  }

  async isolate(node: string): Promise<void> {
    await this.supervisor.isolate(node);
  }

  async link(a: string, b: string, rule: Partial<LinkFault>): Promise<void> {
    await this.supervisor.link(a, b, rule);
  }

  async skew(node: string, offsetMs: number): Promise<void> {
    await this.supervisor.skew(node, offsetMs);
  }

  async heal(): Promise<void> {
    await this.supervisor.heal();
    await this.supervisor.settled();
  }

  async status(): Promise<ChaosStatus> {
    return { nodes: this.supervisor.list(), faults: this.supervisor.faults() };
  }
}

/**
 * Drives a running `brigade up` through its control API (routes in `up-command.ts`, listed in
 * docs/chaos.md). An error the supervisor reports keeps its code and message, so bad usage
 * (an unknown node, say) stays InvalidArgument.
 */
export class ControlApiChaos implements ChaosControl {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
  }

  /**
   * The control API of the `brigade up` whose directory is `dir` (it writes its address to
   * `supervisor.json` there). Unavailable when no live `brigade up` uses that directory.
   */
  static fromDir(dir: string): ControlApiChaos {
    const file = path.resolve(dir, "supervisor.json");
    let state: { pid?: number; control?: string };
    try {
      state = JSON.parse(readFileSync(file, "utf8")) as { pid?: number; control?: string };
    } catch {
      throw new BrigadeError(
        "Unavailable",
        `no running \`brigade up\` found (${file} is missing); start one or pass --dir`,
      );
    }
    if (typeof state.control !== "string")
      throw new BrigadeError("Unavailable", `${file} names no control API`);
    if (typeof state.pid === "number" && !processExists(state.pid))
      throw new BrigadeError(
        "Unavailable",
        `the \`brigade up\` of ${path.dirname(file)} (pid ${state.pid}) is gone; start one or pass --dir`,
      );
    return new ControlApiChaos(state.control);
  }

  async nodes(): Promise<ManagedNodeInfo[]> {
    return (await this.call("GET", "/nodes")) as ManagedNodeInfo[];
  }

  async kill(node: string): Promise<void> {
    await this.call("POST", "/chaos/kill", { node });
  }

  async restart(node: string): Promise<void> {
    await this.call("POST", "/chaos/restart", { node });
  }

  async pause(node: string, forMs?: number): Promise<void> {
    await this.call("POST", "/chaos/pause", forMs === undefined ? { node } : { node, forMs });
  }

  async resume(node: string): Promise<void> {
    await this.call("POST", "/chaos/resume", { node });
  }

  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    await this.call("POST", "/chaos/partition", { groups });
  }

  async isolate(node: string): Promise<void> {
    await this.call("POST", "/chaos/isolate", { node });
  }

  async link(a: string, b: string, rule: Partial<LinkFault>): Promise<void> {
    await this.call("POST", "/chaos/link", { a, b, rule });
  }

  async skew(node: string, offsetMs: number): Promise<void> {
    await this.call("POST", "/chaos/skew", { node, offsetMs });
  }

  async heal(): Promise<void> {
    await this.call("POST", "/chaos/heal", {});
  }

  async status(): Promise<ChaosStatus> {
    return (await this.call("GET", "/chaos/status")) as ChaosStatus;
  }

  private async call(method: string, pathname: string, body?: unknown): Promise<unknown> {
    const url = `${this.baseUrl}${pathname}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined
          ? {}
          : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      throw new BrigadeError(
        "Unavailable",
        `cannot reach the \`brigade up\` control API at ${url}: ${cause}`,
      );
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      const code =
        error?.code !== undefined && isBrigadeErrorCode(error.code)
          ? error.code
          : response.status < 500
            ? "InvalidArgument"
            : "Unavailable";
      throw new BrigadeError(code, error?.message ?? `${method} ${url} failed: ${text}`);
    }
    return parsed;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
