// Checks the reliable broadcast core in isolation, with no simulator: feeding it inputs by hand and asserting on the exact writes, messages and events it returns, including recovery from its own files with and without a torn tail.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../../lib/prng.js";
import type { CoreOutput, NodeId } from "../sans-io.js";
import {
  type BroadcastEvent,
  type BroadcastMessage,
  ReliableBroadcast,
  type ReliableBroadcastConfig,
  reliableBroadcastDefaults,
} from "./reliable-broadcast.js";

type Output = CoreOutput<BroadcastMessage, BroadcastEvent>;
const payload = Uint8Array.from([1, 2, 3]);

/** A core plus the bytes it wrote, appended per file as a driver would (everything synced). */
function makeNode(
  options: {
    nodeId?: NodeId;
    peers?: NodeId[];
    files?: Map<string, Uint8Array>;
    nowMs?: number;
    config?: Partial<ReliableBroadcastConfig>;
  } = {},
) {
  const files = options.files ?? new Map<string, Uint8Array>();
  const core = new ReliableBroadcast(
    {
      nodeId: options.nodeId ?? "n1",
      peers: options.peers ?? ["n2", "n3"],
      prng: prngFromSeed(1),
      nowMs: options.nowMs ?? 0,
      recovered: new Map([...files].map(([file, bytes]) => [file, bytes.slice()])),
    },
    { ...reliableBroadcastDefaults, ...options.config },
  );
  const take = (): Output => {
    const output = core.takeOutput();
    for (const write of output.writes) {
      const before = files.get(write.file) ?? new Uint8Array(0);
      const after = new Uint8Array(before.length + write.data.length);
      after.set(before);
      after.set(write.data, before.length);
      files.set(write.file, after);
    }
    core.checkInvariants();
    return output;
  };
  return { core, files, take };
}

const targets = (output: Output) =>
  output.messages.map((message) => `${message.target}:${message.message.type}`);
const eventTypes = (output: Output) => output.events.map((event) => event.type);

