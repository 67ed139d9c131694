// Checks the simulator's slow-node facility (simulated CPU starvation, used by the membership `slow` scenario) with a tiny recording core: inbound messages wait in the node's backlog in order, its ticks come late, its sends leave at once, a crash discards the backlog, and turning it off restores normal service.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type NodeId, OutputBuffer, type ProtocolCore } from "../../core/sans-io.js";
import { prngFromSeed } from "../../lib/prng.js";
import { simNetworkProfiles } from "../sim-network.js";
import { Simulator } from "../simulator.js";

type Note = { readonly text: string };
type Seen = { readonly type: "got"; readonly from: NodeId; readonly text: string };

class RecordingCore implements ProtocolCore<Note, Seen> {
  readonly output = new OutputBuffer<Note, Seen>();
  readonly ticks: number[] = [];

  send(target: NodeId, text: string): void {
    this.output.send(target, { text });
  }
  receive(source: NodeId, message: Note): void {
    this.output.emit({ type: "got", from: source, text: message.text });
  }
  tick(nowMs: number): void {
    this.ticks.push(nowMs);
  }
  takeOutput() {
    return this.output.take();
  }
}

function makeSim() {
  return new Simulator<Note, Seen, RecordingCore>({
    prng: prngFromSeed(1),
    nodeIds: ["n1", "n2"],
    factory: () => new RecordingCore(),
    tickIntervalMs: 10,
    network: simNetworkProfiles.ideal, // 1 ms, lossless, FIFO
    disk: { tornWriteProbability: 0 },
  });
}

const got = (sim: ReturnType<typeof makeSim>, nodeId: NodeId) =>
  sim.history
    .filter((record) => record.nodeId === nodeId)
    .map((record) => `${record.atMs} ${record.event.text}`);

describe("Simulator.setSlowdown", () => {
  it("delays every inbound message by receiveDelayMs, in arrival order, while sends leave at once", () => {
    const sim = makeSim();
    sim.setSlowdown("n2", { receiveDelayMs: 500, tickDelayMs: 0 });
    sim.runUntil(100);
    sim.withCore("n1", (core) => core.send("n2", "a"));
    sim.runUntil(101);
    sim.withCore("n1", (core) => core.send("n2", "b"));
    sim.withCore("n2", (core) => core.send("n1", "from the slow node"));
    sim.runUntil(1_000);
    assert.deepEqual(got(sim, "n2"), ["601 a", "602 b"]);
    assert.deepEqual(got(sim, "n1"), ["102 from the slow node"]);
    assert.ok(sim.trace.some((line) => / n2 backlog n1>n2 \+500ms /.test(line)));
    assert.ok(sim.trace.some((line) => / n2 recv n1>n2 \(late\) /.test(line)));
  });

  it("fires the slowed node's timers late: ticks every tickIntervalMs + tickDelayMs", () => {
    const sim = makeSim();
    sim.runUntil(95);
    sim.setSlowdown("n1", { receiveDelayMs: 0, tickDelayMs: 30 });
    sim.runUntil(500);
    const ticks = sim.inspect("n1", (core) => core.ticks.filter((timeMs) => timeMs > 100));
    const gaps = ticks.slice(1).map((timeMs, index) => timeMs - ticks[index]!);
    assert.ok(gaps.length >= 8);
    assert.ok(
      gaps.every((gap) => gap === 40),
      `gaps ${gaps.join(",")}`,
    );
    const other = sim.inspect("n2", (core) => core.ticks);
    assert.equal(other.length, 50, "other nodes keep their pace");
  });

  it("a crash discards the backlog (it was the dead process's); turning it off restores service", () => {
    const sim = makeSim();
    sim.setSlowdown("n2", { receiveDelayMs: 500, tickDelayMs: 0 });
    sim.withCore("n1", (core) => core.send("n2", "lost in the backlog"));
    sim.runUntil(100);
    sim.crash("n2");
    sim.restart("n2");
    sim.runUntil(1_000);
    assert.deepEqual(got(sim, "n2"), []);
    assert.ok(sim.trace.some((line) => / n2 drop n1>n2 backlog-lost /.test(line)));
    sim.setSlowdown("n2", null);
    sim.withCore("n1", (core) => core.send("n2", "prompt"));
    sim.runUntil(1_100);
    assert.deepEqual(got(sim, "n2"), ["1001 prompt"]);
  });

  it("rejects a negative or fractional delay", () => {
    const sim = makeSim();
    assert.throws(() => sim.setSlowdown("n1", { receiveDelayMs: -1, tickDelayMs: 0 }));
    assert.throws(() => sim.setSlowdown("n1", { receiveDelayMs: 0, tickDelayMs: 0.5 }));
  });
});
