// Checks that the simulator drives a core by the sans-I/O contract (persist and fsync, then send, then events), isolates cores from each other's objects, ticks, crashes, restarts and partitions as documented, by running a tiny ping core and reading the trace and history.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CoreContext, type NodeId, OutputBuffer, type ProtocolCore } from "../core/sans-io.js";
import { AssertionError } from "../lib/assert.js";
import { Fnv1a64 } from "../lib/fnv1a.js";
import { prngFromSeed } from "../lib/prng.js";
import { type SimNetworkConfig, simNetworkProfiles } from "./sim-network.js";
import { Simulator } from "./simulator.js";

type PingMessage = { type: "Ping"; text: string } | { type: "Pong"; text: string };
type PingEvent =
  | { type: "pinged"; text: string }
  | { type: "got"; from: NodeId; text: string }
  | { type: "recovered"; contents: string };

/** Persists each ping (synced or not), sends it, and answers pings with pongs. */
class PingCore implements ProtocolCore<PingMessage, PingEvent> {
  readonly output = new OutputBuffer<PingMessage, PingEvent>();
  readonly ticks: number[] = [];
  lastSent: PingMessage | null = null;
  broken = false;

  constructor(context: CoreContext) {
    const file = context.recovered.get("ping.log");
    if (file !== undefined) {
      this.output.emit({ type: "recovered", contents: new TextDecoder().decode(file) });
    }
  }

  ping(target: NodeId, text: string, sync = true): void {
    this.output.write("ping.log", new TextEncoder().encode(`${text};`), sync);
    this.lastSent = { type: "Ping", text };
    this.output.send(target, this.lastSent);
    this.output.emit({ type: "pinged", text });
  }

  receive(source: NodeId, message: PingMessage): void {
    this.output.emit({ type: "got", from: source, text: message.text });
    message.text = "mutated by receiver"; // must not leak to the sender or to another copy
    if (message.type === "Ping") this.output.send(source, { type: "Pong", text: "pong" });
  }

  tick(nowMs: number): void {
    this.ticks.push(nowMs);
  }

  takeOutput() {
    return this.output.take();
  }

  checkInvariants(): void {
    if (this.broken) throw new AssertionError("ping core invariant broken");
  }
}

function makeSim(seed = 1, network: SimNetworkConfig = simNetworkProfiles.ideal) {
  return new Simulator<PingMessage, PingEvent, PingCore>({
    prng: prngFromSeed(seed),
    nodeIds: ["n1", "n2", "n3"],
    factory: (context) => new PingCore(context),
    tickIntervalMs: 10,
    network,
    disk: { tornWriteProbability: 0 },
  });
}

/** Trace lines after the last line matching `start`, without the time and node columns. */
function stepsAfter(trace: readonly string[], start: RegExp): string[] {
  const from = trace.findLastIndex((line) => start.test(line));
  assert.ok(from >= 0, `no trace line matches ${start}`);
  return trace.slice(from).map((line) => line.split(" ").slice(2).join(" "));
}

