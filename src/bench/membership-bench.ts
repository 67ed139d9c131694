/**
 * @module `npm run bench:membership`: failure detection and traffic of the SWIM + Lifeguard
 * core (`core/membership`) with the LAN profile, in the deterministic simulator (virtual
 * time, so the figures do not depend on this machine's load; only the run time does).
 *
 * For every cluster size n in 16, 64, 256 and message loss 0 %, 1 %, 5 %, several seeded
 * runs each: n nodes join through one seed (until every node sees all n alive), the broadcast
 * queues drain, traffic is metered over a steady window, then one random node crashes and we
 * measure
 *   - first detection: crash → the first member marks it suspect (or dead);
 *   - full dissemination: crash → every live member marks it dead;
 *   - false positives: `member-dead` about any node that did not crash, over the whole run;
 *   - traffic: messages and msgpack-encoded bytes sent per node per second, in the steady
 *     window and from the crash to full dissemination.
 * Times are printed in protocol periods and in seconds (the LAN period is 1 s), as p50 / p99
 * over the runs (nearest rank: with fewer than 100 runs, p99 is the worst run). The baseline
 * is memberlist's model of the same protocol (printed with each row):
 *   - first detection: some member probes the crashed one within about a period (n - 1
 *     members each probe one target per period), plus the period its probe takes to fail;
 *   - full dissemination: first detection + the suspicion timeout, between
 *     min = suspicionMult · log10(n) · period and max = suspicionMaxTimeoutMult · min (near
 *     min once suspicionMult - 2 members confirm), + a few gossip rounds;
 *   - traffic: constant probe traffic per node per period (a ping and an ack each way) plus
 *     piggybacked updates bounded by piggybackUpdatesMax per packet, so per-node traffic grows
 *     only with the number of updates in flight (each sent retransmitMult · log10(n) times),
 *     plus push-pull: n records every pushPullInterval · pushPullScale(n).
 *
 * Flags: --quick (fewer runs, shorter windows), --runs N (runs per combination),
 * --sizes 16,64 (cluster sizes), --seed S (first seed, default 1), --verbose (one line per run).
 * Writes bench-results/membership.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pack } from "msgpackr";
import { membershipProfiles } from "../core/membership/config.js";
import type { MembershipEvent, MembershipMessage } from "../core/membership/messages.js";
import type { Swim } from "../core/membership/swim.js";
import { prngFromSeed } from "../lib/prng.js";
import {
  describeMembershipEvent,
  MembershipObserver,
  membershipBounds,
  membershipFactory,
  onChange,
} from "../sim/membership/scenario.js";
import { simNetworkProfiles } from "../sim/sim-network.js";
import { Simulator } from "../sim/simulator.js";

const config = membershipProfiles.lan;
const periodMs = config.probeIntervalMs;
const lossLevels = [0, 0.01, 0.05] as const;
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

interface Flags {
  readonly quick: boolean;
  readonly sizes: readonly number[];
  readonly runs: ((n: number) => number) | number;
  readonly firstSeed: number;
  readonly steadyWindowMs: number;
  readonly verbose: boolean;
}

interface Traffic {
  readonly messagesPerNodePerSecond: number;
  readonly bytesPerNodePerSecond: number;
}

interface RunResult {
  readonly seed: number;
  readonly joinedMs: number | null;
  readonly firstDetectionMs: number | null;
  readonly fullDetectionMs: number | null;
  readonly falsePositives: number;
  /** "observer>member@ms" for each false positive. */
  readonly falsePositiveDetails: readonly string[];
  readonly suspicionsOfHealthy: number;
  readonly steady: Traffic;
  readonly failure: Traffic | null;
  readonly steps: number;
}

interface Combination {
  readonly nodes: number;
  readonly loss: number;
  readonly runs: readonly RunResult[];
  readonly expected: {
    readonly suspicionMinMs: number;
    readonly suspicionMaxMs: number;
    readonly firstDetectionMs: number;
    readonly fullDetectionMsMin: number;
    readonly fullDetectionMsMax: number;
  };
  readonly summary: {
    readonly firstDetectionP50Ms: number | null;
    readonly firstDetectionP99Ms: number | null;
    readonly fullDetectionP50Ms: number | null;
    readonly fullDetectionP99Ms: number | null;
    readonly undetected: number;
    readonly falsePositives: number;
    readonly steadyMessagesPerNodePerSecond: number;
    readonly steadyBytesPerNodePerSecond: number;
    readonly failureMessagesPerNodePerSecond: number | null;
    readonly failureBytesPerNodePerSecond: number | null;
    readonly withinExpectation: boolean;
  };
}

