// Checks that the simulated network really produces each configured fault (loss, duplication, reordering, partitions in both directions, one-way link drops, drops on crash) at roughly the configured rates, by sending thousands of seeded packets and counting outcomes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../lib/prng.js";
import {
  type SendVerdict,
  SimNetwork,
  type SimNetworkConfig,
  simNetworkProfiles,
  type Transit,
} from "./sim-network.js";

const nodeIds = ["n1", "n2", "n3"];

function network(config: Partial<SimNetworkConfig> = {}, seed = 1): SimNetwork {
  return new SimNetwork({
    nodeIds,
    prng: prngFromSeed(seed),
    config: { ...simNetworkProfiles.ideal, ...config },
  });
}

function transits(verdict: SendVerdict): readonly Transit[] {
  return verdict.kind === "in-flight" ? verdict.transits : [];
}

/** Sends `count` packets n1>n2, one per ms; returns the send index of each delivery in arrival order. */
function arrivalOrder(net: SimNetwork, count: number): number[] {
  const arrivals: { atMs: number; index: number; order: number }[] = [];
  for (let index = 0; index < count; index++) {
    for (const transit of transits(net.send("n1", "n2", index))) {
      if (net.arrive(transit) === null) {
        arrivals.push({ atMs: transit.deliverAtMs, index, order: arrivals.length });
      }
    }
  }
  // Same time: the earlier-scheduled one first, as the simulator's agenda does.
  arrivals.sort((left, right) => left.atMs - right.atMs || left.order - right.order);
  return arrivals.map((arrival) => arrival.index);
}

function inversions(order: readonly number[]): number {
  let count = 0;
  for (let index = 1; index < order.length; index++) if (order[index]! < order[index - 1]!) count++;
  return count;
}

