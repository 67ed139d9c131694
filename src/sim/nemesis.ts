/**
 * @module The nemesis: a seeded fault schedule for a simulator run (after Jepsen's nemeses and
 * TigerBeetle's VOPR). During the fault phase it fires a random fault every
 * `faultIntervalMsMean` on average (exponential gaps) and undoes each one after a random
 * duration: partitions (isolate one node, or a random split), crashes (immediate, or at the
 * node's next write, before the fsync), loss bursts and one-way link drops. At the end of the
 * fault phase it heals everything and restarts every crashed node, so the heal phase that
 * follows runs on a whole, fault-free cluster (apart from the base loss rate) and liveness
 * can be checked within a bound.
 *
 * Every choice comes from the `Prng` given to it; it acts only through scheduled simulator
 * actions, so its faults are in the trace and replay with the seed.
 */

import type { NodeId } from "../core/sans-io.js";
import { assert, assertNever } from "../lib/assert.js";
import type { Prng } from "../lib/prng.js";

/** The part of the simulator a nemesis drives (`Simulator` implements it). */
export interface FaultTarget {
  readonly nodeIds: readonly NodeId[];
  readonly nowMs: number;
  schedule(atMs: number, label: string, run: () => void): void;
  isUp(nodeId: NodeId): boolean;
  crash(nodeId: NodeId): void;
  armCrashOnNextWrite(nodeId: NodeId): void;
  disarmCrashOnNextWrite(nodeId: NodeId): void;
  restart(nodeId: NodeId): void;
  partition(groups: readonly (readonly NodeId[])[]): void;
  heal(): void;
  setLinkDropped(source: NodeId, target: NodeId, dropped: boolean): void;
  clearLinkDrops(): void;
  setLossProbability(probability: number): void;
  restoreLossProbability(): void;
}

export interface NemesisConfig {
  /** Mean gap between faults; gaps are exponential, so faults sometimes pile up. */
  readonly faultIntervalMsMean: number;
  /** Relative frequency of each fault kind; 0 disables a kind. */
  readonly weights: {
    readonly partition: number;
    readonly crash: number;
    readonly lossBurst: number;
    readonly linkDrop: number;
  };
  /** Chance that a crash is armed for the node's next write instead of happening at once. */
  readonly crashDuringWriteProbability: number;
  /** How long a fault lasts before it is undone (crash downtime, partition, burst, link). */
  readonly faultMsMin: number;
  readonly faultMsMax: number;
  /** Loss probability during a loss burst. */
  readonly lossBurstProbability: number;
  /** Most nodes down at once. A consensus workload sets this below a majority. */
  readonly nodesDownMax: number;
}

export const nemesisDefaults: NemesisConfig = {
  faultIntervalMsMean: 300,
  weights: { partition: 1, crash: 1, lossBurst: 1, linkDrop: 1 },
  crashDuringWriteProbability: 0.3,
  faultMsMin: 50,
  faultMsMax: 1_500,
  lossBurstProbability: 0.7,
  nodesDownMax: Number.POSITIVE_INFINITY,
};

type FaultKind = keyof NemesisConfig["weights"];
const faultKinds: readonly FaultKind[] = ["partition", "crash", "lossBurst", "linkDrop"];

export class Nemesis {
  readonly #target: FaultTarget;
  readonly #prng: Prng;
  readonly #config: NemesisConfig;
  #active = false;
  /** Bumped by each partition / loss burst so an old undo does not cancel a newer fault. */
  #partitionGeneration = 0;
  #lossGeneration = 0;
  readonly faultCounts: Record<FaultKind, number> = {
    partition: 0,
    crash: 0,
    lossBurst: 0,
    linkDrop: 0,
  };

  constructor(target: FaultTarget, prng: Prng, config: NemesisConfig) {
    assert(config.faultIntervalMsMean > 0, "faultIntervalMsMean must be > 0");
    assert(config.faultMsMin >= 1 && config.faultMsMin <= config.faultMsMax, "faultMs range");
    this.#target = target;
    this.#prng = prng;
    this.#config = config;
  }