function parseFlags(): Flags {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      sizes: { type: "string" },
      seed: { type: "string", default: "1" },
      verbose: { type: "boolean", default: false },
    },
  });
  const quick = values.quick === true;
  const sizes = values.sizes === undefined ? [16, 64, 256] : values.sizes.split(",").map(Number);
  for (const size of sizes) {
    if (!Number.isInteger(size) || size < 3) throw new Error(`--sizes: bad size ${size}`);
  }
  const defaultRuns = (n: number) =>
    quick ? (n >= 256 ? 1 : 3) : n >= 256 ? 8 : n >= 64 ? 20 : 30;
  const runs = values.runs === undefined ? defaultRuns : Number(values.runs);
  if (typeof runs === "number" && (!Number.isInteger(runs) || runs < 1)) {
    throw new Error(`--runs: bad count ${values.runs}`);
  }
  return {
    quick,
    sizes,
    runs,
    firstSeed: Number(values.seed),
    steadyWindowMs: quick ? 10_000 : 20_000,
    verbose: values.verbose === true,
  };
}

/** One seeded run: join, drain, meter a steady window, crash one node, measure detection. */
function runOnce(nodes: number, loss: number, seed: number, steadyWindowMs: number): RunResult {
  const bounds = membershipBounds(config, nodes);
  const nodeIds = Array.from({ length: nodes }, (_, index) => `n${index + 1}`);
  const observer = new MembershipObserver();
  const meter = { messages: 0, bytes: 0 };
  const simulator = new Simulator<MembershipMessage, MembershipEvent, Swim>({
    prng: prngFromSeed(seed),
    nodeIds,
    factory: membershipFactory(config, ["n1"]),
    tickIntervalMs: 20,
    network: { ...simNetworkProfiles.lan, lossProbability: loss },
    disk: { tornWriteProbability: 0 },
    // Called once per message a core sends (lost ones included): meter it here.
    describeMessage: (message) => {
      meter.messages++;
      meter.bytes += pack(message).length;
      return message.type;
    },
    describeEvent: describeMembershipEvent,
    onEvent: (record) => observer.onEvent(record),
    keepTrace: false,
    stepsMax: 200_000_000,
  });
  const prng = simulator.forkPrng();
  const changed = (condition: () => boolean) => onChange(observer, condition);

  const joined = simulator.runUntilCondition(
    changed(() => observer.all(nodeIds, nodeIds, "alive")),
    bounds.joinMs,
  );
  const joinedMs = joined ? simulator.nowMs : null;

  // Let the join's updates finish spreading, then meter the steady state.
  for (let waitedMs = 0; waitedMs < 30_000; waitedMs += 1_000) {
    const pending = nodeIds.some((nodeId) =>
      simulator.inspect(nodeId, (core) => core.pendingBroadcasts > 0),
    );
    if (!pending) break;
    simulator.runUntil(simulator.nowMs + 1_000);
  }
  const steadyStart = { ...meter };
  simulator.runUntil(simulator.nowMs + steadyWindowMs);
  const steady = traffic(meter, steadyStart, nodes, steadyWindowMs);

  simulator.runUntil(simulator.nowMs + prng.int(periodMs));
  const victim = prng.pick(nodeIds);
  const crashedAtMs = simulator.nowMs;
  const failureStart = { ...meter };
  simulator.crash(victim);
  const live = nodeIds.filter((nodeId) => nodeId !== victim);
  const detected = simulator.runUntilCondition(
    changed(() => observer.all(live, [victim], "dead")),
    crashedAtMs + bounds.failureMs,
  );
  const fullDetectionMs = detected ? simulator.nowMs - crashedAtMs : null;
  const failure = detected
    ? traffic(meter, failureStart, nodes - 1, simulator.nowMs - crashedAtMs)
    : null;
  const first = observer.records.find(
    (record) =>
      record.atMs >= crashedAtMs &&
      record.event.member.id === victim &&
      (record.event.type === "member-suspect" || record.event.type === "member-dead"),
  );
  const aboutHealthy = (type: MembershipEvent["type"]) =>
    observer.records.filter(
      (record) => record.event.type === type && record.event.member.id !== victim,
    );
  return {
    seed,
    joinedMs,
    firstDetectionMs: first === undefined ? null : first.atMs - crashedAtMs,
    fullDetectionMs,
    falsePositives: aboutHealthy("member-dead").length,
    falsePositiveDetails: aboutHealthy("member-dead").map(
      (record) => `${record.nodeId}>${record.event.member.id}@${record.atMs}`,
    ),
    suspicionsOfHealthy: aboutHealthy("member-suspect").length,
    steady,
    failure,
    steps: simulator.steps,
  };
}

