// Goal: the runtime keeps memory and disk bounded and loses nothing across restarts — a
// group snapshots every N applied entries, the WAL deletes the segments behind the
// snapshot, the in-memory log keeps only the retained tail, and a restart from the snapshot
// file plus the WAL's tail gives back the same state; a missing snapshot file is refused
// with a clear error. Method: single-voter groups on real transports, real WALs and real
// snapshot files in a temp dir (small WAL segments so deletion happens).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { HybridLogicalClock } from "../../clocks/hlc.js";
import { isBrigadeError } from "../../lib/errors.js";
import { silentLogger, waitFor } from "../../testkit/index.js";
import { TcpTransport } from "../../transport/tcp-transport.js";
import type { GroupStateMachine } from "./raft-group.js";
import { RaftHost } from "./raft-host.js";

/** Appends each command's text to a list; the snapshot is the list as JSON. */
class ListMachine implements GroupStateMachine {
  items: string[] = [];
  apply(_index: number, data: Uint8Array): unknown {
    this.items.push(Buffer.from(data).toString("utf8"));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(Buffer.from(data).toString("utf8")) as string[];
  }
}

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

async function startHost(dataDir: string, nodeId = "n1") {
  const transport = new TcpTransport({
    nodeId,
    clusterId: "test",
    listen: { host: "127.0.0.1", port: 0 },
    clock: new HybridLogicalClock({ physicalNowMs: Date.now, maxOffsetMs: 500 }),
    logger: silentLogger,
    config: {},
  });
  await transport.start();
  const host = new RaftHost({
    nodeId,
    transport,
    dataDir,
    logger: silentLogger,
    tickMs: 10,
    snapshotEntries: 40,
    wal: { segmentBytesMax: 4096, recordBytesMax: 2048, batchBytesMax: 4096 },
  });
  await host.start();
  const stop = async () => {
    await host.stop();
    await transport.close();
  };
  return { host, transport, stop };
}

describe("raft host (runtime)", () => {
  it("snapshots, deletes WAL segments behind them, and restarts from snapshot + tail", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "brigade-host-"));
    directories.push(dataDir);
    const first = await startHost(dataDir);
    const machine = new ListMachine();
    const group = await first.host.addGroup(7, ["n1"], machine);
    await waitFor("a leader", () => group.node.role === "leader");
    for (let index = 0; index < 300; index++) {
      await group.propose(Buffer.from(`item-${index}`), 5_000);
    }
    const status = group.status();
    assert.ok(status.snapshotsTaken >= 4, `${status.snapshotsTaken} snapshots`);
    assert.ok(status.snapshotIndex >= 200, `snapshot at ${status.snapshotIndex}`);
    // In memory: the retained tail (256) plus what came after the snapshot (a gap of 40 to
    // 59 entries: the host jitters it), not all 300+.
    assert.ok(status.lastIndex - status.firstIndex + 1 <= 256 + 60, "log not compacted");
    assert.ok(first.host.stats.walSegmentsDeleted > 0, "no WAL segment was deleted");
    assert.equal(first.host.walSegments()[0]?.firstSequence !== 1, true);
    // One file once the last background write is recorded (older ones are deleted).
    await waitFor("one snapshot file", () => {
      const files = readdirSync(first.host.snapshotDirectory);
      return files.length === 1 && files[0]!.endsWith(".snap");
    });
    const before = [...machine.items];
    await first.stop();

    const second = await startHost(dataDir);
    const restored = new ListMachine();
    const again = await second.host.addGroup(7, ["n1"], restored);
    await waitFor(
      "the restarted group to apply everything",
      () => again.appliedIndex >= status.applied,
    );
    assert.deepEqual(restored.items, before);
    await waitFor("a leader", () => again.node.role === "leader");
    await again.propose(Buffer.from("after-restart"), 5_000);
    assert.equal(restored.items.at(-1), "after-restart");
    assert.equal(restored.items.length, before.length + 1);
    await second.stop();
  });

  it("a quiet group does not hold the WAL back: it snapshots or re-writes its marker", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "brigade-host-"));
    directories.push(dataDir);
    const first = await startHost(dataDir);
    const quietMachine = new ListMachine();
    const quiet = await first.host.addGroup(1, ["n1"], quietMachine);
    const busy = await first.host.addGroup(2, ["n1"], new ListMachine());
    await waitFor("leaders", () => quiet.node.role === "leader" && busy.node.role === "leader");
    // A few entries in the quiet group, far fewer than snapshotEntries (40): its records sit
    // in the first segment.
    for (let index = 0; index < 3; index++) await quiet.propose(Buffer.from(`q${index}`), 5_000);
    for (let index = 0; index < 1_500; index++)
      await busy.propose(Buffer.from(`busy-item-${index}`), 5_000);
    const sealed = first.host.walSegments().filter((segment) => !segment.active);
    assert.ok(sealed.length <= 6, `${sealed.length} sealed WAL segments kept`);
    assert.ok(quiet.status().snapshotsTaken >= 1, "the quiet group took a snapshot");
    await first.stop();

    const second = await startHost(dataDir);
    const restored = new ListMachine();
    const again = await second.host.addGroup(1, ["n1"], restored);
    await second.host.addGroup(2, ["n1"], new ListMachine());
    await waitFor("the quiet group restored", () => restored.items.length === 3);
    assert.deepEqual(restored.items, quietMachine.items);
    assert.equal(again.appliedIndex >= 3, true);
    await second.stop();
  });

  it("appliedThrough resolves once the replica applied an index, or times out", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "brigade-host-"));
    directories.push(dataDir);
    const host = await startHost(dataDir);
    const group = await host.host.addGroup(5, ["n1"], new ListMachine());
    await waitFor("a leader", () => group.node.role === "leader");
    await group.propose(Buffer.from("a"), 5_000);
    await group.appliedThrough(group.appliedIndex, 100);
    const next = group.appliedThrough(group.appliedIndex + 1, 5_000);
    await group.propose(Buffer.from("b"), 5_000);
    await next;
    await assert.rejects(group.appliedThrough(group.appliedIndex + 100, 50), (error: unknown) =>
      isBrigadeError(error, "DeadlineExceeded"),
    );
    await host.stop();
  });

  it("refuses to start a group whose snapshot file is missing", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "brigade-host-"));
    directories.push(dataDir);
    const first = await startHost(dataDir);
    const group = await first.host.addGroup(3, ["n1"], new ListMachine());
    await waitFor("a leader", () => group.node.role === "leader");
    for (let index = 0; index < 80; index++) await group.propose(Buffer.from(`x${index}`), 5_000);
    await waitFor("a snapshot", () => group.status().snapshotsTaken >= 1);
    const snapshotDirectory = first.host.snapshotDirectory;
    await first.stop();
    for (const name of readdirSync(snapshotDirectory)) rmSync(path.join(snapshotDirectory, name));

    const second = await startHost(dataDir);
    await assert.rejects(
      second.host.addGroup(3, ["n1"], new ListMachine()),
      (error) =>
        isBrigadeError(error) &&
        error.code === "DataDirMismatch" &&
        /snapshot .* is missing/.test(error.message),
    );
    await second.stop();
  });

  it("runs many groups over three nodes: one fsync and one frame per destination serve them all", {
    timeout: 60_000,
  }, async () => {
    const ids = ["n1", "n2", "n3"];
    const nodes: Awaited<ReturnType<typeof startHost>>[] = [];
    for (const id of ids) {
      const dataDir = mkdtempSync(path.join(tmpdir(), "brigade-host-"));
      directories.push(dataDir);
      nodes.push(await startHost(dataDir, id));
    }
    try {
      await runGroups(nodes, ids);
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
    }
  });
});

