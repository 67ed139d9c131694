/**
 * @module `brigade chaos`: inject faults into a local cluster started by `brigade up` —
 * process faults (kill, restart, pause, resume) through its supervisor, network faults
 * (partition, isolate, delay, loss, duplicate) and clock skew through the nodes' fault API,
 * all via the supervisor's control API so it can list them (`status`) and remove them (`heal`).
 *
 * The argument parsers (percents, partition groups; durations are in `options.ts`) are
 * exported for tests and for the `brigade up` prompt, which accepts the same verbs.
 */
import type { Command } from "commander";
import { type ChaosControl, type ChaosStatus, ControlApiChaos } from "../supervisor/chaos.js";
import type { LinkFault } from "../transport/faults.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { parseDuration } from "./options.js";

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Like `parseDuration`, with an optional sign: "+500ms", "-200ms", "0". */
export function parseSignedDuration(text: string, what = "offset"): number {
  const trimmed = text.trim();
  const sign = trimmed.startsWith("-") ? -1 : 1;
  const magnitude = parseDuration(trimmed.replace(/^[+-]/, ""), what);
  return magnitude === 0 ? 0 : sign * magnitude;
}

/** "10%" or "0.1" → 0.1, anything in 0..1 (0%..100%). */
export function parsePercent(text: string, what = "rate"): number {
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?|\.\d+)%$/.exec(trimmed);
  const fraction = /^(\d+(?:\.\d+)?|\.\d+)$/.exec(trimmed);
  const value =
    percent !== null ? Number(percent[1]) / 100 : fraction !== null ? Number(fraction[1]) : null;
  if (value === null)
    throw new CliError(
      `malformed ${what} "${text}": use a percentage like 10% or a fraction like 0.1`,
      2,
    );
  if (value > 1)
    throw new CliError(
      `${what} must be between 0% and 100% (0..1), got "${text}"${fraction !== null && value <= 100 ? ` (did you mean ${text}%?)` : ""}`,
      2,
    );
  return value;
}

/**
 * Partition groups from the command's words: "n1,n2 / n3,n4,n5", "n1,n2/n3,n4,n5" and a
 * quoted "n1,n2 / n3" all give [["n1","n2"],["n3",...]]; any number (≥ 2) of groups.
 */
export function parsePartitionGroups(words: readonly string[]): string[][] {
  const text = words.join(" ");
  const groups = text.split("/").map((group) => group.split(/[\s,]+/).filter(Boolean));
  const example = "e.g. `brigade chaos partition n1,n2 / n3,n4,n5`";
  if (groups.length < 2)
    throw new CliError(
      `a partition needs at least two groups of nodes separated by "/" (${example}), got "${text}"`,
      2,
    );
  if (groups.some((group) => group.length === 0))
    throw new CliError(`empty group in partition "${text}" (${example})`, 2);
  const seen = new Set<string>();
  for (const id of groups.flat()) {
    checkNodeId(id);
    if (seen.has(id)) throw new CliError(`node ${id} is in more than one group`, 2);
    seen.add(id);
  }
  return groups;
}

function checkNodeId(id: string): string {
  if (!nodeIdPattern.test(id)) throw new CliError(`malformed node id "${id}"`, 2);
  return id;
}

/** A delay or jitter: whole milliseconds (the nodes' fault rules hold integers). */
function parseDelay(text: string, what: string): number {
  const ms = parseDuration(text, what);
  if (!Number.isInteger(ms))
    throw new CliError(`${what} must be whole milliseconds, got "${text}"`, 2);
  return ms;
}

/** "10s", "200ms", "1.5s": the shortest honest rendering of a duration. */
export function formatMs(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const magnitude = Math.abs(ms);
  if (magnitude >= 60_000 && magnitude % 60_000 === 0) return `${sign}${magnitude / 60_000}m`;
  if (magnitude >= 1_000) return `${sign}${Number((magnitude / 1_000).toFixed(3))}s`;
  return `${sign}${magnitude}ms`;
}

/** One chaos operation, parsed and ready to run against a cluster; resolves to the line to print. */
export type ChaosAction = (chaos: ChaosControl) => Promise<string>;

