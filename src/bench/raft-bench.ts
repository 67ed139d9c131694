/**
 * @module `npm run bench:raft`: the replicated register (Raft, fsync on) on a real 3-node
 * cluster on loopback (`brigade up --nodes 3`), and — when an `etcd` binary is on PATH — a
 * 3-member etcd on loopback driven with the same workload, with Brigade/etcd ratios.
 *
 *   - throughput / latency: closed-loop clients keep N writes in flight (N = 1, 16, 64, 256),
 *     each a PUT of a 256-byte value to the LEADER's HTTP API (etcd: `POST /v3/kv/put` on the
 *     leader's client URL, JSON gateway), over keep-alive `fetch`; 1 s warmup, then a 3 s
 *     window: committed writes/s and p50 / p99 latency (request sent → committed reply);
 *   - RSS per node (VmRSS from /proc/<pid>/status), sampled during the 256-in-flight window,
 *     the maximum over the samples;
 *   - leader failover, several repetitions: SIGKILL the leader (Brigade through
 *     `brigade local kill`), clock from the moment its process is gone to the first write
 *     acknowledged through a survivor (each survivor gets a fresh write every 20 ms, so the
 *     resolution is about 20 ms); then the killed node is restarted and caught up.
 *
 * etcd runs with `--heartbeat-interval 100 --election-timeout 1000` (Brigade: 100 ms tick,
 * election timeout 10–20 ticks). Flags: --window-ms, --warmup-ms, --failovers N,
 * --levels 1,16,..., --no-etcd. Writes bench-results/raft.json.
 */
import { parseArgs } from "node:util";
import { type ClosedLoopResult, runClosedLoop } from "./closed-loop.js";
import { rssMiB } from "./proc.js";
import { type BenchCluster, BrigadeCluster, EtcdCluster, etcdVersion } from "./raft-clusters.js";
import { writeBenchResults } from "./results.js";

const valueBytes = 256;
const keySpace = 1024;

const { values: flags } = parseArgs({
  options: {
    "window-ms": { type: "string", default: "3000" },
    "warmup-ms": { type: "string", default: "1000" },
    failovers: { type: "string", default: "3" },
    levels: { type: "string", default: "1,16,64,256" },
    "no-etcd": { type: "boolean", default: false },
  },
});
const windowMs = Number(flags["window-ms"]);
const warmupMs = Number(flags["warmup-ms"]);
const failovers = Number(flags.failovers);
const levels = (flags.levels as string).split(",").map(Number);
const rssLevel = Math.max(...levels);

interface LevelResult extends ClosedLoopResult {
  /** VmRSS (MiB) per member, max over samples in the window; only at the highest level. */
  readonly rssMiB: (number | null)[] | null;
}

interface SystemResult {
  readonly system: string;
  readonly levels: LevelResult[];
  readonly failoverMs: number[];
  readonly failoverError: string | null;
}

const value = "v".repeat(valueBytes);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureLevels(cluster: BenchCluster): Promise<LevelResult[]> {
  const results: LevelResult[] = [];
  for (const inFlight of levels) {
    const leader = await cluster.leader();
    let next = 0;
    let sampler: NodeJS.Timeout | null = null;
    const rss: (number | null)[] = Array.from({ length: cluster.size }, () => null);
    if (inFlight === rssLevel) {
      // Sample only inside the measured window.
      const startAt = Date.now() + warmupMs;
      sampler = setInterval(() => {
        if (Date.now() < startAt) return;
        for (let member = 0; member < cluster.size; member++) {
          const sample = rssMiB(cluster.pid(member));
          if (sample !== null) rss[member] = Math.max(rss[member] ?? 0, sample);
        }
      }, 250);
    }
    const result = await runClosedLoop({
      inFlight,
      warmupMs,
      durationMs: windowMs,
      send: () => cluster.put(leader, `k${next++ % keySpace}`, value),
    });
    if (sampler) clearInterval(sampler);
    results.push({ ...result, rssMiB: inFlight === rssLevel ? rss : null });
    console.log(
      `  ${cluster.name} ${String(inFlight).padStart(3)} in flight: ${fmt(result.opsPerSec, 0)} ops/s, p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms${result.errors > 0 ? `, ABORTED: ${result.firstError}` : ""}`,
    );
    await sleep(500);
  }
  return results;
}

