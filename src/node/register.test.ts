// Goal: the replicated register applies the same commands to the same state on every
// replica, refuses malformed commands before they are proposed, applies a retried request
// once, and treats garbage in the log as a failed no-op. Method: direct calls.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isBrigadeError } from "../lib/errors.js";
import { encodeCommand, parseCommand, RegisterStateMachine } from "./register.js";

describe("replicated register", () => {
  it("refuses malformed commands with a clear error", () => {
    const cases: unknown[] = [
      null,
      { op: "set", key: "k", value: "v" },
      { op: "set", key: "k", value: 5, requestId: "r" },
      { op: "drop", key: "k", requestId: "r" },
      { op: "incr", key: "k", delta: 1.5, requestId: "r" },
      { op: "cas", key: "k", expected: 3, value: "v", requestId: "r" },
      { op: "get", key: "", requestId: "r" },
    ];
    for (const command of cases)
      assert.throws(
        () => parseCommand(command),
        (error) => isBrigadeError(error, "InvalidArgument"),
        JSON.stringify(command),
      );
  });

  it("applies set, cas and incr deterministically, and a retried request once", () => {
    const replicas = [new RegisterStateMachine(), new RegisterStateMachine()];
    const log = [
      { op: "set", key: "k", value: "a", requestId: "1" },
      { op: "cas", key: "k", expected: "a", value: "b", requestId: "2" },
      { op: "cas", key: "k", expected: "a", value: "c", requestId: "3" },
      { op: "incr", key: "n", delta: 2, requestId: "4" },
      { op: "incr", key: "n", delta: 2, requestId: "4" },
    ].map((command) => encodeCommand(parseCommand(command)));
    const results = replicas.map((replica) =>
      log.map((data, index) => replica.apply(index + 1, data)),
    );
    assert.deepEqual(results[0], results[1]);
    assert.deepEqual(
      results[0]?.map((result) => [result.ok, result.value]),
      [
        [true, "a"],
        [true, "b"],
        [false, "b"],
        [true, "2"],
        [true, "2"],
      ],
    );
    assert.equal(replicas[0]?.read("n"), "2");
  });

  it("applies garbage in the log as a failed no-op", () => {
    const register = new RegisterStateMachine();
    for (const bytes of ["not json", "42", '{"op":"set"}']) {
      assert.deepEqual(register.apply(1, Buffer.from(bytes)), { ok: false, value: null, index: 1 });
    }
  });

  it("restores from its snapshot the values and the remembered results", () => {
    const original = new RegisterStateMachine();
    const set = encodeCommand(parseCommand({ op: "incr", key: "n", delta: 5, requestId: "r1" }));
    original.apply(1, set);
    const copy = new RegisterStateMachine();
    copy.restore(original.snapshot());
    assert.equal(copy.read("n"), "5");
    // A retry of r1 after the snapshot must not apply twice.
    assert.deepEqual(copy.apply(2, set), original.apply(2, set));
    assert.equal(copy.read("n"), "5");
  });
});
