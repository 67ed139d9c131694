/**
 * @module `brigade verify`: a Jepsen-style test of the key-value store. It starts a local
 * cluster (or attaches to a running `brigade up` with `--attach`), runs workloads under a
 * nemesis, heals, checks the history and writes `history.jsonl`, `results.json` and
 * `report.html`. Exit 0 only when every checker says valid: 1 invalid, 3 unknown, 2 usage.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { combineVerdicts, type HistoryEvent, parseHistoryLine } from "../checker/history.js";
import { attachVerifyCluster, startVerifyCluster, type VerifyCluster } from "../verify/cluster.js";
import { type NemesisKind, nemesisKinds } from "../verify/nemesis.js";
import { writeRunFiles } from "../verify/output.js";
import type { VerifyRun } from "../verify/run-types.js";
import { checkWorkloads, runVerify } from "../verify/runner.js";
import { createWorkload, type WorkloadName, workloadNames } from "../verify/workloads/index.js";
import { CliError } from "./cli-error.js";
import { parseDuration } from "./options.js";

interface VerifyOptions {
  workload: string;
  nemesis: string;
  duration: string;
  concurrency: string;
  seed?: string;
  nodes: string;
  timeout: string;
  recovery: string;
  attach?: boolean;
  dir: string;
  out?: string;
  shards: string;
  stagger: string;
  checkSteps: string;
  checkTimeout: string;
  keepData?: boolean;
  checkOnly?: string;
  json?: boolean;
}

export const verifyExitCodes = { valid: 0, invalid: 1, unknown: 3 } as const;

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description(
      "run a Jepsen-style test: workloads under faults, then check the history (exit 0 valid, 1 invalid, 3 unknown)",
    )
    .option(
      "--workload <names>",
      `comma-separated: ${workloadNames.join(", ")} (run side by side)`,
      "register",
    )
    .option(
      "--nemesis <kinds>",
      `comma-separated: ${nemesisKinds.join(", ")}, or none`,
      "partition,kill,pause",
    )
    .option("--duration <time>", "how long clients run, e.g. 30s, 2m", "30s")
    .option("--concurrency <n>", "clients per workload", "5")
    .option("--seed <n>", "seed of the operation and fault schedule (default: random, printed)")
    .option("--nodes <n>", "nodes of the cluster verify starts (3..9)", "3")
    .option("--attach", "use the running `brigade up` of --dir instead of starting a cluster")
    .option("--dir <path>", "the `brigade up` directory (with --attach)", ".brigade")
    .option("--out <path>", "where history.jsonl, results.json and report.html go", undefined)
    .option("--timeout <time>", "one operation's client timeout", "3s")
    .option("--recovery <time>", "longest wait for the cluster to answer after the heal", "60s")
    .option("--shards <n>", "shards per workload keyspace", "2")
    .option("--stagger <time>", "mean pause between one client's operations", "10ms")
    .option("--check-steps <n>", "linearizability search steps per key before 'unknown'", "5000000")
    .option("--check-timeout <time>", "the whole check gives up ('unknown') after this", "5m")
    .option("--keep-data", "keep the started cluster's data directories")
    .option(
      "--check-only <dir>",
      "run no test: check the history in <dir> again (current checkers, --check-steps and --check-timeout) and rewrite its results.json and report.html",
    )
    .option("--json", "print the results as JSON instead of a summary")
    .action(async (options: VerifyOptions) => {
      const stepsPerKey = integer(options.checkSteps, "--check-steps", 1, 1e10);
      const checkTimeoutMs = parseDuration(options.checkTimeout, "--check-timeout");
      const { run, out } =
        options.checkOnly === undefined
          ? await liveRun(options, stepsPerKey, checkTimeoutMs)
          : await recheck(path.resolve(options.checkOnly), stepsPerKey, checkTimeoutMs);
      const files = writeRunFiles(out, run);
      if (options.json) {
        const { history: _history, ...summary } = run;
        process.stdout.write(`${JSON.stringify({ ...summary, files }, null, 2)}\n`);
      } else {
        const ops = run.history.filter(
          (event) => event.process !== "nemesis" && event.type !== "invoke",
        );
        const count = (type: string) => ops.filter((event) => event.type === type).length;
        process.stdout.write(
          `${run.history.length} events: ${count("ok")} ok, ${count("fail")} fail, ${count("info")} info; checked in ${(run.checkMs / 1000).toFixed(1)}s\n`,
        );
        for (const result of run.results) {
          process.stdout.write(
            `${result.verdict.toUpperCase().padEnd(8)} ${result.checker}: ${result.summary}\n`,
          );
          for (const anomaly of result.anomalies.slice(0, 5))
            process.stdout.write(`         - ${anomaly.kind}: ${anomaly.message}\n`);
          if (result.anomalies.length > 5)
            process.stdout.write(
              `         - ... ${result.anomalies.length - 5} more in results.json\n`,
            );
        }
        process.stdout.write(`verdict: ${run.verdict.toUpperCase()}\nreport: ${files.report}\n`);
      }
      process.exitCode = verifyExitCodes[run.verdict];
    });
}

/** Starts or attaches to a cluster and runs the test. */
async function liveRun(
  options: VerifyOptions,
  stepsPerKey: number,
  checkTimeoutMs: number,
): Promise<{ run: VerifyRun; out: string }> {
  const workloads = list(options.workload, workloadNames, "--workload") as WorkloadName[];
  const nemeses =
    options.nemesis === "none"
      ? []
      : (list(options.nemesis, nemesisKinds, "--nemesis") as NemesisKind[]);
  const durationMs = parseDuration(options.duration, "--duration");
  const timeoutMs = parseDuration(options.timeout, "--timeout");
  const recoveryMs = parseDuration(options.recovery, "--recovery");
  const staggerMs = parseDuration(options.stagger, "--stagger");
  const concurrency = integer(options.concurrency, "--concurrency", 1, 64);
  const nodeCount = integer(options.nodes, "--nodes", 3, 9);
  const shards = integer(options.shards, "--shards", 1, 64);
  const seed =
    options.seed === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : integer(options.seed, "--seed", 0, 2 ** 32 - 1);
  const runId = `${Date.now().toString(36)}`;
  const out = path.resolve(options.out ?? path.join("verify-results", `${runId}-seed${seed}`));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`verify: seed ${seed}; results in ${out}`);

  const clusterDir = options.attach ? null : mkdtempSync(path.join(tmpdir(), "brigade-verify-"));
  const removeData = () => {
    if (clusterDir !== null && !options.keepData)
      rmSync(clusterDir, { recursive: true, force: true });
  };
  let cluster: VerifyCluster;
  try {
    cluster =
      clusterDir === null
        ? await attachVerifyCluster(path.resolve(options.dir))
        : await startVerifyCluster({
            nodes: nodeCount,
            dir: clusterDir,
            logFile: path.join(out, "cluster.log"),
          });
  } catch (error) {
    removeData();
    throw new CliError(
      `cannot ${clusterDir === null ? "attach to" : "start"} the cluster: ${(error as Error).message}`,
      1,
    );
  }
  let run: VerifyRun;
  try {
    run = await runVerify({
      cluster,
      workloads: workloads.map((name) => createWorkload(name, `verify-${runId}-${name}`)),
      nemeses,
      seed,
      durationMs,
      concurrency,
      timeoutMs,
      recoveryMs,
      shards,
      replicas: Math.min(3, cluster.apis.size),
      staggerMs,
      stepsPerKey,
      checkTimeoutMs,
      log,
    });
  } finally {
    await cluster.close();
    removeData();
  }
  return { run, out };
}