/** Kill leader → first write acknowledged through a survivor; restart between repetitions. */
async function measureFailover(cluster: BenchCluster): Promise<number[]> {
  const times: number[] = [];
  for (let repetition = 0; repetition < failovers; repetition++) {
    const leader = await cluster.leader();
    // Make sure the cluster is writable (and warm) before the kill.
    await cluster.put(leader, "failover", "before");
    const survivors = Array.from({ length: cluster.size }, (_, i) => i).filter((i) => i !== leader);
    const diedAt = await cluster.kill(leader);
    const succeededAt = await new Promise<number>((resolve, reject) => {
      let done = false;
      let sequence = 0;
      const timer = setInterval(() => {
        for (const survivor of survivors) {
          cluster
            .put(survivor, "failover", `after-${repetition}-${sequence++}`, 5_000)
            .then(() => {
              if (done) return;
              done = true;
              clearInterval(timer);
              clearTimeout(deadline);
              resolve(Date.now());
            })
            .catch(() => {});
        }
      }, 20);
      const deadline = setTimeout(() => {
        done = true;
        clearInterval(timer);
        reject(new Error("no write succeeded within 30 s of the leader's death"));
      }, 30_000);
    });
    const ms = succeededAt - diedAt;
    times.push(ms);
    console.log(`  ${cluster.name} failover ${repetition + 1}/${failovers}: ${ms} ms`);
    await sleep(300); // let stray probes settle
    await cluster.restart(leader);
  }
  return times;
}

async function runSystem(cluster: BenchCluster): Promise<SystemResult> {
  console.log(`${cluster.name}: measuring ${levels.join(", ")} in flight`);
  const measured = await measureLevels(cluster);
  let failoverMs: number[] = [];
  let failoverError: string | null = null;
  try {
    failoverMs = await measureFailover(cluster);
  } catch (error) {
    failoverError = (error as Error).message;
    console.log(`  ${cluster.name} failover failed: ${failoverError}`);
  }
  return { system: cluster.name, levels: measured, failoverMs, failoverError };
}

function fmt(value: number, digits: number): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

const ratio = (a: number, b: number | undefined) =>
  b === undefined || b === 0 ? "" : `${(a / b).toFixed(2)}×`;
const median = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
};

function printReport(brigade: SystemResult, etcd: SystemResult | null): void {
  console.log("");
  const header = etcd
    ? "| in flight | Brigade ops/s | etcd ops/s | ratio | Brigade p50 | etcd p50 | Brigade p99 | etcd p99 | p99 ratio |"
    : "| in flight | Brigade ops/s | Brigade p50 | Brigade p99 |";
  console.log(header);
  console.log(header.replace(/[^|]/g, "-"));
  for (const [i, b] of brigade.levels.entries()) {
    const e = etcd?.levels[i];
    if (etcd && e)
      console.log(
        `| ${b.inFlight} | ${fmt(b.opsPerSec, 0)} | ${fmt(e.opsPerSec, 0)} | ${ratio(b.opsPerSec, e.opsPerSec)} | ${fmt(b.p50Ms, 2)} ms | ${fmt(e.p50Ms, 2)} ms | ${fmt(b.p99Ms, 2)} ms | ${fmt(e.p99Ms, 2)} ms | ${ratio(b.p99Ms, e.p99Ms)} |`,
      );
    else
      console.log(
        `| ${b.inFlight} | ${fmt(b.opsPerSec, 0)} | ${fmt(b.p50Ms, 2)} ms | ${fmt(b.p99Ms, 2)} ms |`,
      );
  }
  console.log("");
  for (const system of etcd ? [brigade, etcd] : [brigade]) {
    const rss = system.levels.find((level) => level.rssMiB !== null)?.rssMiB ?? [];
    console.log(
      `${system.system}: failover ${system.failoverMs.map((ms) => `${ms} ms`).join(", ")}${system.failoverError ? ` (error: ${system.failoverError})` : ""} (median ${median(system.failoverMs)} ms); RSS per node at ${rssLevel} in flight: ${rss.map((mib) => (mib === null ? "?" : `${mib.toFixed(0)} MiB`)).join(", ")}`,
    );
  }
  if (etcd)
    console.log(
      `failover ratio (median Brigade / median etcd): ${ratio(median(brigade.failoverMs), median(etcd.failoverMs))}`,
    );
}

async function withCluster<T extends BenchCluster & { start(): Promise<void> }>(
  cluster: T,
): Promise<SystemResult> {
  const stop = () => {
    void cluster.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await cluster.start();
    return await runSystem(cluster);
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const version = flags["no-etcd"] ? null : etcdVersion();
  if (!flags["no-etcd"] && version === null)
    console.log("etcd not found (apt-get install etcd-server); running Brigade only");
  const brigade = await withCluster(new BrigadeCluster());
  const etcd = version === null ? null : await withCluster(new EtcdCluster());
  printReport(brigade, etcd);
  const file = writeBenchResults("raft", {
    config: { valueBytes, keySpace, windowMs, warmupMs, levels, failovers, rssLevel },
    etcdVersion: version,
    brigade,
    etcd,
  });
  console.log(`\nwrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