function traffic(
  now: { messages: number; bytes: number },
  start: { messages: number; bytes: number },
  nodes: number,
  windowMs: number,
): Traffic {
  const perNodeSecond = nodes * (windowMs / 1000);
  return {
    messagesPerNodePerSecond: (now.messages - start.messages) / perNodeSecond,
    bytesPerNodePerSecond: (now.bytes - start.bytes) / perNodeSecond,
  };
}

/** Nearest-rank quantile; null for no values. */
function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

function summarize(nodes: number, loss: number, runs: readonly RunResult[]): Combination {
  const bounds = membershipBounds(config, nodes);
  const expected = {
    suspicionMinMs: bounds.suspicionMinMs,
    suspicionMaxMs: bounds.suspicionMaxMs,
    // About a period until someone probes it, and one for the probe to fail.
    firstDetectionMs: 2 * periodMs,
    // First detection + suspicion (min..max) + a few gossip rounds.
    fullDetectionMsMin: bounds.suspicionMinMs,
    fullDetectionMsMax: 2 * periodMs + bounds.suspicionMaxMs + bounds.disseminationMs,
  };
  const first = runs.flatMap((run) =>
    run.firstDetectionMs === null ? [] : [run.firstDetectionMs],
  );
  const full = runs.flatMap((run) => (run.fullDetectionMs === null ? [] : [run.fullDetectionMs]));
  const failures = runs.flatMap((run) => (run.failure === null ? [] : [run.failure]));
  const falsePositives = runs.reduce((sum, run) => sum + run.falsePositives, 0);
  const fullP99 = quantile(full, 0.99);
  const summary = {
    firstDetectionP50Ms: quantile(first, 0.5),
    firstDetectionP99Ms: quantile(first, 0.99),
    fullDetectionP50Ms: quantile(full, 0.5),
    fullDetectionP99Ms: fullP99,
    undetected: runs.length - full.length,
    falsePositives,
    steadyMessagesPerNodePerSecond: mean(runs.map((run) => run.steady.messagesPerNodePerSecond)),
    steadyBytesPerNodePerSecond: mean(runs.map((run) => run.steady.bytesPerNodePerSecond)),
    failureMessagesPerNodePerSecond:
      failures.length === 0 ? null : mean(failures.map((item) => item.messagesPerNodePerSecond)),
    failureBytesPerNodePerSecond:
      failures.length === 0 ? null : mean(failures.map((item) => item.bytesPerNodePerSecond)),
    withinExpectation:
      full.length === runs.length &&
      falsePositives === 0 &&
      full.every((ms) => ms >= expected.fullDetectionMsMin && ms <= expected.fullDetectionMsMax),
  };
  return { nodes, loss, runs, expected, summary };
}

function periods(ms: number | null): string {
  return ms === null ? "-" : `${(ms / periodMs).toFixed(1)}`;
}

