// Checks the Raft stand-in storage and the ProtocolCore adapter: records round-trip (version 2 with snapshot metadata, image and config entries; version-1 records written before snapshots still decode), a torn tail is ignored, recovery applies snapshot records (an own snapshot keeps the entries after it, an installed one whose term differs at its index drops them), and a restarted core recovers its term, vote and log from the files it wrote (one synced write per Ready), opening a new file generation.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../../lib/prng.js";
import { encodeRecord } from "../broadcast/record-log.js";
import { entry } from "./harness.js";
import { encodeClusterConfig } from "./membership.js";
import { RaftCore } from "./raft-core.js";
import {
  decodeRaftRecord,
  encodeRaftRecord,
  RAFT_RECORD_BYTES_MAX,
  type RaftRecord,
  recoverRaftState,
} from "./storage.js";
import type { Entry, LogIndex, SnapshotMetadata, Term } from "./types.js";

const config = { voters: ["n1", "n2", "n3"], learners: ["n4"] };
const configEntry = (index: number, term: number): Entry => ({
  index: index as LogIndex,
  term: term as Term,
  kind: "config",
  data: encodeClusterConfig(config),
});
const metadata = (index: number, term: number): SnapshotMetadata => ({
  index: index as LogIndex,
  term: term as Term,
  config,
});
const image = (text: string) => new TextEncoder().encode(text);
const log = (from: number, to: number, term: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term, `e${from + i}`));

/** One file holding `records`, in order. */
function file(...records: RaftRecord[]): Map<string, Uint8Array> {
  const frames = records.map(encodeRaftRecord);
  return new Map([["raft-1", new Uint8Array(Buffer.concat(frames))]]);
}
const checkpoint = (entries: readonly Entry[]): RaftRecord => ({
  checkpoint: true,
  hardState: { term: 2 as Term, vote: "n1", commit: 6 as LogIndex },
  entries,
});
const snapshotRecord = (index: number, term: number, data: string): RaftRecord => ({
  checkpoint: false,
  snapshot: metadata(index, term),
  snapshotData: image(data),
  hardState: null,
  entries: [],
});
const indexes = (entries: readonly Entry[]) => entries.map((e) => `${e.index}@${e.term}`);

/**
 * Two records written by the version-1 encoder (before snapshots), framed: a checkpoint
 * {term 3, vote n2, commit 1, entries 1@1 noop, 2@3 "x"} and a delta {entry 3@3 "y"}.
 */
