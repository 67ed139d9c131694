/**
 * @module `npm run bench:checker`: how fast the linearizability checker judges register
 * histories, and how much memory it takes, against a baseline in the same run.
 *
 * Histories are simulated from real registers: clients each run one operation at a time
 * (read 50%, write 30%, CAS 20%, on a random key), every operation takes effect at a random
 * instant between its call and its return, and about 5% lose their reply (info: half of those
 * took effect, possibly after the reply was given up on) and the client goes on as a new
 * process. Written values are unique. Two layouts:
 * - spread: 10 clients in all, each operation on one of 100 keys (so a key rarely sees two
 *   operations at once, and the whole history has 10);
 * - hot: 10 clients per key (1000 in all), each key's operations overlapping 10 at a time.
 * Sizes 10k, 100k, 1M operations; plus a 1M history with one stale read injected (a read
 * returning a value overwritten before it began), to show the violation is found, and how fast.
 *
 * Baseline, on the 10k spread history: Wing & Gong without memo and without splitting by key
 * (`checker-baseline.ts`), capped at --baseline-cap-s; and our checker without splitting by key
 * (one search, a map-of-registers model). The ratio is their time over ours.
 *
 * Memory: every run is a child process of its own (RSS never shrinks, so runs in one process
 * would inherit each other's peaks). Heap used before the check (after a full GC: the history
 * itself, as events) and peaks during it, sampled from `process.memoryUsage()` through the
 * checker's `shouldStop` hook (the check is synchronous, so a timer could not sample it); the
 * difference is what checking costs on top of holding the history. Results go to stdout and
 * bench-results/checker.json.
 *
 * Flags: --sizes 10000,100000,1000000; --layouts spread,hot; --baseline-cap-s 60; --seed N;
 * --quick (10k and 100k only, 10 s baseline cap).
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { type HistoryEvent, pairOperations, type Verdict } from "../checker/history.js";
import { checkLinearizable, type Model } from "../checker/linearizability.js";
import { keyedModel, registerModel } from "../checker/models.js";
import { type Prng, prngFromSeed } from "../lib/prng.js";
import { plainWingGong } from "./checker-baseline.js";
import { writeBenchResults } from "./results.js";

const keysDefault = 100;
const clientsDefault = 10;
const infoRate = 0.05;
const mebibyte = 1024 * 1024;

type Layout = "spread" | "hot";

interface SimOp {
  process: number;
  f: "read" | "write" | "cas";
  key: number;
  value: unknown;
  output: unknown;
  call: number;
  ret: number;
  effect: number;
  type: "ok" | "fail" | "info";
}

/** A linearizable register history (see the module comment). */
function generateHistory(
  random: Prng,
  options: { operations: number; keys: number; clients: number; layout: Layout },
): SimOp[] {
  const clientCount = options.layout === "hot" ? options.clients * options.keys : options.clients;
  const clock = new Float64Array(clientCount);
  const process = Array.from({ length: clientCount }, (_, i) => i);
  let nextProcess = clientCount;
  let nextValue = 1;
  const ops: SimOp[] = [];
  for (let n = 0; n < options.operations; n++) {
    const client = n % clientCount;
    const key =
      options.layout === "hot" ? Math.floor(client / options.clients) : random.int(options.keys);
    const call = (clock[client] as number) + random.float();
    // Mostly fast, sometimes slow: latency 0.5..3 ms, one in ten up to 20 ms.
    const latency = 0.5 + (random.chance(0.1) ? random.float() * 20 : random.float() * 2.5);
    const ret = call + latency;
    clock[client] = ret;
    const roll = random.float();
    const f = roll < 0.5 ? "read" : roll < 0.8 ? "write" : "cas";
    const lost = random.chance(infoRate);
    // A lost reply: half the time the op took effect, possibly later than the client waited.
    const effect = !lost
      ? call + random.float() * latency
      : random.chance(0.5)
        ? call + random.float() * latency * 3
        : Number.POSITIVE_INFINITY;
    ops.push({
      process: process[client] as number,
      f,
      key,
      value: f === "write" ? nextValue++ : null,
      output: undefined,
      call,
      ret,
      effect,
      type: lost ? "info" : "ok",
    });
    if (lost) process[client] = nextProcess++;
  }
  const registers: (number | null)[] = new Array(options.keys).fill(null);
  const byEffect = ops.filter((op) => op.effect !== Number.POSITIVE_INFINITY);
  byEffect.sort((a, b) => a.effect - b.effect);
  for (const op of byEffect) {
    const current = registers[op.key] as number | null;
    if (op.f === "read") op.output = current;
    else if (op.f === "write") registers[op.key] = op.value as number;
    else {
      // Most CASes aim at the current value; the rest at an older one and fail.
      const expected = random.chance(0.7) ? current : Math.max(0, nextValue - 1 - random.int(50));
      op.value = [expected, nextValue++];
      if (expected === current) registers[op.key] = (op.value as [number, number])[1];
      else if (op.type === "ok") op.type = "fail";
    }
  }
  for (const op of ops) if (op.f === "cas" && op.value === null) op.value = [0, nextValue++]; // never took effect
  return ops;
}

