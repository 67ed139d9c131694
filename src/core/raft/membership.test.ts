// Goal: membership change one server at a time with learners (thesis §4.1-4.3) never lets
// a configuration change weaken safety or availability: learners receive the log but never
// count (commit, elections, ReadIndex, CheckQuorum) and never campaign; a learner is promoted
// only once caught up, after which the quorum grows; a removed voter stops counting and
// cannot disrupt the cluster; one change at a time, only from a leader that has committed in
// its term, never removing itself; a configuration takes effect when appended and reverts if
// the entry is truncated; a node that joins with no configuration learns it from the log or
// from a snapshot.
// Method: small in-memory clusters (`harness.ts`) driven message by message; founders share
// a bootstrap configuration, joiners are added later with `voters: []`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RaftConfig } from "./config.js";
import { Harness } from "./harness.js";
import { applyMembershipChange } from "./membership.js";
import type { LogIndex, MembershipChange, RaftMessage, Term } from "./types.js";

const plain: Partial<RaftConfig> = { preVote: false, checkQuorum: false };
const bytes = (text: string) => new TextEncoder().encode(text);

function settle(cluster: Harness, leader: string, rounds = 2): void {
  for (let round = 0; round < rounds; round++) {
    cluster.tick(leader, 1);
    cluster.deliver();
  }
}

/** `a` leads `ids` with its no-op committed and applied everywhere. */
function settled(ids = ["a", "b", "c"], config: Partial<RaftConfig> = plain): Harness {
  const cluster = new Harness(ids, { config });
  cluster.elect("a");
  settle(cluster, "a");
  assert.equal(cluster.node("a").role, "leader");
  assert.equal(cluster.node("a").log.committed, 1);
  return cluster;
}

/** Proposes `change` on `leader` and lets the cluster commit it; returns its index. */
function change(cluster: Harness, leader: string, proposed: MembershipChange): LogIndex {
  const result = cluster.node(leader).changeMembership(proposed);
  assert.ok(result.ok, JSON.stringify(result));
  cluster.flush(leader);
  cluster.deliver();
  settle(cluster, leader);
  return result.value.index;
}

/** a, b, c founders; d joins with no configuration and is added as a learner, caught up. */
function withLearner(config: Partial<RaftConfig> = plain): Harness {
  const cluster = settled(["a", "b", "c"], config);
  const d = cluster.addNode("d", { config });
  assert.deepEqual(d.membership, { voters: [], learners: [] });
  const index = change(cluster, "a", { type: "add-learner", node: "d" });
  assert.equal(cluster.node("a").log.committed, index);
  return cluster;
}

function proposeAll(cluster: Harness, leader: string, texts: readonly string[]): void {
  for (const text of texts) assert.ok(cluster.propose(leader, text).ok, text);
  cluster.deliver();
  settle(cluster, leader);
}

