// Goal: messages from the network that are malformed or spoofed never reach the Raft core
// (whose assertions would crash the node), including snapshot chunks (a chunk past its
// total, metadata from a term after the sender's, a configuration that is not one) and
// config entries whose bytes do not decode. Method: table of hand-made messages.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRaftMessage } from "./validate.js";

const entry = (index: number, term: number) => ({
  index,
  term,
  kind: "command",
  data: new Uint8Array([1]),
});
const append = {
  type: "append-entries",
  from: "n1",
  term: 3,
  prevLogIndex: 4,
  prevLogTerm: 2,
  entries: [entry(5, 2), entry(6, 3)],
  leaderCommit: 4,
};

const config = { voters: ["n1", "n2", "n3"], learners: ["n4"] };
const configEntry = (index: number, term: number, data: Uint8Array) => ({
  index,
  term,
  kind: "config",
  data,
});
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const chunk = {
  type: "install-snapshot",
  from: "n1",
  term: 3,
  metadata: { index: 9, term: 2, config },
  totalBytes: 10,
  offset: 4,
  data: new Uint8Array(6),
};
const chunkResponse = {
  type: "install-snapshot-response",
  from: "n2",
  term: 3,
  index: 9,
  received: 4,
};

describe("parseRaftMessage", () => {
  it("accepts well-formed snapshot chunks, their responses and config entries", () => {
    assert.equal(parseRaftMessage(chunk, "n1"), chunk);
    const empty = { ...chunk, totalBytes: 0, offset: 0, data: new Uint8Array(0) };
    assert.equal(parseRaftMessage(empty, "n1"), empty, "an empty snapshot is one empty chunk");
    const atLeaderTerm = { ...chunk, metadata: { ...chunk.metadata, term: 3 } };
    assert.equal(parseRaftMessage(atLeaderTerm, "n1"), atLeaderTerm);
    assert.equal(parseRaftMessage(chunkResponse, "n2"), chunkResponse);
    const withConfig = {
      ...append,
      entries: [entry(5, 2), configEntry(6, 3, encode(config))],
    };
    assert.equal(parseRaftMessage(withConfig, "n1"), withConfig);
  });

  it("accepts well-formed messages from their sender", () => {
    assert.equal(parseRaftMessage(append, "n1"), append);
    assert.ok(parseRaftMessage({ type: "heartbeat", from: "n1", term: 3, commit: 4 }, "n1"));
    assert.ok(
      parseRaftMessage(
        {
          type: "request-vote",
          from: "n2",
          term: 4,
          preVote: true,
          lastLogIndex: 6,
          lastLogTerm: 3,
        },
        "n2",
      ),
    );
  });

  const bad: Array<[string, unknown, string]> = [
    ["a sender posing as another voter", append, "n2"],
    ["an unknown type", { type: "gossip", from: "n1", term: 1 }, "n1"],
    ["a term that is a string", { type: "heartbeat", from: "n1", term: "9", commit: 0 }, "n1"],
    ["a negative index", { ...append, prevLogIndex: -1 }, "n1"],
    ["entries that skip an index", { ...append, entries: [entry(5, 2), entry(7, 3)] }, "n1"],
    ["entries whose terms decrease", { ...append, entries: [entry(5, 3), entry(6, 2)] }, "n1"],
    ["an entry from a term after the leader's", { ...append, entries: [entry(5, 4)] }, "n1"],
    [
      "an entry without bytes",
      { ...append, entries: [{ index: 5, term: 2, kind: "command", data: "x" }] },
      "n1",
    ],
    ["no entries field", { ...append, entries: undefined }, "n1"],
    [
      "a read round that is not a count",
      { type: "heartbeat-response", from: "n1", term: 3, readRound: 1.5 },
      "n1",
    ],
    ["not an object", 7, "n1"],
    ["a snapshot chunk from another sender", chunk, "n2"],
    ["a chunk that ends past the snapshot's total", { ...chunk, offset: 5 }, "n1"],
    ["a chunk with a negative offset", { ...chunk, offset: -1 }, "n1"],
    ["a chunk whose total is not a count", { ...chunk, totalBytes: 10.5 }, "n1"],
    ["a chunk without bytes", { ...chunk, data: [0, 0, 0, 0, 0, 0] }, "n1"],
    [
      "snapshot metadata from a term after the sender's",
      { ...chunk, metadata: { ...chunk.metadata, term: 4 } },
      "n1",
    ],
    ["snapshot metadata at index 0", { ...chunk, metadata: { ...chunk.metadata, index: 0 } }, "n1"],
    ["a chunk without metadata", { ...chunk, metadata: undefined }, "n1"],
    [
      "a snapshot configuration with a voter twice",
      { ...chunk, metadata: { ...chunk.metadata, config: { voters: ["n1", "n1"], learners: [] } } },
      "n1",
    ],
    [
      "a snapshot configuration naming a node both voter and learner",
      {
        ...chunk,
        metadata: { ...chunk.metadata, config: { voters: ["n1", "n2"], learners: ["n2"] } },
      },
      "n1",
    ],
    [
      "a snapshot configuration without learners",
      { ...chunk, metadata: { ...chunk.metadata, config: { voters: ["n1"] } } },
      "n1",
    ],
    [
      "a snapshot configuration with a non-string id",
      { ...chunk, metadata: { ...chunk.metadata, config: { voters: [1], learners: [] } } },
      "n1",
    ],
    ["a chunk response from another sender", chunkResponse, "n3"],
    ["a chunk response with negative bytes", { ...chunkResponse, received: -1 }, "n2"],
    ["a chunk response whose index is a string", { ...chunkResponse, index: "9" }, "n2"],
    ["a chunk response without received", { ...chunkResponse, received: undefined }, "n2"],
    [
      "a config entry whose bytes are not JSON",
      { ...append, entries: [entry(5, 2), configEntry(6, 3, new Uint8Array([0xff, 0x7b]))] },
      "n1",
    ],
    [
      "a config entry whose JSON is not a configuration",
      { ...append, entries: [configEntry(5, 2, encode({ voters: "n1" }))] },
      "n1",
    ],
    [
      "a config entry with a duplicate member",
      { ...append, entries: [configEntry(5, 2, encode({ voters: ["n1"], learners: ["n1"] }))] },
      "n1",
    ],
    [
      "an entry of an unknown kind",
      { ...append, entries: [{ ...entry(5, 2), kind: "snapshot" }] },
      "n1",
    ],
  ];
  for (const [name, message, source] of bad) {
    it(`refuses ${name}`, () => assert.equal(parseRaftMessage(message, source), null));
  }
});
