// Checks the proposal API and flow control on small in-memory clusters: each typed ProposeError, proposal batching into one append per follower, and the bounds on in-flight appends and in-flight bytes to an unresponsive follower.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Harness } from "./harness.js";

describe("raft: propose", () => {
  it("reports NotLeader with a hint, and ProposalDropped when no leader is known", () => {
    const cluster = new Harness(["a", "b", "c"]);
    assert.deepEqual(cluster.propose("b", "x"), {
      ok: false,
      error: { code: "ProposalDropped", reason: "no-leader" },
    });
    cluster.elect("a");
    assert.deepEqual(cluster.propose("b", "x"), {
      ok: false,
      error: { code: "NotLeader", leaderHint: "a" },
    });
  });

  it("reports ProposalTooLarge and Overloaded from the configured limits", () => {
    const cluster = new Harness(["a", "b", "c"], {
      config: { proposalBytesMax: 8, uncommittedBytesMax: 16 },
    });
    cluster.elect("a");
    cluster.partition(["a"], ["b", "c"]); // nothing commits
    const tooLarge = cluster.propose("a", "123456789");
    assert.deepEqual(tooLarge, {
      ok: false,
      error: { code: "ProposalTooLarge", sizeBytes: 9, sizeBytesMax: 8 },
    });
    assert.ok(cluster.propose("a", "12345678").ok);
    assert.ok(cluster.propose("a", "12345678").ok);
    const overloaded = cluster.propose("a", "1");
    assert.deepEqual(overloaded, {
      ok: false,
      error: { code: "Overloaded", uncommittedBytes: 16, uncommittedBytesMax: 16 },
    });
    cluster.heal();
    cluster.tick("a", 1);
    cluster.deliver();
    assert.ok(cluster.propose("a", "1").ok, "the budget frees up as entries commit");
  });

  it("batches proposals made between two Readys into one append per follower", () => {
    const cluster = new Harness(["a", "b", "c"]);
    cluster.elect("a");
    cluster.tick("a", 1);
    cluster.deliver();
    const a = cluster.node("a");
    for (const text of ["p", "q", "r", "s"])
      assert.ok(a.propose(new TextEncoder().encode(text)).ok);
    const appends = a.ready().messages.filter((m) => m.message.type === "append-entries");
    a.advance();
    assert.equal(appends.length, 2);
    for (const { message } of appends) {
      assert.equal(message.type === "append-entries" && message.entries.length, 4);
    }
  });

  it("keeps at most appendsInflightMax appends carrying entries outstanding to a silent follower", () => {
    const cluster = new Harness(["a", "b", "c"], {
      config: { appendsInflightMax: 3, checkQuorum: false },
    });
    cluster.elect("a");
    cluster.tick("a", 1);
    cluster.deliver(); // b and c now in replicate state
    let toB = 0;
    for (let i = 0; i < 20; i++) {
      cluster.propose("a", `v${i}`);
      toB += cluster.queue.filter(
        (e) =>
          e.target === "b" && e.message.type === "append-entries" && e.message.entries.length > 0,
      ).length;
      cluster.drop((e) => e.target === "b" || e.source === "b");
      cluster.deliver((e) => e.target === "c" || e.source === "c");
    }
    assert.equal(toB, 3);
    assert.equal(cluster.node("a").progressOf("b")?.inflight.length, 3);
    assert.equal(cluster.node("a").log.committed, 21, "the quorum (a, c) kept committing");
  });

  it("keeps at most appendsInflightBytesMax entry bytes outstanding to a silent follower", () => {
    const cluster = new Harness(["a", "b", "c"], {
      config: { appendsInflightMax: 100, appendsInflightBytesMax: 10, checkQuorum: false },
    });
    cluster.elect("a");
    cluster.tick("a", 1);
    cluster.deliver();
    let bytesToB = 0;
    for (let i = 0; i < 20; i++) {
      cluster.propose("a", "1234"); // 4 bytes each, one append each
      for (const e of cluster.queue) {
        if (e.target === "b" && e.message.type === "append-entries")
          for (const entry of e.message.entries) bytesToB += entry.data.length;
      }
      cluster.drop((e) => e.target === "b" || e.source === "b");
      cluster.deliver((e) => e.target === "c" || e.source === "c");
    }
    // Paused once 10 bytes are outstanding: 4 + 4 + 4 (the append that crossed the cap went).
    assert.equal(bytesToB, 12);
    assert.equal(cluster.node("a").progressOf("b")?.inflightBytesTotal, 12);
    assert.equal(cluster.node("a").log.committed, 21, "the quorum (a, c) kept committing");
  });
});