function printTable(combinations: readonly Combination[]): void {
  const header = [
    "n".padStart(4),
    "loss".padStart(5),
    "runs".padStart(4),
    "first p50/p99".padStart(14),
    "all-dead p50/p99".padStart(17),
    "expected all-dead".padStart(18),
    "FP".padStart(3),
    "msg/node/s".padStart(11),
    "B/node/s".padStart(9),
    "fail msg/s".padStart(10),
    "fail B/s".padStart(9),
    "ok".padStart(3),
  ];
  console.log(header.join(" "));
  for (const { nodes, loss, runs, expected, summary } of combinations) {
    const row = [
      String(nodes).padStart(4),
      `${(loss * 100).toFixed(0)}%`.padStart(5),
      String(runs.length).padStart(4),
      `${periods(summary.firstDetectionP50Ms)}/${periods(summary.firstDetectionP99Ms)}`.padStart(
        14,
      ),
      `${periods(summary.fullDetectionP50Ms)}/${periods(summary.fullDetectionP99Ms)}`.padStart(17),
      `${periods(expected.fullDetectionMsMin)}..${periods(expected.fullDetectionMsMax)}`.padStart(
        18,
      ),
      String(summary.falsePositives).padStart(3),
      summary.steadyMessagesPerNodePerSecond.toFixed(2).padStart(11),
      summary.steadyBytesPerNodePerSecond.toFixed(0).padStart(9),
      (summary.failureMessagesPerNodePerSecond?.toFixed(2) ?? "-").padStart(10),
      (summary.failureBytesPerNodePerSecond?.toFixed(0) ?? "-").padStart(9),
      (summary.withinExpectation ? "yes" : "NO").padStart(3),
    ];
    console.log(row.join(" "));
  }
  console.log(
    "times in protocol periods (= seconds at the LAN default of 1 s); first = crash to first" +
      " suspicion, all-dead = crash to every live member marking it dead; FP = healthy nodes" +
      " declared dead; msg and B (msgpack bytes) sent per node per second in the steady state" +
      " and from crash to all-dead; ok = every run detected within memberlist's expected range," +
      " with no false positive.",
  );
}

function main(): void {
  const flags = parseFlags();
  const startedAt = performance.now();
  console.log(
    `membership bench: LAN profile (period ${periodMs} ms, suspicionMult ${config.suspicionMult},` +
      ` suspicionMaxTimeoutMult ${config.suspicionMaxTimeoutMult}, indirectChecks ${config.indirectChecks},` +
      ` retransmitMult ${config.retransmitMult}), simulated LAN latency 1-5 ms${flags.quick ? ", --quick" : ""}`,
  );
  console.log("memberlist's expectations per size:");
  for (const nodes of flags.sizes) {
    const bounds = membershipBounds(config, nodes);
    console.log(
      `  n=${nodes}: first detection ~1-2 periods; suspicion ${bounds.suspicionMinMs / 1000} s` +
        ` (= ${config.suspicionMult}·log10(${nodes})·1 s) .. ${bounds.suspicionMaxMs / 1000} s (×${config.suspicionMaxTimeoutMult});` +
        ` each update retransmitted ${bounds.retransmits}× per member (${config.retransmitMult}·ceil(log10(n+1)))`,
    );
  }
  const combinations: Combination[] = [];
  for (const nodes of flags.sizes) {
    for (const loss of lossLevels) {
      const count = typeof flags.runs === "number" ? flags.runs : flags.runs(nodes);
      const runs: RunResult[] = [];
      const comboStart = performance.now();
      for (let index = 0; index < count; index++) {
        const run = runOnce(nodes, loss, flags.firstSeed + index, flags.steadyWindowMs);
        runs.push(run);
        if (flags.verbose) {
          console.log(
            `    seed ${run.seed}: joined ${run.joinedMs} ms, first ${run.firstDetectionMs} ms,` +
              ` all-dead ${run.fullDetectionMs} ms, suspicions of healthy ${run.suspicionsOfHealthy},` +
              ` false positives [${run.falsePositiveDetails.join(" ")}]`,
          );
        }
      }
      const combination = summarize(nodes, loss, runs);
      combinations.push(combination);
      const { summary } = combination;
      console.log(
        `  n=${nodes} loss=${loss * 100}%: ${count} runs in ${((performance.now() - comboStart) / 1000).toFixed(1)} s;` +
          ` all-dead p50 ${periods(summary.fullDetectionP50Ms)} periods, FP ${summary.falsePositives}`,
      );
    }
  }
  console.log("");
  printTable(combinations);
  const elapsedS = (performance.now() - startedAt) / 1000;
  console.log(`bench took ${elapsedS.toFixed(1)} s of real time`);

  const outDir = path.join(repoRoot, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, "membership.json");
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        bench: "membership",
        config,
        quick: flags.quick,
        periodMs,
        network: simNetworkProfiles.lan,
        elapsedSeconds: elapsedS,
        combinations,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${path.relative(repoRoot, outFile)}`);
}

main();
