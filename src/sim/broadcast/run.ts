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
import {
  type BroadcastScenarioResult,
  describeBroadcastScenario,
  runBroadcastScenario,
} from "./scenario.js";

interface CliOptions {
  readonly seeds: readonly number[];
  readonly verbose: boolean;
  readonly defect: ReliableBroadcastDefect;
}

const defects: readonly ReliableBroadcastDefect[] = ["none", "no-retransmit", "no-sync-before-ack"];
const usage =
  "usage: run.js [--seeds N [--first S]] | [--seed S] [--verbose] [--defect none|no-retransmit|no-sync-before-ack]";

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
  let verbose = false;
  let defect: ReliableBroadcastDefect = "none";
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
      case "--verbose":
        verbose = true;
        break;
      case "--defect": {
        const value = argv[++index];
        const match = defects.find((candidate) => candidate === value);
        if (match === undefined) throw new Error(`--defect: unknown ${value}\n${usage}`);
        defect = match;
        break;
      }
      case "--help":
        console.log(usage);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${usage}`);
    }
  }
  const seeds = single !== null ? [single] : Array.from({ length: count }, (_, i) => first + i);
  return { seeds, verbose, defect };
}

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
  const cli = parseArguments(process.argv.slice(2));
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
