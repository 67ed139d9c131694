/**
 * @module CLI runner for the reliable broadcast simulation (our VOPR for `core/broadcast`).
 *
 *   npm run sim:broadcast -- --seeds 200        # seeds 1..200, one line each
 *   npm run sim:broadcast -- --seed 8731        # one seed: options, result
 *   npm run sim:broadcast -- --seed 8731 --verbose   # ... and the full trace
 *   npm run sim:broadcast -- --seeds 50 --defect no-retransmit   # a broken variant
 *
 * On the first failing seed it prints the failures and exactly one
 * `reproduce: npm run sim:broadcast -- --seed <seed>` line, and exits 1.
 */
import process from "node:process";
import type { ReliableBroadcastDefect } from "../../core/broadcast/reliable-broadcast.js";
import { parseRunnerCli } from "../runner-cli.js";
import {
  type BroadcastScenarioResult,
  describeBroadcastScenario,
  runBroadcastScenario,
} from "./scenario.js";

const defects: readonly ReliableBroadcastDefect[] = ["none", "no-retransmit", "no-sync-before-ack"];

function resultLine(result: BroadcastScenarioResult): string {
  const { summary } = result;
  const status = result.failures.length === 0 ? "ok" : "FAIL";
  return (
    `  ${status} started=${summary.started} accepted=${summary.accepted}` +
    ` deliveries=${summary.deliveries} crashes=${summary.crashes} steps=${summary.steps}` +
    ` live-after-heal=${summary.livenessMs === null ? "never" : `${summary.livenessMs}ms`}` +
    ` digest=${result.digest}`
  );
}

function main(): number {
  const cli = parseRunnerCli({
    name: "sim:broadcast",
    description: "Runs the reliable broadcast simulation over a range of seeds.",
    defects,
  });
  let passed = 0;
  for (const seed of cli.seeds) {
    const result = runBroadcastScenario(seed, { defect: cli.defect, keepTrace: cli.verbose });
    console.log(describeBroadcastScenario(result.options));
    if (cli.verbose) for (const line of result.trace) console.log(line);
    console.log(resultLine(result));
    if (result.failures.length > 0) {
      for (const failure of result.failures) console.log(`  failure: ${failure}`);
      const defectFlag = cli.defect === "none" ? "" : ` --defect ${cli.defect}`;
      console.log(`reproduce: npm run sim:broadcast -- --seed ${seed}${defectFlag}`);
      return 1;
    }
    passed++;
  }
  console.log(`${passed} seed(s) passed`);
  return 0;
}

process.exitCode = main();