const keyNames = Array.from({ length: 10_000 }, (_, i) => `k${i}`);

function toEvents(ops: readonly SimOp[]): HistoryEvent[] {
  // Completions before invokes at equal times; times are random floats, so ties are rare.
  const stamped: { time: number; rank: number; op: SimOp }[] = [];
  for (const op of ops) {
    stamped.push({ time: op.call, rank: 1, op });
    stamped.push({ time: op.ret, rank: 0, op });
  }
  stamped.sort((a, b) => a.time - b.time || a.rank - b.rank);
  return stamped.map(({ time, rank, op }, index) => ({
    index,
    type: rank === 1 ? "invoke" : op.type,
    process: op.process,
    f: op.f,
    key: keyNames[op.key] as string,
    value: rank === 0 && op.type === "ok" && op.f === "read" ? op.output : op.value,
    time,
  }));
}

/**
 * Makes one ok read, halfway through key 0, return a value that two completed writes ago
 * was current: w1 returned, then w2 was called and returned, then the read began.
 */
function injectStaleRead(ops: SimOp[]): boolean {
  const keyOps = ops.filter((op) => op.key === 0 && op.type === "ok");
  const writes = keyOps.filter((op) => op.f === "write");
  const reads = keyOps.filter((op) => op.f === "read");
  for (const read of reads.slice(Math.floor(reads.length / 2))) {
    const before = writes.filter((w) => w.ret < read.call);
    for (let i = before.length - 1; i >= 0; i--) {
      const w2 = before[i] as SimOp;
      const w1 = before.find((w) => w.ret < w2.call);
      if (w1 === undefined) continue;
      read.output = w1.value;
      return true;
    }
  }
  return false;
}

interface Measured {
  readonly seconds: number;
  readonly heapBeforeMiB: number;
  readonly heapPeakMiB: number;
  readonly rssPeakMiB: number;
}

const gc = (() => {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
})();

/** Runs `work` with memory sampled whenever it calls the sampler it is given. */
function measure<T>(work: (sample: () => boolean) => T): { result: T; measured: Measured } {
  gc();
  const before = process.memoryUsage();
  let heapPeak = before.heapUsed;
  let rssPeak = before.rss;
  const sample = () => {
    const usage = process.memoryUsage();
    heapPeak = Math.max(heapPeak, usage.heapUsed);
    rssPeak = Math.max(rssPeak, usage.rss);
    return false;
  };
  const start = performance.now();
  const result = work(sample);
  const seconds = (performance.now() - start) / 1000;
  sample();
  return {
    result,
    measured: {
      seconds,
      heapBeforeMiB: before.heapUsed / mebibyte,
      heapPeakMiB: heapPeak / mebibyte,
      rssPeakMiB: rssPeak / mebibyte,
    },
  };
}

interface Row {
  readonly run: string;
  readonly operations: number;
  readonly keys: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly heapBeforeMiB: number;
  readonly heapPeakMiB: number;
  readonly rssPeakMiB: number;
  readonly states: number;
  readonly verdict: Verdict | "timeout";
  readonly note?: string;
}

