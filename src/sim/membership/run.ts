/**
 * @module CLI runner for the membership simulations (`scenario.ts`).
 *
 *   npm run sim:membership -- --seeds 20                  # every scenario, seeds 1..20
 *   npm run sim:membership -- --scenario crash --seeds 100 --nodes 64
 *   npm run sim:membership -- --seed 7 --scenario partition   # one seed: options, result
 *   npm run sim:membership -- --seed 7 --scenario slow --verbose   # ... and the full trace
 *   npm run sim:membership -- --scenario slow --seeds 5 --lifeguard off   # Lifeguard's stretching off
 *   npm run sim:membership -- --scenario loss --seeds 5 --defect ignore-refutations
 *
 * Flags: --seeds N (default 5) and --first S (default 1), or --seed S; --scenario NAME|all
 * (default all); --nodes N; --run-ms N (length of the loss / slow phase); --lifeguard on|off;
 * --defect none|ignore-refutations; --keep-going (finish every run, for statistics);
 * --verbose.
 *
 * Prints one line per run and a per-scenario summary (min / p50 / p99 / max of the measured
 * times). On the first failing run it prints the failures and exactly one
 * `reproduce: npm run sim:membership -- --seed N --scenario X` line, and exits 1 (with
 * --keep-going it carries on, and prints that one line for the first failure at the end).
 */
import process from "node:process";
import {
  describeMembershipScenario,
  type MembershipDefect,
  type MembershipScenarioName,
  type MembershipScenarioOverrides,
  type MembershipScenarioResult,
  membershipDefects,
  membershipScenarioNames,
  runMembershipScenario,
} from "./scenario.js";

interface CliOptions {
  readonly seeds: readonly number[];
  readonly scenarios: readonly MembershipScenarioName[];
  readonly nodeCount: number | null;
  readonly runMs: number | null;
  readonly lifeguard: boolean;
  readonly defect: MembershipDefect;
  readonly verbose: boolean;
  readonly keepGoing: boolean;
}

const usage =
  "usage: run.js [--seeds N [--first S]] | [--seed S] [--scenario " +
  `${membershipScenarioNames.join("|")}|all] [--nodes N] [--run-ms N] [--lifeguard on|off]` +
  ` [--defect ${membershipDefects.join("|")}] [--keep-going] [--verbose]`;

function parseInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value)) {
    throw new Error(`${flag} needs an integer, got ${text ?? "nothing"}\n${usage}`);
  }
  return value;
}

