/**
 * @module CLI runner for the Raft simulations (`scenario.ts`).
 *
 *   npm run sim:raft -- --seeds 200              # seeds 1..200
 *   npm run sim:raft -- --seeds 50 --first 1000 --nodes 5
 *   npm run sim:raft -- --seed 7 --verbose       # one seed with its full trace
 *   npm run sim:raft -- --seeds 50 --defect commit-previous-term   # the checker must fail
 *   npm run sim:raft -- --seeds 20 --schedule figure8 --defect commit-previous-term
 *
 * Flags: --seeds N (default 20) and --first S (default 1), or --seed S; --nodes 3|5 (default
 * drawn per seed); --fault-ms N; --defect none|commit-previous-term|forget-vote;
 * --schedule nemesis|figure8 (figure8: the scripted Figure 8 sequence on 5 nodes);
 * --keep-going; --verbose. Prints one line per run; on the first failure prints the failures
 * and exactly one `reproduce: npm run sim:raft -- --seed N ...` line and exits 1.
 */
import process from "node:process";
import { type RaftDefect, raftDefects } from "../../core/raft/raft-node.js";
import {
  describeRaftScenario,
  type RaftScenarioOverrides,
  type RaftSchedule,
  raftSchedules,
  runRaftScenario,
} from "./scenario.js";

interface CliOptions {
  readonly seeds: readonly number[];
  readonly nodeCount: number | null;
  readonly faultMs: number | null;
  readonly defect: RaftDefect;
  readonly schedule: RaftSchedule;
  readonly verbose: boolean;
  readonly keepGoing: boolean;
}

const usage =
  "usage: run.js [--seeds N [--first S]] | [--seed S] [--nodes 3|5] [--fault-ms N]" +
  ` [--defect ${raftDefects.join("|")}] [--schedule ${raftSchedules.join("|")}]` +
  " [--keep-going] [--verbose]";

function parseInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value)) {
    throw new Error(`${flag} needs an integer, got ${text ?? "nothing"}\n${usage}`);
  }
  return value;
}

function parseArguments(argv: readonly string[]): CliOptions {
  let count = 20;
  let first = 1;
  let single: number | null = null;
  let nodeCount: number | null = null;
  let faultMs: number | null = null;
  let defect: RaftDefect = "none";
  let schedule: RaftSchedule = "nemesis";
  let verbose = false;
  let keepGoing = false;
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    switch (flag) {
      case "--seeds":
        count = parseInteger(flag, argv[++index]);
        break;
      case "--first":
        first = parseInteger(flag, argv[++index]);
        break;
      case "--seed":
        single = parseInteger(flag, argv[++index]);
        break;
      case "--nodes":
        nodeCount = parseInteger(flag, argv[++index]);
        if (nodeCount < 1) throw new Error(`--nodes must be at least 1\n${usage}`);
        break;
      case "--fault-ms":
        faultMs = parseInteger(flag, argv[++index]);
        break;
      case "--defect": {
        const value = argv[++index];
        const match = raftDefects.find((candidate) => candidate === value);
        if (match === undefined) throw new Error(`--defect: unknown ${value}\n${usage}`);
        defect = match;
        break;
      }
      case "--schedule": {
        const value = argv[++index];
        const match = raftSchedules.find((candidate) => candidate === value);
        if (match === undefined) throw new Error(`--schedule: unknown ${value}\n${usage}`);
        schedule = match;
        break;
      }
      case "--verbose":
        verbose = true;
        break;
      case "--keep-going":
        keepGoing = true;
        break;
      case "--help":
        console.log(usage);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${usage}`);
    }
  }
  const seeds = single !== null ? [single] : Array.from({ length: count }, (_, i) => first + i);
  return { seeds, nodeCount, faultMs, defect, schedule, verbose, keepGoing };
}

function main(): number {
  const cli = parseArguments(process.argv.slice(2));
  const overrides: RaftScenarioOverrides = {
    defect: cli.defect,
    schedule: cli.schedule,
    keepTrace: cli.verbose,
    ...(cli.nodeCount === null ? {} : { nodeCount: cli.nodeCount }),
    ...(cli.faultMs === null ? {} : { faultMs: cli.faultMs }),
  };
  const extra = [
    ...(cli.nodeCount === null ? [] : [`--nodes ${cli.nodeCount}`]),
    ...(cli.faultMs === null ? [] : [`--fault-ms ${cli.faultMs}`]),
    ...(cli.defect === "none" ? [] : [`--defect ${cli.defect}`]),
    ...(cli.schedule === "nemesis" ? [] : [`--schedule ${cli.schedule}`]),
  ]
    .map((flag) => ` ${flag}`)
    .join("");
  let passed = 0;
  const failed: number[] = [];
  let firstFailure: string | null = null;
  for (const seed of cli.seeds) {
    const result = runRaftScenario(seed, overrides);
    if (cli.verbose) for (const line of result.trace) console.log(line);
    const s = result.summary;
    console.log(
      `${result.failures.length === 0 ? "ok  " : "FAIL"} ${describeRaftScenario(result.options)}` +
        ` steps=${s.steps} crashes=${s.crashes} leaders=${s.leaders} proposals=${s.proposals}` +
        ` acked=${s.acknowledged} committed=${s.committedIndex}` +
        ` reads=${s.readsConfirmed}/${s.reads}` +
        ` liveness=${s.livenessMs === null ? "-" : `${s.livenessMs}ms`}` +
        `${s.schedulePhase === null ? "" : ` phase=${s.schedulePhase}`} digest=${result.digest}`,
    );
    if (result.failures.length === 0) {
      passed++;
      continue;
    }
    for (const failure of result.failures) console.log(`  failure: ${failure}`);
    failed.push(seed);
    firstFailure ??= `reproduce: npm run sim:raft -- --seed ${seed}${extra}`;
    if (!cli.keepGoing) break;
  }
  if (firstFailure !== null) {
    console.log(`${passed} run(s) passed, ${failed.length} failed: ${failed.join(" ")}`);
    console.log(firstFailure);
    return 1;
  }
  console.log(`${passed} run(s) passed`);
  return 0;
}

process.exitCode = main();
