// Goal: lease reads (thesis §6.4.1) are served without a heartbeat round only while a
// quorum acknowledged a heartbeat sent less than a lease ago, never after a transfer
// started, never when the drift bound leaves no lease, and a freshly started node refuses
// votes for an election timeout. Method: small in-memory clusters driven message by message.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Harness } from "./harness.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const lease = { config: { leaseReads: true, electionTicks: 10, heartbeatTicks: 1 } };

function reads(cluster: Harness, id: string): string[] {
  return cluster.readStates.get(id)!.map((state) => new TextDecoder().decode(state.context));
}

/** `a` leads, its no-op is committed, and a heartbeat round was acknowledged by everyone. */
function settled(options = lease): Harness {
  const cluster = new Harness(["a", "b", "c"], options);
  // Past the start-up vote refusal (a started node refuses votes for one election timeout).
  for (const id of ["a", "b", "c"]) cluster.tick(id, 10);
  cluster.deliver();
  cluster.elect("a");
  cluster.tick("a", 1);
  cluster.deliver();
  return cluster;
}

describe("raft: lease reads", () => {
  it("a leader with an acknowledged heartbeat answers at once, no heartbeat round", () => {
    const cluster = settled();
    const a = cluster.node("a");
    assert.ok(a.readIndex(bytes("r1")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), ["r1"]);
    assert.equal(a.stats.leaseReads, 1);
    assert.equal(
      cluster.queue.filter((e) => e.message.type === "heartbeat").length,
      0,
      "no heartbeat round was needed",
    );
  });

  it("the lease runs out: electionTicks * (1 - drift) - 1 ticks after the acknowledged round", () => {
    const cluster = settled();
    const a = cluster.node("a");
    cluster.partition(["a"], ["b", "c"]); // no more acknowledgements
    // Lease = floor(10 * 0.9) - 1 = 8 ticks after the last acknowledged heartbeat was sent.
    cluster.tick("a", 7);
    cluster.drop(() => true);
    assert.ok(a.readIndex(bytes("inside")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), ["inside"]);
    cluster.tick("a", 2);
    cluster.drop(() => true);
    assert.ok(a.readIndex(bytes("outside")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), ["inside"], "past the lease: waits for a quorum round");
  });

  it("no lease reads once a leadership transfer started in this term", () => {
    const cluster = settled();
    const a = cluster.node("a");
    assert.ok(a.transferLeadership("b").ok);
    assert.ok(a.transferLeadership("a").ok); // cancelled, but followers may already have voted
    cluster.drop(() => true);
    assert.ok(a.readIndex(bytes("r")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), []);
    assert.equal(a.stats.leaseReads, 0);
  });

  it("no lease when the drift bound leaves none, or without CheckQuorum", () => {
    for (const config of [
      { leaseReads: true, leaseClockDriftPercent: 95 },
      { leaseReads: true, checkQuorum: false },
    ]) {
      const cluster = settled({ config: { ...lease.config, ...config } });
      assert.ok(cluster.node("a").readIndex(bytes("r")).ok);
      cluster.flush("a");
      assert.deepEqual(reads(cluster, "a"), [], JSON.stringify(config));
    }
  });

  it("a node refuses votes for its first election timeout when leases are on", () => {
    const cluster = new Harness(["a", "b", "c"], lease);
    cluster.node("a").campaign();
    cluster.flushAll();
    cluster.deliver();
    assert.notEqual(cluster.node("a").role, "leader", "b and c just started: no votes yet");
    for (const id of ["b", "c"]) cluster.tick(id, 10);
    cluster.drop(() => true);
    cluster.node("a").campaign();
    cluster.flushAll();
    cluster.deliver();
    assert.equal(cluster.node("a").role, "leader");
  });
});