function parseArguments(argv: readonly string[]): CliOptions {
  let count = 5;
  let first = 1;
  let single: number | null = null;
  let scenarios: readonly MembershipScenarioName[] = membershipScenarioNames;
  let nodeCount: number | null = null;
  let runMs: number | null = null;
  let lifeguard = true;
  let defect: MembershipDefect = "none";
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
      case "--scenario": {
        const value = argv[++index];
        if (value === "all") {
          scenarios = membershipScenarioNames;
          break;
        }
        const match = membershipScenarioNames.find((name) => name === value);
        if (match === undefined) throw new Error(`--scenario: unknown ${value}\n${usage}`);
        scenarios = [match];
        break;
      }
      case "--nodes":
        nodeCount = parseInteger(flag, argv[++index]);
        if (nodeCount < 2) throw new Error(`--nodes must be at least 2\n${usage}`);
        break;
      case "--run-ms":
        runMs = parseInteger(flag, argv[++index]);
        break;
      case "--lifeguard": {
        const value = argv[++index];
        if (value !== "on" && value !== "off") throw new Error(`--lifeguard on|off\n${usage}`);
        lifeguard = value === "on";
        break;
      }
      case "--defect": {
        const value = argv[++index];
        const match = membershipDefects.find((candidate) => candidate === value);
        if (match === undefined) throw new Error(`--defect: unknown ${value}\n${usage}`);
        defect = match;
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
  return { seeds, scenarios, nodeCount, runMs, lifeguard, defect, verbose, keepGoing };
}

function seconds(ms: number | null): string {
  return ms === null ? "-" : `${(ms / 1000).toFixed(1)}s`;
}

function resultLine(result: MembershipScenarioResult): string {
  const { summary } = result;
  const status = result.failures.length === 0 ? "ok" : "FAIL";
  const parts = [
    `  ${status}`,
    `joined=${seconds(summary.joinedMs)}`,
    ...(summary.subject === null ? [] : [`subject=${summary.subject}`]),
    ...(summary.firstDetectionMs === null ? [] : [`first=${seconds(summary.firstDetectionMs)}`]),
    ...(summary.fullDetectionMs === null ? [] : [`all=${seconds(summary.fullDetectionMs)}`]),
    ...(summary.recoveredMs === null ? [] : [`recovered=${seconds(summary.recoveredMs)}`]),
    `suspects=${summary.suspectEvents}`,
    `dead=${summary.deadEvents}`,
    `false-positives=${summary.falsePositives}`,
    `raised=${summary.suspicionsRaised}`,
    ...(result.options.scenario === "slow"
      ? [
          `slow-killed=${summary.deathsBySlowNode}`,
          `slow-declared-dead=${summary.slowNodeDeclaredDead}`,
        ]
      : []),
    `refutations=${summary.refutations}`,
    `messages=${summary.messagesSent}`,
    `steps=${summary.steps}`,
    `digest=${result.digest}`,
  ];
  return parts.join(" ");
}

function quantiles(values: readonly number[]): string {
  if (values.length === 0) return "-";
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return `min ${seconds(sorted[0]!)} p50 ${seconds(at(0.5))} p99 ${seconds(at(0.99))} max ${seconds(sorted.at(-1)!)}`;
}

function printSummary(name: MembershipScenarioName, results: readonly MembershipScenarioResult[]) {
  const pick = (get: (result: MembershipScenarioResult) => number | null) =>
    results.map(get).filter((value): value is number => value !== null);
  const sum = (get: (result: MembershipScenarioResult) => number) =>
    results.reduce((total, result) => total + get(result), 0);
  console.log(`summary ${name} (${results.length} runs):`);
  console.log(`  joined         ${quantiles(pick((result) => result.summary.joinedMs))}`);
  const first = pick((result) => result.summary.firstDetectionMs);
  if (first.length > 0) console.log(`  first detect   ${quantiles(first)}`);
  const full = pick((result) => result.summary.fullDetectionMs);
  if (full.length > 0) console.log(`  all detect     ${quantiles(full)}`);
  const recovered = pick((result) => result.summary.recoveredMs);
  if (recovered.length > 0) console.log(`  recovered      ${quantiles(recovered)}`);
  console.log(
    `  false positives ${sum((result) => result.summary.falsePositives)},` +
      ` suspicions raised ${sum((result) => result.summary.suspicionsRaised)},` +
      ` refutations ${sum((result) => result.summary.refutations)}` +
      (name === "slow"
        ? `, deaths declared by the slow node ${sum((result) => result.summary.deathsBySlowNode)},` +
          ` slow node declared dead ${sum((result) => result.summary.slowNodeDeclaredDead)} times`
        : ""),
  );
}

function main(): number {
  const cli = parseArguments(process.argv.slice(2));
  const overrides: MembershipScenarioOverrides = {
    lifeguard: cli.lifeguard,
    defect: cli.defect,
    keepTrace: cli.verbose,
    ...(cli.nodeCount === null ? {} : { nodeCount: cli.nodeCount }),
    ...(cli.runMs === null ? {} : { runMs: cli.runMs }),
  };
  let passed = 0;
  let firstFailure: string | null = null;
  const failedRuns: string[] = [];
  for (const scenario of cli.scenarios) {
    const results: MembershipScenarioResult[] = [];
    for (const seed of cli.seeds) {
      const result = runMembershipScenario(scenario, seed, overrides);
      results.push(result);
      console.log(describeMembershipScenario(result.options));
      if (cli.verbose) for (const line of result.trace) console.log(line);
      console.log(resultLine(result));
      if (result.failures.length === 0) {
        passed++;
        continue;
      }
      for (const failure of result.failures) console.log(`  failure: ${failure}`);
      failedRuns.push(`${scenario}/${seed}`);
      const extra = [
        ...(cli.nodeCount === null ? [] : [`--nodes ${cli.nodeCount}`]),
        ...(cli.runMs === null ? [] : [`--run-ms ${cli.runMs}`]),
        ...(cli.lifeguard ? [] : ["--lifeguard off"]),
        ...(cli.defect === "none" ? [] : [`--defect ${cli.defect}`]),
      ];
      firstFailure ??=
        `reproduce: npm run sim:membership -- --seed ${seed} --scenario ${scenario}` +
        extra.map((flag) => ` ${flag}`).join("");
      if (!cli.keepGoing) {
        console.log(firstFailure);
        return 1;
      }
    }
    printSummary(scenario, results);
  }
  if (firstFailure !== null) {
    console.log(`${passed} run(s) passed, ${failedRuns.length} failed: ${failedRuns.join(" ")}`);
    console.log(firstFailure);
    return 1;
  }
  console.log(`${passed} run(s) passed`);
  return 0;
}

process.exitCode = main();
