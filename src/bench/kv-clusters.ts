/**
 * @module The Brigade side of `bench:kv`: `brigade up --nodes N` in a temporary directory
 * (nodes at log level warn), a keyspace created over HTTP, and what the bench reads from
 * the outside: each node's JavaScript heap from its Prometheus `/metrics` (prom-client's
 * default metrics; the /proc readers are in `proc.ts`). Everything listens on
 * 127.0.0.1; every process is tracked by PID and ended by `stop()`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ManagedNodeInfo } from "../supervisor/supervisor.js";
import { CliProcess, isProcessAlive, temporaryDirectory, waitFor } from "../testkit/index.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function http(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000), ...init });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text.length === 0 ? null : JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, text };
}

export interface ShardView {
  readonly shard: number;
  readonly group: number;
  readonly replicas: readonly string[];
  readonly leader: string | null;
  readonly leaderApi: string | null;
}

export interface KeyspaceView {
  readonly name: string;
  readonly shards: number;
  readonly replicas: number;
  readonly shardMap: readonly ShardView[];
}

/** `brigade up --nodes N --log-level warn --quiet` in a fresh temporary directory. */
export class KvBrigadeCluster {
  readonly name: string;
  private readonly directory = temporaryDirectory("brigade-kv-bench-");
  private readonly dir = path.join(this.directory.path, "cluster");
  private up: CliProcess | null = null;
  private nodes: ManagedNodeInfo[] = [];
  private readonly pids = new Set<number>();

  constructor(readonly size: number) {
    this.name = `brigade-${size}`;
  }

  async start(): Promise<void> {
    this.up = new CliProcess([
      "up",
      "--nodes",
      String(this.size),
      "--dir",
      this.dir,
      "--log-level",
      "warn",
      "--quiet",
    ]);
    const file = path.join(this.dir, "supervisor.json");
    this.nodes = await waitFor(
      `${this.size} Brigade nodes running`,
      () => {
        let state: { nodes: ManagedNodeInfo[] };
        try {
          state = JSON.parse(readFileSync(file, "utf8")) as { nodes: ManagedNodeInfo[] };
        } catch {
          return null;
        }
        return state.nodes.length === this.size &&
          state.nodes.every((node) => node.state === "running")
          ? state.nodes
          : null;
      },
      60_000,
    );
    for (const node of this.nodes) if (node.pid) this.pids.add(node.pid);
  }

  /** Node ids and API addresses (`127.0.0.1:port`). */
  members(): { id: string; api: string }[] {
    return this.nodes.map((node) => ({ id: node.id, api: node.api }));
  }

  url(member: number): string {
    return `http://${(this.nodes[member] as ManagedNodeInfo).api}`;
  }

  pid(member: number): number | null {
    return this.nodes[member]?.pid ?? null;
  }

  /** A node's data directory (Raft WAL and snapshots, LMDB). */
  dataDir(member: number): string | null {
    return this.nodes[member]?.dataDir ?? null;
  }

  /** The `brigade up` supervisor (it relays the nodes' output). */
  supervisorPid(): number | null {
    return this.up?.pid ?? null;
  }

