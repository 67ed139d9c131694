// Checks Raft's election rules (paper §5.2, §5.4.1) on small in-memory clusters driven message by message: randomized timeouts, one vote per term even across restarts, the up-to-date check, and exactly one leader.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../../lib/prng.js";
import { entry, Harness } from "./harness.js";
import { RaftNode } from "./raft-node.js";
import type { RequestVote, Term } from "./types.js";

const noPreVote = { config: { preVote: false, checkQuorum: false } };

describe("raft: election", () => {
  it("a follower campaigns after a randomized timeout in [electionTicks, 2 * electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const node = new RaftNode({
        id: "a",
        voters: ["a", "b", "c"],
        prng: prngFromSeed(seed),
        config: { electionTicks: 10 },
      });
      let ticks = 0;
      while (node.role === "follower") {
        node.tick();
        ticks++;
        assert.ok(ticks < 20, "campaigned too late");
      }
      assert.ok(ticks >= 10, `campaigned too early: ${ticks}`);
      seen.add(ticks);
    }
    assert.ok(seen.size >= 5, `timeouts are not randomized: ${[...seen]}`);
  });

  it("three nodes elect exactly one leader, who then commits its no-op everywhere", () => {
    const cluster = new Harness(["a", "b", "c"]);
    for (let round = 0; round < 30 && cluster.leaders().length === 0; round++) {
      for (const id of cluster.ids) cluster.tick(id);
      cluster.deliver();
    }
    assert.equal(cluster.leaders().length, 1);
    const leader = cluster.node(cluster.leaders()[0]!);
    for (const id of cluster.ids) {
      assert.equal(cluster.node(id).term, leader.term);
      assert.equal(cluster.node(id).leaderId, leader.id);
    }
    for (const id of cluster.ids) cluster.tick(id, 2);
    cluster.deliver();
    for (const id of cluster.ids) assert.equal(cluster.node(id).log.committed, 1);
  });

  it("a node grants one vote per term: a second candidate in the same term is refused", () => {
    const cluster = new Harness(["a", "b", "c"], noPreVote);
    cluster.node("a").campaign();
    cluster.node("c").campaign();
    cluster.flush("a");
    cluster.flush("c");
    // b hears a first, then c, both in term 1.
    cluster.deliver((e) => e.target === "b" && e.source === "a");
    cluster.deliver((e) => e.target === "b" && e.source === "c");
    const responses = cluster.queue.filter(
      (e) => e.source === "b" && e.message.type === "request-vote-response",
    );
    assert.deepEqual(
      responses.map((e) => [
        e.target,
        e.message.type === "request-vote-response" && e.message.granted,
      ]),
      [
        ["a", true],
        ["c", false],
      ],
    );
    cluster.deliver();
    assert.deepEqual(cluster.leaders(), ["a"]);
  });

  it("the vote is in the Ready's hard state with the response, and survives a restart", () => {
    const cluster = new Harness(["a", "b", "c"], noPreVote);
    cluster.node("a").campaign();
    cluster.flush("a");
    const request = cluster.queue.find((e) => e.target === "b")!.message;
    cluster.queue = [];
    const b = cluster.node("b");
    b.step(request);
    const ready = b.ready();
    assert.deepEqual(ready.hardState, { term: 1, vote: "a", commit: 0 });
    assert.equal(ready.messages.length, 1);
    b.advance();
    cluster.disks.get("b")!.hardState = ready.hardState!;
    cluster.restart("b");
    const voteFromC: RequestVote = {
      type: "request-vote",
      from: "c",
      term: 1 as Term,
      preVote: false,
      lastLogIndex: 5 as RequestVote["lastLogIndex"],
      lastLogTerm: 1 as Term,
    };
    cluster.node("b").step(voteFromC);
    const [response] = cluster.node("b").ready().messages;
    assert.equal(
      response?.message.type === "request-vote-response" && response.message.granted,
      false,
    );
  });

  it("the forget-vote defect loses the vote on restart (so the simulation has a bug to catch)", () => {
    const cluster = new Harness(["a", "b", "c"], { ...noPreVote, defect: "forget-vote" });
    cluster.node("a").campaign();
    cluster.flush("a");
    cluster.deliver((e) => e.target === "b" && e.message.type === "request-vote");
    assert.equal(cluster.disks.get("b")!.hardState?.vote, null);
  });

  it("refuses a candidate whose log is less up to date (§5.4.1)", () => {
    const cases: { last: [number, number]; granted: boolean }[] = [
      { last: [2, 1], granted: false }, // lower last term, longer log
      { last: [1, 2], granted: false }, // same last term, shorter log
      { last: [2, 2], granted: true }, // equal
      { last: [1, 3], granted: true }, // higher last term, shorter log
    ];
    for (const { last, granted } of cases) {
      const node = new RaftNode({
        id: "b",
        voters: ["a", "b", "c"],
        prng: prngFromSeed(1),
        config: noPreVote.config,
        hardState: { term: 2 as Term, vote: null, commit: 0 as RequestVote["lastLogIndex"] },
        entries: [entry(1, 1), entry(2, 2)],
      });
      node.step({
        type: "request-vote",
        from: "a",
        term: 3 as Term,
        preVote: false,
        lastLogIndex: last[0] as RequestVote["lastLogIndex"],
        lastLogTerm: last[1] as Term,
      });
      const message = node.ready().messages[0]?.message;
      assert.equal(
        message?.type === "request-vote-response" && message.granted,
        granted,
        `${last}`,
      );
    }
  });

  it("a candidate that learns of a higher term steps down", () => {
    const cluster = new Harness(["a", "b", "c"], noPreVote);
    cluster.elect("a");
    cluster.partition(["a"], ["b", "c"]);
    cluster.elect("b");
    assert.equal(cluster.node("b").role, "leader");
    assert.equal(cluster.node("a").role, "leader"); // stale, isolated
    cluster.heal();
    cluster.tick("b", 2);
    cluster.deliver();
    assert.equal(cluster.node("a").role, "follower");
    assert.equal(cluster.node("a").term, cluster.node("b").term);
  });
});