  /** Schedules faults from now until `faultPhaseEndMs`, then a full heal at `faultPhaseEndMs`. */
  runFaultPhase(faultPhaseEndMs: number): void {
    assert(!this.#active, "fault phase already running");
    assert(faultPhaseEndMs >= this.#target.nowMs);
    this.#active = true;
    this.#scheduleNext(faultPhaseEndMs);
    this.#target.schedule(faultPhaseEndMs, "nemesis heal-all", () => this.healAll());
  }

  /** Ends the fault phase: heal partitions and links, restore loss, restart crashed nodes. */
  healAll(): void {
    this.#active = false;
    const target = this.#target;
    target.heal();
    target.clearLinkDrops();
    target.restoreLossProbability();
    for (const nodeId of target.nodeIds) {
      if (target.isUp(nodeId)) target.disarmCrashOnNextWrite(nodeId);
      else target.restart(nodeId);
    }
  }

  #scheduleNext(faultPhaseEndMs: number): void {
    const gapMs = Math.max(
      1,
      Math.round(-Math.log(1 - this.#prng.float()) * this.#config.faultIntervalMsMean),
    );
    const atMs = this.#target.nowMs + gapMs;
    if (atMs >= faultPhaseEndMs) return;
    this.#target.schedule(atMs, "nemesis fault", () => {
      if (!this.#active) return;
      this.#injectOne();
      this.#scheduleNext(faultPhaseEndMs);
    });
  }

  #injectOne(): void {
    const weights = this.#config.weights;
    const total = faultKinds.reduce((sum, kind) => sum + weights[kind], 0);
    if (total <= 0) return;
    const enabled = faultKinds.filter((candidate) => weights[candidate] > 0);
    let pick = this.#prng.float() * total;
    let kind = enabled.at(-1)!; // if rounding leaves `pick` at 0 after the last subtraction
    for (const candidate of enabled) {
      pick -= weights[candidate];
      if (pick < 0) {
        kind = candidate;
        break;
      }
    }
    this.faultCounts[kind]++;
    const durationMs = this.#prng.intInclusive(this.#config.faultMsMin, this.#config.faultMsMax);
    switch (kind) {
      case "partition":
        this.#partition(durationMs);
        break;
      case "crash":
        this.#crash(durationMs);
        break;
      case "lossBurst":
        this.#lossBurst(durationMs);
        break;
      case "linkDrop":
        this.#linkDrop(durationMs);
        break;
      default:
        assertNever(kind);
    }
  }

  #undoLater(durationMs: number, label: string, undo: () => void): void {
    this.#target.schedule(this.#target.nowMs + durationMs, label, () => {
      if (this.#active) undo();
    });
  }

  #partition(durationMs: number): void {
    const nodes = this.#prng.shuffle([...this.#target.nodeIds]);
    if (nodes.length < 2) return;
    // Half the time isolate one node (the classic minority of one), else a random split.
    const cut = this.#prng.chance(0.5) ? 1 : this.#prng.intInclusive(1, nodes.length - 1);
    const groups = [nodes.slice(0, cut).sort(), nodes.slice(cut).sort()];
    const generation = ++this.#partitionGeneration;
    this.#target.partition(groups);
    this.#undoLater(durationMs, "nemesis heal partition", () => {
      if (generation === this.#partitionGeneration) this.#target.heal();
    });
  }

  #crash(durationMs: number): void {
    const target = this.#target;
    const up = target.nodeIds.filter((nodeId) => target.isUp(nodeId));
    const downCount = target.nodeIds.length - up.length;
    if (up.length === 0 || downCount >= this.#config.nodesDownMax) return;
    const nodeId = this.#prng.pick(up);
    if (this.#prng.chance(this.#config.crashDuringWriteProbability)) {
      target.armCrashOnNextWrite(nodeId);
    } else {
      target.crash(nodeId);
    }
    this.#undoLater(durationMs, `nemesis restart ${nodeId}`, () => {
      // An armed crash that never fired (no write in time) is simply disarmed.
      if (target.isUp(nodeId)) target.disarmCrashOnNextWrite(nodeId);
      else target.restart(nodeId);
    });
  }

  #lossBurst(durationMs: number): void {
    const generation = ++this.#lossGeneration;
    this.#target.setLossProbability(this.#config.lossBurstProbability);
    this.#undoLater(durationMs, "nemesis end loss burst", () => {
      if (generation === this.#lossGeneration) this.#target.restoreLossProbability();
    });
  }

  #linkDrop(durationMs: number): void {
    const nodes = this.#target.nodeIds;
    if (nodes.length < 2) return;
    const source = this.#prng.pick(nodes);
    const target = this.#prng.pick(nodes.filter((nodeId) => nodeId !== source));
    this.#target.setLinkDropped(source, target, true);
    this.#undoLater(durationMs, `nemesis link ${source}>${target} up`, () =>
      this.#target.setLinkDropped(source, target, false),
    );
  }
}