describe("Simulator", () => {
  it("applies an output in contract order: write, fsync, send, event", () => {
    const sim = makeSim();
    sim.runUntil(5);
    sim.withCore("n1", (core) => core.ping("n2", "hello"), "input ping");
    assert.deepEqual(stepsAfter(sim.trace, /input ping/), [
      "input ping",
      "write ping.log +6B sync",
      "fsync ping.log",
      'send n1>n2 arrive@6 {"type":"Ping","text":"hello"}',
      'event {"type":"pinged","text":"hello"}',
    ]);
    sim.runUntil(20);
    assert.deepEqual(
      sim.history.map((record) => [record.atMs, record.nodeId, record.event.type]),
      [
        [5, "n1", "pinged"],
        [6, "n2", "got"],
        [7, "n1", "got"],
      ],
    );
  });

  it("serializes messages: receivers get their own copies, the sender's object is untouched", () => {
    const sim = makeSim(1, { ...simNetworkProfiles.ideal, duplicationProbability: 1 });
    sim.withCore("n1", (core) => core.ping("n2", "original"));
    sim.runUntil(20);
    const got = sim.history.filter(
      (record) => record.nodeId === "n2" && record.event.type === "got",
    );
    assert.deepEqual(
      got.map((record) => record.event),
      [
        { type: "got", from: "n1", text: "original" },
        { type: "got", from: "n1", text: "original" },
      ],
    );
    assert.deepEqual(
      sim.inspect("n1", (core) => core.lastSent),
      { type: "Ping", text: "original" },
    );
  });

  it("ticks every live node every tickIntervalMs, and not while it is down", () => {
    const sim = makeSim();
    sim.runUntil(100);
    const ticks = sim.inspect("n1", (core) => [...core.ticks]);
    assert.equal(ticks.length, 10);
    for (let index = 1; index < ticks.length; index++)
      assert.equal(ticks[index]! - ticks[index - 1]!, 10);
    sim.crash("n2");
    sim.runUntil(200);
    sim.restart("n2");
    sim.runUntil(300);
    const afterRestart = sim.inspect("n2", (core) => core.ticks);
    assert.ok(afterRestart.every((timeMs) => timeMs >= 200));
    assert.equal(afterRestart.length, 10);
  });

  it("crash loses unsynced writes and in-flight messages; restart recovers synced bytes into a new core", () => {
    const sim = makeSim(1, { ...simNetworkProfiles.ideal, latencyMsMin: 50, latencyMsMax: 50 });
    sim.withCore("n1", (core) => core.ping("n2", "kept"));
    sim.withCore("n1", (core) => core.ping("n2", "lost", false));
    sim.withCore("n3", (core) => core.ping("n1", "in-flight"));
    const before = sim.inspect("n1", (core) => core);
    sim.crash("n1");
    assert.equal(sim.isUp("n1"), false);
    assert.throws(() => sim.withCore("n1", () => undefined), /node is down/);
    sim.restart("n1");
    assert.notEqual(
      sim.inspect("n1", (core) => core),
      before,
    );
    assert.equal(sim.incarnation("n1"), 1);
    sim.runUntil(200);
    const n1Events = sim.history.filter(
      (record) => record.nodeId === "n1" && record.incarnation === 1,
    );
    assert.deepEqual(n1Events[0]?.event, { type: "recovered", contents: "kept;" });
    const fromN3 = n1Events.filter(
      (record) => record.event.type === "got" && record.event.from === "n3",
    );
    assert.deepEqual(fromN3, [], "the ping in flight from n3 was dropped");
    assert.ok(sim.trace.some((line) => /n1 drop n3>n1 target-crashed/.test(line)));
    assert.equal(sim.crashes, 1);
  });

  it("a crash armed for the next write happens after the appends, before fsync, sends and events", () => {
    const sim = makeSim(1, { ...simNetworkProfiles.ideal });
    sim.withCore("n1", (core) => core.ping("n2", "first"));
    sim.armCrashOnNextWrite("n1");
    sim.withCore("n1", (core) => core.ping("n2", "doomed"), "input doomed");
    assert.equal(sim.isUp("n1"), false);
    assert.deepEqual(stepsAfter(sim.trace, /input doomed/), [
      "input doomed",
      "write ping.log +7B sync",
      "crash (during write, before fsync) disk=[ping.log:kept=6B,lost=7B,torn=0B]",
    ]);
    sim.runUntil(50);
    const texts = sim.history.map((record) => JSON.stringify(record.event));
    assert.ok(!texts.some((text) => text.includes("doomed")));
  });

  it("a partition stops messages both ways until healed", () => {
    const sim = makeSim();
    sim.partition([["n1"], ["n2", "n3"]]);
    sim.withCore("n1", (core) => core.ping("n2", "a"));
    sim.withCore("n2", (core) => core.ping("n1", "b"));
    sim.withCore("n2", (core) => core.ping("n3", "c"));
    sim.runUntil(50);
    const got = () =>
      sim.history.filter((record) => record.event.type === "got").map((r) => r.nodeId);
    assert.deepEqual(got(), ["n3", "n2"]); // c arrives, n3's pong comes back; a and b dropped
    sim.heal();
    sim.withCore("n1", (core) => core.ping("n2", "d"));
    sim.runUntil(100);
    assert.deepEqual(got(), ["n3", "n2", "n2", "n1"]);
  });

  it("runUntilCondition stops when the condition holds, or reports false at the deadline", () => {
    const sim = makeSim();
    sim.schedule(30, "ping", () => sim.withCore("n1", (core) => core.ping("n2", "x")));
    assert.equal(
      sim.runUntilCondition(() => sim.history.length >= 2, 1_000),
      true,
    );
    assert.equal(sim.nowMs, 31);
    assert.equal(
      sim.runUntilCondition(() => false, 500),
      false,
    );
    assert.equal(sim.nowMs, 500);
  });

  it("calls the core's checkInvariants after each step and lets the AssertionError out", () => {
    const sim = makeSim();
    sim.inspect("n2", (core) => {
      core.broken = true;
    });
    assert.throws(() => sim.runUntil(50), /invariant broken/);
  });

  it("the same seed gives the same trace and digest; the digest is FNV-1a 64 of the trace text", () => {
    const run = (seed: number) => {
      const sim = makeSim(seed, simNetworkProfiles.flaky);
      for (let index = 0; index < 20; index++) {
        sim.schedule(index * 13, `ping ${index}`, () =>
          sim.withCore("n1", (core) => core.ping(index % 2 === 0 ? "n2" : "n3", `p${index}`)),
        );
      }
      sim.runUntil(1_000);
      return sim;
    };
    const first = run(42);
    const second = run(42);
    assert.equal(first.traceText(), second.traceText());
    assert.equal(first.traceDigest(), second.traceDigest());
    assert.equal(first.traceDigest(), new Fnv1a64().updateText(first.traceText()).hex());
    assert.notEqual(run(43).traceDigest(), first.traceDigest());
  });
});
