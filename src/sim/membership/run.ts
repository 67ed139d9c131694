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
import { Option } from "commander";
import { integer, parseRunnerCli } from "../runner-cli.js";
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

interface MembershipCliOptions {
  readonly scenario: MembershipScenarioName | "all";
  readonly nodes?: number;
  readonly runMs?: number;
  readonly lifeguard: "on" | "off";
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
  const cli = parseRunnerCli<MembershipDefect, MembershipCliOptions>({
    name: "sim:membership",
    description: "Runs the membership simulations over a range of seeds.",
    defects: membershipDefects,
    defaultSeeds: 5,
    keepGoing: true,
    options: [
      new Option("--scenario <name>", "the scenario to run")
        .choices([...membershipScenarioNames, "all"])
        .default("all"),
      new Option("--nodes <n>", "cluster size").argParser(integer(2)),
      new Option("--run-ms <n>", "length of the loss / slow phase").argParser(integer()),
      new Option("--lifeguard <on|off>", "Lifeguard's timeout stretching")
        .choices(["on", "off"])
        .default("on"),
    ],
  });
  const scenarios = cli.scenario === "all" ? membershipScenarioNames : [cli.scenario];
  const nodeCount = cli.nodes ?? null;
  const runMs = cli.runMs ?? null;
  const lifeguard = cli.lifeguard === "on";
  const overrides: MembershipScenarioOverrides = {
    lifeguard,
    defect: cli.defect,
    keepTrace: cli.verbose,
    ...(nodeCount === null ? {} : { nodeCount }),
    ...(runMs === null ? {} : { runMs }),
  };
  let passed = 0;
  let firstFailure: string | null = null;
  const failedRuns: string[] = [];
  for (const scenario of scenarios) {
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
        ...(nodeCount === null ? [] : [`--nodes ${nodeCount}`]),
        ...(runMs === null ? [] : [`--run-ms ${runMs}`]),
        ...(lifeguard ? [] : ["--lifeguard off"]),
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