describe("ReliableBroadcast", () => {
  it("broadcast persists with sync, then reports accepted and delivered and sends Data to every peer", () => {
    const { core, take } = makeNode();
    assert.deepEqual(core.broadcast("n1/0", payload), { ok: true });
    const output = take();
    assert.equal(output.writes.length, 1);
    assert.equal(output.writes[0]!.file, "broadcast-0.wal");
    assert.equal(output.writes[0]!.sync, true);
    assert.deepEqual(targets(output), ["n2:Data", "n3:Data"]);
    assert.deepEqual(output.messages[0]!.message, {
      type: "Data",
      id: "n1/0",
      origin: "n1",
      payload,
    });
    assert.deepEqual(output.events, [
      { type: "accepted", id: "n1/0" },
      { type: "delivered", id: "n1/0", origin: "n1", payload },
    ]);
    assert.equal(core.pendingCount, 1);
  });

  it("refuses duplicate ids, bad ids, oversized payloads, and more pending than its limit", () => {
    const { core, take } = makeNode({ config: { pendingMax: 1, payloadBytesMax: 4 } });
    assert.deepEqual(core.broadcast("", payload), {
      ok: false,
      error: { code: "InvalidId", idBytesMax: 256 },
    });
    assert.deepEqual(core.broadcast("a", new Uint8Array(5)), {
      ok: false,
      error: { code: "PayloadTooLarge", sizeBytes: 5, sizeBytesMax: 4 },
    });
    assert.deepEqual(core.broadcast("a", payload), { ok: true });
    assert.deepEqual(core.broadcast("a", payload), {
      ok: false,
      error: { code: "DuplicateId", id: "a" },
    });
    assert.deepEqual(core.broadcast("b", payload), {
      ok: false,
      error: { code: "Overloaded", pending: 1, pendingMax: 1 },
    });
    assert.equal(take().writes.length, 1, "refused broadcasts write nothing");
  });

  it("a receiver persists with sync, delivers once, and acks every copy", () => {
    const { core, take } = makeNode({ nodeId: "n2", peers: ["n1", "n3"] });
    const data: BroadcastMessage = { type: "Data", id: "n1/0", origin: "n1", payload };
    core.receive("n1", data);
    const first = take();
    assert.deepEqual(
      first.writes.map((write) => [write.file, write.sync]),
      [["broadcast-0.wal", true]],
    );
    assert.deepEqual(eventTypes(first), ["delivered"]);
    assert.deepEqual(first.messages, [{ target: "n1", message: { type: "Ack", id: "n1/0" } }]);

    core.receive("n1", data);
    const again = take();
    assert.deepEqual(again.writes, []);
    assert.deepEqual(again.events, []);
    assert.deepEqual(again.messages, [{ target: "n1", message: { type: "Ack", id: "n1/0" } }]);
    assert.equal(core.stats.duplicateData, 1);
  });

  it("retransmits only to peers that have not acked, every retransmitIntervalMs, until all ack", () => {
    const { core, take } = makeNode({ config: { retransmitIntervalMs: 100 } });
    core.broadcast("n1/0", payload);
    take();
    core.receive("n2", { type: "Ack", id: "n1/0" });
    assert.deepEqual(take().messages, []);
    core.tick(50);
    assert.deepEqual(targets(take()), [], "not yet due");
    core.tick(100);
    assert.deepEqual(targets(take()), ["n3:Data"]);
    core.tick(150);
    assert.deepEqual(targets(take()), []);
    core.tick(200);
    assert.deepEqual(targets(take()), ["n3:Data"]);
    core.receive("n3", { type: "Ack", id: "n1/0" });
    const done = take();
    assert.deepEqual(eventTypes(done), ["completed"]);
    assert.deepEqual(
      done.writes.map((write) => write.sync),
      [false],
    );
    core.receive("n3", { type: "Ack", id: "n1/0" });
    assert.equal(core.stats.staleAcks, 1);
    core.tick(1_000);
    assert.deepEqual(targets(take()), []);
    assert.equal(core.pendingCount, 0);
  });

  it("the no-retransmit defect (test-only) never resends", () => {
    const { core, take } = makeNode({ config: { defect: "no-retransmit" } });
    core.broadcast("n1/0", payload);
    take();
    core.tick(10_000);
    assert.deepEqual(take().messages, []);
  });

  it("the no-sync-before-ack defect (test-only) acks a delivery that is not synced", () => {
    const { core, take } = makeNode({
      nodeId: "n2",
      peers: ["n1"],
      config: { defect: "no-sync-before-ack" },
    });
    core.receive("n1", { type: "Data", id: "n1/0", origin: "n1", payload });
    const output = take();
    assert.deepEqual(
      output.writes.map((write) => write.sync),
      [false],
    );
    assert.deepEqual(targets(output), ["n1:Ack"]);
  });

  it("counts and ignores input from non-peers, malformed messages, and Data not from its origin", () => {
    const { core, take } = makeNode();
    core.receive("n9", { type: "Ack", id: "x" });
    core.receive("n2", { type: "Data", id: "x", origin: "n3", payload });
    core.receive("n2", { type: "Data", id: "", origin: "n2", payload } as BroadcastMessage);
    core.receive("n2", { type: "Nope" } as unknown as BroadcastMessage);
    core.receive("n2", null as unknown as BroadcastMessage);
    core.receive("n2", {
      type: "Data",
      id: "y",
      origin: "n2",
      payload: "text",
    } as unknown as BroadcastMessage);
    const output = take();
    assert.deepEqual([output.writes, output.messages, output.events], [[], [], []]);
    assert.equal(core.stats.badMessages, 6);
  });

  it("after a restart: no redelivery, pending broadcasts resent to every peer, a new file generation", () => {
    const origin = makeNode();
    origin.core.broadcast("n1/0", payload);
    origin.core.broadcast("n1/1", payload);
    origin.take();
    origin.core.receive("n2", { type: "Data", id: "n2/0", origin: "n2", payload });
    origin.core.receive("n2", { type: "Ack", id: "n1/1" });
    origin.core.receive("n3", { type: "Ack", id: "n1/1" });
    origin.take();

    const restarted = makeNode({ files: origin.files, nowMs: 500 });
    const recovery = restarted.take();
    assert.deepEqual(recovery.events, [
      { type: "recovered", deliveredCount: 3, pendingCount: 1, damagedBytes: 0, files: 1 },
    ]);
    restarted.core.receive("n2", { type: "Data", id: "n2/0", origin: "n2", payload });
    const redelivery = restarted.take();
    assert.deepEqual(redelivery.events, [], "already delivered before the crash");
    assert.deepEqual(targets(redelivery), ["n2:Ack"]);
    assert.deepEqual(restarted.core.broadcast("n1/0", payload), {
      ok: false,
      error: { code: "DuplicateId", id: "n1/0" },
    });
    restarted.core.tick(500);
    const resend = restarted.take();
    assert.deepEqual(targets(resend), ["n2:Data", "n3:Data"]);
    assert.ok(
      resend.messages.every(
        (message) => message.message.type === "Data" && message.message.id === "n1/0",
      ),
    );
    restarted.core.broadcast("n1/2", payload);
    assert.deepEqual(
      restarted.take().writes.map((write) => write.file),
      ["broadcast-1.wal"],
    );
  });

  it("ignores a torn tail on recovery, and never appends after it", () => {
    const receiver = makeNode({ nodeId: "n2", peers: ["n1"] });
    receiver.core.receive("n1", { type: "Data", id: "n1/0", origin: "n1", payload });
    receiver.core.receive("n1", { type: "Data", id: "n1/1", origin: "n1", payload });
    receiver.take();
    const whole = receiver.files.get("broadcast-0.wal")!;
    const firstRecordBytes = whole.length / 2;
    for (let cut = firstRecordBytes + 1; cut < whole.length; cut++) {
      const files = new Map([["broadcast-0.wal", whole.subarray(0, cut)]]);
      const restarted = makeNode({ nodeId: "n2", peers: ["n1"], files });
      assert.deepEqual(restarted.take().events, [
        {
          type: "recovered",
          deliveredCount: 1,
          pendingCount: 0,
          damagedBytes: cut - firstRecordBytes,
          files: 1,
        },
      ]);
      assert.equal(restarted.core.hasDelivered("n1/0"), true);
      assert.equal(restarted.core.hasDelivered("n1/1"), false, "the torn record was never acked");
      restarted.core.receive("n1", { type: "Data", id: "n1/1", origin: "n1", payload });
      const output = restarted.take();
      assert.deepEqual(eventTypes(output), ["delivered"]);
      assert.deepEqual(
        output.writes.map((write) => write.file),
        ["broadcast-1.wal"],
      );
      const again = makeNode({ nodeId: "n2", peers: ["n1"], files: restarted.files });
      assert.equal(
        again.core.hasDelivered("n1/1"),
        true,
        "the new generation is readable after the damage",
      );
    }
  });

  it("a single-node cluster completes its own broadcasts at once", () => {
    const { core, take } = makeNode({ peers: [] });
    core.broadcast("n1/0", payload);
    assert.deepEqual(eventTypes(take()), ["accepted", "delivered", "completed"]);
    assert.equal(core.pendingCount, 0);
  });
});