/** The operations, each from already-split arguments; argument errors throw CliError(2) at once. */
export const chaosActions = {
  kill: (node: string): ChaosAction => {
    checkNodeId(node);
    return async (chaos) => {
      await chaos.kill(node);
      return `${node}: killed (SIGKILL); \`brigade chaos restart ${node}\` brings it back`;
    };
  },
  restart: (node: string): ChaosAction => {
    checkNodeId(node);
    return async (chaos) => {
      await chaos.restart(node);
      const info = (await chaos.nodes()).find((candidate) => candidate.id === node);
      return `${node}: restarted${info?.pid ? ` (pid ${info.pid})` : ""}; faults in force re-applied`;
    };
  },
  pause: (node: string, forText?: string): ChaosAction => {
    checkNodeId(node);
    const forMs = forText === undefined ? undefined : parseDuration(forText, "--for duration");
    if (forMs === 0) throw new CliError("--for must be longer than 0", 2);
    return async (chaos) => {
      await chaos.pause(node, forMs);
      return forMs === undefined
        ? `${node}: paused (SIGSTOP) until \`brigade chaos resume ${node}\` or heal`
        : `${node}: paused (SIGSTOP) for ${formatMs(forMs)}`;
    };
  },
  resume: (node: string): ChaosAction => {
    checkNodeId(node);
    return async (chaos) => {
      await chaos.resume(node);
      return `${node}: resumed (SIGCONT)`;
    };
  },
  partition: (words: readonly string[]): ChaosAction => {
    const groups = parsePartitionGroups(words);
    return async (chaos) => {
      await chaos.partition(groups);
      return `partitioned ${groups.map((group) => group.join(",")).join(" / ")}`;
    };
  },
  isolate: (node: string): ChaosAction => {
    checkNodeId(node);
    return async (chaos) => {
      await chaos.isolate(node);
      return `${node}: isolated from every other node`;
    };
  },
  delay: (a: string, b: string, delayText: string, jitterText?: string): ChaosAction => {
    const rule: Partial<LinkFault> = {
      delayMs: parseDelay(delayText, "delay"),
      jitterMs: jitterText === undefined ? 0 : parseDelay(jitterText, "--jitter"),
    };
    return link(
      a,
      b,
      rule,
      `delay ${formatMs(rule.delayMs ?? 0)}${rule.jitterMs ? `±${formatMs(rule.jitterMs)}` : ""}`,
    );
  },
  loss: (a: string, b: string, rateText: string): ChaosAction => {
    const dropRate = parsePercent(rateText, "loss rate");
    return link(a, b, { dropRate }, `loss ${percentText(dropRate)}`);
  },
  duplicate: (a: string, b: string, rateText: string): ChaosAction => {
    const duplicateRate = parsePercent(rateText, "duplicate rate");
    return link(a, b, { duplicateRate }, `duplicate ${percentText(duplicateRate)}`);
  },
  skew: (node: string, offsetText: string): ChaosAction => {
    checkNodeId(node);
    const offsetMs = parseSignedDuration(offsetText, "clock offset");
    return async (chaos) => {
      await chaos.skew(node, offsetMs);
      return offsetMs === 0
        ? `${node}: clock skew reset`
        : `${node}: clock runs ${formatMs(Math.abs(offsetMs))} ${offsetMs > 0 ? "ahead" : "behind"}`;
    };
  },
  heal: (): ChaosAction => async (chaos) => {
    await chaos.heal();
    const down = (await chaos.status()).faults
      .filter((fault) => fault.kind === "kill")
      .flatMap((fault) => fault.nodes);
    return `healed: network and clock faults removed, paused nodes resumed${down.length === 0 ? "" : ` (killed, still down: ${down.join(", ")}; restart brings them back)`}`;
  },
};

function link(a: string, b: string, rule: Partial<LinkFault>, what: string): ChaosAction {
  checkNodeId(a);
  checkNodeId(b);
  if (a === b) throw new CliError(`a link needs two different nodes, got ${a} twice`, 2);
  return async (chaos) => {
    await chaos.link(a, b, rule);
    return `${a}↔${b}: ${what}`;
  };
}

