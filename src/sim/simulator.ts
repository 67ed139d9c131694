/**
 * @module The deterministic simulator (our VOPR): runs N protocol cores in virtual time over
 * a simulated network and simulated disks, and records every step in a text trace.
 *
 * It is the second driver of the sans-I/O contract (`core/sans-io.ts`), and enforces its
 * ordering in one place, `#flush`: after every input to a core (creation, `receive`, `tick`,
 * a workload input through `withCore`), it drains `takeOutput()` and
 *   1. appends every write to the node's `SimDisk`, then fsyncs each file a `sync: true`
 *      write touched;
 *   2. only then serializes each message (msgpack, so cores never share objects) and hands
 *      it to the `SimNetwork`, which decides when (and whether) each copy arrives;
 *   3. then records the events in `history` and the trace, and calls `onEvent`.
 *
 * Determinism: time is a counter advanced only by popping the agenda (an `EventQueue`
 * ordered by (time, sequence)); every random choice comes from forks of the one `Prng` in
 * the options (network, disk, per-node core streams, and `forkPrng()` for workloads and
 * nemeses). There is no wall clock, no `Math.random` and no real timer here, so one seed
 * gives one trace, byte for byte; `traceDigest()` fingerprints it.
 *
 * Gotchas:
 * - Callbacks (`onEvent`, scheduled actions) must not re-enter a core while its output is
 *   being flushed; schedule an action at `nowMs` instead (asserted).
 * - A crashed node has no core: `withCore` on it is a programmer error; check `isUp` first.
 *
 * Example:
 *   const sim = new Simulator<Msg, Ev, MyCore>({
 *     prng: prngFromSeed(seed), nodeIds: ["n1", "n2", "n3"], factory: (context) => new MyCore(context),
 *     tickIntervalMs: 10, network: simNetworkProfiles.flaky, disk: simDiskDefaults,
 *   });
 *   sim.schedule(100, "client put", () => sim.withCore("n1", (core) => core.put("k", "v"), "put k"));
 *   sim.runUntil(5_000);
 *   console.log(sim.traceDigest());
 */
import { pack, unpack } from "msgpackr";
import type { CoreContext, NodeId, ProtocolCore } from "../core/sans-io.js";
import { assert, assertNever } from "../lib/assert.js";
import { Fnv1a64 } from "../lib/fnv1a.js";
import type { Prng } from "../lib/prng.js";
import { EventQueue } from "./event-queue.js";
import { SimDisk, type SimDiskConfig } from "./sim-disk.js";
import {
  SimNetwork,
  type SimNetworkConfig,
  type SimNetworkStats,
  type Transit,
} from "./sim-network.js";

/**
 * Simulated CPU starvation of one node (a starved event loop): every message that reaches it
 * waits `receiveDelayMs` in its process before the core sees it, and its timers fire late, the
 * node being ticked only every `tickIntervalMs + tickDelayMs`. What it sends leaves at once
 * (sends happen while it processes). The backlog is the process's: a crash discards it.
 */
export interface NodeSlowdown {
  readonly receiveDelayMs: number;
  readonly tickDelayMs: number;
}

export interface SimulatorOptions<Message, Event, Core extends ProtocolCore<Message, Event>> {
  /** The only source of randomness; create it with `prngFromSeed(seed)`. */
  readonly prng: Prng;
  readonly nodeIds: readonly NodeId[];
  /** Creates a core at start and at every restart (with `recovered` from its disk). */
  readonly factory: (context: CoreContext) => Core;
  /** Every live node is ticked this often, each with its own random phase. */
  readonly tickIntervalMs: number;
  readonly network: SimNetworkConfig;
  readonly disk: SimDiskConfig;
  /** One short line per message for the trace. Default: compact JSON, bytes as `<N bytes>`. */
  readonly describeMessage?: (message: Message) => string;
  /** One short line per event for the trace. Default: compact JSON. */
  readonly describeEvent?: (event: Event) => string;
  /** Called for every event, after it is recorded in `history`. Checkers hook in here. */
  readonly onEvent?: (record: EventRecord<Event>) => void;
  /** Called after every step; a place for cross-node invariant checks. */
  readonly afterStep?: () => void;
  /** Keep trace lines in memory (`trace`); the digest is computed either way. Default true. */
  readonly keepTrace?: boolean;
  /** Guard against message storms: more steps than this is a programmer error. Default 5e6. */
  readonly stepsMax?: number;
}

