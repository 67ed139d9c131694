/**
 * @module The nemesis: it breaks the cluster on a schedule while the clients run, one fault
 * at a time — quiet, inject, hold, stop — and writes each step into the history so the
 * checkers' findings can be read against the faults. At the end it heals everything:
 * network and clocks healed, paused nodes resumed, killed nodes restarted.
 *
 * Faults never take more than a minority down at once (kill, pause, the small side of a
 * partition): the point is to check what the majority promises, not to stop it.
 */
import type { HistoryEvent, NemesisValue } from "../checker/history.js";
import type { Prng } from "../lib/prng.js";
import type { ChaosControl } from "../supervisor/chaos.js";

export const nemesisKinds = [
  "partition",
  "isolate",
  "kill",
  "pause",
  "skew",
  "delay",
  "loss",
] as const;
export type NemesisKind = (typeof nemesisKinds)[number];

export interface NemesisOptions {
  readonly chaos: ChaosControl;
  readonly nodes: readonly string[];
  readonly kinds: readonly NemesisKind[];
  readonly random: Prng;
  /** Appends a nemesis event to the history (the recorder sets index and time). */
  readonly record: (event: Omit<HistoryEvent, "index" | "time">) => void;
  /** Quiet time before each fault, ms (uniform in [min, max]). */
  readonly quietMs?: readonly [number, number];
  /** How long each fault is held, ms. */
  readonly holdMs?: readonly [number, number];
  readonly log?: (line: string) => void;
}

interface FaultInForce {
  readonly value: NemesisValue;
  readonly stop: () => Promise<void>;
}