function percentText(rate: number): string {
  return `${Number((rate * 100).toFixed(2))}%`;
}

/** The status as a person reads it: nodes, then the faults in force. */
export function formatChaosStatus(status: ChaosStatus, now = Date.now()): string {
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  const nodes = table([
    ["NODE", "STATE", "PID", "API", "LAST EXIT"],
    ...status.nodes.map((node) => [
      node.id,
      node.state,
      node.pid === null ? "-" : String(node.pid),
      node.api,
      node.lastExit ?? "",
    ]),
  ]);
  if (status.faults.length === 0) return `${nodes}\n\nno faults in force`;
  const faults = table([
    ["FAULT", "NODES", "DETAIL", "SINCE", "ENDS"],
    ...status.faults.map((fault) => [
      fault.kind,
      fault.nodes.join(","),
      fault.detail,
      clock(fault.since),
      fault.until === undefined
        ? "-"
        : `${clock(fault.until)} (in ${formatMs(Math.max(0, fault.until - now))})`,
    ]),
  ]);
  return `${nodes}\n\n${faults}`;
}

/**
 * A chaos command typed at the `brigade up` prompt, for the verbs and forms the prompt's
 * older commands do not cover (isolate, skew, loss, `partition a,b / c`, `pause n --for d`,
 * `delay a b 200ms`); null otherwise. Throws CliError for a malformed one.
 */
export function parseChaosLine(line: string): ChaosAction | null {
  const words = line.trim().split(/\s+/).filter(Boolean);
  const flag = (name: string): string | undefined => {
    const index = words.findIndex((word) => word === name || word.startsWith(`${name}=`));
    if (index < 0) return undefined;
    const [word] = words.splice(index, 1) as [string];
    if (word.includes("=")) return word.slice(name.length + 1);
    const [value] = words.splice(index, 1);
    if (value === undefined) throw new CliError(`${name} needs a value`, 2);
    return value;
  };
  const [verb] = words;
  const need = (count: number, usage: string) => {
    if (words.length - 1 !== count) throw new CliError(`usage: ${usage}`, 2);
  };
  switch (verb) {
    case "isolate":
      need(1, "isolate <node>");
      return chaosActions.isolate(words[1] as string);
    case "skew":
      need(2, "skew <node> <+/-offset>");
      return chaosActions.skew(words[1] as string, words[2] as string);
    case "loss":
      need(3, "loss <a> <b> <rate>");
      return chaosActions.loss(words[1] as string, words[2] as string, words[3] as string);
    case "partition":
      if (!line.includes("/")) return null;
      return chaosActions.partition(words.slice(1));
    case "pause": {
      const forText = flag("--for");
      if (forText === undefined) return null;
      need(1, "pause <node> [--for <duration>]");
      return chaosActions.pause(words[1] as string, forText);
    }
    case "delay": {
      const jitter = flag("--jitter");
      if (jitter === undefined && /^\d+$/.test(words[3] ?? "")) return null;
      need(3, "delay <a> <b> <duration> [--jitter <duration>]");
      return chaosActions.delay(words[1] as string, words[2] as string, words[3] as string, jitter);
    }
    default:
      return null;
  }
}

const examples = `
Examples (against the \`brigade up\` in .brigade, or pass --dir):
  brigade chaos partition n1,n2 / n3,n4,n5   cut the cluster in two
  brigade chaos isolate n1                   cut every link of n1
  brigade chaos delay n1 n2 200ms --jitter 50ms
  brigade chaos loss n1 n2 10%
  brigade chaos skew n4 +500ms               n4's clock runs 500 ms ahead (0 resets)
  brigade chaos pause n3 --for 10s           SIGSTOP, SIGCONT after 10 s
  brigade chaos kill n2 ; brigade chaos restart n2
  brigade chaos status --json                the faults in force
  brigade chaos heal                         remove them all (killed nodes stay down)

Durations: 200ms, 10s, 1.5s, 2m. Rates: 10% or 0.1. Details: docs/chaos.md.`;