describe("SimNetwork", () => {
  it("loses packets at the configured rate", () => {
    const net = network({ lossProbability: 0.2 });
    let lost = 0;
    for (let index = 0; index < 5000; index++) {
      const verdict = net.send("n1", "n2", 0);
      if (verdict.kind === "dropped") {
        assert.equal(verdict.reason, "loss");
        lost++;
      }
    }
    assert.ok(lost > 850 && lost < 1150, `lost ${lost} of 5000 at p=0.2`);
    assert.equal(net.stats.dropped.loss, lost);
  });

  it("duplicates packets at the configured rate, each copy with its own latency", () => {
    const net = network({ duplicationProbability: 0.1, latencyMsMin: 1, latencyMsMax: 100 });
    let duplicated = 0;
    let differentLatency = 0;
    for (let index = 0; index < 5000; index++) {
      const copies = transits(net.send("n1", "n2", 0));
      if (copies.length === 2) {
        duplicated++;
        if (copies[0]!.deliverAtMs !== copies[1]!.deliverAtMs) differentLatency++;
        assert.deepEqual(
          copies.map((copy) => copy.copy),
          [0, 1],
        );
      }
    }
    assert.ok(duplicated > 400 && duplicated < 600, `duplicated ${duplicated} of 5000 at p=0.1`);
    assert.ok(differentLatency > duplicated * 0.9);
  });

  it("keeps latency within [min, max] without a tail, and adds a tail when configured", () => {
    const net = network({ latencyMsMin: 3, latencyMsMax: 9 });
    const seen = new Set<number>();
    for (let index = 0; index < 2000; index++) {
      for (const transit of transits(net.send("n1", "n2", 100)))
        seen.add(transit.deliverAtMs - 100);
    }
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [3, 4, 5, 6, 7, 8, 9],
    );

    const tailed = network({
      latencyMsMin: 1,
      latencyMsMax: 1,
      latencyTailProbability: 0.5,
      latencyTailMsMean: 100,
    });
    let slow = 0;
    let maxMs = 0;
    for (let index = 0; index < 2000; index++) {
      for (const transit of transits(tailed.send("n1", "n2", 0))) {
        if (transit.deliverAtMs > 1) slow++;
        maxMs = Math.max(maxMs, transit.deliverAtMs);
      }
    }
    assert.ok(slow > 900 && slow < 1100, `slow ${slow} of 2000 at p=0.5`);
    assert.ok(
      maxMs > 300,
      `an exponential tail with mean 100 ms reaches past 300 ms (max ${maxMs})`,
    );
  });

  it("reorders packets when latency varies, and keeps a link FIFO when it does not", () => {
    const jittery = arrivalOrder(network({ latencyMsMin: 1, latencyMsMax: 50 }), 1000);
    assert.equal(jittery.length, 1000);
    assert.ok(inversions(jittery) > 100, `inversions ${inversions(jittery)}`);

    const fixed = arrivalOrder(network({ latencyMsMin: 5, latencyMsMax: 5 }), 1000);
    assert.deepEqual(
      fixed,
      Array.from({ length: 1000 }, (_, index) => index),
    );
  });

  it("a partition blocks both directions across groups, not within a group, and heal restores", () => {
    const net = network();
    net.partition([["n1", "n2"], ["n3"]]);
    assert.deepEqual(net.send("n1", "n3", 0), { kind: "dropped", reason: "partition" });
    assert.deepEqual(net.send("n3", "n1", 0), { kind: "dropped", reason: "partition" });
    assert.deepEqual(net.send("n3", "n2", 0), { kind: "dropped", reason: "partition" });
    assert.equal(transits(net.send("n1", "n2", 0)).length, 1);
    assert.equal(transits(net.send("n2", "n1", 0)).length, 1);
    net.heal();
    assert.equal(transits(net.send("n1", "n3", 0)).length, 1);
    assert.equal(transits(net.send("n3", "n1", 0)).length, 1);
  });

  it("drops packets already in flight when a partition starts before they arrive", () => {
    const net = network();
    const [inFlight] = transits(net.send("n1", "n3", 0));
    net.partition([["n1"], ["n2", "n3"]]);
    assert.equal(net.arrive(inFlight!), "partition");
    net.heal();
    const [later] = transits(net.send("n1", "n3", 0));
    assert.equal(net.arrive(later!), null);
  });

  it("rejects a partition that leaves a node out or puts it in two groups", () => {
    const net = network();
    assert.throws(() => net.partition([["n1"], ["n2"]]), /every node/);
    assert.throws(
      () =>
        net.partition([
          ["n1", "n2"],
          ["n2", "n3"],
        ]),
      /two groups/,
    );
  });

  it("a dropped link cuts one direction only", () => {
    const net = network();
    net.setLinkDropped("n1", "n2", true);
    assert.deepEqual(net.send("n1", "n2", 0), { kind: "dropped", reason: "link-down" });
    assert.equal(transits(net.send("n2", "n1", 0)).length, 1);
    net.setLinkDropped("n1", "n2", false);
    assert.equal(transits(net.send("n1", "n2", 0)).length, 1);
  });

  it("drops packets in flight to a node that crashes, even if it restarts before they arrive", () => {
    const net = network({ latencyMsMin: 10, latencyMsMax: 10 });
    const [toCrashing] = transits(net.send("n1", "n2", 0));
    const [toOther] = transits(net.send("n1", "n3", 0));
    net.nodeDown("n2");
    assert.deepEqual(net.send("n1", "n2", 1), { kind: "dropped", reason: "target-down" });
    net.nodeUp("n2");
    assert.equal(net.arrive(toCrashing!), "target-crashed");
    assert.equal(net.arrive(toOther!), null);
    const [afterRestart] = transits(net.send("n1", "n2", 2));
    assert.equal(net.arrive(afterRestart!), null);
  });

  it("a loss burst raises loss until restored", () => {
    const net = network();
    net.setLossProbability(1);
    assert.deepEqual(net.send("n1", "n2", 0), { kind: "dropped", reason: "loss" });
    net.restoreLossProbability();
    assert.equal(transits(net.send("n1", "n2", 0)).length, 1);
  });

  it("makes the same decisions for the same seed", () => {
    const run = (seed: number) => {
      const net = network(simNetworkProfiles.flaky, seed);
      return Array.from({ length: 200 }, (_, index) => JSON.stringify(net.send("n1", "n2", index)));
    };
    assert.deepEqual(run(5), run(5));
    assert.notDeepEqual(run(5), run(6));
  });
});