/** An event as the layer above saw it: when, where, and from which incarnation of the node. */
export interface EventRecord<Event> {
  readonly atMs: number;
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly event: Event;
}

type AgendaItem =
  | { readonly type: "tick"; readonly nodeId: NodeId }
  | {
      readonly type: "deliver";
      readonly transit: Transit;
      readonly bytes: Uint8Array;
      readonly description: string;
    }
  | { readonly type: "action"; readonly label: string; readonly run: () => void }
  | {
      /** A message that arrived at a slowed node, processed after its backlog delay. */
      readonly type: "backlog";
      readonly transit: Transit;
      readonly bytes: Uint8Array;
      readonly description: string;
      /** The node's restart count when it arrived: a crash in between discards it. */
      readonly incarnation: number;
    };

interface SimNode<Core> {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly disk: SimDisk;
  /** Forked once per incarnation to give each new core its own stream. */
  readonly prng: Prng;
  core: Core | null;
  incarnation: number;
  crashOnNextWrite: boolean;
  slowdown: NodeSlowdown | null;
}

export class Simulator<
  Message,
  Event,
  Core extends ProtocolCore<Message, Event> = ProtocolCore<Message, Event>,
> {
  readonly nodeIds: readonly NodeId[];
  /** Every event every core emitted, in order (across restarts). */
  readonly history: EventRecord<Event>[] = [];
  /** Every step as one text line (empty when `keepTrace` is false). */
  readonly trace: string[] = [];

  readonly #options: SimulatorOptions<Message, Event, Core>;
  readonly #agenda = new EventQueue<AgendaItem>();
  readonly #network: SimNetwork;
  readonly #nodes = new Map<NodeId, SimNode<Core>>();
  readonly #diskPrng: Prng;
  readonly #digest = new Fnv1a64();
  readonly #keepTrace: boolean;
  readonly #stepsMax: number;
  #nowMs = 0;
  #steps = 0;
  #crashes = 0;
  #flushing = false;

  constructor(options: SimulatorOptions<Message, Event, Core>) {
    assert(options.nodeIds.length > 0, "at least one node");
    assert(options.tickIntervalMs >= 1, "tickIntervalMs must be >= 1");
    this.#options = options;
    this.nodeIds = [...options.nodeIds];
    this.#keepTrace = options.keepTrace ?? true;
    this.#stepsMax = options.stepsMax ?? 5_000_000;
    // Fork order is part of the replay format: append new forks at the end, never reorder.
    const networkPrng = options.prng.fork();
    this.#diskPrng = options.prng.fork();
    const tickPhasePrng = options.prng.fork();
    this.#network = new SimNetwork({
      nodeIds: this.nodeIds,
      prng: networkPrng,
      config: options.network,
    });
    for (const id of this.nodeIds) {
      this.#nodes.set(id, {
        id,
        peers: this.nodeIds.filter((peer) => peer !== id),
        disk: new SimDisk(options.disk),
        prng: options.prng.fork(),
        core: null,
        incarnation: 0,
        crashOnNextWrite: false,
        slowdown: null,
      });
    }
    this.#log("-", `start nodes=${this.nodeIds.join(",")} tick=${options.tickIntervalMs}ms`);
    for (const node of this.#nodes.values()) {
      this.#startCore(node);
      this.#agenda.push(tickPhasePrng.int(options.tickIntervalMs), {
        type: "tick",
        nodeId: node.id,
      });
    }
  }

  // ----- time -----

  get nowMs(): number {
    return this.#nowMs;
  }

  get steps(): number {
    return this.#steps;
  }

  /** Crashes so far, immediate and during-write. */
  get crashes(): number {
    return this.#crashes;
  }

  /** An independent random stream for a workload or a nemesis (fork order matters for replay). */
  forkPrng(): Prng {
    return this.#options.prng.fork();
  }

  /** Runs `run` at virtual time `atMs` (>= now). `label` goes into the trace. */
  schedule(atMs: number, label: string, run: () => void): void {
    assert(atMs >= this.#nowMs, `schedule in the past: ${atMs} < ${this.#nowMs}`);
    this.#agenda.push(atMs, { type: "action", label, run });
  }

  /** Processes the next agenda item; false when there is nothing left to do. */
  step(): boolean {
    const next = this.#agenda.pop();
    if (next === undefined) return false;
    assert(next.timeMs >= this.#nowMs, "time went backwards");
    this.#steps++;
    assert(this.#steps <= this.#stepsMax, `more than ${this.#stepsMax} steps: a message storm?`);
    this.#nowMs = next.timeMs;
    const item = next.item;
    switch (item.type) {
      case "tick":
        this.#onTick(item.nodeId);
        break;
      case "deliver":
        this.#onDeliver(item.transit, item.bytes, item.description);
        break;
      case "action":
        this.#log("-", `action ${item.label}`);
        item.run();
        break;
      case "backlog":
        this.#onBacklog(item);
        break;
      default:
        assertNever(item);
    }
    this.#options.afterStep?.();
    return true;
  }

  /** Processes every item due at or before `timeMs`, then sets the clock to `timeMs`. */
  runUntil(timeMs: number): void {
    assert(timeMs >= this.#nowMs, "runUntil in the past");
    for (;;) {
      const nextMs = this.#agenda.peekTimeMs();
      if (nextMs === undefined || nextMs > timeMs) break;
      this.step();
    }
    this.#nowMs = timeMs;
  }

  /**
   * Steps until `condition()` holds (checked before the first step and after each one) or
   * the next item is later than `deadlineMs`. Returns whether the condition held.
   */
  runUntilCondition(condition: () => boolean, deadlineMs: number): boolean {
    for (;;) {
      if (condition()) return true;
      const nextMs = this.#agenda.peekTimeMs();
      if (nextMs === undefined || nextMs > deadlineMs) {
        this.#nowMs = Math.max(this.#nowMs, deadlineMs);
        return false;
      }
      this.step();
    }
  }

  // ----- nodes -----

  isUp(nodeId: NodeId): boolean {
    return this.#node(nodeId).core !== null;
  }

  incarnation(nodeId: NodeId): number {
    return this.#node(nodeId).incarnation;
  }

  /**
   * Gives a workload access to a live core for a core-specific input (`broadcast`, `propose`,
   * …), then flushes its output under the ordering contract like any other step.
   */
  withCore<Result>(nodeId: NodeId, input: (core: Core) => Result, label = "input"): Result {
    const node = this.#node(nodeId);
    assert(node.core !== null, `withCore(${nodeId}): node is down`);
    assert(!this.#flushing, "withCore called while flushing output; schedule it instead");
    this.#log(nodeId, label);
    const result = input(node.core);
    this.#flush(node);
    return result;
  }

  /**
   * Read-only access to a live core (counters, `pendingCount`, …) for checkers. `inspect`
   * must not give the core input: nothing is flushed, so any output would leak into the next
   * step. Use `withCore` for inputs.
   */
  inspect<Result>(nodeId: NodeId, read: (core: Core) => Result): Result {
    const node = this.#node(nodeId);
    assert(node.core !== null, `inspect(${nodeId}): node is down`);
    return read(node.core);
  }

  /** Kills the node's process: the core is dropped, its disk loses unsynced bytes. */
  crash(nodeId: NodeId): void {
    const node = this.#node(nodeId);
    assert(node.core !== null, `crash(${nodeId}): already down`);
    this.#crash(node, "crash");
  }

  /**
   * Crashes the node in the middle of its next output that writes: after the appends, before
   * the fsync and before any message or event of that output (the worst moment for a WAL).
   */
  armCrashOnNextWrite(nodeId: NodeId): void {
    const node = this.#node(nodeId);
    assert(node.core !== null, `armCrashOnNextWrite(${nodeId}): node is down`);
    node.crashOnNextWrite = true;
    this.#log(nodeId, "arm crash-on-next-write");
  }

  disarmCrashOnNextWrite(nodeId: NodeId): void {
    const node = this.#node(nodeId);
    if (!node.crashOnNextWrite) return;
    node.crashOnNextWrite = false;
    this.#log(nodeId, "disarm crash-on-next-write");
  }

  /** Starts a new core on the node from what survived on its disk. */
  restart(nodeId: NodeId): void {
    const node = this.#node(nodeId);
    assert(node.core === null, `restart(${nodeId}): node is up`);
    this.#network.nodeUp(nodeId);
    node.incarnation++;
    this.#startCore(node);
  }

  /**
   * Slows the node down (see `NodeSlowdown`) until called again with null. Survives restarts:
   * it models the machine, not the process. Messages already in its backlog stay there.
   */
  setSlowdown(nodeId: NodeId, slowdown: NodeSlowdown | null): void {
    const node = this.#node(nodeId);
    if (slowdown !== null) {
      assert(
        Number.isInteger(slowdown.receiveDelayMs) && slowdown.receiveDelayMs >= 0,
        "receiveDelayMs must be a non-negative integer",
      );
      assert(
        Number.isInteger(slowdown.tickDelayMs) && slowdown.tickDelayMs >= 0,
        "tickDelayMs must be a non-negative integer",
      );
    }
    node.slowdown = slowdown;
    this.#log(
      nodeId,
      slowdown === null
        ? "slowdown off"
        : `slowdown receive+${slowdown.receiveDelayMs}ms tick+${slowdown.tickDelayMs}ms`,
    );
  }

  // ----- network faults -----

  partition(groups: readonly (readonly NodeId[])[]): void {
    this.#network.partition(groups);
    this.#log("-", `partition ${groups.map((group) => group.join(",")).join(" | ")}`);
  }

  heal(): void {
    this.#network.heal();
    this.#log("-", "heal partition");
  }

  setLinkDropped(source: NodeId, target: NodeId, dropped: boolean): void {
    this.#network.setLinkDropped(source, target, dropped);
    this.#log("-", `link ${source}>${target} ${dropped ? "down" : "up"}`);
  }

  clearLinkDrops(): void {
    this.#network.clearLinkDrops();
    this.#log("-", "links all up");
  }

  setLossProbability(probability: number): void {
    this.#network.setLossProbability(probability);
    this.#log("-", `loss ${probability}`);
  }

  restoreLossProbability(): void {
    this.#network.restoreLossProbability();
    this.#log("-", `loss ${this.#network.config.lossProbability} (restored)`);
  }

  get networkStats(): Readonly<SimNetworkStats> {
    return this.#network.stats;
  }

  // ----- trace -----

  /** FNV-1a 64 over the UTF-8 trace text (`trace.join("\n") + "\n"`), 16 hex digits. */
  traceDigest(): string {
    return this.#digest.hex();
  }

  traceText(): string {
    return this.trace.length === 0 ? "" : `${this.trace.join("\n")}\n`;
  }

  // ----- internals -----

  #node(nodeId: NodeId): SimNode<Core> {
    const node = this.#nodes.get(nodeId);
    assert(node !== undefined, `unknown node ${nodeId}`);
    return node;
  }

  #log(nodeId: NodeId, text: string): void {
    const line = `${String(this.#nowMs).padStart(8, "0")} ${nodeId} ${text}`;
    this.#digest.updateText(`${line}\n`);
    if (this.#keepTrace) this.trace.push(line);
  }

  #startCore(node: SimNode<Core>): void {
    const recovered = node.disk.read();
    const files = [...recovered].map(([file, bytes]) => `${file}:${bytes.length}B`);
    this.#log(
      node.id,
      `${node.incarnation === 0 ? "boot" : "restart"} incarnation=${node.incarnation}` +
        ` recovered=[${files.join(" ")}]`,
    );
    node.core = this.#options.factory({
      nodeId: node.id,
      peers: node.peers,
      prng: node.prng.fork(),
      nowMs: this.#nowMs,
      recovered,
    });
    this.#flush(node);
  }

  #crash(node: SimNode<Core>, why: string): void {
    this.#crashes++;
    node.core = null;
    node.crashOnNextWrite = false;
    this.#network.nodeDown(node.id);
    const reports = node.disk.crash(this.#diskPrng);
    const files = reports.map(
      (report) =>
        `${report.file}:kept=${report.survivingBytes}B,lost=${report.lostBytes}B,torn=${report.tornBytes}B`,
    );
    this.#log(node.id, `${why} disk=[${files.join(" ")}]`);
  }

  #onTick(nodeId: NodeId): void {
    const node = this.#node(nodeId);
    const lateMs = node.slowdown?.tickDelayMs ?? 0;
    this.#agenda.push(this.#nowMs + this.#options.tickIntervalMs + lateMs, {
      type: "tick",
      nodeId,
    });
    if (node.core === null) return;
    node.core.tick(this.#nowMs);
    // Quiet ticks are not traced: they are implied by the tick schedule and would drown the trace.
    this.#flush(node, "tick");
  }

  #onDeliver(transit: Transit, bytes: Uint8Array, description: string): void {
    const route = `${transit.source}>${transit.target}${transit.copy > 0 ? " (dup)" : ""}`;
    const dropReason = this.#network.arrive(transit);
    if (dropReason !== null) {
      this.#log(transit.target, `drop ${route} ${dropReason} ${description}`);
      return;
    }
    const node = this.#node(transit.target);
    assert(node.core !== null, "network delivered to a down node");
    const backlogMs = node.slowdown?.receiveDelayMs ?? 0;
    if (backlogMs > 0) {
      this.#log(transit.target, `backlog ${route} +${backlogMs}ms ${description}`);
      this.#agenda.push(this.#nowMs + backlogMs, {
        type: "backlog",
        transit,
        bytes,
        description,
        incarnation: node.incarnation,
      });
      return;
    }
    this.#log(transit.target, `recv ${route} ${description}`);
    node.core.receive(transit.source, unpack(bytes) as Message);
    this.#flush(node);
  }

  #onBacklog(item: Extract<AgendaItem, { type: "backlog" }>): void {
    const { transit } = item;
    const node = this.#node(transit.target);
    const route = `${transit.source}>${transit.target}${transit.copy > 0 ? " (dup)" : ""}`;
    if (node.core === null || node.incarnation !== item.incarnation) {
      this.#log(transit.target, `drop ${route} backlog-lost ${item.description}`);
      return;
    }
    this.#log(transit.target, `recv ${route} (late) ${item.description}`);
    node.core.receive(transit.source, unpack(item.bytes) as Message);
    this.#flush(node);
  }

  /** The driver's ordering contract: persist (and fsync), then send, then events. */
  #flush(node: SimNode<Core>, cause?: "tick"): void {
    const core = node.core;
    assert(core !== null);
    assert(!this.#flushing, "re-entrant flush");
    this.#flushing = true;
    try {
      const output = core.takeOutput();
      const quiet =
        output.writes.length === 0 && output.messages.length === 0 && output.events.length === 0;
      if (cause === "tick" && !quiet) this.#log(node.id, "tick");

      // 1. Persist.
      const syncFiles = new Set<string>();
      for (const write of output.writes) {
        node.disk.append(write.file, write.data);
        if (write.sync) syncFiles.add(write.file);
        this.#log(
          node.id,
          `write ${write.file} +${write.data.length}B${write.sync ? " sync" : ""}`,
        );
      }
      if (node.crashOnNextWrite && output.writes.length > 0) {
        this.#crash(node, "crash (during write, before fsync)");
        return;
      }
      for (const file of syncFiles) {
        node.disk.fsync(file);
        this.#log(node.id, `fsync ${file}`);
      }

      // 2. Send: serialize now so the receiver gets its own copy, never a shared object.
      for (const { target, message } of output.messages) {
        const description = this.#describeMessage(message);
        const verdict = this.#network.send(node.id, target, this.#nowMs);
        if (verdict.kind === "dropped") {
          this.#log(node.id, `send ${node.id}>${target} dropped ${verdict.reason} ${description}`);
          continue;
        }
        const bytes = new Uint8Array(pack(message)); // copy: msgpackr reuses its buffer
        const arrivals = verdict.transits.map((transit) => transit.deliverAtMs).join(",");
        this.#log(node.id, `send ${node.id}>${target} arrive@${arrivals} ${description}`);
        for (const transit of verdict.transits) {
          this.#agenda.push(transit.deliverAtMs, { type: "deliver", transit, bytes, description });
        }
      }

      // 3. Events, already durable where that matters.
      for (const event of output.events) {
        const record = {
          atMs: this.#nowMs,
          nodeId: node.id,
          incarnation: node.incarnation,
          event,
        };
        this.history.push(record);
        this.#log(node.id, `event ${this.#describeEvent(event)}`);
        this.#options.onEvent?.(record);
      }

      const checkInvariants = (core as { checkInvariants?: () => void }).checkInvariants;
      if (typeof checkInvariants === "function") checkInvariants.call(core);
    } finally {
      this.#flushing = false;
    }
  }

  #describeMessage(message: Message): string {
    return this.#options.describeMessage?.(message) ?? describeValue(message);
  }

  #describeEvent(event: Event): string {
    return this.#options.describeEvent?.(event) ?? describeValue(event);
  }
}

/** Compact, deterministic JSON for the trace: byte arrays become `<N bytes>`. */
export function describeValue(value: unknown): string {
  return (
    JSON.stringify(value, function replace(this: Record<string, unknown>, key, inner: unknown) {
      // `this[key]` is the value before `toJSON`: a Buffer (what msgpack decodes bytes to)
      // would otherwise arrive here already expanded to `{ type: "Buffer", data: [...] }`.
      const original = key === "" ? value : this[key];
      if (original instanceof Uint8Array) return `<${original.length} bytes>`;
      if (typeof inner === "bigint") return `${inner}n`;
      return inner;
    }) ?? String(value)
  );
}