export function registerChaosCommands(program: Command): void {
  const chaos = program
    .command("chaos")
    .description(
      "inject faults (kill, pause, partition, delay, loss, clock skew) into a local cluster started by `brigade up`",
    )
    .addHelpText("after", examples);
  const dirOption = ["--dir <path>", "the `brigade up` directory", ".brigade"] as const;
  const run = async (options: { dir: string }, action: ChaosAction) => {
    process.stdout.write(`${await action(ControlApiChaos.fromDir(options.dir))}\n`);
  };
  const subcommand = (name: string, description: string) =>
    chaos
      .command(name)
      .description(description)
      .option(...dirOption);

  const nodeCommand = (verb: "kill" | "restart" | "resume" | "isolate", description: string) =>
    subcommand(verb, description)
      .argument("<node>", "node id, e.g. n2")
      .action((node: string, options: { dir: string }) => run(options, chaosActions[verb](node)));
  nodeCommand("kill", "SIGKILL a node (it stays down until restart)");
  nodeCommand(
    "restart",
    "start a node again (same id, ports, data); faults in force are re-applied to it",
  );
  subcommand("pause", "SIGSTOP a node; without --for it stays paused until resume or heal")
    .argument("<node>", "node id")
    .option("--for <duration>", "SIGCONT after this long, e.g. 10s")
    .action((node: string, options: { dir: string; for?: string }) =>
      run(options, chaosActions.pause(node, options.for)),
    );
  nodeCommand("resume", "SIGCONT a paused node");
  subcommand(
    "partition",
    "cut every link between nodes of different groups, both directions (nodes in no group keep their links)",
  )
    .argument("<groups...>", 'groups separated by "/", e.g. n1,n2 / n3,n4,n5')
    .action((words: string[], options: { dir: string }) =>
      run(options, chaosActions.partition(words)),
    );
  nodeCommand("isolate", "cut every link of a node, both directions");
  subcommand("delay", "delay frames between two nodes, both directions")
    .argument("<a>", "node id")
    .argument("<b>", "node id")
    .argument("<duration>", "e.g. 200ms")
    .option("--jitter <duration>", "add up to this much random delay (frames may reorder)")
    .action((a: string, b: string, delay: string, options: { dir: string; jitter?: string }) =>
      run(options, chaosActions.delay(a, b, delay, options.jitter)),
    );
  subcommand("loss", "drop a fraction of the frames between two nodes, both directions")
    .argument("<a>", "node id")
    .argument("<b>", "node id")
    .argument("<rate>", "10% or 0.1")
    .action((a: string, b: string, rate: string, options: { dir: string }) =>
      run(options, chaosActions.loss(a, b, rate)),
    );
  subcommand("duplicate", "send a fraction of the frames between two nodes twice, both directions")
    .argument("<a>", "node id")
    .argument("<b>", "node id")
    .argument("<rate>", "10% or 0.1")
    .action((a: string, b: string, rate: string, options: { dir: string }) =>
      run(options, chaosActions.duplicate(a, b, rate)),
    );
  subcommand("skew", "run a node's clock (its HLC's physical time) ahead or behind; 0 resets")
    .argument("<node>", "node id")
    .argument("<offset>", "+500ms (ahead), -200ms (behind), 0 (reset)")
    // "-200ms" looks like an option to the parser; let it through as the offset.
    .allowUnknownOption()
    .action((node: string, offset: string, options: { dir: string }) =>
      run(options, chaosActions.skew(node, offset)),
    );
  subcommand(
    "heal",
    "remove every network and clock fault and resume paused nodes (killed nodes stay down)",
  ).action((options: { dir: string }) => run(options, chaosActions.heal()));
  subcommand("status", "the nodes and the faults in force")
    .option("--json", "print as JSON")
    .action(async (options: { dir: string; json?: boolean }) => {
      const status = await ControlApiChaos.fromDir(options.dir).status();
      process.stdout.write(
        options.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatChaosStatus(status)}\n`,
      );
    });
}
