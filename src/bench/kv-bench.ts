/**
 * @module `npm run bench:kv`: the sharded key-value store on a real cluster on loopback
 * (`brigade up`), against a local 3-member etcd when an `etcd` binary is on PATH.
 *
 *   1. Brigade, 3 nodes, keyspace `bench` of 16 shards × 3 replicas (fsync on: every shard's
 *      Raft log goes through the node's group-committed WAL): load `--keys` keys (100,000) of
 *      256 bytes, then closed-loop windows of puts and of linearizable gets on random loaded
 *      keys at each level of `--levels` (16, 64, 256 in flight): ops/s, p50, p99, and the CPU
 *      of the load generator and of every node over the window.
 *   2. etcd, 3 members (if found; `--no-etcd` skips it): the same load and windows through
 *      the v3 JSON gateway (puts to the leader, gets spread over all members); ratios.
 *   3. Brigade, 5 nodes, the same keyspace and load, puts at `--scale-levels` (64, 256):
 *      throughput against the 3-node run (`--no-five-nodes` skips it).
 *   4. Memory (`--no-memory` skips it): a fresh 3-node cluster loaded with `--memory-keys`
 *      (1,000,000) keys of 256 bytes; each node's JavaScript heap (from its `/metrics`) and
 *      RSS during and after the load, and the load's time.
 *
 * The load generator is a child process (`kv-load.ts`) so that its CPU is measured on its
 * own; both stores go through its one HTTP client (`--http agent`: keep-alive `node:http`;
 * `--http fetch`: keep-alive undici `fetch`). Writes bench-results/kv.json.
 */
import { readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BenchChild } from "./bench-child.js";
import type { ClosedLoopResult } from "./closed-loop.js";
import { KvBrigadeCluster, type NodeMemory, scrapeCounters } from "./kv-clusters.js";
import type { LoadTarget } from "./kv-load.js";
import {
  CpuMeter,
  MachineMeter,
  type ProcessUse,
  type ProcMemory,
  procMemory,
  rssMiB,
} from "./proc.js";
import { EtcdCluster, etcdVersion } from "./raft-clusters.js";
import { writeBenchResults } from "./results.js";

const loadScript = fileURLToPath(new URL("./kv-load.js", import.meta.url));
const keyspace = "bench";
const shards = 16;
const replicas = 3;
const valueBytes = 256;

const { values: flags } = parseArgs({
  options: {
    "window-ms": { type: "string", default: "3000" },
    "warmup-ms": { type: "string", default: "1000" },
    levels: { type: "string", default: "16,64,256" },
    "scale-levels": { type: "string", default: "64,256" },
    keys: { type: "string", default: "100000" },
    "load-in-flight": { type: "string", default: "256" },
    http: { type: "string", default: "agent" },
    "no-etcd": { type: "boolean", default: false },
    "five-nodes": { type: "boolean", default: true },
    "no-five-nodes": { type: "boolean", default: false },
    memory: { type: "boolean", default: true },
    "no-memory": { type: "boolean", default: false },
    "memory-keys": { type: "string", default: "1000000" },
  },
});
const windowMs = Number(flags["window-ms"]);
const warmupMs = Number(flags["warmup-ms"]);
const levels = (flags.levels as string).split(",").map(Number);
const scaleLevels = (flags["scale-levels"] as string).split(",").map(Number);
const keys = Number(flags.keys);
const loadInFlight = Number(flags["load-in-flight"]);
const machinery = flags.http as string;
const fiveNodes = !flags["no-five-nodes"] && flags["five-nodes"] !== false;
const memoryPhase = !flags["no-memory"] && flags.memory !== false;
const memoryKeys = Number(flags["memory-keys"]);
for (const [name, number] of [
  ["--window-ms", windowMs],
  ["--warmup-ms", warmupMs],
  ["--keys", keys],
  ["--load-in-flight", loadInFlight],
  ["--memory-keys", memoryKeys],
  ...levels.map((level) => ["--levels", level] as const),
  ...scaleLevels.map((level) => ["--scale-levels", level] as const),
] as const) {
  if (!Number.isSafeInteger(number) || number < (name === "--warmup-ms" ? 0 : 1)) {
    console.error(`${name} must be a positive integer`);
    process.exit(2);
  }
}
if (machinery !== "agent" && machinery !== "fetch") {
  console.error("--http must be agent or fetch");
  process.exit(2);
}

// ---- Results -----------------------------------------------------------------------------------

