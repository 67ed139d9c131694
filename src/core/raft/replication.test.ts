// Checks log replication (paper §5.3, §5.4.2, Figure 8) by driving small clusters message by message: the consistency check, conflict truncation, stale appends, fast backtracking, in-order apply, and that a leader commits only current-term entries by counting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { entry, Harness } from "./harness.js";
import type { LogIndex, Term } from "./types.js";

const plain = { config: { preVote: false, checkQuorum: false } };

describe("raft: replication", () => {
  it("replicates, commits and applies proposals in order on every node", () => {
    const cluster = new Harness(["a", "b", "c"], plain);
    cluster.elect("a");
    for (const text of ["x", "y", "z"]) assert.ok(cluster.propose("a", text).ok);
    cluster.deliver();
    cluster.tick("a", 2);
    cluster.deliver();
    for (const id of cluster.ids) assert.deepEqual(cluster.appliedText(id), ["x", "y", "z"]);
    assert.equal(cluster.node("b").log.committed, 4);
  });

  it("the consistency check rejects an append whose previous entry does not match", () => {
    const cluster = new Harness(["a", "b"], plain);
    const b = cluster.node("b");
    b.step({
      type: "append-entries",
      from: "a",
      term: 1 as Term,
      prevLogIndex: 3 as LogIndex,
      prevLogTerm: 1 as Term,
      entries: [entry(4, 1, "w")],
      leaderCommit: 0 as LogIndex,
    });
    const response = b.ready().messages[0]?.message;
    assert.equal(response?.type, "append-entries-response");
    assert.equal(response?.type === "append-entries-response" && response.success, false);
    assert.equal(b.log.lastIndex(), 0);
  });

  it("truncates a conflicting suffix, but a stale duplicate append truncates nothing", () => {
    const cluster = new Harness(["a", "b"], (id) =>
      id === "b"
        ? {
            ...plain,
            hardState: { term: 2 as Term, vote: null, commit: 1 as LogIndex },
            entries: [entry(1, 1, "p"), entry(2, 2, "old"), entry(3, 2, "old2")],
          }
        : plain,
    );
    const b = cluster.node("b");
    const append = (prev: number, prevTerm: number, entries: ReturnType<typeof entry>[]) => {
      b.step({
        type: "append-entries",
        from: "a",
        term: 3 as Term,
        prevLogIndex: prev as LogIndex,
        prevLogTerm: prevTerm as Term,
        entries,
        leaderCommit: 1 as LogIndex,
      });
      b.ready();
      b.advance();
    };
    append(1, 1, [entry(2, 3, "new"), entry(3, 3, "new2"), entry(4, 3, "new3")]);
    assert.deepEqual(
      [1, 2, 3, 4].map((i) => b.log.term(i)),
      [1, 3, 3, 3],
    );
    append(1, 1, [entry(2, 3, "new")]); // delayed duplicate of an earlier, shorter append
    assert.equal(b.log.lastIndex(), 4, "a stale append must not truncate matching entries");
  });

  it("fast backtracking skips a divergent term in one round trip", () => {
    // b has 50 entries of term 2 that the leader (term 3) does not have.
    const bEntries = [
      entry(1, 1, "p"),
      ...Array.from({ length: 50 }, (_, i) => entry(i + 2, 2, `b${i}`)),
    ];
    const cluster = new Harness(["a", "b", "c"], (id) => ({
      ...plain,
      hardState: { term: 2 as Term, vote: null, commit: 1 as LogIndex },
      entries: id === "b" ? bEntries : [entry(1, 1, "p")],
    }));
    cluster.partition(["a", "c"], ["b"]);
    cluster.elect("a");
    cluster.heal();
    cluster.tick("a", 1);
    let rejections = 0;
    cluster.deliver((e) => {
      const m = e.message;
      if (m.type === "append-entries-response" && !m.success) rejections++;
      return true;
    });
    assert.ok(rejections <= 2, `took ${rejections} rejections`);
    assert.equal(cluster.node("b").log.lastIndex(), cluster.node("a").log.lastIndex());
    assert.equal(cluster.node("b").log.term(2), cluster.node("a").log.term(2));
  });

  // Figure 8 of the paper, 5 nodes. Term 2: s1 led and wrote 2@2 on s1 and s2. Term 3: s5
  // led and wrote a different 3-term entry at index 2 on itself only. Term 4: s1 leads again
  // (votes from s2, s3, s4) and copies 2@2 to s3 and s4, so a majority (s1, s3, s4) holds it;
  // its own 3@4 is on s1 only. If s1 counted replicas of 2@2 and committed it, s5 could
  // still win term 5 (votes from s2, s3, s4: its last term 3 beats their 2) and overwrite
  // index 2 everywhere.
  function figure8(defect: "none" | "commit-previous-term") {
    const cluster = new Harness(["s1", "s2", "s3", "s4", "s5"], (id) => ({
      config: { preVote: false, checkQuorum: false, entriesPerAppendMax: 1 },
      defect,
      hardState: { term: 3 as Term, vote: null, commit: 1 as LogIndex },
      entries:
        id === "s1" || id === "s2"
          ? [entry(1, 1, "a"), entry(2, 2, "b")]
          : id === "s5"
            ? [entry(1, 1, "a"), entry(2, 3, "c")]
            : [entry(1, 1, "a")],
    }));
    cluster.partition(["s1", "s2", "s3", "s4"], ["s5"]);
    cluster.node("s1").campaign();
    cluster.flush("s1");
    cluster.deliver((e) => e.message.type.startsWith("request-vote"));
    assert.equal(cluster.node("s1").role, "leader");
    assert.equal(cluster.node("s1").term, 4);
    // s1 reaches s3 and s4 only, and they never receive 3@4.
    cluster.deliver(
      (e) =>
        (e.target === "s1" && e.source !== "s2") ||
        (e.source === "s1" &&
          (e.target === "s3" || e.target === "s4") &&
          (e.message.type !== "append-entries" ||
            e.message.prevLogIndex < 2 ||
            cluster.node(e.target).log.lastIndex() < 2)),
    );
    cluster.drop(() => true);
    for (const id of ["s3", "s4"]) assert.equal(cluster.node(id).log.term(2), 2, id);
    assert.equal(cluster.node("s3").log.lastIndex(), 2);
    return cluster;
  }

  /** s1 crashes; s5 campaigns until it wins (term 4 is taken, so term 5). */
  function s5Wins(cluster: Harness): void {
    cluster.partition(["s2", "s3", "s4", "s5"], ["s1"]);
    for (let attempt = 0; attempt < 3 && cluster.node("s5").role !== "leader"; attempt++) {
      cluster.elect("s5");
    }
    assert.equal(cluster.node("s5").role, "leader");
    assert.equal(cluster.node("s5").term, 5);
  }

  it("figure 8: a leader does not commit an earlier-term entry by counting replicas", () => {
    const cluster = figure8("none");
    assert.equal(cluster.node("s1").log.committed, 1);
    // s1 crashes; s5 wins term 5 and overwrites index 2: nothing committed is lost.
    s5Wins(cluster);
    cluster.tick("s5", 1);
    cluster.deliver();
    assert.equal(cluster.node("s3").log.term(2), 3);
    // Once the leader's current-term entry is on a majority, everything before it commits.
    cluster.heal();
    cluster.tick("s5", 1);
    cluster.deliver();
    for (const id of cluster.ids) assert.equal(cluster.node(id).log.term(2), 3, id);
    assert.ok(cluster.node("s5").log.committed >= 3);
  });

  it("figure 8 with the commit-previous-term defect commits 2@2, which is later overwritten", () => {
    const cluster = figure8("commit-previous-term");
    assert.equal(cluster.node("s1").log.committed, 2, "the defect commits by counting");
    s5Wins(cluster);
    cluster.tick("s5", 1);
    cluster.deliver();
    cluster.tick("s5", 1);
    cluster.deliver();
    assert.equal(cluster.node("s3").log.term(2), 3, "the entry s1 'committed' was overwritten");
  });
});
