// Checks the Raft stand-in storage and the ProtocolCore adapter: records round-trip, a torn tail is ignored, and a restarted core recovers its term, vote and log from the files it wrote (one synced write per Ready), opening a new file generation.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../../lib/prng.js";
import { entry } from "./harness.js";
import { RaftCore } from "./raft-core.js";
import { decodeRaftRecord, encodeRaftRecord, recoverRaftState } from "./storage.js";
import type { LogIndex, Term } from "./types.js";

describe("raft: storage and adapter", () => {
  it("a record round-trips, and a torn last record is ignored on recovery", () => {
    const hardState = { term: 3 as Term, vote: "n2", commit: 1 as LogIndex };
    const first = encodeRaftRecord({ checkpoint: true, hardState, entries: [entry(1, 1, "x")] });
    const body = first.subarray(8);
    assert.deepEqual(decodeRaftRecord(body)?.hardState, hardState);
    const second = encodeRaftRecord({
      checkpoint: false,
      hardState: { ...hardState, term: 4 as Term },
      entries: [entry(2, 4, "y")],
    });
    const torn = new Uint8Array(first.length + second.length - 3);
    torn.set(first);
    torn.set(second.subarray(0, second.length - 3), first.length);
    const recovered = recoverRaftState(new Map([["raft-1", torn]]));
    assert.equal(recovered.hardState?.term, 3);
    assert.equal(recovered.entries.length, 1);
    assert.equal(recovered.nextFile, "raft-2");
  });

  it("a restarted core keeps its vote and log (all writes synced, one per Ready)", () => {
    const files = new Map<string, Uint8Array[]>();
    const context = (recovered: Map<string, Uint8Array>) => ({
      nodeId: "n1",
      peers: ["n2", "n3"],
      prng: prngFromSeed(1),
      nowMs: 0,
      recovered,
    });
    const core = new RaftCore(context(new Map()), { config: { preVote: false } });
    core.receive("n2", {
      type: "request-vote",
      from: "n2",
      term: 5 as Term,
      preVote: false,
      lastLogIndex: 0 as LogIndex,
      lastLogTerm: 0 as Term,
    });
    core.receive("n2", {
      type: "append-entries",
      from: "n2",
      term: 5 as Term,
      prevLogIndex: 0 as LogIndex,
      prevLogTerm: 0 as Term,
      entries: [entry(1, 5, "a"), entry(2, 5, "b")],
      leaderCommit: 1 as LogIndex,
    });
    core.receive("n3", { type: "heartbeat", from: "n2", term: 9 as Term, commit: 0 as LogIndex });
    assert.equal(core.invalidMessages, 1, "a message whose sender is not its source is dropped");
    const output = core.takeOutput();
    assert.ok(output.writes.every((write) => write.sync));
    assert.equal(output.events.length, 1);
    for (const write of output.writes)
      files.set(write.file, [...(files.get(write.file) ?? []), write.data]);
    const concatenated = new Map(
      [...files].map(([file, parts]) => [file, Buffer.concat(parts) as Uint8Array]),
    );
    const restarted = new RaftCore(context(concatenated), { config: { preVote: false } });
    const status = restarted.node.status();
    assert.equal(status.term, 5);
    assert.equal(status.vote, "n2");
    assert.equal(status.lastIndex, 2);
    const replay = restarted.takeOutput();
    assert.equal(replay.writes[0]?.file, "raft-2");
    assert.equal(replay.events.length, 1, "committed commands are applied again after restart");
  });
});