interface LoadResult {
  readonly keys: number;
  readonly ms: number;
  readonly keysPerSec: number;
  readonly retries: number;
  readonly lastRetryReason: string | null;
  /** Load generator CPU over the load, % of one core. */
  readonly clientCpuPct: number;
}

interface WindowResult extends ClosedLoopResult {
  readonly op: "put" | "get";
  readonly retries: number;
  readonly lastRetryReason: string | null;
  readonly elapsedMs: number;
  /** Load generator CPU over warmup + window + drain, % of one core. */
  readonly clientCpuPct: number;
  /** Each member's CPU over the measured window, % of one core. */
  readonly nodeCpuPct: (number | null)[];
  /** Each member's threads' run-queue wait over the window, % of the window (CPU contention). */
  readonly nodeWaitPct: (number | null)[];
  /** The load generator's run-queue wait over the window, % of the window. */
  readonly clientWaitPct: number | null;
  /** The `brigade up` supervisor's CPU over the window (Brigade only). */
  readonly supervisorCpuPct: number | null;
  /** The whole machine's CPU over the window, % of one core (other work on it included). */
  readonly machineCpuPct: number | null;
  /** Per member, from its /metrics over the window: the WAL's fsyncs. */
  readonly wal: (WalWindow | null)[];
}

interface WalWindow {
  readonly fsyncsPerSec: number;
  readonly meanFsyncMs: number;
  /** Time spent in WAL appends + fsync over the window, % of the window. */
  readonly busyPct: number;
  /** Brigade: log entries per fsync (all groups of the node). */
  readonly entriesPerFsync: number | null;
}

/** Names of the WAL series in a member's /metrics. */
interface WalSeries {
  readonly seconds: string;
  readonly count: string;
  readonly entries: string | null;
}

const brigadeWal: WalSeries = {
  seconds: "brigade_raft_persist_seconds_sum",
  count: "brigade_raft_persist_seconds_count",
  entries: "brigade_raft_batch_entries_sum",
};
const etcdWal: WalSeries = {
  seconds: "etcd_disk_wal_fsync_duration_seconds_sum",
  count: "etcd_disk_wal_fsync_duration_seconds_count",
  entries: null,
};

function walWindow(
  before: Record<string, number> | null,
  after: Record<string, number> | null,
  series: WalSeries,
  ms: number,
): WalWindow | null {
  if (before === null || after === null) return null;
  const count = (after[series.count] ?? 0) - (before[series.count] ?? 0);
  const seconds = (after[series.seconds] ?? 0) - (before[series.seconds] ?? 0);
  const entries =
    series.entries === null ? null : (after[series.entries] ?? 0) - (before[series.entries] ?? 0);
  return {
    fsyncsPerSec: count / (ms / 1000),
    meanFsyncMs: count === 0 ? 0 : (seconds * 1000) / count,
    busyPct: ((seconds * 1000) / ms) * 100,
    entriesPerFsync: entries === null || count === 0 ? null : entries / count,
  };
}

interface SystemResult {
  readonly system: string;
  readonly nodes: number;
  readonly memberNames: string[];
  /** Brigade: shards led per node once every shard had a leader (and at the end). */
  readonly leadersPerNode: Record<string, number> | null;
  readonly leadersPerNodeAtEnd: Record<string, number> | null;
  /** Brigade: elections in the shard groups beyond their first, after the load and at the end. */
  readonly shardReelections: { afterLoad: number | null; atEnd: number | null } | null;
  readonly load: LoadResult;
  readonly windows: WindowResult[];
  /** RSS per member (MiB) after the windows. */
  readonly rssMiB: (number | null)[];
  /** The same from /proc, split into anonymous and file-backed pages. */
  readonly procMemory: (ProcMemory | null)[];
  /** Brigade: heap and RSS per node from /metrics after the windows. */
  readonly memory: (NodeMemory | null)[] | null;
}

interface MemoryResult {
  readonly keys: number;
  readonly load: LoadResult;
  readonly afterLoad: (NodeMemory | null)[];
  /** After 5 s idle. */
  readonly settled: (NodeMemory | null)[];
  readonly peakHeapUsedMiB: (number | null)[];
  readonly peakRssMiB: (number | null)[];
  /** After 5 s idle, from /proc: RSS split into anonymous and file-backed (LMDB's map) pages. */
  readonly procMemory: (ProcMemory | null)[];
  readonly dataDirMiB: (number | null)[];
  /** The data directory's parts (MiB on disk): kv (LMDB), snapshots, wal. */
  readonly dataDirPartsMiB: (Record<string, number> | null)[];
  readonly progress: { keys: number; seconds: number; heapUsedMiB: (number | null)[] }[];
}

