// Checks leadership transfer (thesis §3.10) on 3-node in-memory clusters driven message by message, with PreVote and CheckQuorum on: the leader refuses proposals, brings the target up to date, sends TimeoutNow, the target wins at once past the followers' lease, and an unfinished transfer is abandoned after an election timeout.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Harness } from "./harness.js";

function settled(): Harness {
  const cluster = new Harness(["a", "b", "c"], { config: { electionTicks: 10 } });
  cluster.elect("a");
  cluster.tick("a", 1);
  cluster.deliver();
  assert.equal(cluster.node("a").role, "leader");
  return cluster;
}

describe("raft: leadership transfer", () => {
  it("an up-to-date target gets TimeoutNow and wins the next term without PreVote", () => {
    const cluster = settled();
    const term = cluster.node("a").term;
    const preVotes = cluster.node("b").stats.preVotesStarted;
    assert.ok(cluster.node("a").transferLeadership("b").ok);
    cluster.flush("a");
    assert.deepEqual(
      cluster.queue.map((e) => `${e.target}:${e.message.type}`),
      ["b:timeout-now"],
    );
    cluster.deliver();
    assert.deepEqual(cluster.leaders(), ["b"]);
    assert.equal(cluster.node("b").term, term + 1);
    assert.equal(cluster.node("b").stats.preVotesStarted, preVotes, "no PreVote round");
    assert.equal(cluster.node("a").role, "follower");
    assert.equal(cluster.node("c").leaderId, "b");
  });

  it("proposals are refused during the transfer; a lagging target is caught up first", () => {
    const cluster = settled();
    cluster.partition(["a", "c"], ["b"]);
    for (const text of ["x", "y"]) assert.ok(cluster.propose("a", text).ok);
    cluster.deliver();
    cluster.heal();
    const a = cluster.node("a");
    assert.ok(a.transferLeadership("b").ok);
    assert.equal(a.transferee, "b");
    assert.deepEqual(a.propose(new Uint8Array([1])), {
      ok: false,
      error: { code: "ProposalDropped", reason: "leadership-transfer" },
    });
    cluster.flush("a");
    assert.ok(!cluster.queue.some((e) => e.message.type === "timeout-now"), "not yet up to date");
    cluster.deliver((e) => e.message.type !== "timeout-now");
    assert.equal(cluster.node("b").log.lastIndex(), a.log.lastIndex(), "caught up");
    assert.ok(cluster.queue.some((e) => e.message.type === "timeout-now"));
    cluster.deliver();
    assert.deepEqual(cluster.leaders(), ["b"]);
    cluster.tick("b", 1);
    cluster.deliver();
    for (const id of cluster.ids) assert.deepEqual(cluster.appliedText(id), ["x", "y"]);
  });

  it("a transfer that does not finish within an election timeout is abandoned", () => {
    const cluster = settled();
    cluster.partition(["a", "c"], ["b"]);
    const a = cluster.node("a");
    assert.ok(a.transferLeadership("b").ok);
    cluster.flush("a");
    for (let tick = 0; tick < 9; tick++) {
      cluster.tick("a", 1);
      cluster.deliver();
    }
    assert.equal(a.transferee, "b");
    cluster.tick("a", 1);
    assert.equal(a.transferee, null);
    assert.equal(a.role, "leader");
    assert.ok(cluster.propose("a", "resumed").ok);
  });

  it("refuses on a follower and for an unknown target; to itself cancels", () => {
    const cluster = settled();
    assert.deepEqual(cluster.node("b").transferLeadership("c"), {
      ok: false,
      error: { code: "NotLeader", leaderHint: "a" },
    });
    const a = cluster.node("a");
    assert.deepEqual(a.transferLeadership("z"), {
      ok: false,
      error: { code: "UnknownTarget", target: "z" },
    });
    cluster.partition(["a", "c"], ["b"]);
    assert.ok(a.transferLeadership("b").ok);
    assert.ok(a.transferLeadership("a").ok);
    assert.equal(a.transferee, null);
    assert.ok(cluster.propose("a", "ok").ok);
  });

  it("a leader ignores TimeoutNow, and a stale one from an older term changes nothing", () => {
    const cluster = settled();
    const a = cluster.node("a");
    a.step({ type: "timeout-now", from: "b", term: a.term });
    assert.equal(a.role, "leader");
    const b = cluster.node("b");
    b.step({ type: "timeout-now", from: "a", term: (a.term - 1) as typeof a.term });
    assert.equal(b.role, "follower");
  });
});
