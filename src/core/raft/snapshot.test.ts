// Goal: log compaction and InstallSnapshot (paper §7, Figure 13) keep every replica's state
// machine equal to the leader's: compaction keeps `compactionRetainEntries` entries, only
// applied and increasing indexes can be snapshotted, a follower the leader can no longer
// reach through its log gets the snapshot in chunks (a bounded window, lost chunks resent,
// restarted followers restarted), stale installs change nothing, a follower whose log
// already holds the snapshot's last entry keeps its later entries, and a restart from a
// stored snapshot rebuilds the same log, commit and state machine.
// Method: small in-memory clusters (`harness.ts`) driven message by message; each node's
// state machine is its list of applied commands, encoded as the snapshot's data; some
// messages are hand-made and stepped into one node.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RaftConfig } from "./config.js";
import { type Envelope, encodeMachine, entry, Harness } from "./harness.js";
import type { RaftNode } from "./raft-node.js";
import type {
  AppendEntriesResponse,
  InstallSnapshot,
  LogIndex,
  RaftMessage,
  SnapshotMetadata,
  Term,
} from "./types.js";

const plain: Partial<RaftConfig> = { preVote: false, checkQuorum: false };

/** Heartbeat rounds from the leader, delivering everything after each. */
function settle(cluster: Harness, leader: string, rounds = 2): void {
  for (let round = 0; round < rounds; round++) {
    cluster.tick(leader, 1);
    cluster.deliver();
  }
}

/** `a` leads a, b, c with every node's no-op applied. */
function settled(config: Partial<RaftConfig> = {}): Harness {
  const cluster = new Harness(["a", "b", "c"], { config: { ...plain, ...config } });
  cluster.elect("a");
  settle(cluster, "a");
  assert.equal(cluster.node("a").role, "leader");
  return cluster;
}

function proposeAll(cluster: Harness, leader: string, texts: readonly string[]): void {
  for (const text of texts) assert.ok(cluster.propose(leader, text).ok, text);
  cluster.deliver();
  settle(cluster, leader);
}

const commands = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);

/**
 * c misses `count` commands while partitioned, then a snapshots everything applied (keeping
 * `compactionRetainEntries` entries), so c can only be caught up by a snapshot.
 */
function lagging(config: Partial<RaftConfig>, count = 20): Harness {
  const cluster = settled(config);
  cluster.partition(["a", "b"], ["c"]);
  proposeAll(cluster, "a", commands("cmd", count));
  assert.equal(cluster.node("c").log.lastIndex(), 1, "c missed everything but the no-op");
  assert.ok(cluster.takeSnapshot("a").ok);
  cluster.heal();
  return cluster;
}

const isChunk = (e: Envelope) => e.message.type === "install-snapshot";
const chunk = (e: Envelope): InstallSnapshot => {
  assert.equal(e.message.type, "install-snapshot");
  return e.message as InstallSnapshot;
};

/** One Ready's messages from `node` after stepping `message` into it. */
function stepAndRead(node: RaftNode, message: RaftMessage) {
  node.step(message);
  const ready = node.ready();
  node.advance();
  return ready;
}