// ---- Helpers -----------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "?";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "" : `${(a / b).toFixed(2)}×`;

const pcts = (values: readonly (number | null)[]) =>
  values.map((value) => (value === null ? "?" : `${value.toFixed(0)}%`)).join("/");

/** Everything to stop on Ctrl-C or failure. */
const active = new Set<{ stop(): Promise<void> }>();
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${signal}: stopping clusters`);
    void Promise.allSettled([...active].map((item) => item.stop())).finally(() =>
      process.exit(130),
    );
  });

async function startLoader(): Promise<BenchChild> {
  const child = new BenchChild("kv-load", [loadScript, "--http", machinery], true);
  active.add(child);
  await child.ready;
  return child;
}

async function stopLoader(child: BenchChild): Promise<void> {
  await child.stop();
  active.delete(child);
}

interface RawLoad {
  keys: number;
  ms: number;
  retries: number;
  lastRetryReason: string | null;
  cpuMicros: number;
}

/** Loads keys [0, count) in chunks, calling `progress` after each. */
async function load(
  child: BenchChild,
  count: number,
  chunk: number,
  progress?: (done: number, seconds: number) => Promise<void> | void,
): Promise<LoadResult> {
  const startedAt = performance.now();
  let retries = 0;
  let lastRetryReason: string | null = null;
  let cpuMicros = 0;
  for (let from = 0; from < count; from += chunk) {
    const to = Math.min(count, from + chunk);
    const result = (await child.command(
      "load",
      { from, to, inFlight: loadInFlight },
      3_600_000,
    )) as RawLoad;
    retries += result.retries;
    lastRetryReason = result.lastRetryReason ?? lastRetryReason;
    cpuMicros += result.cpuMicros;
    await progress?.(to, (performance.now() - startedAt) / 1000);
  }
  const ms = performance.now() - startedAt;
  return {
    keys: count,
    ms,
    keysPerSec: count / (ms / 1000),
    retries,
    lastRetryReason,
    clientCpuPct: (cpuMicros / 1000 / ms) * 100,
  };
}

interface Measured {
  child: BenchChild;
  pids: (number | null)[];
  supervisorPid: number | null;
  label: string;
  metricsUrls: string[];
  walSeries: WalSeries;
}

async function measureWindow(
  target: Measured,
  op: "put" | "get",
  inFlight: number,
): Promise<WindowResult> {
  const meter = new CpuMeter([...target.pids, target.supervisorPid, target.child.pid ?? null]);
  const machine = new MachineMeter();
  let cpu: ProcessUse[] = [];
  let machineCpuPct: number | null = null;
  const names = Object.values(target.walSeries).filter((name) => name !== null);
  const scrape = () => Promise.all(target.metricsUrls.map((url) => scrapeCounters(url, names)));
  let walBefore: Promise<(Record<string, number> | null)[]> | null = null;
  let walAfter: Promise<(Record<string, number> | null)[]> | null = null;
  const startTimer = setTimeout(() => {
    meter.start();
    machine.start();
    walBefore = scrape();
  }, warmupMs);
  const stopTimer = setTimeout(() => {
    cpu = meter.stop();
    machineCpuPct = machine.stop();
    walAfter = scrape();
  }, warmupMs + windowMs);
  const raw = (await target.child.command(
    "run",
    { op, inFlight, warmupMs, durationMs: windowMs, keys },
    warmupMs + windowMs + 120_000,
  )) as ClosedLoopResult & {
    op: "put" | "get";
    retries: number;
    lastRetryReason: string | null;
    elapsedMs: number;
    cpuMicros: number;
  };
  clearTimeout(startTimer);
  clearTimeout(stopTimer);
  if (cpu.length === 0) {
    cpu = meter.stop();
    machineCpuPct = machine.stop();
  }
  const before = (await (walBefore ?? Promise.resolve(null))) ?? [];
  const after = (await (walAfter ?? Promise.resolve(null))) ?? [];
  const wal = target.metricsUrls.map((_, i) =>
    walWindow(before[i] ?? null, after[i] ?? null, target.walSeries, windowMs),
  );
  const clientUse = cpu[target.pids.length + 1];
  const result: WindowResult = {
    ...raw,
    clientCpuPct: clientUse?.cpuPct ?? (raw.cpuMicros / 1000 / raw.elapsedMs) * 100,
    clientWaitPct: clientUse?.waitPct ?? null,
    nodeCpuPct: cpu.slice(0, target.pids.length).map((use) => use.cpuPct),
    nodeWaitPct: cpu.slice(0, target.pids.length).map((use) => use.waitPct),
    supervisorCpuPct:
      target.supervisorPid === null ? null : (cpu[target.pids.length]?.cpuPct ?? null),
    machineCpuPct,
    wal,
  };
  console.log(
    `  ${target.label} ${op} ${String(inFlight).padStart(3)} in flight: ${fmt(result.opsPerSec)} ops/s, p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms; CPU client ${result.clientCpuPct.toFixed(0)}% (waits ${fmt(result.clientWaitPct)}%), nodes ${pcts(result.nodeCpuPct)} (wait ${pcts(result.nodeWaitPct)})${result.supervisorCpuPct === null ? "" : `, supervisor ${result.supervisorCpuPct.toFixed(0)}%`}, machine ${fmt(result.machineCpuPct)}%; ${describeWal(result.wal)}${result.retries > 0 ? `; ${result.retries} retries (last: ${result.lastRetryReason})` : ""}${result.errors > 0 ? `; ABORTED: ${result.firstError}` : ""}`,
  );
  await sleep(300);
  return result;
}

function describeWal(wal: readonly (WalWindow | null)[]): string {
  const fsyncs = wal.map((w) => (w === null ? "?" : fmt(w.fsyncsPerSec)));
  const mean = wal.map((w) => (w === null ? "?" : w.meanFsyncMs.toFixed(1)));
  const busy = wal.map((w) => (w === null ? "?" : `${w.busyPct.toFixed(0)}%`));
  const entries = wal.map((w) =>
    w?.entriesPerFsync == null ? null : w.entriesPerFsync.toFixed(1),
  );
  return `fsyncs/s ${fsyncs.join("/")}, mean ${mean.join("/")} ms, WAL busy ${busy.join("/")}${entries.every((e) => e === null) ? "" : `, entries/fsync ${entries.join("/")}`}`;
}

function leadersPerNode(leaders: readonly string[], nodeIds: readonly string[]) {
  const counts: Record<string, number> = Object.fromEntries(nodeIds.map((id) => [id, 0]));
  for (const leader of leaders) counts[leader] = (counts[leader] ?? 0) + 1;
  return counts;
}

const describeLeaders = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([id, count]) => `${id} ${count}`)
    .join(", ");

function logLoad(label: string, result: LoadResult): void {
  console.log(
    `  ${label}: loaded ${fmt(result.keys)} keys in ${(result.ms / 1000).toFixed(1)} s (${fmt(result.keysPerSec)} keys/s, ${loadInFlight} in flight, client CPU ${result.clientCpuPct.toFixed(0)}%${result.retries > 0 ? `, ${result.retries} retries, last: ${result.lastRetryReason}` : ""})`,
  );
}

// ---- Phases ------------------------------------------------------------------------------------

async function startBrigade(size: number) {
  const cluster = new KvBrigadeCluster(size);
  active.add(cluster);
  await cluster.start();
  const view = await cluster.createKeyspace(keyspace, shards, replicas);
  const leaders = await cluster.waitForSettledLeaders(keyspace);
  const ids = cluster.members().map((member) => member.id);
  const replicasPerNode = leadersPerNode(
    view.shardMap.flatMap((shard) => [...shard.replicas]),
    ids,
  );
  console.log(
    `  ${cluster.name}: keyspace ${keyspace} (${shards} shards × ${replicas} replicas); replicas per node: ${describeLeaders(replicasPerNode)}; shard leaders per node: ${describeLeaders(leadersPerNode(leaders, ids))}`,
  );
  const child = await startLoader();
  const target: LoadTarget = { system: "brigade", keyspace, nodes: cluster.members() };
  await child.command("target", { target });
  return { cluster, child, leaders, ids };
}

async function stopBrigade(cluster: KvBrigadeCluster, child: BenchChild): Promise<void> {
  await stopLoader(child);
  await cluster.stop();
  active.delete(cluster);
}

async function brigadeRun(
  size: number,
  ops: readonly ("put" | "get")[],
  windowLevels: readonly number[],
): Promise<SystemResult> {
  console.log(`brigade, ${size} nodes:`);
  const { cluster, child, leaders, ids } = await startBrigade(size);
  try {
    const loadResult = await load(child, keys, keys);
    logLoad(cluster.name, loadResult);
    const reelectedAfterLoad = await cluster.shardTermsAboveFirst();
    const pids = ids.map((_, member) => cluster.pid(member));
    const measured: Measured = {
      child,
      pids,
      supervisorPid: cluster.supervisorPid(),
      label: cluster.name,
      metricsUrls: ids.map((_, member) => `${cluster.url(member)}/metrics`),
      walSeries: brigadeWal,
    };
    const windows: WindowResult[] = [];
    for (const op of ops)
      for (const inFlight of windowLevels) {
        // A window that needed retries may have seen a leader move: refresh the map.
        windows.push(await measureWindow(measured, op, inFlight));
        if (windows.at(-1)!.retries > 0) await child.command("refresh");
      }
    const endLeaders = await cluster.waitForLeaders(keyspace).catch(() => null);
    const reelectedAtEnd = await cluster.shardTermsAboveFirst();
    if (reelectedAtEnd)
      console.log(
        `  ${cluster.name}: shard groups went through ${reelectedAtEnd} elections beyond their first (${reelectedAfterLoad ?? "?"} by the end of the load)`,
      );
    const memory = await cluster.memory();
    return {
      system: "brigade",
      nodes: size,
      memberNames: ids,
      leadersPerNode: leadersPerNode(leaders, ids),
      leadersPerNodeAtEnd: endLeaders === null ? null : leadersPerNode(endLeaders, ids),
      shardReelections: { afterLoad: reelectedAfterLoad, atEnd: reelectedAtEnd },
      load: loadResult,
      windows,
      rssMiB: pids.map(rssMiB),
      procMemory: pids.map(procMemory),
      memory,
    };
  } finally {
    await stopBrigade(cluster, child);
  }
}

async function etcdRun(): Promise<SystemResult> {
  console.log("etcd, 3 members:");
  const cluster = new EtcdCluster();
  active.add(cluster);
  let child: BenchChild | null = null;
  try {
    await cluster.start();
    const leader = await cluster.leader();
    const members = [0, 1, 2].map((member) => cluster.clientUrl(member));
    child = await startLoader();
    const target: LoadTarget = { system: "etcd", leader: members[leader]!, members };
    await child.command("target", { target });
    const loadResult = await load(child, keys, keys);
    logLoad("etcd", loadResult);
    const pids = [0, 1, 2].map((member) => cluster.pid(member));
    const measured: Measured = {
      child,
      pids,
      supervisorPid: null,
      label: "etcd",
      metricsUrls: members.map((url) => `${url}/metrics`),
      walSeries: etcdWal,
    };
    const windows: WindowResult[] = [];
    for (const op of ["put", "get"] as const)
      for (const inFlight of levels) windows.push(await measureWindow(measured, op, inFlight));
    return {
      system: "etcd",
      nodes: 3,
      memberNames: ["e1", "e2", "e3"],
      leadersPerNode: null,
      leadersPerNodeAtEnd: null,
      shardReelections: null,
      load: loadResult,
      windows,
      rssMiB: pids.map(rssMiB),
      procMemory: pids.map(procMemory),
      memory: null,
    };
  } finally {
    if (child !== null) await stopLoader(child);
    await cluster.stop();
    active.delete(cluster);
  }
}

function directoryBytes(directory: string): number {
  let total = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) total += directoryBytes(full);
    else if (entry.isFile()) total += statSync(full).blocks * 512;
  }
  return total;
}

async function memoryRun(): Promise<MemoryResult> {
  console.log(`memory: brigade, 3 nodes, ${fmt(memoryKeys)} keys of ${valueBytes} B:`);
  const { cluster, child, ids } = await startBrigade(3);
  const peakHeap: (number | null)[] = ids.map(() => null);
  const peakRss: (number | null)[] = ids.map(() => null);
  const observe = (memory: readonly (NodeMemory | null)[]) => {
    for (const [i, node] of memory.entries()) {
      if (node?.heapUsedMiB != null) peakHeap[i] = Math.max(peakHeap[i] ?? 0, node.heapUsedMiB);
      if (node?.rssMiB != null) peakRss[i] = Math.max(peakRss[i] ?? 0, node.rssMiB);
    }
  };
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void cluster
      .memory()
      .then(observe)
      .finally(() => {
        sampling = false;
      });
  }, 1_000);
  const progress: MemoryResult["progress"] = [];
  try {
    const chunk = Math.max(1, Math.min(100_000, Math.ceil(memoryKeys / 10)));
    const loadResult = await load(child, memoryKeys, chunk, async (done, seconds) => {
      const memory = await cluster.memory();
      observe(memory);
      const heap = memory.map((node) => node?.heapUsedMiB ?? null);
      progress.push({ keys: done, seconds, heapUsedMiB: heap });
      console.log(
        `  ${fmt(done)} keys, ${seconds.toFixed(0)} s, heap used per node ${heap.map((mib) => fmt(mib)).join("/")} MiB, RSS ${memory.map((node) => fmt(node?.rssMiB)).join("/")} MiB`,
      );
    });
    clearInterval(sampler);
    logLoad("memory", loadResult);
    const afterLoad = await cluster.memory();
    observe(afterLoad);
    await sleep(5_000);
    const settled = await cluster.memory();
    observe(settled);
    const pids = ids.map((_, member) => cluster.pid(member));
    const dataDirs = ids.map((_, member) => {
      const directory = cluster.dataDir(member);
      try {
        return directory === null ? null : directoryBytes(directory) / 2 ** 20;
      } catch {
        return null;
      }
    });
    return {
      keys: memoryKeys,
      load: loadResult,
      afterLoad,
      settled,
      peakHeapUsedMiB: peakHeap,
      peakRssMiB: peakRss,
      procMemory: pids.map(procMemory),
      dataDirMiB: dataDirs,
      dataDirPartsMiB: ids.map((_, member) => {
        const directory = cluster.dataDir(member);
        if (directory === null) return null;
        const parts: Record<string, number> = {};
        for (const part of ["kv", "snapshots", "wal"]) {
          try {
            parts[part] = directoryBytes(path.join(directory, part)) / 2 ** 20;
          } catch {
            // absent
          }
        }
        try {
          // LMDB's file is sparse: its length (what the map covers) can exceed its blocks.
          parts["kv data.mdb length"] =
            statSync(path.join(directory, "kv", "data.mdb")).size / 2 ** 20;
          parts["wal segments"] = readdirSync(path.join(directory, "wal")).length;
        } catch {
          // absent
        }
        return parts;
      }),
      progress,
    };
  } finally {
    clearInterval(sampler);
    await stopBrigade(cluster, child);
  }
}

// ---- Report ------------------------------------------------------------------------------------

function printReport(
  brigade: SystemResult,
  etcd: SystemResult | null,
  five: SystemResult | null,
  memory: MemoryResult | null,
): void {
  console.log("");
  console.log(
    `Load of ${fmt(keys)} keys (${loadInFlight} in flight): brigade ${(brigade.load.ms / 1000).toFixed(1)} s (${fmt(brigade.load.keysPerSec)}/s)${etcd ? `, etcd ${(etcd.load.ms / 1000).toFixed(1)} s (${fmt(etcd.load.keysPerSec)}/s), ratio ${ratio(brigade.load.keysPerSec, etcd.load.keysPerSec)}` : ""}${five ? `, brigade 5 nodes ${(five.load.ms / 1000).toFixed(1)} s (${fmt(five.load.keysPerSec)}/s)` : ""}`,
  );
  console.log("");
  const header = etcd
    ? "| op | in flight | Brigade ops/s | etcd ops/s | ratio | Brigade p50 | etcd p50 | Brigade p99 | etcd p99 | p99 ratio |"
    : "| op | in flight | Brigade ops/s | Brigade p50 | Brigade p99 |";
  console.log(header);
  console.log(header.replace(/[^|]/g, "-"));
  for (const b of brigade.windows) {
    const e = etcd?.windows.find((w) => w.op === b.op && w.inFlight === b.inFlight);
    if (etcd && e)
      console.log(
        `| ${b.op} | ${b.inFlight} | ${fmt(b.opsPerSec)} | ${fmt(e.opsPerSec)} | ${ratio(b.opsPerSec, e.opsPerSec)} | ${fmt(b.p50Ms, 2)} ms | ${fmt(e.p50Ms, 2)} ms | ${fmt(b.p99Ms, 2)} ms | ${fmt(e.p99Ms, 2)} ms | ${ratio(b.p99Ms, e.p99Ms)} |`,
      );
    else
      console.log(
        `| ${b.op} | ${b.inFlight} | ${fmt(b.opsPerSec)} | ${fmt(b.p50Ms, 2)} ms | ${fmt(b.p99Ms, 2)} ms |`,
      );
  }
  console.log("");
  console.log(
    "Where the time went, over each window: CPU in % of one core (machine = everything running, other work included; 2 cores = 200%), run-queue wait in % of the window (runnable threads waiting for a CPU), WAL fsyncs per member:",
  );
  const cpuHeader =
    "| op | in flight | system | client CPU | client wait | member CPU | member wait | machine | fsyncs/s | mean fsync | entries/fsync |";
  console.log(cpuHeader);
  console.log(cpuHeader.replace(/[^|]/g, "-"));
  for (const b of brigade.windows) {
    const e = etcd?.windows.find((w) => w.op === b.op && w.inFlight === b.inFlight);
    for (const [name, w] of [
      ["brigade", b],
      ["etcd", e],
    ] as const) {
      if (w === undefined) continue;
      const fsyncs = w.op === "get" ? "–" : w.wal.map((x) => fmt(x?.fsyncsPerSec)).join("/");
      const mean =
        w.op === "get" ? "–" : `${w.wal.map((x) => fmt(x?.meanFsyncMs, 1)).join("/")} ms`;
      const entries =
        w.op === "get" || w.wal.every((x) => x?.entriesPerFsync == null)
          ? "–"
          : w.wal.map((x) => fmt(x?.entriesPerFsync, 1)).join("/");
      console.log(
        `| ${w.op} | ${w.inFlight} | ${name} | ${fmt(w.clientCpuPct)}% | ${fmt(w.clientWaitPct)}% | ${pcts(w.nodeCpuPct)} | ${pcts(w.nodeWaitPct)} | ${fmt(w.machineCpuPct)}% | ${fsyncs} | ${mean} | ${entries} |`,
      );
    }
  }
  if (brigade.leadersPerNode)
    console.log(
      `\nBrigade shard leaders per node: ${describeLeaders(brigade.leadersPerNode)}${brigade.leadersPerNodeAtEnd ? ` (at the end: ${describeLeaders(brigade.leadersPerNodeAtEnd)})` : ""}`,
    );
  const retried = [...brigade.windows, ...(etcd?.windows ?? [])].filter((w) => w.retries > 0);
  if (retried.length > 0)
    console.log(`retries: ${retried.map((w) => `${w.op}@${w.inFlight} ${w.retries}`).join(", ")}`);
  console.log(
    `RSS after the windows (${fmt(keys)} keys): brigade ${brigade.rssMiB.map((mib) => fmt(mib)).join("/")} MiB (anonymous ${brigade.procMemory.map((m) => fmt(m?.anonMiB)).join("/")}, file-backed ${brigade.procMemory.map((m) => fmt(m?.fileMiB)).join("/")}; heap used ${brigade.memory?.map((m) => fmt(m?.heapUsedMiB)).join("/")}, external ${brigade.memory?.map((m) => fmt(m?.externalMiB)).join("/")})${etcd ? `, etcd ${etcd.rssMiB.map((mib) => fmt(mib)).join("/")} MiB (anonymous ${etcd.procMemory.map((m) => fmt(m?.anonMiB)).join("/")}, file-backed ${etcd.procMemory.map((m) => fmt(m?.fileMiB)).join("/")})` : ""}`,
  );

  if (etcd) {
    const put = (system: SystemResult) =>
      system.windows.find((w) => w.op === "put" && w.inFlight === 64);
    const bPut = put(brigade);
    const ePut = put(etcd);
    const gets = brigade.windows.filter((w) => w.op === "get");
    console.log("\nGoals:");
    if (bPut && ePut)
      console.log(
        `  put at 64 in flight ≥ 1.0× etcd: ${ratio(bPut.opsPerSec, ePut.opsPerSec)} ${bPut.opsPerSec >= ePut.opsPerSec ? "MET" : "NOT MET"}; p99 ≤ etcd's: ${fmt(bPut.p99Ms, 2)} vs ${fmt(ePut.p99Ms, 2)} ms ${bPut.p99Ms <= ePut.p99Ms ? "MET" : "NOT MET"}`,
      );
    for (const b of gets) {
      const e = etcd.windows.find((w) => w.op === "get" && w.inFlight === b.inFlight);
      if (e)
        console.log(
          `  linearizable get at ${b.inFlight} in flight ≥ 1.0× etcd: ${ratio(b.opsPerSec, e.opsPerSec)} ${b.opsPerSec >= e.opsPerSec ? "MET" : "NOT MET"}`,
        );
    }
  }

  if (five) {
    console.log("\nPuts, 5 nodes against 3 (16 shards × 3 replicas in both):");
    const fiveHeader =
      "| in flight | 3 nodes ops/s | 5 nodes ops/s | 5/3 | 3 nodes p99 | 5 nodes p99 | 3 nodes CPU per node | 5 nodes CPU per node | 5 nodes wait | machine (3 / 5) |";
    console.log(fiveHeader);
    console.log(fiveHeader.replace(/[^|]/g, "-"));
    for (const f of five.windows) {
      const t = brigade.windows.find((w) => w.op === "put" && w.inFlight === f.inFlight);
      console.log(
        `| ${f.inFlight} | ${t ? fmt(t.opsPerSec) : "?"} | ${fmt(f.opsPerSec)} | ${ratio(f.opsPerSec, t?.opsPerSec)} | ${t ? `${fmt(t.p99Ms, 2)} ms` : "?"} | ${fmt(f.p99Ms, 2)} ms | ${t ? pcts(t.nodeCpuPct) : "?"} | ${pcts(f.nodeCpuPct)} | ${pcts(f.nodeWaitPct)} | ${fmt(t?.machineCpuPct)}% / ${fmt(f.machineCpuPct)}% |`,
      );
    }
    if (five.leadersPerNode)
      console.log(`5-node shard leaders per node: ${describeLeaders(five.leadersPerNode)}`);
  }

  if (memory) {
    console.log(
      `\nMemory with ${fmt(memory.keys)} keys of ${valueBytes} B loaded (3 nodes, ${shards} shards × ${replicas}): load took ${(memory.load.ms / 1000).toFixed(1)} s (${fmt(memory.load.keysPerSec)} keys/s${memory.load.retries > 0 ? `, ${memory.load.retries} retries` : ""})`,
    );
    const memoryHeader =
      "| node | heap used after load | heap used after 5 s | heap used peak | heap total | external | RSS after 5 s | of which anon | of which file (LMDB map) | RSS peak | data dir |";
    console.log(memoryHeader);
    console.log(memoryHeader.replace(/[^|]/g, "-"));
    for (let i = 0; i < memory.settled.length; i++) {
      const after = memory.afterLoad[i];
      const settled = memory.settled[i];
      console.log(
        `| n${i + 1} | ${fmt(after?.heapUsedMiB)} MiB | ${fmt(settled?.heapUsedMiB)} MiB | ${fmt(memory.peakHeapUsedMiB[i])} MiB | ${fmt(settled?.heapTotalMiB)} MiB | ${fmt(settled?.externalMiB)} MiB | ${fmt(settled?.rssMiB)} MiB | ${fmt(memory.procMemory[i]?.anonMiB)} MiB | ${fmt(memory.procMemory[i]?.fileMiB)} MiB | ${fmt(memory.peakRssMiB[i])} MiB | ${fmt(memory.dataDirMiB[i])} MiB |`,
      );
    }
    console.log(
      `data directories (on disk): ${memory.dataDirPartsMiB
        .map(
          (parts, i) =>
            `n${i + 1} ${
              parts === null
                ? "?"
                : Object.entries(parts)
                    .map(([name, value]) =>
                      name === "wal segments"
                        ? `${value} WAL segments`
                        : `${name} ${fmt(value)} MiB`,
                    )
                    .join(", ")
            }`,
        )
        .join("; ")}`,
    );
    const worst = Math.max(...memory.peakHeapUsedMiB.map((mib) => mib ?? Number.POSITIVE_INFINITY));
    console.log(
      `heap goal (< 256 MiB per node, peak of 1 s samples): ${worst < 256 ? "MET" : "NOT MET"} (worst peak ${fmt(worst)} MiB)`,
    );
  }
}

