/**
 * @module `npm run bench:wal`: durable appends per second and acknowledgement latency of the
 * WAL's group commit, against a baseline without group commit, in the same run.
 *
 * Brigade: `WriteAheadLog.append([one 100-byte record])`, each acknowledged after the fsync
 * that covers it; concurrent appends share a write and an fsync. Run twice, with
 * `syncMethod: "datasync"` (the default) and `"fsync"`.
 * Baseline: what a log without group commit does, `FileHandle.appendFile(record)` then
 * `FileHandle.datasync()` for every append, each acknowledged after its own fdatasync.
 *
 * Each level of concurrency (1, 16, 128 appenders) runs a closed loop: every appender issues
 * its next append as soon as the previous one is acknowledged. After a warmup, the measured
 * window counts the acknowledgements that land inside it; latency runs from issuing an append
 * to its acknowledgement (p50, p99 nearest-rank). The variants run back to back per level so
 * they see the same machine load; the ratio is Brigade (datasync) over the baseline.
 * Everything runs in this one process on one temporary directory (removed on exit, failure
 * and Ctrl-C), and results go to stdout and bench-results/wal.json.
 *
 * Flags: --duration-ms N (measured window, default 2000), --warmup-ms N (default 500),
 * --quick (500 ms windows, 200 ms warmup), --dir PATH (where the temp directory goes; default
 * the OS temp dir: put it on the disk you care about).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type WalSyncMethod, WriteAheadLog } from "../storage/wal.js";
import { runClosedLoop } from "./closed-loop.js";

const appenderLevels = [1, 16, 128] as const;
const recordBytes = 100;
const repositoryRoot = fileURLToPath(new URL("../../", import.meta.url));

interface LoopResult {
  readonly appendsPerSecond: number;
  readonly latencyMsP50: number;
  readonly latencyMsP99: number;
  readonly completed: number;
}

interface VariantResult extends LoopResult {
  readonly variant: string;
  readonly appenders: number;
  /** Appends per fsync over the whole run (warmup included); 1 for the baseline. */
  readonly appendsPerFsync: number;
}

/** The shared closed loop (`closed-loop.ts`), as the figures this bench reports. */
async function closedLoop(
  appenders: number,
  timing: { warmupMs: number; durationMs: number },
  operation: () => Promise<unknown>,
): Promise<LoopResult> {
  const result = await runClosedLoop({ inFlight: appenders, ...timing, send: operation });
  if (result.errors > 0) throw new Error(`append failed: ${result.firstError}`);
  return {
    appendsPerSecond: result.opsPerSec,
    latencyMsP50: result.p50Ms,
    latencyMsP99: result.p99Ms,
    completed: result.ops,
  };
}

async function runBrigade(
  directory: string,
  appenders: number,
  syncMethod: WalSyncMethod,
  timing: { warmupMs: number; durationMs: number },
): Promise<VariantResult> {
  const wal = await WriteAheadLog.open(directory, { syncMethod });
  const payload = new Uint8Array(recordBytes).fill(0x61);
  try {
    // Records spread over 64 groups, as a node's Raft groups would share its WAL.
    let next = 0;
    const result = await closedLoop(appenders, timing, () =>
      wal.append([{ type: "entries", groupId: next++ % 64, payload }]),
    );
    const stats = wal.stats;
    return {
      variant: `brigade (${syncMethod})`,
      appenders,
      ...result,
      appendsPerFsync: stats.appends / stats.fsyncs,
    };
  } finally {
    await wal.close();
  }
}

async function runBaseline(
  directory: string,
  appenders: number,
  timing: { warmupMs: number; durationMs: number },
): Promise<VariantResult> {
  mkdirSync(directory, { recursive: true });
  const handle = await open(path.join(directory, "baseline.log"), "a");
  // The same bytes a WAL record of 100 bytes of payload would take.
  const record = Buffer.alloc(recordBytes + 13, 0x61);
  try {
    const result = await closedLoop(appenders, timing, async () => {
      await handle.appendFile(record);
      await handle.datasync();
    });
    return {
      variant: "baseline (append+fdatasync each)",
      appenders,
      ...result,
      appendsPerFsync: 1,
    };
  } finally {
    await handle.close();
  }
}

function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "duration-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      quick: { type: "boolean", default: false },
      dir: { type: "string" },
    },
  });
  const timing = {
    durationMs: Number(values["duration-ms"] ?? (values.quick ? 500 : 2000)),
    warmupMs: Number(values["warmup-ms"] ?? (values.quick ? 200 : 500)),
  };
  const root = mkdtempSync(path.join(values.dir ?? os.tmpdir(), "brigade-wal-bench-"));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.once("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  try {
    console.log(
      `WAL bench: ${recordBytes}-byte records, ${timing.durationMs} ms window after ` +
        `${timing.warmupMs} ms warmup, directory ${root}, Node ${process.version}, ` +
        `${os.cpus().length} CPUs`,
    );
    const results: VariantResult[] = [];
    const rows: string[][] = [];
    let run = 0;
    for (const appenders of appenderLevels) {
      const brigade = await runBrigade(
        path.join(root, `run-${run++}`),
        appenders,
        "datasync",
        timing,
      );
      const brigadeFsync = await runBrigade(
        path.join(root, `run-${run++}`),
        appenders,
        "fsync",
        timing,
      );
      const baseline = await runBaseline(path.join(root, `run-${run++}`), appenders, timing);
      results.push(brigade, brigadeFsync, baseline);
      for (const result of [brigade, brigadeFsync, baseline])
        rows.push([
          String(appenders),
          result.variant,
          formatNumber(result.appendsPerSecond),
          formatNumber(result.latencyMsP50, 3),
          formatNumber(result.latencyMsP99, 3),
          formatNumber(result.appendsPerFsync, 1),
          result === baseline
            ? "1.00x"
            : `${(result.appendsPerSecond / baseline.appendsPerSecond).toFixed(2)}x`,
        ]);
    }
    const header = [
      "appenders",
      "variant",
      "appends/s",
      "p50 ms",
      "p99 ms",
      "appends/fsync",
      "vs baseline",
    ];
    const widths = header.map((title, column) =>
      Math.max(title.length, ...rows.map((row) => row[column]!.length)),
    );
    const line = (cells: readonly string[]) =>
      cells
        .map((cell, column) =>
          column <= 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
        )
        .join("  ");
    console.log(line(header));
    for (const row of rows) console.log(line(row));

    const output = path.join(repositoryRoot, "bench-results", "wal.json");
    mkdirSync(path.dirname(output), { recursive: true });
    writeFileSync(
      output,
      `${JSON.stringify({ recordBytes, timing, node: process.version, results }, null, 2)}\n`,
    );
    console.log(`results: ${path.relative(process.cwd(), output)}`);
  } finally {
    cleanup();
  }
}

await main();
