/**
 * @module CLI runner for the Raft simulations (`scenario.ts`).
 *
 *   npm run sim:raft -- --seeds 200              # seeds 1..200
 *   npm run sim:raft -- --seeds 50 --first 1000 --nodes 5
 *   npm run sim:raft -- --seeds 50 --spares 0 --snapshot-every 0 --no-membership  # static group
 *   npm run sim:raft -- --seed 7 --verbose       # one seed with its full trace
 *   npm run sim:raft -- --seeds 50 --defect commit-previous-term   # the checker must fail
 *   npm run sim:raft -- --seeds 20 --schedule figure8 --defect commit-previous-term
 *
 * Flags: --seeds N (default 20) and --first S (default 1), or --seed S; --nodes 3|5 founding
 * voters (default drawn per seed); --spares N nodes outside the group at start (default drawn,
 * 1 or 2); --snapshot-every N applied entries (0: no snapshots; default drawn, 5..40);
 * --no-membership (no membership changes); --fault-ms N;
 * --defect none|commit-previous-term|forget-vote|read-without-quorum;
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
  readonly spares?: number;
  readonly snapshotEvery?: number;
  readonly membership: boolean;
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
      new Option("--nodes <n>", "founding voters, 3|5 (default: drawn per seed)").argParser(
        integer(1),
      ),
      new Option(
        "--spares <n>",
        "nodes outside the group at start (default: drawn, 1|2)",
      ).argParser(integer(0)),
      new Option(
        "--snapshot-every <n>",
        "applied entries between snapshots, 0: none (default: drawn, 5..40)",
      ).argParser(integer(0)),
      new Option("--no-membership", "no membership changes"),
      new Option("--fault-ms <n>", "length of the fault phase").argParser(integer()),
      new Option("--schedule <name>", "figure8: the scripted Figure 8 sequence on 5 nodes")
        .choices(raftSchedules)
        .default("nemesis"),
    ],
  });
  const nodeCount = cli.nodes ?? null;
  const faultMs = cli.faultMs ?? null;
  const spares = cli.spares ?? null;
  const snapshotEvery = cli.snapshotEvery ?? null;
  const overrides: RaftScenarioOverrides = {
    defect: cli.defect,
    schedule: cli.schedule,
    keepTrace: cli.verbose,
    membership: cli.membership,
    ...(nodeCount === null ? {} : { nodeCount }),
    ...(spares === null ? {} : { spares }),
    ...(snapshotEvery === null ? {} : { snapshotEvery }),
    ...(faultMs === null ? {} : { faultMs }),
  };
  const extra = [
    ...(nodeCount === null ? [] : [`--nodes ${nodeCount}`]),
    ...(spares === null ? [] : [`--spares ${spares}`]),
    ...(snapshotEvery === null ? [] : [`--snapshot-every ${snapshotEvery}`]),
    ...(cli.membership ? [] : ["--no-membership"]),
    ...(faultMs === null ? [] : [`--fault-ms ${faultMs}`]),
    ...(cli.defect === "none" ? [] : [`--defect ${cli.defect}`]),
    ...(cli.schedule === "nemesis" ? [] : [`--schedule ${cli.schedule}`]),
  ]
    .map((flag) => ` ${flag}`)
    .join("");
  let passed = 0;
  const failed: number[] = [];
  const totals = { installed: 0, restored: 0, add: 0, promote: 0, remove: 0 };
  let firstFailure: string | null = null;
  for (const seed of cli.seeds) {
    const result = runRaftScenario(seed, overrides);
    if (cli.verbose) for (const line of result.trace) console.log(line);
    const s = result.summary;
    totals.installed += s.snapshotsInstalled;
    totals.restored += s.snapshotsRestored;
    totals.add += s.configChangesApplied.add;
    totals.promote += s.configChangesApplied.promote;
    totals.remove += s.configChangesApplied.remove;
    console.log(
      `${result.failures.length === 0 ? "ok  " : "FAIL"} ${describeRaftScenario(result.options)}` +
        ` steps=${s.steps} crashes=${s.crashes} leaders=${s.leaders} proposals=${s.proposals}` +
        ` acked=${s.acknowledged} committed=${s.committedIndex}` +
        ` reads=${s.readsConfirmed}/${s.reads}${s.leaseReads > 0 ? ` lease=${s.leaseReads}` : ""}` +
        ` snapshots=${s.snapshotsTaken} sent=${s.snapshotsSent}/${s.snapshotChunksSent}ch` +
        ` installed=${s.snapshotsInstalled} restored=${s.snapshotsRestored}` +
        ` changes(add/promote/remove)=${s.configChangesApplied.add}/` +
        `${s.configChangesApplied.promote}/${s.configChangesApplied.remove} of ${s.configChangesProposed}` +
        ` voters=${s.finalConfig === null ? "-" : s.finalConfig.voters.join(",")}` +
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
  console.log(
    `totals: snapshots installed=${totals.installed} restored=${totals.restored}` +
      ` changes(add/promote/remove)=${totals.add}/${totals.promote}/${totals.remove}`,
  );
  if (firstFailure !== null) {
    console.log(`${passed} run(s) passed, ${failed.length} failed: ${failed.join(" ")}`);
    console.log(firstFailure);
    return 1;
  }
  console.log(`${passed} run(s) passed`);
  return 0;
}

process.exitCode = main();