// ---- Main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const version = flags["no-etcd"] ? null : etcdVersion();
  if (!flags["no-etcd"] && version === null)
    console.log("etcd not found (apt-get install etcd-server); running Brigade only");
  const loadAverageBefore = os.loadavg();
  console.log(
    `bench:kv — ${shards} shards × ${replicas} replicas, ${valueBytes} B values, ${fmt(keys)} keys, windows ${warmupMs} + ${windowMs} ms, levels ${levels.join(",")}, http ${machinery}; load average ${loadAverageBefore.map((l) => l.toFixed(2)).join(" ")}`,
  );
  const brigade = await brigadeRun(3, ["put", "get"], levels);
  const etcd = version === null ? null : await etcdRun();
  const five = fiveNodes ? await brigadeRun(5, ["put"], scaleLevels) : null;
  const memory = memoryPhase ? await memoryRun() : null;
  printReport(brigade, etcd, five, memory);
  const file = writeBenchResults(
    "kv",
    {
      config: {
        shards,
        replicas,
        valueBytes,
        keys,
        loadInFlight,
        windowMs,
        warmupMs,
        levels,
        scaleLevels,
        http: machinery,
        memoryKeys: memoryPhase ? memoryKeys : null,
      },
      etcdVersion: version,
      brigade,
      etcd,
      brigade5: five,
      memory,
    },
    { loadAverageBefore, loadAverageAfter: os.loadavg() },
  );
  console.log(`\nwrote ${file}`);
}

main().catch(async (error: unknown) => {
  console.error(error);
  await Promise.allSettled([...active].map((item) => item.stop()));
  process.exitCode = 1;
});
