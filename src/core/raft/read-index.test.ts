// Checks ReadIndex (thesis §6.4) by driving small in-memory clusters message by message: a read is confirmed only after the leader has committed in its own term and a quorum has answered a heartbeat sent after the read, a deposed leader never confirms one, followers refuse with NotLeader, and the queue is bounded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Envelope, Harness } from "./harness.js";

const plain = { config: { preVote: false, checkQuorum: false } };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

function reads(cluster: Harness, id: string): string[] {
  return cluster.readStates.get(id)!.map((state) => `${text(state.context)}@${state.index}`);
}

/** A cluster with `a` elected and its no-op committed everywhere. */
function settled(ids = ["a", "b", "c"]): Harness {
  const cluster = new Harness(ids, plain);
  cluster.elect("a");
  cluster.tick("a", 1);
  cluster.deliver();
  assert.equal(cluster.node("a").log.committed, 1);
  return cluster;
}

describe("raft: read index", () => {
  it("a read is confirmed at the commit index once a quorum answers the heartbeat round", () => {
    const cluster = settled();
    assert.ok(cluster.propose("a", "x").ok);
    cluster.deliver();
    assert.equal(cluster.node("a").log.committed, 2);
    assert.ok(cluster.node("a").readIndex(bytes("r1")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), [], "not before the quorum answered");
    const heartbeats = cluster.queue.filter((e) => e.message.type === "heartbeat");
    assert.equal(heartbeats.length, 2, "the read triggered a heartbeat round at once");
    // One follower's answer (plus the leader) is a quorum of 3.
    cluster.deliver((e) => e.target === "b" || (e.source === "b" && e.target === "a"));
    assert.deepEqual(reads(cluster, "a"), ["r1@2"]);
  });

  it("answers to heartbeats sent before the read do not confirm it", () => {
    const cluster = settled();
    cluster.tick("a", 1); // a heartbeat round that predates the read
    cluster.deliver((e) => e.message.type === "heartbeat");
    const early = (e: Envelope) => e.message.type === "heartbeat-response";
    assert.equal(cluster.queue.filter(early).length, 2);
    assert.ok(cluster.node("a").readIndex(bytes("r")).ok);
    cluster.flush("a");
    const before = new Set(cluster.queue.filter(early));
    cluster.deliver((e) => before.has(e));
    assert.deepEqual(reads(cluster, "a"), [], "stale answers ignored");
    cluster.deliver();
    assert.deepEqual(reads(cluster, "a"), ["r@1"]);
  });

  it("a new leader queues reads until it commits an entry of its own term", () => {
    const cluster = new Harness(["a", "b", "c"], plain);
    cluster.node("a").campaign();
    cluster.flush("a");
    cluster.deliver((e) => e.message.type.startsWith("request-vote"));
    const a = cluster.node("a");
    assert.equal(a.role, "leader");
    assert.equal(a.log.committed, 0);
    assert.ok(a.readIndex(bytes("early")).ok);
    cluster.flush("a");
    cluster.deliver((e) => e.message.type.startsWith("heartbeat"));
    assert.deepEqual(reads(cluster, "a"), [], "no read before the no-op commits");
    cluster.deliver();
    cluster.tick("a", 1);
    cluster.deliver();
    assert.deepEqual(reads(cluster, "a"), ["early@1"], "read index is the no-op's commit");
  });

  it("a deposed leader cut off from the majority never confirms a read", () => {
    const cluster = settled();
    cluster.partition(["a"], ["b", "c"]);
    cluster.elect("b");
    assert.ok(cluster.propose("b", "newer").ok);
    cluster.deliver();
    assert.equal(cluster.node("b").log.committed, 3);
    const a = cluster.node("a");
    assert.equal(a.role, "leader", "a has not noticed");
    assert.ok(a.readIndex(bytes("stale")).ok);
    for (let round = 0; round < 5; round++) {
      cluster.tick("a", 1);
      cluster.deliver();
    }
    cluster.heal();
    for (let round = 0; round < 5; round++) {
      cluster.tick("a", 1);
      cluster.tick("b", 1);
      cluster.deliver();
    }
    assert.equal(a.role, "follower");
    assert.deepEqual(reads(cluster, "a"), [], "the stale read at index 1 was never confirmed");
    assert.ok(cluster.node("b").readIndex(bytes("fresh")).ok);
    cluster.flush("b");
    cluster.deliver();
    assert.deepEqual(reads(cluster, "b"), ["fresh@3"]);
  });

  it("followers refuse with NotLeader and a hint; with no leader the read is dropped", () => {
    const cluster = settled();
    assert.deepEqual(cluster.node("b").readIndex(bytes("r")), {
      ok: false,
      error: { code: "NotLeader", leaderHint: "a" },
    });
    const fresh = new Harness(["a", "b", "c"], plain);
    assert.deepEqual(fresh.node("a").readIndex(bytes("r")), {
      ok: false,
      error: { code: "ReadIndexDropped", reason: "no-leader" },
    });
  });

  it("the queue is bounded by readIndexQueueMax, with a typed error when full", () => {
    const cluster = new Harness(["a", "b", "c"], {
      config: { ...plain.config, readIndexQueueMax: 2 },
    });
    cluster.elect("a");
    cluster.tick("a", 1);
    cluster.deliver();
    cluster.partition(["a"], ["b", "c"]);
    const a = cluster.node("a");
    assert.ok(a.readIndex(bytes("1")).ok);
    assert.ok(a.readIndex(bytes("2")).ok);
    assert.deepEqual(a.readIndex(bytes("3")), {
      ok: false,
      error: { code: "ReadIndexQueueFull", queued: 2, queuedMax: 2 },
    });
    cluster.flush("a");
    cluster.heal();
    cluster.tick("a", 1);
    cluster.deliver();
    assert.deepEqual(
      reads(cluster, "a"),
      ["1@1", "2@1"],
      "released in order once a quorum answers",
    );
    assert.ok(a.readIndex(bytes("4")).ok, "room again");
  });

  it("a single-node cluster confirms a read at once", () => {
    const cluster = new Harness(["a"], plain);
    cluster.elect("a");
    assert.equal(cluster.node("a").log.committed, 1);
    assert.ok(cluster.node("a").readIndex(bytes("solo")).ok);
    cluster.flush("a");
    assert.deepEqual(reads(cluster, "a"), ["solo@1"]);
  });
});