  /**
   * Creates the keyspace, retrying while nodes are still registering with the store. When
   * the placement leaves a node without replicas although there are enough to go round
   * (a node had not registered yet), the keyspace is dropped and created again.
   */
  async createKeyspace(name: string, shards: number, replicas: number): Promise<KeyspaceView> {
    const deadline = Date.now() + 60_000;
    let last = "";
    while (Date.now() < deadline) {
      let answer: Awaited<ReturnType<typeof http>>;
      try {
        answer = await http(`${this.url(0)}/v1/keyspaces`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name, shards, replicas }),
        });
      } catch (error) {
        last = (error as Error).message;
        await sleep(250);
        continue;
      }
      if (answer.status === 201) {
        const view = answer.body as KeyspaceView;
        const used = new Set(view.shardMap.flatMap((shard) => shard.replicas));
        if (used.size >= Math.min(this.size, shards * replicas)) return view;
        last = `placement used ${used.size} of ${this.size} nodes`;
        await http(`${this.url(0)}/v1/keyspaces/${name}`, { method: "DELETE" });
        await sleep(1_000);
        continue;
      }
      last = `HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
      await sleep(250);
    }
    throw new Error(`could not create keyspace ${name}: ${last}`);
  }

  /** Every node's view of the keyspace (null where a node did not answer). */
  async views(name: string): Promise<(KeyspaceView | null)[]> {
    return Promise.all(
      this.nodes.map(async (_, member) => {
        try {
          const answer = await http(`${this.url(member)}/v1/keyspaces/${name}`);
          return answer.status === 200 ? (answer.body as KeyspaceView) : null;
        } catch {
          return null;
        }
      }),
    );
  }

  /**
   * Waits until every shard has a leader, as seen by a node holding one of its replicas
   * (a node outside a shard's group only knows a hint). Returns the leader id per shard.
   */
  async waitForLeaders(name: string, timeoutMs = 60_000): Promise<string[]> {
    return waitFor(
      `a leader for every shard of ${name}`,
      async () => {
        const views = await this.views(name);
        const first = views.find((view) => view !== null);
        if (first === undefined || first === null) return null;
        const leaders: string[] = [];
        for (let shard = 0; shard < first.shards; shard++) {
          let leader: string | null = null;
          for (const [member, view] of views.entries()) {
            const entry = view?.shardMap[shard];
            const id = this.nodes[member]?.id;
            if (entry?.leader && entry.leaderApi && id && entry.replicas.includes(id)) {
              leader = entry.leader;
              break;
            }
          }
          if (leader === null) return null;
          leaders.push(leader);
        }
        return leaders;
      },
      timeoutMs,
      100,
    );
  }

  /**
   * Waits for leaders (see `waitForLeaders`), then until the assignment has not changed for
   * `quietMs` (the placement driver balances leadership after a keyspace is created), at most
   * `settleMs` more. Returns the last assignment.
   */
  async waitForSettledLeaders(name: string, quietMs = 3_000, settleMs = 30_000): Promise<string[]> {
    let leaders = await this.waitForLeaders(name);
    let since = Date.now();
    const deadline = Date.now() + settleMs;
    while (Date.now() - since < quietMs && Date.now() < deadline) {
      await sleep(250);
      const now = await this.waitForLeaders(name).catch(() => null);
      if (now === null || now.join() !== leaders.join()) {
        since = Date.now();
        if (now !== null) leaders = now;
      }
    }
    return leaders;
  }

  /** Heap and RSS per node from `/metrics` (null where a node did not answer). */
  async memory(): Promise<(NodeMemory | null)[]> {
    return Promise.all(
      this.nodes.map(async (_, member) => {
        try {
          const answer = await http(`${this.url(member)}/metrics`);
          return answer.status === 200 ? parseMemory(answer.text) : null;
        } catch {
          return null;
        }
      }),
    );
  }

  /**
   * Terms summed over the shard groups (highest term any node reports for each group,
   * minus 1): how many elections the shards have been through beyond their first.
   */
  async shardTermsAboveFirst(): Promise<number | null> {
    const highest = new Map<string, number>();
    const pages = await Promise.all(
      this.nodes.map(async (_, member) => {
        try {
          const answer = await http(`${this.url(member)}/metrics`);
          return answer.status === 200 ? answer.text : null;
        } catch {
          return null;
        }
      }),
    );
    if (pages.every((page) => page === null)) return null;
    for (const page of pages) {
      if (page === null) continue;
      for (const match of page.matchAll(/^brigade_raft_term\{group="(\d+)"[^}]*\} (\d+)$/gm)) {
        const group = match[1] as string;
        // Shard groups are numbered from 1000 (the register is 1, the catalog 2).
        if (Number(group) < 1000) continue;
        highest.set(group, Math.max(highest.get(group) ?? 0, Number(match[2])));
      }
    }
    let sum = 0;
    for (const term of highest.values()) sum += Math.max(0, term - 1);
    return sum;
  }

  async stop(): Promise<void> {
    try {
      await this.up?.stop("SIGTERM", 10_000);
    } finally {
      for (const pid of this.pids)
        if (isProcessAlive(pid))
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
      this.directory.remove();
    }
  }
}

export interface NodeMemory {
  /** nodejs_heap_size_used_bytes, MiB. */
  readonly heapUsedMiB: number | null;
  /** nodejs_heap_size_total_bytes, MiB. */
  readonly heapTotalMiB: number | null;
  /** process_resident_memory_bytes, MiB. */
  readonly rssMiB: number | null;
  /** nodejs_external_memory_bytes, MiB (Buffers and other memory held outside the heap). */
  readonly externalMiB: number | null;
}

/** Reads prom-client's default process and heap gauges from a Prometheus text page. */
export function parseMemory(text: string): NodeMemory {
  const gauge = (name: string): number | null => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m").exec(text);
    return match ? Number(match[1]) / 2 ** 20 : null;
  };
  return {
    heapUsedMiB: gauge("nodejs_heap_size_used_bytes"),
    heapTotalMiB: gauge("nodejs_heap_size_total_bytes"),
    rssMiB: gauge("process_resident_memory_bytes"),
    externalMiB: gauge("nodejs_external_memory_bytes"),
  };
}

/**
 * Reads Prometheus counters (or histogram `_sum` / `_count` series) from `url`: for each
 * name, the sum over its label sets; null when the page could not be read.
 */
export async function scrapeCounters(
  url: string,
  names: readonly string[],
): Promise<Record<string, number> | null> {
  let text: string;
  try {
    const answer = await http(url);
    if (answer.status !== 200) return null;
    text = answer.text;
  } catch {
    return null;
  }
  const values: Record<string, number> = {};
  for (const name of names) {
    let sum = 0;
    for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "gm")))
      sum += Number(match[1]);
    values[name] = sum;
  }
  return values;
}