async function runGroups(nodes: Awaited<ReturnType<typeof startHost>>[], ids: string[]) {
  nodes[0]!.transport.connect(nodes[1]!.transport.advertise);
  nodes[0]!.transport.connect(nodes[2]!.transport.advertise);
  nodes[1]!.transport.connect(nodes[2]!.transport.advertise);
  await waitFor("a full mesh", () =>
    nodes.every((node) => node.transport.connectedPeerIds().length === 2),
  );
  const groupIds = [1, 2, 3, 4, 5, 6, 7, 8];
  const groupsPerFsync: number[] = [];
  nodes[0]!.host.onPersist = (_ms, _entries, groups) => groupsPerFsync.push(groups);
  const machines = new Map<string, ListMachine>();
  for (const [position, node] of nodes.entries()) {
    for (const groupId of groupIds) {
      const machine = new ListMachine();
      machines.set(`${ids[position]}/${groupId}`, machine);
      await node.host.addGroup(groupId, ids, machine);
    }
  }
  const leaderOf = (groupId: number) =>
    nodes.map((node) => node.host.group(groupId)!).find((group) => group.node.role === "leader");
  await waitFor("a leader in every group", () => groupIds.every((groupId) => leaderOf(groupId)));
  // Proposals to every group at once, several rounds.
  for (let round = 0; round < 10; round++) {
    await Promise.all(
      groupIds.map((groupId) =>
        leaderOf(groupId)!.propose(Buffer.from(`g${groupId}-${round}`), 5_000),
      ),
    );
  }
  // Every replica of every group applies the same list.
  await waitFor("every replica to apply every group's commands", () =>
    groupIds.every((groupId) =>
      ids.every((id) => machines.get(`${id}/${groupId}`)!.items.length === 10),
    ),
  );
  for (const groupId of groupIds) {
    const expected = Array.from({ length: 10 }, (_, round) => `g${groupId}-${round}`);
    for (const id of ids) assert.deepEqual(machines.get(`${id}/${groupId}`)!.items, expected);
  }
  // Batching across groups: some fsyncs carried several groups, and frames carried several
  // messages (heartbeats of 8 groups to one peer share a frame).
  assert.ok(Math.max(...groupsPerFsync) > 1, `groups per fsync: ${groupsPerFsync.join(",")}`);
  const stats = nodes[0]!.host.stats;
  assert.ok(
    stats.messagesSent >= 1.5 * stats.framesSent,
    `${stats.messagesSent} messages in ${stats.framesSent} frames`,
  );
}