describe("raft: membership", () => {
  it("a joiner with no configuration accepts the leader, and learns the configuration from the log", () => {
    const cluster = withLearner();
    const a = cluster.node("a");
    const d = cluster.node("d");
    assert.deepEqual(d.membership, { voters: ["a", "b", "c"], learners: ["d"] });
    assert.deepEqual(d.status().config, d.membership);
    assert.equal(d.leaderId, "a");
    assert.equal(d.log.lastIndex(), a.log.lastIndex());
    assert.equal(d.log.committed, a.log.committed);
    proposeAll(cluster, "a", ["x"]);
    assert.deepEqual(cluster.machineText("d"), ["x"]);
  });

  it("a learner receives entries but its acknowledgements never commit anything", () => {
    const cluster = withLearner();
    const a = cluster.node("a");
    const committed = a.log.committed;
    cluster.partition(["a", "d"], ["b", "c"]);
    proposeAll(cluster, "a", ["x", "y"]);
    const d = cluster.node("d");
    assert.equal(d.log.lastIndex(), a.log.lastIndex(), "the learner holds every entry");
    assert.equal(a.progressOf("d")?.match, a.log.lastIndex(), "and acknowledged them");
    assert.equal(a.log.committed, committed, "leader + learner is not a quorum of 3 voters");
    assert.deepEqual(cluster.machineText("d"), []);
    cluster.heal();
    settle(cluster, "a");
    assert.equal(a.log.committed, a.log.lastIndex());
    assert.deepEqual(cluster.machineText("d"), ["x", "y"]);
  });

  it("a learner never campaigns, even after many election timeouts, and its vote never counts", () => {
    const cluster = withLearner({ electionTicks: 10 }); // PreVote and CheckQuorum on
    const d = cluster.node("d");
    const term = d.term;
    cluster.partition(["a", "b", "c"], ["d"]);
    cluster.tick("d", 200);
    d.campaign();
    cluster.flush("d");
    assert.equal(d.role, "follower");
    assert.equal(d.stats.preVotesStarted, 0);
    assert.equal(d.stats.electionsStarted, 0);
    assert.equal(d.term, term);
    assert.ok(!cluster.queue.some((e) => e.source === "d"), "d sent nothing");

    // A joiner that knows no configuration yet does not campaign either.
    const e = cluster.addNode("e");
    cluster.tick("e", 200);
    assert.equal(e.role, "follower");
    assert.equal(e.stats.preVotesStarted + e.stats.electionsStarted, 0);

    // A candidate counts votes from voters only: c + learner d is not a quorum of 3.
    const plainCluster = withLearner();
    const c = plainCluster.node("c");
    plainCluster.partition(["a", "b"], ["c", "d"]);
    c.campaign();
    plainCluster.flush("c");
    assert.deepEqual(
      plainCluster.queue.filter((m) => m.source === "c").map((m) => m.target),
      [],
      "the partition dropped the requests to a and b; none went to the learner",
    );
    const grant = (from: string): RaftMessage => ({
      type: "request-vote-response",
      from,
      term: c.term,
      preVote: false,
      voteTerm: c.term,
      granted: true,
    });
    c.step(grant("d"));
    plainCluster.flush("c");
    assert.equal(c.role, "candidate", "a learner's vote does not count");
    c.step(grant("b"));
    plainCluster.flush("c");
    assert.equal(c.role, "leader", "a voter's does");
  });

  it("learners do not count for ReadIndex or CheckQuorum", () => {
    const cluster = withLearner({ electionTicks: 10, preVote: true, checkQuorum: true });
    const a = cluster.node("a");
    cluster.partition(["a", "d"], ["b", "c"]);
    assert.ok(a.readIndex(bytes("r")).ok);
    cluster.flush("a");
    cluster.deliver();
    assert.ok(
      cluster.queue.length === 0 && a.progressOf("d")?.match === a.log.lastIndex(),
      "d answered",
    );
    assert.deepEqual(cluster.readStates.get("a"), [], "the learner's echo is not a quorum");
    for (let tick = 0; tick < 20 && a.role === "leader"; tick++) {
      cluster.tick("a", 1);
      cluster.deliver();
    }
    assert.equal(a.role, "follower", "CheckQuorum: leader + learner is not a quorum");
  });

  it("promote is refused while the learner is behind the commit index, accepted once caught up", () => {
    const cluster = settled();
    cluster.addNode("d", { config: plain });
    cluster.partition(["a", "b", "c"], ["d"]);
    change(cluster, "a", { type: "add-learner", node: "d" });
    proposeAll(cluster, "a", ["x", "y"]);
    const a = cluster.node("a");
    assert.deepEqual(a.changeMembership({ type: "promote", node: "d" }), {
      ok: false,
      error: { code: "LearnerNotCaughtUp", match: 0, commit: a.log.committed },
    });
    const lastIndex = a.log.lastIndex();
    cluster.heal();
    settle(cluster, "a", 3);
    assert.equal(a.progressOf("d")?.match, lastIndex);
    const index = change(cluster, "a", { type: "promote", node: "d" });
    assert.deepEqual(a.membership, { voters: ["a", "b", "c", "d"], learners: [] });
    assert.equal(a.log.committed, index);
    for (const id of cluster.ids) assert.deepEqual(cluster.node(id).membership.voters.length, 4);
  });

  it("after a promote the quorum grows: with 4 voters, 2 are not enough and the new voter counts", () => {
    const cluster = withLearner();
    const a = cluster.node("a");
    // Before: a and b are 2 of 3 voters.
    cluster.partition(["a", "b"], ["c", "d"]);
    proposeAll(cluster, "a", ["before"]);
    assert.equal(a.log.committed, a.log.lastIndex());
    cluster.heal();
    settle(cluster, "a");
    change(cluster, "a", { type: "promote", node: "d" });
    assert.equal(a.log.committed, a.log.lastIndex());

    cluster.partition(["a", "b"], ["c", "d"]);
    proposeAll(cluster, "a", ["after"]);
    const committed = a.log.committed;
    assert.ok(committed < a.log.lastIndex(), "2 of 4 voters do not commit");
    cluster.partition(["a", "b", "d"], ["c"]);
    settle(cluster, "a");
    assert.equal(a.log.committed, a.log.lastIndex(), "the promoted voter makes the quorum of 3");
    assert.deepEqual(cluster.machineText("d"), ["before", "after"]);
  });

  it("removing a follower shrinks the quorum: commits proceed without it", () => {
    const cluster = settled(["a", "b", "c", "d"]);
    const a = cluster.node("a");
    cluster.partition(["a", "b"], ["c", "d"]);
    proposeAll(cluster, "a", ["stuck"]);
    assert.ok(a.log.committed < a.log.lastIndex(), "2 of 4 voters do not commit");
    cluster.heal();
    settle(cluster, "a");

    const result = a.changeMembership({ type: "remove", node: "d" });
    assert.ok(result.ok);
    assert.deepEqual(a.membership, { voters: ["a", "b", "c"], learners: [] }, "at once");
    assert.equal(a.progressOf("d"), undefined, "the leader stops tracking d");
    cluster.flush("a");
    assert.ok(!cluster.queue.some((e) => e.target === "d"), "nothing more goes to d");
    cluster.deliver();
    settle(cluster, "a");
    assert.equal(a.log.committed, result.value.index);

    cluster.partition(["a", "b"], ["c", "d"]);
    proposeAll(cluster, "a", ["without-d"]);
    assert.equal(a.log.committed, a.log.lastIndex(), "2 of 3 voters commit");
    assert.deepEqual(cluster.machineText("b"), ["stuck", "without-d"]);
  });

  it("a removed voter that never learns it was removed cannot disrupt the cluster", () => {
    const cluster = settled(["a", "b", "c", "d"], { electionTicks: 10 }); // PreVote, CheckQuorum
    const a = cluster.node("a");
    const term = a.term;
    change(cluster, "a", { type: "remove", node: "d" });
    const d = cluster.node("d");
    assert.equal(d.membership.voters.length, 4, "d never got the entry removing it");
    for (let round = 0; round < 100; round++) {
      for (const id of cluster.ids) cluster.tick(id, 1);
      cluster.deliver();
    }
    assert.ok(d.stats.preVotesStarted > 0, "d kept trying");
    assert.equal(d.stats.electionsStarted, 0, "no PreVote succeeded");
    assert.equal(a.role, "leader");
    for (const id of cluster.ids) assert.equal(cluster.node(id).term, term, id);
    proposeAll(cluster, "a", ["fine"]);
    assert.deepEqual(cluster.machineText("c"), ["fine"]);

    // Without PreVote and CheckQuorum (thesis §4.2.3) its campaigns do depose the leader.
    const unprotected = settled(["a", "b", "c", "d"], plain);
    const before = unprotected.node("a").term;
    change(unprotected, "a", { type: "remove", node: "d" });
    for (let round = 0; round < 100; round++) {
      for (const id of unprotected.ids) unprotected.tick(id, 1);
      unprotected.deliver();
    }
    assert.ok(unprotected.node("d").stats.electionsStarted > 0);
    assert.ok(unprotected.node("a").term > before, "the removed node's terms reached the cluster");
  });

  it("one change at a time: ChangeInProgress until the previous config entry commits", () => {
    const cluster = settled();
    const a = cluster.node("a");
    cluster.partition(["a"], ["b", "c"]);
    const first = a.changeMembership({ type: "add-learner", node: "d" });
    assert.ok(first.ok);
    cluster.flush("a");
    for (const next of [
      { type: "add-learner", node: "e" },
      { type: "promote", node: "d" },
      { type: "remove", node: "c" },
    ] as const) {
      assert.deepEqual(a.changeMembership(next), {
        ok: false,
        error: { code: "ChangeInProgress", pendingIndex: first.value.index },
      });
    }
    cluster.heal();
    settle(cluster, "a");
    assert.equal(a.log.committed, first.value.index);
    assert.ok(a.changeMembership({ type: "add-learner", node: "e" }).ok);
  });

  it("a new leader refuses changes (NotReady) until it commits an entry of its term", () => {
    const cluster = new Harness(["a", "b", "c"], { config: plain });
    const a = cluster.node("a");
    assert.deepEqual(a.changeMembership({ type: "add-learner", node: "d" }), {
      ok: false,
      error: { code: "NotLeader", leaderHint: null },
    });
    a.campaign();
    cluster.flush("a");
    cluster.deliver((e) => e.message.type.startsWith("request-vote"));
    assert.equal(a.role, "leader");
    assert.deepEqual(a.changeMembership({ type: "add-learner", node: "d" }), {
      ok: false,
      error: { code: "NotReady" },
    });
    cluster.deliver();
    assert.equal(a.log.committed, 1);
    assert.ok(a.changeMembership({ type: "add-learner", node: "d" }).ok);
    assert.deepEqual(cluster.node("b").changeMembership({ type: "remove", node: "c" }), {
      ok: false,
      error: { code: "NotLeader", leaderHint: "a" },
    });
  });

  it("invalid changes are refused and append nothing; the leader cannot remove itself", () => {
    const cluster = withLearner();
    const a = cluster.node("a");
    const lastIndex = a.log.lastIndex();
    const invalid: MembershipChange[] = [
      { type: "remove", node: "a" }, // the leader itself
      { type: "add-learner", node: "b" }, // already a voter
      { type: "add-learner", node: "d" }, // already a learner
      { type: "promote", node: "b" }, // not a learner
      { type: "promote", node: "z" },
      { type: "remove", node: "z" }, // not a member
    ];
    for (const proposed of invalid) {
      const result = a.changeMembership(proposed);
      assert.ok(!result.ok, JSON.stringify(proposed));
      assert.equal(result.error.code, "InvalidChange", JSON.stringify(proposed));
    }
    assert.equal(a.log.lastIndex(), lastIndex);
    assert.deepEqual(
      applyMembershipChange({ voters: ["a"], learners: ["d"] }, { type: "remove", node: "a" }),
      {
        ok: false,
        reason: "cannot remove the last voter",
      },
    );
    // A learner can be removed.
    change(cluster, "a", { type: "remove", node: "d" });
    assert.deepEqual(a.membership, { voters: ["a", "b", "c"], learners: [] });
  });

  it("a config entry takes effect on a follower when appended, and reverts when truncated", () => {
    const cluster = settled(["a", "b", "c", "d", "e"]);
    const a = cluster.node("a");
    const b = cluster.node("b");
    const result = a.changeMembership({ type: "add-learner", node: "x" });
    assert.ok(result.ok);
    cluster.flush("a");
    cluster.deliver((e) => e.target === "b" && e.message.type === "append-entries");
    cluster.drop(() => true);
    assert.equal(b.log.term(result.value.index), 1);
    assert.ok(b.log.committed < result.value.index, "not committed");
    assert.deepEqual(b.membership.learners, ["x"], "in force on b as soon as appended");

    // c wins term 2 without a and b, and overwrites the config entry's index.
    cluster.partition(["a", "b"], ["c", "d", "e"]);
    cluster.elect("c");
    settle(cluster, "c");
    const c = cluster.node("c");
    assert.equal(c.role, "leader");
    assert.equal(c.log.term(result.value.index), 2);
    cluster.heal();
    settle(cluster, "c", 3);
    for (const id of ["a", "b"]) {
      const node = cluster.node(id);
      assert.equal(node.log.term(result.value.index), 2, id);
      assert.deepEqual(
        node.membership,
        { voters: ["a", "b", "c", "d", "e"], learners: [] },
        `${id} reverted to the previous configuration`,
      );
    }
  });

  it("a joiner learns the configuration from a snapshot when the leader compacted the log", () => {
    const cluster = settled(["a", "b", "c"], { ...plain, compactionRetainEntries: 0 });
    const a = cluster.node("a");
    change(cluster, "a", { type: "add-learner", node: "d" }); // d does not exist yet
    proposeAll(cluster, "a", ["x", "y"]);
    const snapshot = cluster.takeSnapshot("a");
    assert.ok(snapshot.ok);
    assert.equal(a.log.lastConfigEntry(), undefined, "the config entry was compacted");

    const d = cluster.addNode("d", { config: plain });
    settle(cluster, "a", 3);
    assert.equal(a.stats.snapshotsSent, 1);
    assert.equal(cluster.installed.get("d")!.length, 1);
    assert.deepEqual(d.membership, { voters: ["a", "b", "c"], learners: ["d"] });
    assert.deepEqual(cluster.machineText("d"), ["x", "y"]);
    cluster.restart("d");
    assert.deepEqual(cluster.node("d").membership, { voters: ["a", "b", "c"], learners: ["d"] });
    settle(cluster, "a");
    change(cluster, "a", { type: "promote", node: "d" });
    assert.deepEqual(cluster.node("d").membership.voters, ["a", "b", "c", "d"]);
  });

  it("leadership cannot be transferred to a learner", () => {
    const cluster = withLearner();
    assert.deepEqual(cluster.node("a").transferLeadership("d"), {
      ok: false,
      error: { code: "UnknownTarget", target: "d" },
    });
  });

  it("a learner that receives TimeoutNow does not campaign", () => {
    const cluster = withLearner();
    const d = cluster.node("d");
    d.step({ type: "timeout-now", from: "a", term: d.term as Term });
    cluster.flush("d");
    assert.equal(d.role, "follower");
    assert.equal(d.stats.electionsStarted, 0);
    assert.equal(d.log.committed, cluster.node("a").log.committed as LogIndex);
  });
});