describe("raft: snapshots", () => {
  it("compaction keeps compactionRetainEntries entries behind the snapshot", () => {
    const cluster = new Harness(["a", "b", "c"], (id) => ({
      config: {
        ...plain,
        compactionRetainEntries: id === "a" ? 3 : id === "b" ? 0 : 100,
      },
    }));
    cluster.elect("a");
    proposeAll(cluster, "a", commands("x", 9));
    for (const id of cluster.ids) assert.equal(cluster.node(id).applied, 10, id);

    const metadata = cluster.takeSnapshot("a");
    assert.ok(metadata.ok);
    assert.deepEqual(metadata.value, {
      index: 10,
      term: 1,
      config: { voters: ["a", "b", "c"], learners: [] },
    });
    const a = cluster.node("a");
    assert.equal(a.log.offset, 7, "10 - 3 retained");
    assert.equal(a.log.firstIndex(), 8);
    assert.equal(a.log.entry(7), undefined, "compacted");
    assert.equal(a.log.term(7), 1, "the term at the offset is kept for the consistency check");
    assert.equal(a.log.entry(8)?.index, 8);
    assert.equal(a.status().snapshotIndex, 10);
    assert.equal(a.log.lastIndex(), 10);

    assert.ok(cluster.takeSnapshot("b").ok);
    assert.equal(cluster.node("b").log.offset, 10, "retain 0: everything compacted");
    assert.equal(cluster.node("b").log.lastIndex(), 10);

    assert.ok(cluster.takeSnapshot("c").ok);
    assert.equal(cluster.node("c").log.offset, 0, "fewer entries than retained: nothing compacted");
    assert.equal(cluster.node("c").status().snapshotIndex, 10);

    // The cluster goes on after compaction.
    proposeAll(cluster, "a", ["after"]);
    for (const id of cluster.ids) assert.equal(cluster.machineText(id).at(-1), "after", id);
  });

  it("snapshot() refuses an unapplied index and one not after the last snapshot", () => {
    const cluster = settled({ compactionRetainEntries: 0 });
    proposeAll(cluster, "a", commands("x", 4));
    cluster.partition(["a"], ["b", "c"]);
    assert.ok(cluster.propose("a", "uncommitted").ok);
    const a = cluster.node("a");
    assert.equal(a.log.lastIndex(), 6);
    assert.equal(a.applied, 5);

    const refused = (index: number) => {
      const result = a.snapshot(index as LogIndex, new Uint8Array(0));
      assert.ok(!result.ok, `snapshot at ${index} accepted`);
      const { code, index: refusedIndex } = result.error;
      assert.deepEqual(
        { code, refusedIndex },
        { code: "InvalidSnapshotIndex", refusedIndex: index },
      );
    };
    refused(6); // in the log, not applied
    refused(7); // beyond the log
    refused(0);
    assert.equal(a.log.offset, 0, "a refusal changes nothing");
    assert.equal(a.status().snapshotIndex, 0);

    assert.ok(cluster.takeSnapshot("a", 3).ok);
    refused(3); // the same index again
    refused(2); // an older one
    assert.equal(a.log.offset, 3);
    assert.ok(cluster.takeSnapshot("a", 5).ok);
    assert.equal(a.snapshotMetadata?.index, 5);
  });

  it("a follower partitioned while the leader compacted is caught up by InstallSnapshot", () => {
    const cluster = lagging({ compactionRetainEntries: 2 });
    const a = cluster.node("a");
    const c = cluster.node("c");
    assert.equal(a.log.offset, 19, "snapshot at 21, 2 entries retained");
    settle(cluster, "a", 3);

    assert.equal(a.stats.snapshotsSent, 1);
    assert.equal(c.stats.snapshotsInstalled, 1);
    assert.equal(cluster.installed.get("c")!.length, 1, "Ready.snapshot handed to the driver once");
    assert.deepEqual(cluster.installed.get("c")![0]!.metadata, a.snapshotMetadata);
    assert.deepEqual(cluster.disks.get("c")!.snapshot?.metadata, a.snapshotMetadata);
    assert.deepEqual(c.status().snapshotIndex, 21);
    assert.equal(c.log.offset, 21);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
    assert.equal(cluster.machineText("c").length, 20);
    assert.equal(a.progressOf("c")?.state, "replicate", "back to appends after the install");
    assert.equal(a.progressOf("c")?.match, a.log.lastIndex());

    // Later entries reach c through the log again.
    proposeAll(cluster, "a", ["later"]);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
    assert.equal(cluster.machineText("c").at(-1), "later");
    assert.equal(a.stats.snapshotsSent, 1, "no second snapshot");
  });

  it("the transfer is chunked, with at most snapshotChunksInflightMax chunks unacknowledged", () => {
    const window = 3;
    const chunkBytes = 16;
    const cluster = lagging({
      compactionRetainEntries: 0,
      snapshotChunkBytes: chunkBytes,
      snapshotChunksInflightMax: window,
    });
    const a = cluster.node("a");
    const total = cluster.disks.get("a")!.snapshot!.data.length;
    const expectedChunks = Math.ceil(total / chunkBytes);
    assert.ok(expectedChunks > 2 * window, `${total} bytes make enough chunks`);

    cluster.tick("a", 1); // heartbeat: c answers, a finds out c needs the snapshot
    const inFlight = () =>
      cluster.queue.filter(isChunk).length +
      cluster.queue.filter(
        (e) =>
          e.source === "c" &&
          (e.message.type === "install-snapshot-response" ||
            (e.message.type === "append-entries-response" && e.message.success)),
      ).length;
    const offsets: number[] = [];
    let peak = 0;
    for (let steps = 0; steps < 10_000; steps++) {
      peak = Math.max(peak, inFlight());
      assert.ok(inFlight() <= window, `${inFlight()} chunks unacknowledged`);
      const delivered = cluster.deliverOne();
      if (delivered === undefined) break;
      if (isChunk(delivered)) {
        const message = chunk(delivered);
        assert.equal(message.totalBytes, total);
        assert.ok(message.data.length <= chunkBytes);
        offsets.push(message.offset);
      }
    }
    assert.equal(peak, window, "the window is used");
    assert.deepEqual(
      offsets,
      Array.from({ length: expectedChunks }, (_, i) => i * chunkBytes),
      "each chunk once, in order",
    );
    assert.equal(a.stats.snapshotChunksSent, expectedChunks);
    assert.equal(cluster.node("c").stats.snapshotsInstalled, 1);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a lost chunk is resent from the acknowledged byte after a heartbeat round", () => {
    const chunkBytes = 16;
    const cluster = lagging({
      compactionRetainEntries: 0,
      snapshotChunkBytes: chunkBytes,
      snapshotChunksInflightMax: 4,
    });
    cluster.tick("a", 1);
    cluster.deliver((e) => !isChunk(e)); // the heartbeat exchange starts the transfer
    const lost = cluster.queue.find((e) => isChunk(e) && chunk(e).offset === chunkBytes);
    assert.ok(lost !== undefined);
    cluster.drop((e) => e === lost);
    cluster.deliver();
    const c = cluster.node("c");
    assert.equal(c.stats.snapshotsInstalled, 0, "stalled at the gap");

    const resent: number[] = [];
    for (let round = 0; round < 4 && c.stats.snapshotsInstalled === 0; round++) {
      cluster.tick("a", 1);
      cluster.deliver((e) => {
        if (isChunk(e) && !resent.includes(chunk(e).offset)) resent.push(chunk(e).offset);
        return true;
      });
    }
    assert.equal(resent[0], chunkBytes, "the resend starts at the byte c confirmed");
    assert.equal(c.stats.snapshotsInstalled, 1);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a lost install acknowledgement is repaired by the next heartbeat round", () => {
    const cluster = lagging({ compactionRetainEntries: 0, snapshotChunkBytes: 64 });
    cluster.tick("a", 1);
    const installAck = (e: Envelope) =>
      e.source === "c" && e.message.type === "append-entries-response" && e.message.success;
    cluster.deliver((e) => !installAck(e));
    const c = cluster.node("c");
    const a = cluster.node("a");
    assert.equal(c.stats.snapshotsInstalled, 1, "c installed");
    assert.equal(cluster.queue.filter(installAck).length, 1);
    cluster.drop(installAck); // its answer is lost: a still thinks it is sending
    assert.equal(a.progressOf("c")?.state, "snapshot");
    settle(cluster, "a", 3);
    assert.equal(a.progressOf("c")?.state, "replicate");
    assert.equal(c.stats.snapshotsInstalled, 1, "a repeated chunk does not install again");
    proposeAll(cluster, "a", ["next"]);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a follower whose whole append window was lost before the leader compacted still gets the snapshot", () => {
    const cluster = settled({
      compactionRetainEntries: 0,
      appendsInflightMax: 2,
      entriesPerAppendMax: 1,
    });
    cluster.partition(["a", "b"], ["c"]);
    for (const text of commands("x", 10)) {
      assert.ok(cluster.propose("a", text).ok); // one append per proposal: c's window fills
      cluster.deliver();
    }
    settle(cluster, "a");
    const a = cluster.node("a");
    assert.equal(a.progressOf("c")?.state, "replicate");
    assert.equal(a.progressOf("c")?.inflight.length, 2, "the window is full of lost appends");
    assert.ok(cluster.takeSnapshot("a").ok);
    assert.ok(a.progressOf("c")!.next - 1 < a.log.offset, "c needs compacted entries");
    cluster.heal();
    settle(cluster, "a", 10);
    assert.equal(a.stats.snapshotsSent, 1, "the leader sends its snapshot");
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a new leader restarts an unfinished transfer with its own snapshot", () => {
    const cluster = lagging({ compactionRetainEntries: 0, snapshotChunkBytes: 16 });
    assert.ok(cluster.takeSnapshot("b").ok);
    cluster.tick("a", 1);
    cluster.deliver((e) => !isChunk(e));
    for (let received = 0; received < 2; ) {
      const delivered = cluster.deliverOne();
      assert.ok(delivered !== undefined);
      if (isChunk(delivered)) received++;
    }
    cluster.drop(() => true);
    cluster.partition(["b", "c"], ["a"]);
    cluster.elect("b");
    assert.equal(cluster.node("b").role, "leader");
    settle(cluster, "b", 4);
    assert.equal(cluster.node("b").stats.snapshotsSent, 1);
    assert.equal(cluster.node("c").stats.snapshotsInstalled, 1);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("b"));
  });

  it("a restarted node serves the snapshot it stored once it leads", () => {
    const cluster = lagging({ compactionRetainEntries: 0, snapshotChunkBytes: 16 });
    cluster.partition(["a", "b"], ["c"]);
    assert.ok(cluster.takeSnapshot("b").ok);
    cluster.restart("b");
    cluster.flush("b");
    cluster.partition(["b", "c"], ["a"]);
    cluster.elect("b");
    assert.equal(cluster.node("b").role, "leader");
    settle(cluster, "b", 4);
    assert.equal(cluster.node("c").stats.snapshotsInstalled, 1);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("b"));
    assert.equal(cluster.machineText("c").length, 20);
  });

  it("a late, reordered acknowledgement does not make the leader resend acknowledged chunks", () => {
    const chunkBytes = 16;
    const cluster = lagging({
      compactionRetainEntries: 0,
      snapshotChunkBytes: chunkBytes,
      snapshotChunksInflightMax: 2,
    });
    const a = cluster.node("a");
    const total = cluster.disks.get("a")!.snapshot!.data.length;
    cluster.tick("a", 1);
    cluster.deliver((e) => !isChunk(e) && e.message.type !== "install-snapshot-response");
    let early: Envelope | undefined;
    const offsets: number[] = [];
    const deliverNext = () => {
      const delivered = cluster.deliverOne();
      assert.ok(delivered !== undefined);
      if (isChunk(delivered)) offsets.push(chunk(delivered).offset);
      if (delivered.message.type === "install-snapshot-response") early ??= delivered;
    };
    while ((a.progressOf("c")?.transfer?.acked ?? 0) < 4 * chunkBytes) deliverNext();
    assert.equal(
      early?.message.type === "install-snapshot-response" && early.message.received,
      chunkBytes,
    );
    cluster.queue.push(early!); // the first acknowledgement again, long after
    cluster.deliverOne((e) => e === early);
    const acked = a.progressOf("c")!.transfer!.acked;
    assert.ok(
      cluster.queue.every((e) => !isChunk(e) || chunk(e).offset >= acked),
      "nothing already acknowledged is resent",
    );
    while (cluster.node("c").stats.snapshotsInstalled === 0) deliverNext();
    assert.equal(offsets.length, Math.ceil(total / chunkBytes), "every chunk sent once");
    cluster.deliver();
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a follower that restarts mid-transfer gets the transfer again from byte 0", () => {
    const chunkBytes = 16;
    const cluster = lagging({
      compactionRetainEntries: 0,
      snapshotChunkBytes: chunkBytes,
      snapshotChunksInflightMax: 2,
    });
    cluster.tick("a", 1);
    cluster.deliver((e) => !isChunk(e));
    // c receives three chunks, a hears about them.
    for (let received = 0; received < 3; ) {
      const delivered = cluster.deliverOne();
      assert.ok(delivered !== undefined);
      if (isChunk(delivered)) received++;
    }
    cluster.deliver((e) => e.target === "a");
    assert.equal(cluster.node("a").progressOf("c")?.transfer?.acked, 3 * chunkBytes);
    cluster.restart("c");

    const offsets: number[] = [];
    const c = () => cluster.node("c");
    for (let round = 0; round < 5 && c().stats.snapshotsInstalled === 0; round++) {
      cluster.tick("a", 1);
      cluster.deliver((e) => {
        if (isChunk(e)) offsets.push(chunk(e).offset);
        return true;
      });
    }
    assert.ok(offsets.includes(0), `the transfer restarted: ${offsets}`);
    assert.equal(c().stats.snapshotsInstalled, 1);
    assert.deepEqual(cluster.machineText("c"), cluster.machineText("a"));
  });

  it("a stale or repeated install at or below the commit index is answered, not installed", () => {
    const cluster = lagging({ compactionRetainEntries: 0 });
    settle(cluster, "a", 3);
    const a = cluster.node("a");
    const c = cluster.node("c");
    assert.equal(c.stats.snapshotsInstalled, 1);
    const stored = cluster.disks.get("a")!.snapshot!;
    const resend = (metadata: SnapshotMetadata): InstallSnapshot => ({
      type: "install-snapshot",
      from: "a",
      term: a.term,
      metadata,
      totalBytes: stored.data.length,
      offset: 0,
      data: stored.data,
    });
    const before = { ...c.status(), lastIndex: c.log.lastIndex() };
    for (const metadata of [
      stored.metadata, // a duplicate of the installed snapshot
      { ...stored.metadata, index: (stored.metadata.index - 5) as LogIndex }, // an older one
    ]) {
      const ready = stepAndRead(c, resend(metadata));
      assert.equal(ready.snapshot, null, "nothing to restore");
      assert.equal(ready.messages.length, 1);
      const answer = ready.messages[0]!.message as AppendEntriesResponse;
      assert.equal(answer.type, "append-entries-response");
      assert.equal(answer.success, true);
      assert.equal(answer.matchIndex, c.log.committed);
    }
    assert.equal(c.stats.snapshotsInstalled, 1);
    assert.equal(c.log.committed, before.commit);
    assert.equal(c.log.lastIndex(), before.lastIndex);
  });

  it("a follower whose log holds the snapshot's (index, term) commits to it and keeps later entries", () => {
    const log = Array.from({ length: 10 }, (_, i) => entry(i + 1, 1, `e${i + 1}`));
    const follower = (term: number) =>
      new Harness(["a", "b", "c"], (id) =>
        id === "b"
          ? {
              config: plain,
              hardState: { term: term as Term, vote: null, commit: 5 as LogIndex },
              entries: log,
            }
          : { config: plain },
      );
    const install = (term: number): InstallSnapshot => {
      const data = encodeMachine(
        log.slice(0, 8).map((e) => ({ index: e.index, text: `e${e.index}` })),
      );
      return {
        type: "install-snapshot",
        from: "a",
        term: term as Term,
        metadata: {
          index: 8 as LogIndex,
          term: term as Term,
          config: { voters: ["a", "b", "c"], learners: [] },
        },
        totalBytes: data.length,
        offset: 0,
        data,
      };
    };

    const matchingCluster = follower(1);
    matchingCluster.flush("b"); // applies 1..5 from the recovered log
    const matching = matchingCluster.node("b");
    const ready = stepAndRead(matching, install(1));
    assert.equal(ready.snapshot, null, "no restore: the log already has it");
    assert.deepEqual(
      ready.committedEntries.map((e) => e.index),
      [6, 7, 8],
    );
    assert.equal(matching.log.committed, 8);
    assert.equal(matching.log.lastIndex(), 10, "entries 9 and 10 kept");
    assert.equal(matching.log.entry(10)?.term, 1);
    const answer = ready.messages[0]?.message as AppendEntriesResponse;
    assert.equal(answer.type, "append-entries-response");
    assert.equal(answer.success, true);
    assert.equal(answer.matchIndex, 8);

    // A snapshot whose last entry has another term replaces the log.
    const divergingCluster = follower(1);
    divergingCluster.flush("b");
    const diverging = divergingCluster.node("b");
    const replaced = stepAndRead(diverging, install(2));
    assert.equal(replaced.snapshot?.metadata.index, 8);
    assert.equal(diverging.log.lastIndex(), 8, "nothing after the snapshot is kept");
    assert.equal(diverging.log.offset, 8);
    assert.equal(diverging.log.committed, 8);
    assert.deepEqual(replaced.committedEntries, []);
  });

  it("a restart from the stored snapshot and later entries rebuilds the same log, commit and state", () => {
    const cluster = settled({ compactionRetainEntries: 2 });
    proposeAll(cluster, "a", commands("x", 10));
    assert.ok(cluster.takeSnapshot("b").ok);
    const snapshotIndex = cluster.node("b").snapshotMetadata!.index;
    proposeAll(cluster, "a", commands("y", 5));
    const before = cluster.node("b");
    const terms = (node: RaftNode) =>
      Array.from({ length: node.log.lastIndex() - snapshotIndex }, (_, i) =>
        node.log.term(snapshotIndex + 1 + i),
      );
    const expected = {
      lastIndex: before.log.lastIndex(),
      commit: before.log.committed,
      applied: before.applied,
      term: before.term,
      terms: terms(before),
      machine: cluster.machineText("b"),
    };
    assert.equal(expected.machine.length, 15);

    cluster.restart("b");
    const after = cluster.node("b");
    assert.equal(after.snapshotMetadata?.index, snapshotIndex);
    assert.equal(after.log.firstIndex(), snapshotIndex + 1);
    cluster.flush("b"); // re-applies the committed entries after the snapshot
    assert.deepEqual(
      {
        lastIndex: after.log.lastIndex(),
        commit: after.log.committed,
        applied: after.applied,
        term: after.term,
        terms: terms(after),
        machine: cluster.machineText("b"),
      },
      expected,
    );
    assert.deepEqual(
      cluster.applied.get("b")!.map((e) => e.index),
      Array.from({ length: expected.commit - snapshotIndex }, (_, i) => snapshotIndex + 1 + i),
      "only entries after the snapshot are applied again",
    );
    proposeAll(cluster, "a", ["z"]);
    assert.deepEqual(cluster.machineText("b"), cluster.machineText("a"));
  });

  it("snapshot metadata carries the configuration in force at its index", () => {
    const cluster = settled({ compactionRetainEntries: 0 });
    proposeAll(cluster, "a", ["x"]);
    const a = cluster.node("a");
    const change = a.changeMembership({ type: "add-learner", node: "d" });
    assert.ok(change.ok);
    cluster.flush("a");
    cluster.deliver();
    settle(cluster, "a");
    assert.equal(a.log.committed, change.value.index);
    const before = cluster.takeSnapshot("a", change.value.index - 1);
    assert.ok(before.ok);
    assert.deepEqual(before.value.config, { voters: ["a", "b", "c"], learners: [] });
    const at = cluster.takeSnapshot("a", change.value.index);
    assert.ok(at.ok);
    assert.deepEqual(at.value.config, { voters: ["a", "b", "c"], learners: ["d"] });

    // The config entry is compacted away: the configuration now comes from the snapshot,
    // also after a restart.
    assert.equal(a.log.lastConfigEntry(), undefined);
    assert.deepEqual(a.membership.learners, ["d"]);
    cluster.restart("a");
    assert.deepEqual(cluster.node("a").membership, { voters: ["a", "b", "c"], learners: ["d"] });
  });
});
