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
import { Option } from "commander";
import { type RaftDefect, raftDefects } from "../../core/raft/raft-node.js";
import { integer, parseRunnerCli } from "../runner-cli.js";
import {
  describeRaftScenario,
  type RaftScenarioOverrides,
  type RaftSchedule,
  raftSchedules,
  runRaftScenario,
} from "./scenario.js";

interface RaftCliOptions {
  readonly nodes?: number;
  readonly faultMs?: number;
  readonly schedule: RaftSchedule;
}

function main(): number {
  const cli = parseRunnerCli<RaftDefect, RaftCliOptions>({
    name: "sim:raft",
    description: "Runs the Raft simulation over a range of seeds.",
    defects: raftDefects,
    keepGoing: true,
    options: [
      new Option("--nodes <n>", "cluster size, 3|5 (default: drawn per seed)").argParser(
        integer(1),
      ),
      new Option("--fault-ms <n>", "length of the fault phase").argParser(integer()),
      new Option("--schedule <name>", "figure8: the scripted Figure 8 sequence on 5 nodes")
        .choices(raftSchedules)
        .default("nemesis"),
    ],
  });
  const nodeCount = cli.nodes ?? null;
  const faultMs = cli.faultMs ?? null;
  const overrides: RaftScenarioOverrides = {
    defect: cli.defect,
    schedule: cli.schedule,
    keepTrace: cli.verbose,
    ...(nodeCount === null ? {} : { nodeCount }),
    ...(faultMs === null ? {} : { faultMs }),
  };
  const extra = [
    ...(nodeCount === null ? [] : [`--nodes ${nodeCount}`]),
    ...(faultMs === null ? [] : [`--fault-ms ${faultMs}`]),
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
