/**
 * @module The two 3-member clusters `bench:raft` drives: Brigade (`brigade up --nodes 3`, the
 * replicated register) and etcd (three `etcd` processes, v3 JSON gateway). Both expose the same
 * small surface — find the leader, write one key, kill / restart a member, PIDs for RSS — so the
 * bench measures both with the same code. Everything listens on 127.0.0.1 only; every process
 * started here is tracked by PID and ended by `stop()`.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ManagedNodeInfo } from "../supervisor/supervisor.js";
import {
  CliProcess,
  freePort,
  isProcessAlive,
  runCli,
  temporaryDirectory,
  waitFor,
} from "../testkit/index.js";

export interface BenchCluster {
  readonly name: string;
  readonly size: number;
  /** Index (0-based) of the current leader, waiting until one is known. */
  leader(candidates?: readonly number[]): Promise<number>;
  /** One committed write of `value` to `key` through `member`; rejects on any failure. */
  put(member: number, key: string, value: string, timeoutMs?: number): Promise<void>;
  pid(member: number): number | null;
  /** SIGKILLs a member; resolves with performance-style ms (Date.now) when its process is gone. */
  kill(member: number): Promise<number>;
  /** Starts a killed member again with its data and waits until it has caught up. */
  restart(member: number): Promise<void>;
  stop(): Promise<void>;
}

const postTimeoutMs = 10_000;

async function expectOk(response: Response, what: string): Promise<unknown> {
  const text = await response.text();
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${text.slice(0, 200)}`);
  return text.length === 0 ? null : JSON.parse(text);
}

async function waitForDeath(pid: number): Promise<number> {
  while (isProcessAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 1));
  return Date.now();
}

function killQuietly(pid: number | null | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

interface BrigadeRaftStatus {
  role: string;
  commit: number;
  applied: number;
}

/** `brigade up --nodes 3` in a fresh temporary directory. */
export class BrigadeCluster implements BenchCluster {
  readonly name = "brigade";
  readonly size = 3;
  private readonly directory = temporaryDirectory("brigade-raft-bench-");
  private readonly dir = path.join(this.directory.path, "cluster");
  private up: CliProcess | null = null;
  private nodes: ManagedNodeInfo[] = [];
  private readonly pids = new Set<number>();
  private sequence = 0;

  async start(): Promise<void> {
    this.up = new CliProcess(["up", "--nodes", "3", "--dir", this.dir, "--quiet"]);
    const file = path.join(this.dir, "supervisor.json");
    this.nodes = await waitFor(
      "three Brigade nodes running",
      () => {
        if (!existsSync(file)) return null;
        const state = JSON.parse(readFileSync(file, "utf8")) as { nodes: ManagedNodeInfo[] };
        return state.nodes.length === 3 && state.nodes.every((node) => node.state === "running")
          ? state.nodes
          : null;
      },
      30_000,
    );
    for (const node of this.nodes) if (node.pid) this.pids.add(node.pid);
    await this.leader();
  }

  private url(member: number): string {
    return `http://${(this.nodes[member] as ManagedNodeInfo).api}`;
  }

  private async status(member: number): Promise<BrigadeRaftStatus | null> {
    try {
      const response = await fetch(`${this.url(member)}/v1/raft`, {
        signal: AbortSignal.timeout(1_000),
      });
      return (await expectOk(response, "raft status")) as BrigadeRaftStatus;
    } catch {
      return null;
    }
  }

  leader(candidates: readonly number[] = [0, 1, 2]): Promise<number> {
    return waitFor(
      "a Brigade leader",
      async () => {
        for (const member of candidates)
          if ((await this.status(member))?.role === "leader") return { member };
        return null;
      },
      30_000,
      20,
    ).then((found) => found.member);
  }

  async put(member: number, key: string, value: string, timeoutMs = postTimeoutMs): Promise<void> {
    const response = await fetch(
      `${this.url(member)}/v1/register/${key}?requestId=bench-${process.pid}-${this.sequence++}`,
      {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value }),
        signal: AbortSignal.timeout(timeoutMs),
      },
    );
    await expectOk(response, "brigade put");
  }

  pid(member: number): number | null {
    return this.nodes[member]?.pid ?? null;
  }

  async kill(member: number): Promise<number> {
    const id = (this.nodes[member] as ManagedNodeInfo).id;
    const pid = this.pid(member);
    if (pid === null) throw new Error(`${id} has no process`);
    const command = runCli(["local", "kill", id, "--dir", this.dir]);
    const diedAt = await waitForDeath(pid);
    const result = await command;
    if (result.code !== 0) throw new Error(`brigade local kill ${id}: ${result.stderr}`);
    return diedAt;
  }

  async restart(member: number): Promise<void> {
    const id = (this.nodes[member] as ManagedNodeInfo).id;
    const result = await runCli(["local", "restart", id, "--json", "--dir", this.dir]);
    if (result.code !== 0) throw new Error(`brigade local restart ${id}: ${result.stderr}`);
    const info = JSON.parse(result.stdout) as ManagedNodeInfo;
    if (info.pid) this.pids.add(info.pid);
    this.nodes[member] = info;
    const leader = await this.leader();
    const target = (await this.status(leader))?.commit ?? 0;
    await waitFor(
      `${id} to catch up to ${target}`,
      async () => ((await this.status(member))?.applied ?? -1) >= target,
      30_000,
      20,
    );
  }

  async stop(): Promise<void> {
    try {
      await this.up?.stop("SIGTERM", 5_000);
    } finally {
      for (const pid of this.pids) if (isProcessAlive(pid)) killQuietly(pid);
      this.directory.remove();
    }
  }
}

