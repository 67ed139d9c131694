// Checks PreVote (thesis §9.6) and CheckQuorum (thesis §6.2) on a 3-node in-memory cluster: a partitioned node rejoining does not bump terms or depose the leader, an isolated leader steps down, and followers in a leader's lease ignore vote requests. Each property is contrasted with the option off, so the test fails if the feature does nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Harness } from "./harness.js";
import type { LogIndex, Term } from "./types.js";

function partitionedRejoin(preVote: boolean) {
  const cluster = new Harness(["a", "b", "c"], { config: { preVote, checkQuorum: preVote } });
  cluster.elect("a");
  const term = cluster.node("a").term;
  cluster.partition(["a", "b"], ["c"]);
  for (let round = 0; round < 100; round++) {
    for (const id of cluster.ids) cluster.tick(id);
    cluster.deliver();
  }
  const isolatedTerm = cluster.node("c").term;
  cluster.heal();
  for (let round = 0; round < 5; round++) {
    for (const id of cluster.ids) cluster.tick(id);
    cluster.deliver();
  }
  return { term, isolatedTerm, cluster };
}

describe("raft: pre-vote and check-quorum", () => {
  it("pre-vote: a partitioned node rejoining does not depose the leader (N=3)", () => {
    const { term, isolatedTerm, cluster } = partitionedRejoin(true);
    assert.equal(isolatedTerm, term, "the isolated node did not bump its term");
    assert.equal(cluster.node("a").role, "leader");
    assert.equal(cluster.node("a").term, term);
    assert.ok(cluster.node("c").stats.preVotesStarted > 0);
  });

  it("without pre-vote the rejoining node's higher term deposes the leader", () => {
    const { term, isolatedTerm, cluster } = partitionedRejoin(false);
    assert.ok(isolatedTerm > term + 5);
    assert.ok(cluster.node("a").term > term, "the leader was forced into a new term");
  });

  it("check-quorum: a leader cut off from every follower steps down within two election timeouts", () => {
    const cluster = new Harness(["a", "b", "c"], { config: { electionTicks: 10 } });
    cluster.elect("a");
    cluster.partition(["a"], ["b", "c"]);
    cluster.tick("a", 20);
    assert.equal(cluster.node("a").role, "follower");
    const without = new Harness(["a", "b", "c"], {
      config: { checkQuorum: false, preVote: false },
    });
    without.elect("a");
    without.partition(["a"], ["b", "c"]);
    without.tick("a", 100);
    assert.equal(without.node("a").role, "leader");
  });

  it("check-quorum lease: a follower that just heard from the leader ignores a vote request", () => {
    const cluster = new Harness(["a", "b", "c"]);
    cluster.elect("a");
    const b = cluster.node("b");
    const before = b.term;
    b.step({
      type: "request-vote",
      from: "c",
      term: (before + 1) as Term,
      preVote: false,
      lastLogIndex: 100 as LogIndex,
      lastLogTerm: before as Term,
    });
    assert.equal(b.term, before);
    assert.equal(b.ready().messages.length, 0);
  });
});