export class Nemesis {
  readonly #options: NemesisOptions;
  #nextFault = 1;
  #current: FaultInForce | null = null;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(options: NemesisOptions) {
    this.#options = options;
  }

  /** Injects faults until `stop()`; resolves once the last one was removed. */
  async run(): Promise<void> {
    const { random } = this.#options;
    const [quietMin, quietMax] = this.#options.quietMs ?? [2_000, 4_000];
    const [holdMin, holdMax] = this.#options.holdMs ?? [3_000, 7_000];
    while (!this.#stopped) {
      await this.#sleep(random.intInclusive(quietMin, quietMax));
      if (this.#stopped) break;
      const kind = random.pick(this.#options.kinds);
      try {
        await this.#start(kind);
        if (!this.#stopped) await this.#sleep(random.intInclusive(holdMin, holdMax));
      } catch (error) {
        this.#options.log?.(`nemesis: ${kind} failed to start: ${(error as Error).message}`);
      }
      await this.#stopCurrent();
    }
  }

  /** Ends `run()` early (at the end of the client phase). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /**
   * Removes every fault, whatever injected it: heals the network and the clocks, resumes
   * paused nodes and restarts killed ones. Recorded as one "heal" step.
   */
  async healAll(): Promise<void> {
    await this.#stopCurrent();
    const { chaos } = this.#options;
    const fault = this.#nextFault++;
    const value = (action: "start" | "stop"): NemesisValue => ({
      fault,
      action,
      kind: "heal",
      nodes: [...this.#options.nodes],
      detail: "heal network and clocks, resume and restart every node",
    });
    this.#options.record({ type: "invoke", process: "nemesis", f: "heal", value: value("start") });
    // Every step is tried even when one fails, so one stuck node does not leave others down.
    const failures: string[] = [];
    const attempt = async (what: string, step: () => Promise<void>) => {
      try {
        await step();
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message}`);
      }
    };
    await attempt("heal", () => chaos.heal());
    const ours = new Set(this.#options.nodes);
    for (const node of await chaos.nodes()) {
      if (!ours.has(node.id)) continue;
      if (node.state === "paused") await attempt(`resume ${node.id}`, () => chaos.resume(node.id));
      else if (node.state !== "running" && node.state !== "starting")
        await attempt(`restart ${node.id}`, () => chaos.restart(node.id));
    }
    this.#options.record({
      type: "info",
      process: "nemesis",
      f: "heal",
      value: value("stop"),
      ...(failures.length === 0 ? {} : { error: failures.join("; ") }),
    });
    if (failures.length > 0) throw new Error(failures.join("; "));
  }

  async #start(kind: NemesisKind): Promise<void> {
    const { chaos, nodes, random } = this.#options;
    const shuffled = random.shuffle([...nodes]);
    // The largest group that still leaves a majority behind.
    const minority = Math.max(1, Math.floor((nodes.length - 1) / 2));
    const some = shuffled.slice(0, random.intInclusive(1, minority));
    let detail: string;
    let affected: readonly string[];
    let begin: () => Promise<void>;
    let end: () => Promise<void>;
    switch (kind) {
      case "partition": {
        const rest = shuffled.slice(some.length);
        affected = shuffled;
        detail = `${some.join(",")} / ${rest.join(",")}`;
        begin = () => chaos.partition([some, rest]);
        end = () => chaos.heal();
        break;
      }
      case "isolate": {
        const node = shuffled[0] as string;
        affected = [node];
        detail = `isolate ${node}`;
        begin = () => chaos.isolate(node);
        end = () => chaos.heal();
        break;
      }
      case "kill":
        affected = some;
        detail = `SIGKILL ${some.join(",")}`;
        begin = async () => {
          for (const node of some) await chaos.kill(node);
        };
        end = () => everyNode(some, (node) => chaos.restart(node));
        break;
      case "pause":
        affected = some;
        detail = `SIGSTOP ${some.join(",")}`;
        begin = async () => {
          for (const node of some) await chaos.pause(node);
        };
        end = () => everyNode(some, (node) => chaos.resume(node));
        break;
      case "skew": {
        // Offsets on both sides of the nodes' 500 ms HLC tolerance.
        const offsets = some.map(() => random.intInclusive(-1_000, 1_000));
        affected = some;
        detail = some.map((node, i) => `${node} ${signed(offsets[i] as number)}ms`).join(", ");
        begin = async () => {
          for (const [i, node] of some.entries()) await chaos.skew(node, offsets[i] as number);
        };
        end = () => everyNode(some, (node) => chaos.skew(node, 0));
        break;
      }
      case "delay":
      case "loss": {
        const [a, b] = shuffled as [string, string];
        const rule =
          kind === "delay"
            ? { delayMs: random.intInclusive(50, 300), jitterMs: random.intInclusive(0, 100) }
            : { dropRate: random.intInclusive(10, 50) / 100 };
        affected = [a, b];
        detail =
          kind === "delay"
            ? `${a}↔${b} delay ${rule.delayMs}ms±${rule.jitterMs}`
            : `${a}↔${b} loss ${Math.round((rule.dropRate ?? 0) * 100)}%`;
        begin = () => chaos.link(a, b, rule);
        end = () => chaos.heal();
        break;
      }
    }
    const fault = this.#nextFault++;
    const value = (action: "start" | "stop"): NemesisValue => ({
      fault,
      action,
      kind,
      nodes: affected,
      detail,
    });
    this.#options.record({ type: "invoke", process: "nemesis", f: kind, value: value("start") });
    this.#options.log?.(`nemesis: ${kind} ${detail}`);
    // Set before it acts: a start that fails halfway (one of two nodes killed) is still undone.
    this.#current = {
      value: value("stop"),
      stop: async () => {
        this.#options.record({ type: "invoke", process: "nemesis", f: kind, value: value("stop") });
        let failure: string | undefined;
        try {
          await end();
        } catch (error) {
          failure = (error as Error).message;
          throw error;
        } finally {
          // A failed stop still closes the interval; the final heal repairs what it left.
          this.#options.record({
            type: "info",
            process: "nemesis",
            f: kind,
            value: value("stop"),
            ...(failure === undefined ? {} : { error: failure }),
          });
        }
        this.#options.log?.(`nemesis: ${kind} stopped`);
      },
    };
    try {
      await begin();
    } finally {
      // Recorded even when it failed halfway: the fault may be partly in force.
      this.#options.record({ type: "info", process: "nemesis", f: kind, value: value("start") });
    }
  }

  async #stopCurrent(): Promise<void> {
    const current = this.#current;
    this.#current = null;
    if (current === null) return;
    try {
      await current.stop();
    } catch (error) {
      // healAll() at the end repairs whatever this left behind.
      this.#options.log?.(
        `nemesis: stopping ${current.value.kind} failed: ${(error as Error).message}`,
      );
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** Runs `step` on every node, even after one fails; then throws the failures together. */
async function everyNode(nodes: readonly string[], step: (node: string) => Promise<void>) {
  const failures: string[] = [];
  for (const node of nodes) {
    try {
      await step(node);
    } catch (error) {
      failures.push(`${node}: ${(error as Error).message}`);
    }
  }
  if (failures.length > 0) throw new Error(failures.join("; "));
}

function signed(ms: number): string {
  return ms >= 0 ? `+${ms}` : String(ms);
}