/** Checks a recorded run again: its settings say which workloads made the history. */
async function recheck(
  directory: string,
  stepsPerKey: number,
  checkTimeoutMs: number,
): Promise<{ run: VerifyRun; out: string }> {
  let history: HistoryEvent[];
  let previous: Omit<VerifyRun, "history">;
  try {
    history = await readHistory(path.join(directory, "history.jsonl"));
    previous = JSON.parse(readFileSync(path.join(directory, "results.json"), "utf8"));
  } catch (error) {
    throw new CliError(
      `--check-only: cannot read the run in ${directory}: ${(error as Error).message}`,
      2,
    );
  }
  const names = list(
    previous.settings.workloads.join(","),
    workloadNames,
    "the recorded workloads",
  );
  const workloads = names.map((name) => createWorkload(name as WorkloadName, "recheck"));
  const started = performance.now();
  const deadline = started + checkTimeoutMs;
  const results = checkWorkloads(workloads, history, {
    stepsPerKey,
    shouldStop: () => performance.now() > deadline,
  });
  // Results that are not a workload's (a cluster that did not recover) still stand.
  const others = previous.results.filter((result) => !result.checker.includes("/"));
  results.push(...others);
  return {
    out: directory,
    run: {
      ...previous,
      history,
      results,
      verdict: combineVerdicts(results.map((result) => result.verdict)),
      checkMs: Math.round(performance.now() - started),
    },
  };
}

function list(text: string, allowed: readonly string[], flag: string): string[] {
  const names = text
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const unknown = names.filter((name) => !allowed.includes(name));
  if (names.length === 0 || unknown.length > 0)
    throw new CliError(
      `${flag}: unknown ${unknown.join(", ") || "(empty)"}; choose from ${allowed.join(", ")}`,
      2,
    );
  return [...new Set(names)];
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new CliError(`${flag} must be an integer in ${min}..${max}, got "${text}"`, 2);
  return value;
}

/** Reads a history line by line: a long run's file is larger than one string can be. */
async function readHistory(file: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let lineNumber = 0;
  for await (const line of createInterface({
    input: createReadStream(file),
    crlfDelay: Infinity,
  })) {
    const event = parseHistoryLine(line, ++lineNumber, events.length);
    if (event !== null) events.push(event);
  }
  return events;
}
