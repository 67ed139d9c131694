// Goal: one frame per destination carries every group's Raft messages, heartbeats as bare
// tuples, and a peer's malformed parts are dropped and counted without losing the good ones.
// Method: round trip through msgpack (what the transport does) and hand-made bad frames.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pack, unpack } from "msgpackr";
import { asIndex, asTerm, type RaftMessage } from "../../core/raft/types.js";
import { decodeBatchFrame, encodeBatchFrames, type GroupMessage } from "./batch-wire.js";

const heartbeat = (group: number): GroupMessage => ({
  group,
  message: { type: "heartbeat", from: "n1", term: asTerm(3), commit: asIndex(7), readRound: 2 },
});
const append: GroupMessage = {
  group: 9,
  message: {
    type: "append-entries",
    from: "n1",
    term: asTerm(3),
    prevLogIndex: asIndex(7),
    prevLogTerm: asTerm(3),
    entries: [
      { index: asIndex(8), term: asTerm(3), kind: "command", data: new Uint8Array([1, 2]) },
    ],
    leaderCommit: asIndex(7),
  },
};

function bytesAsArray(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (typeof value === "object" && value !== null && (value as { type?: string }).type === "Buffer")
    return (value as { data: number[] }).data;
  return value;
}

function decodeAll(payload: unknown, source = "n1") {
  const delivered: [number, RaftMessage][] = [];
  const rejected = decodeBatchFrame(unpack(pack(payload)), source, (group, message) =>
    delivered.push([group, message]),
  );
  return { delivered, rejected };
}

describe("raft batch frames", () => {
  it("carry many groups' messages in one frame, heartbeats coalesced as tuples", () => {
    const messages = [heartbeat(1), heartbeat(2), append, heartbeat(3)];
    const frames = encodeBatchFrames(messages);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.b?.length, 3);
    assert.deepEqual(frames[0]?.b?.[0], [1, 3, 7, 2]);
    const { delivered, rejected } = decodeAll(frames[0]);
    assert.equal(rejected, 0);
    assert.deepEqual(
      delivered.map(([group, message]) => [group, message.type]),
      [
        [9, "append-entries"],
        [1, "heartbeat"],
        [2, "heartbeat"],
        [3, "heartbeat"],
      ],
    );
    // msgpack hands bytes back as a Buffer: compare contents, not the class.
    const plain = (message: RaftMessage) => JSON.parse(JSON.stringify(message, bytesAsArray));
    assert.deepEqual(plain(delivered[0]![1]), plain(append.message));
  });

  it("split by size: a frame never grows past the limit because of another message", () => {
    const big = (group: number): GroupMessage => ({
      group,
      message: {
        ...(append.message as Extract<RaftMessage, { type: "append-entries" }>),
        entries: [
          { index: asIndex(8), term: asTerm(3), kind: "command", data: new Uint8Array(1_500_000) },
        ],
      },
    });
    assert.equal(encodeBatchFrames([big(1), big(2), heartbeat(1)]).length, 2);
  });

  it("drop malformed parts, spoofed senders and bad group ids, keep the rest", () => {
    const { delivered, rejected } = decodeAll({
      m: [[9, append.message], [-1, append.message], "junk", [4, { type: "nope" }]],
      b: [
        [1, 3, 7, 2],
        [2, "three", 7, 0],
      ],
      r: [[1, 3, 0]],
    });
    assert.deepEqual(
      delivered.map(([group, message]) => [group, message.type]),
      [
        [9, "append-entries"],
        [1, "heartbeat"],
        [1, "heartbeat-response"],
      ],
    );
    assert.equal(rejected, 4);
    assert.equal(decodeAll({ m: [[9, append.message]] }, "n2").rejected, 1); // from n1, said n2
    assert.equal(decodeAll("not a frame").rejected, 1);
  });
});