export function etcdVersion(): string | null {
  try {
    const out = execFileSync("etcd", ["--version"], { encoding: "utf8", timeout: 5_000 });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? out.trim().split("\n")[0] ?? "unknown";
  } catch {
    return null;
  }
}

interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | null;
  output: string;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

/**
 * Three etcd members on loopback, fresh data directories, heartbeat 100 ms and election
 * timeout 1000 ms (Brigade: 100 ms tick, election timeout 10–20 ticks).
 */
export class EtcdCluster implements BenchCluster {
  readonly name = "etcd";
  readonly size = 3;
  private readonly directory = temporaryDirectory("etcd-raft-bench-");
  private members: EtcdMember[] = [];
  private readonly pids = new Set<number>();
  private initialCluster = "";

  async start(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const dataDir = path.join(this.directory.path, `e${i + 1}`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      this.members.push({
        name: `e${i + 1}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir,
        child: null,
        output: "",
      });
    }
    this.initialCluster = this.members
      .map((member) => `${member.name}=http://127.0.0.1:${member.peerPort}`)
      .join(",");
    for (let i = 0; i < 3; i++) this.spawnMember(i);
    await this.leader();
  }

  private spawnMember(index: number): void {
    const member = this.members[index] as EtcdMember;
    const client = `http://127.0.0.1:${member.clientPort}`;
    const peer = `http://127.0.0.1:${member.peerPort}`;
    const child = spawn(
      "etcd",
      [
        "--name",
        member.name,
        "--data-dir",
        member.dataDir,
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        this.initialCluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "brigade-raft-bench",
        "--heartbeat-interval",
        "100",
        "--election-timeout",
        "1000",
        "--logger",
        "zap",
        "--log-level",
        "error",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    member.output = "";
    child.stdout?.on("data", (chunk) => (member.output = (member.output + chunk).slice(-4000)));
    child.stderr?.on("data", (chunk) => (member.output = (member.output + chunk).slice(-4000)));
    child.on("error", (error) => (member.output += `spawn error: ${error.message}`));
    if (child.pid) this.pids.add(child.pid);
    member.child = child;
  }

  private url(member: number): string {
    return `http://127.0.0.1:${(this.members[member] as EtcdMember).clientPort}`;
  }

  /** A member's client URL (`http://127.0.0.1:port`), for benches with their own workload. */
  clientUrl(member: number): string {
    return this.url(member);
  }

  private async status(member: number): Promise<{
    memberId: string;
    leader: string;
    raftIndex: number;
    raftAppliedIndex: number;
  } | null> {
    try {
      const response = await fetch(`${this.url(member)}/v3/maintenance/status`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
        signal: AbortSignal.timeout(1_000),
      });
      const body = (await expectOk(response, "etcd status")) as {
        header: { member_id: string };
        leader?: string;
        raftIndex?: string;
        raftAppliedIndex?: string;
      };
      return {
        memberId: body.header.member_id,
        leader: body.leader ?? "0",
        raftIndex: Number(body.raftIndex ?? 0),
        raftAppliedIndex: Number(body.raftAppliedIndex ?? body.raftIndex ?? 0),
      };
    } catch {
      return null;
    }
  }

  leader(candidates: readonly number[] = [0, 1, 2]): Promise<number> {
    return waitFor(
      "an etcd leader",
      async () => {
        for (const member of candidates) {
          const status = await this.status(member);
          if (status !== null && status.memberId === status.leader) return { member };
        }
        return null;
      },
      30_000,
      20,
    ).then(
      (found) => found.member,
      (error: Error) => {
        const logs = this.members.map((m) => `${m.name}: ${m.output.slice(-500)}`).join("\n");
        throw new Error(`${error.message}\n${logs}`);
      },
    );
  }

  async put(member: number, key: string, value: string, timeoutMs = postTimeoutMs): Promise<void> {
    const response = await fetch(`${this.url(member)}/v3/kv/put`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: b64(key), value: b64(value) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await expectOk(response, "etcd put")) as { error?: string } | null;
    if (body !== null && typeof body.error === "string") throw new Error(`etcd put: ${body.error}`);
  }

  pid(member: number): number | null {
    return this.members[member]?.child?.pid ?? null;
  }

  async kill(member: number): Promise<number> {
    const pid = this.pid(member);
    if (pid === null) throw new Error(`etcd member ${member} has no process`);
    killQuietly(pid);
    return waitForDeath(pid);
  }

  async restart(member: number): Promise<void> {
    this.spawnMember(member);
    const leader = await this.leader();
    const target = (await this.status(leader))?.raftIndex ?? 0;
    await waitFor(
      `etcd member ${member} to catch up to ${target}`,
      async () => ((await this.status(member))?.raftAppliedIndex ?? -1) >= target,
      30_000,
      20,
    );
  }

  async stop(): Promise<void> {
    for (const pid of this.pids) killQuietly(pid, "SIGTERM");
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && [...this.pids].some(isProcessAlive))
      await new Promise((resolve) => setTimeout(resolve, 20));
    for (const pid of this.pids) if (isProcessAlive(pid)) killQuietly(pid);
    this.directory.remove();
  }
}
