// Goal: messages from the network that are malformed or spoofed never reach the Raft core
// (whose assertions would crash the node). Method: table of hand-made messages.
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

describe("parseRaftMessage", () => {
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
  ];
  for (const [name, message, source] of bad) {
    it(`refuses ${name}`, () => assert.equal(parseRaftMessage(message, source), null));
  }
});