const version1 = new Uint8Array(
  Buffer.from(
    "3700000057cf97790101010100000033020000006e320100000031010000003201000000310100000031" +
      "000000000001000000320100000033010100000078" +
      "18000000d99021b2010000010000003101000000330100000033010100000079",
    "hex",
  ),
);

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

  it("a version-2 record round-trips a snapshot's metadata and image, and config entries", () => {
    const record: RaftRecord = {
      checkpoint: false,
      snapshot: metadata(7, 2),
      snapshotData: image("state machine image"),
      hardState: { term: 3 as Term, vote: null, commit: 7 as LogIndex },
      entries: [configEntry(8, 3), entry(9, 3, "z"), entry(10, 3)],
    };
    const body = encodeRaftRecord(record).subarray(8);
    assert.equal(body[0], 2, "version 2");
    assert.deepEqual(decodeRaftRecord(body), record);
    const bare = { checkpoint: true, hardState: null, entries: [entry(1, 1)] };
    assert.deepEqual(decodeRaftRecord(encodeRaftRecord(bare).subarray(8)), {
      ...bare,
      snapshot: null,
      snapshotData: null,
    });
    // A snapshot whose configuration does not decode makes the record malformed.
    const broken = encodeRaftRecord({
      ...record,
      snapshot: { ...metadata(7, 2), config: { voters: ["n1", "n1"], learners: [] } },
    }).subarray(8);
    assert.equal(decodeRaftRecord(broken), null);
  });

  it("version-1 records (written before snapshots) still decode and recover", () => {
    const recovered = recoverRaftState(new Map([["raft-4", version1]]));
    assert.deepEqual(recovered.hardState, { term: 3, vote: "n2", commit: 1 });
    assert.equal(recovered.snapshot, undefined);
    assert.deepEqual(
      recovered.entries.map((e) => [e.index, e.term, e.kind, new TextDecoder().decode(e.data)]),
      [
        [1, 1, "noop", ""],
        [2, 3, "command", "x"],
        [3, 3, "command", "y"],
      ],
    );
    assert.equal(recovered.nextFile, "raft-5");
    const first = decodeRaftRecord(version1.subarray(8, 63));
    assert.equal(first?.checkpoint, true);
    assert.equal(first?.snapshot, null);
  });

  it("recovery: an own snapshot keeps the stored entries after it", () => {
    const recovered = recoverRaftState(
      file(checkpoint(log(1, 10, 1)), snapshotRecord(6, 1, "image@6"), {
        checkpoint: false,
        hardState: null,
        entries: log(11, 11, 2),
      }),
    );
    assert.deepEqual(recovered.snapshot, { metadata: metadata(6, 1), data: image("image@6") });
    assert.deepEqual(indexes(recovered.entries), indexes(log(7, 10, 1).concat(log(11, 11, 2))));
    assert.equal(recovered.hardState?.commit, 6);
  });

  it("recovery: an installed snapshot whose term differs at its index drops the stored log", () => {
    const recovered = recoverRaftState(
      file(checkpoint(log(1, 10, 1)), snapshotRecord(6, 2, "leader's image"), {
        checkpoint: false,
        hardState: { term: 2 as Term, vote: null, commit: 6 as LogIndex },
        entries: log(7, 8, 2),
      }),
    );
    assert.equal(recovered.snapshot?.metadata.term, 2);
    assert.deepEqual(recovered.snapshot?.data, image("leader's image"));
    assert.deepEqual(indexes(recovered.entries), indexes(log(7, 8, 2)), "1@7..10 are gone");
  });

  it("recovery: a snapshot past the stored log, and entries written with it, in one record", () => {
    const beyond = recoverRaftState(file(checkpoint(log(1, 3, 1)), snapshotRecord(9, 2, "far")));
    assert.equal(beyond.snapshot?.metadata.index, 9);
    assert.deepEqual(beyond.entries, []);
    // A Ready can carry entries the snapshot covers and entries after it: keep the latter.
    const mixed = recoverRaftState(
      file(checkpoint(log(1, 3, 1)), {
        checkpoint: false,
        snapshot: metadata(5, 2),
        snapshotData: image("s"),
        hardState: null,
        entries: log(4, 7, 2),
      }),
    );
    assert.deepEqual(indexes(mixed.entries), indexes(log(6, 7, 2)));
  });

  it("recovery: the latest snapshot wins, and a torn snapshot record leaves the earlier one", () => {
    const records = [
      checkpoint(log(1, 10, 1)),
      snapshotRecord(4, 1, "old"),
      snapshotRecord(8, 1, "new"),
    ];
    const latest = recoverRaftState(file(...records));
    assert.deepEqual(latest.snapshot?.data, image("new"));
    assert.deepEqual(indexes(latest.entries), indexes(log(9, 10, 1)));

    const whole = file(...records).get("raft-1")!;
    const torn = new Map([["raft-1", whole.subarray(0, whole.length - 2)]]);
    const earlier = recoverRaftState(torn);
    assert.deepEqual(earlier.snapshot?.data, image("old"));
    assert.deepEqual(indexes(earlier.entries), indexes(log(5, 10, 1)));
    // A newer generation whose checkpoint carries the snapshot is preferred.
    const generations = new Map([
      ...torn,
      [
        "raft-2",
        encodeRecord(
          encodeRaftRecord({
            checkpoint: true,
            snapshot: metadata(8, 1),
            snapshotData: image("checkpointed"),
            hardState: null,
            entries: log(9, 9, 1),
          }).subarray(8),
          RAFT_RECORD_BYTES_MAX,
        ),
      ],
    ]);
    const fromCheckpoint = recoverRaftState(generations);
    assert.deepEqual(fromCheckpoint.snapshot?.data, image("checkpointed"));
    assert.deepEqual(indexes(fromCheckpoint.entries), ["9@1"]);
    assert.equal(fromCheckpoint.nextFile, "raft-3");
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