function printTable(rows: readonly Row[]): void {
  const header = [
    "run",
    "ops",
    "keys",
    "check s",
    "ops/s",
    "heap before MiB",
    "heap peak MiB",
    "check MiB",
    "RSS peak MiB",
    "states",
    "verdict",
  ];
  const cells = rows.map((row) => [
    row.run,
    String(row.operations),
    String(row.keys),
    row.verdict === "timeout" ? `> ${row.seconds.toFixed(0)}` : row.seconds.toFixed(2),
    row.verdict === "timeout" ? "-" : Math.round(row.opsPerSecond).toLocaleString("en-US"),
    row.heapBeforeMiB.toFixed(0),
    row.heapPeakMiB.toFixed(0),
    (row.heapPeakMiB - row.heapBeforeMiB).toFixed(0),
    row.rssPeakMiB.toFixed(0),
    row.states > 0 ? String(row.states) : "-",
    row.verdict + (row.note ? ` (${row.note})` : ""),
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.map((cell) => (cell[i] as string).length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, i) =>
        i < 1 ? value.padEnd(widths[i] as number) : value.padStart(widths[i] as number),
      )
      .join("  ");
  console.log(line(header));
  for (const cell of cells) console.log(line(cell));
}

/** One measurement, run in a child process of its own so heap and RSS are its alone. */
type RunSpec =
  | {
      readonly kind: "check";
      readonly run: string;
      readonly layout: Layout;
      readonly size: number;
      readonly seed: number;
      readonly stale?: boolean;
      readonly partition?: "key" | "none";
      readonly capSeconds?: number;
    }
  | {
      readonly kind: "plain";
      readonly run: string;
      readonly size: number;
      readonly seed: number;
      readonly capSeconds: number;
    };

interface RunResult {
  readonly row: Row;
  readonly anomaly?: string;
}

function history(spec: RunSpec): HistoryEvent[] {
  const ops = generateHistory(prngFromSeed(spec.seed), {
    operations: spec.size,
    keys: keysDefault,
    clients: clientsDefault,
    layout: spec.kind === "check" ? spec.layout : "spread",
  });
  if (spec.kind === "check" && spec.stale === true && !injectStaleRead(ops))
    throw new Error("found no read to make stale");
  return toEvents(ops);
}

function runInChild(spec: RunSpec): RunResult {
  let events: HistoryEvent[] | null = history(spec);
  const operations = pairOperations(events).length;
  const deadline =
    spec.capSeconds === undefined
      ? () => false
      : (() => {
          const end = performance.now() + (spec.capSeconds as number) * 1000;
          return () => performance.now() > end;
        })();
  if (spec.kind === "plain") {
    // The baseline is handed paired operations; pairing is not what it is measured on.
    const paired = pairOperations(events);
    events = null;
    const { result, measured } = measure((sample) =>
      plainWingGong(paired, () => sample() || deadline()),
    );
    return {
      row: {
        run: spec.run,
        operations,
        keys: 1,
        ...measured,
        opsPerSecond: operations / measured.seconds,
        states: 0,
        verdict: result.verdict,
        note: `${result.steps} steps`,
      },
    };
  }
  const model = registerModel();
  // One search over every key needs a model of all of them: a map of registers.
  const chosen = (spec.partition === "none" ? keyedModel(model) : model) as Model<unknown>;
  const input = events;
  const { result, measured } = measure((sample) =>
    checkLinearizable(input, chosen, {
      partition: spec.partition ?? "key",
      shouldStop: () => sample() || deadline(),
    }),
  );
  return {
    row: {
      run: spec.run,
      operations,
      keys: spec.partition === "none" ? 1 : keysDefault,
      ...measured,
      opsPerSecond: operations / measured.seconds,
      states: result.stats.statesExplored ?? 0,
      verdict: result.verdict,
    },
    ...(result.anomalies[0] === undefined ? {} : { anomaly: result.anomalies[0].message }),
  };
}

function spawnRun(spec: RunSpec): RunResult {
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), "--child", JSON.stringify(spec)],
    { encoding: "utf8", maxBuffer: 64 * mebibyte, stdio: ["ignore", "pipe", "inherit"] },
  );
  if (child.status !== 0) throw new Error(`run ${spec.run} failed (exit ${child.status})`);
  const result = JSON.parse(child.stdout.trim().split("\n").at(-1) as string) as RunResult;
  printTable([result.row]);
  return result;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string" },
      layouts: { type: "string" },
      "baseline-cap-s": { type: "string" },
      seed: { type: "string" },
      quick: { type: "boolean", default: false },
      child: { type: "string" },
    },
  });
  if (values.child !== undefined) {
    console.log(JSON.stringify(runInChild(JSON.parse(values.child) as RunSpec)));
    return;
  }
  const quick = values.quick === true;
  const sizes = (values.sizes ?? (quick ? "10000,100000" : "10000,100000,1000000"))
    .split(",")
    .map(Number);
  const layouts = (values.layouts ?? "spread,hot").split(",") as Layout[];
  const baselineCapSeconds = Number(values["baseline-cap-s"] ?? (quick ? 10 : 60));
  const seed = Number(values.seed ?? 1);
  const rows: Row[] = [];

  console.log(
    `bench:checker: register histories over ${keysDefault} keys, ~${infoRate * 100}% info, seed ${seed}; ` +
      `layouts ${layouts.join(", ")} (spread: ${clientsDefault} clients in all; hot: ${clientsDefault} per key). ` +
      "Each run in its own process.\n",
  );
  const runs: Record<string, unknown>[] = [];
  for (const layout of layouts)
    for (const size of sizes) {
      const { row } = spawnRun({
        kind: "check",
        run: `${layout} ${size}`,
        layout,
        size,
        seed: seed + size,
      });
      rows.push(row);
      runs.push({ layout, ...row });
    }

  // A violation among the most operations: one stale read.
  const staleSize = Math.max(...sizes);
  const staleLayout: Layout = layouts.includes("hot") ? "hot" : "spread";
  const stale = spawnRun({
    kind: "check",
    run: `stale read ${staleLayout} ${staleSize}`,
    layout: staleLayout,
    size: staleSize,
    seed: seed + 7,
    stale: true,
  });
  rows.push(stale.row);
  runs.push({ layout: staleLayout, staleRead: true, ...stale.row, anomaly: stale.anomaly });
  console.log(
    `  found: ${stale.anomaly?.slice(0, 300) ?? "nothing"}${(stale.anomaly?.length ?? 0) > 300 ? "..." : ""}\n`,
  );
  if (stale.row.verdict !== "invalid") throw new Error("the stale read was not found");

  // Baselines, on the smallest spread history.
  const baselineSize = Math.min(...sizes);
  const baselineSeed = seed + baselineSize;
  console.log(`baselines on the ${baselineSize}-op spread history (cap ${baselineCapSeconds} s):`);
  const ours = spawnRun({
    kind: "check",
    run: `brigade, per key ${baselineSize}`,
    layout: "spread",
    size: baselineSize,
    seed: baselineSeed,
  }).row;
  const whole = spawnRun({
    kind: "check",
    run: `brigade, one search ${baselineSize}`,
    layout: "spread",
    size: baselineSize,
    seed: baselineSeed,
    partition: "none",
    capSeconds: baselineCapSeconds,
  }).row;
  const plain = spawnRun({
    kind: "plain",
    run: `W&G plain ${baselineSize}`,
    size: baselineSize,
    seed: baselineSeed,
    capSeconds: baselineCapSeconds,
  }).row;
  rows.push(ours, whole, plain);
  const ratio = (other: Row) =>
    other.verdict === "timeout" || other.verdict === "unknown"
      ? `> ${(other.seconds / ours.seconds).toFixed(0)}x (gave up at ${other.seconds.toFixed(1)} s)`
      : `${(other.seconds / ours.seconds).toFixed(1)}x`;
  console.log(`\nratio, W&G plain (no memo, no split) / brigade: ${ratio(plain)}`);
  console.log(`ratio, brigade without the split by key / brigade: ${ratio(whole)}\n`);

  console.log("all runs:");
  printTable(rows);
  const file = writeBenchResults("checker", {
    settings: { keys: keysDefault, clients: clientsDefault, infoRate, seed, baselineCapSeconds },
    runs,
    baseline: {
      operations: baselineSize,
      brigadePerKey: ours,
      brigadeOneSearch: whole,
      wingGongPlain: plain,
      ratioPlainOverBrigade: ratio(plain),
      ratioOneSearchOverBrigade: ratio(whole),
    },
  });
  console.log(`\nwrote ${file}`);
}

main();
