// Checks the SWIM + Lifeguard rules of the Swim core by driving it by hand, with no simulator: one core fed hand-written messages (its pings answered by the harness), or three cores wired to each other through msgpack with instant delivery, asserting on the events, incarnations, writes and counters that come out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { pack, unpack } from "msgpackr";
import { AssertionError } from "../../lib/assert.js";
import { prngFromSeed } from "../../lib/prng.js";
import type { Outgoing } from "../sans-io.js";
import { membershipProfiles } from "./config.js";
import type {
  AliveUpdate,
  DeadUpdate,
  MemberRecord,
  MemberState,
  MembershipEvent,
  MembershipMessage,
  MemberTags,
  MemberUpdate,
  SuspectUpdate,
} from "./messages.js";
import { incarnationFile, Swim, type SwimOptions } from "./swim.js";

const config = membershipProfiles.lan;
const tickMs = 10;

function seedOf(id: string): number {
  return [...id].reduce((hash, char) => (hash * 31 + char.charCodeAt(0)) >>> 0, 7);
}

function newSwim(id: string, options: Partial<SwimOptions> = {}): Swim {
  return new Swim({
    nodeId: id,
    address: id,
    seeds: [],
    tags: {},
    config,
    prng: prngFromSeed(seedOf(id)),
    nowMs: 0,
    recovered: new Map(),
    ...options,
  });
}

const alive = (id: string, incarnation: number, tags: MemberTags = {}): AliveUpdate => ({
  kind: "alive",
  id,
  address: id,
  incarnation,
  tags,
});
const suspect = (id: string, incarnation: number, from: string): SuspectUpdate => ({
  kind: "suspect",
  id,
  incarnation,
  from,
});
const dead = (id: string, incarnation: number, from: string, left = false): DeadUpdate => ({
  kind: "dead",
  id,
  incarnation,
  from,
  left,
});
const gossip = (from: string, updates: readonly MemberUpdate[]): MembershipMessage => ({
  type: "gossip",
  from,
  fromAddress: from,
  updates,
});
const record = (id: string, incarnation = 1, state: MemberState = "alive"): MemberRecord => ({
  id,
  address: id,
  incarnation,
  state,
  tags: {},
});

/**
 * One core ("a") and a harness playing every other member: it answers the core's pings with
 * acks (unless the target is in `silent`) and its ping-reqs with nacks (if `nack`).
 */
class Solo {
  readonly core: Swim;
  /** Each event with the core's health score when it was emitted (before any reply arrives). */
  readonly events: { atMs: number; event: MembershipEvent; healthScore: number }[] = [];
  readonly sent: Outgoing<MembershipMessage>[] = [];
  readonly silent = new Set<string>();
  nack = true;
  nowMs = 0;

  constructor(members: readonly MemberRecord[]) {
    this.core = newSwim("a");
    this.drain();
    const first = members[0];
    if (first !== undefined) {
      this.receive(first.id, {
        type: "push-pull",
        from: first.id,
        fromAddress: first.id,
        join: false,
        response: true,
        members,
      });
    }
  }

  receive(source: string, message: MembershipMessage): void {
    this.core.receive(source, message);
    this.drain();
  }

  /** Ticks every 10 ms for `ms`. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    while (this.nowMs < endMs) {
      this.nowMs += tickMs;
      this.core.tick(this.nowMs);
      this.drain();
    }
  }

  /** Ticks until an event matches, or the deadline; returns the event's time. */
  advanceUntil(predicate: (event: MembershipEvent) => boolean, deadlineMs: number): number | null {
    const from = this.events.length;
    while (this.nowMs < deadlineMs) {
      this.advance(tickMs);
      const hit = this.events.slice(from).find((entry) => predicate(entry.event));
      if (hit !== undefined) return hit.atMs;
    }
    return null;
  }

  eventsAbout(id: string): string[] {
    return this.events
      .filter((entry) => entry.event.member.id === id)
      .map(({ event }) => `${event.type} ${event.member.incarnation} ${event.member.state}`);
  }

  #answer(outgoing: Outgoing<MembershipMessage>): MembershipMessage | null {
    const { target, message } = outgoing;
    if (message.type === "ping" && !this.silent.has(target)) {
      return { type: "ack", from: target, fromAddress: target, seq: message.seq, updates: [] };
    }
    if (message.type === "ping-req" && this.nack) {
      return { type: "nack", from: target, fromAddress: target, seq: message.seq };
    }
    return null;
  }

  private drain(): void {
    const replies: Outgoing<MembershipMessage>[] = [];
    for (;;) {
      const output = this.core.takeOutput();
      for (const event of output.events)
        this.events.push({ atMs: this.nowMs, event, healthScore: this.core.healthScore });
      for (const outgoing of output.messages) {
        this.sent.push(outgoing);
        const reply = this.#answer(outgoing);
        if (reply !== null) replies.push({ target: outgoing.target, message: reply });
      }
      this.core.checkInvariants();
      const next = replies.shift();
      if (next === undefined) return;
      this.core.receive(next.target, next.message);
    }
  }
}

/**
 * Several cores wired to each other: every message is msgpack-encoded and delivered at once
 * (FIFO), every write appended to the node's "disk", every event recorded. A stopped node's
 * messages vanish, like a crashed process's.
 */
class Wire {
  readonly cores = new Map<string, Swim>();
  readonly disks = new Map<string, Uint8Array[]>();
  readonly events: { atMs: number; node: string; event: MembershipEvent }[] = [];
  nowMs = 0;
  readonly #queue: { source: string; target: string; bytes: Uint8Array }[] = [];

  start(id: string, recovered = new Map<string, Uint8Array>()): Swim {
    const core = newSwim(id, { seeds: ["n1"], nowMs: this.nowMs, recovered });
    this.cores.set(id, core);
    this.#collect(id, core);
    this.#deliver();
    return core;
  }

  stop(id: string): void {
    this.cores.delete(id);
  }

  core(id: string): Swim {
    const core = this.cores.get(id);
    assert.ok(core !== undefined, `${id} is not running`);
    return core;
  }

  /** What survived on `id`'s disk (everything it wrote: a clean stop, no torn tail). */
  recovered(id: string): Map<string, Uint8Array> {
    const chunks = this.disks.get(id) ?? [];
    return new Map([[incarnationFile, Buffer.concat(chunks)]]);
  }

  run(ms: number): void {
    const endMs = this.nowMs + ms;
    while (this.nowMs < endMs) {
      this.nowMs += tickMs;
      for (const [id, core] of this.cores) {
        core.tick(this.nowMs);
        this.#collect(id, core);
      }
      this.#deliver();
    }
  }

  /** Gives one core an input by hand, then delivers what follows. */
  input(id: string, apply: (core: Swim) => void): void {
    const core = this.core(id);
    apply(core);
    this.#collect(id, core);
    this.#deliver();
  }

  eventsOf(node: string, about: string, sinceMs = 0): string[] {
    return this.events
      .filter((entry) => entry.node === node && entry.event.member.id === about)
      .filter((entry) => entry.atMs >= sinceMs)
      .map(({ event }) => `${event.type} ${event.member.incarnation} ${event.member.state}`);
  }

  #collect(id: string, core: Swim): void {
    const output = core.takeOutput();
    for (const write of output.writes) {
      assert.equal(write.file, incarnationFile);
      const chunks = this.disks.get(id) ?? [];
      chunks.push(write.data);
      this.disks.set(id, chunks);
    }
    for (const { target, message } of output.messages) {
      this.#queue.push({ source: id, target, bytes: new Uint8Array(pack(message)) });
    }
    for (const event of output.events) this.events.push({ atMs: this.nowMs, node: id, event });
    core.checkInvariants();
  }

  #deliver(): void {
    for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
      const core = this.cores.get(item.target);
      if (core === undefined) continue;
      core.receive(item.source, unpack(item.bytes) as MembershipMessage);
      this.#collect(item.target, core);
    }
  }
}

/** Three nodes joined through n1 and settled. */
function threeNodes(): Wire {
  const wire = new Wire();
  for (const id of ["n1", "n2", "n3"]) wire.start(id);
  wire.run(3_000);
  for (const id of ["n1", "n2", "n3"]) {
    const states = wire
      .core(id)
      .memberList()
      .map((member) => `${member.id}:${member.state}`);
    assert.deepEqual(states, ["n1:alive", "n2:alive", "n3:alive"], `${id}'s view`);
  }
  return wire;
}

describe("Swim: refutation", () => {
  it("a suspected node refutes with a higher incarnation, and the suspecter sees it alive again", () => {
    const wire = threeNodes();
    const before = wire.core("n3").incarnation;
    const startMs = wire.nowMs;
    // n1 hears from n2 that n3 is suspect (as if n2's probe of n3 had failed).
    wire.input("n1", (core) => core.receive("n2", gossip("n2", [suspect("n3", before, "n2")])));
    assert.equal(wire.core("n1").member("n3")?.state, "suspect");
    const n3 = wire.core("n3");
    while (n3.stats.refutations === 0 && wire.nowMs < startMs + 2_000) wire.run(tickMs);
    assert.equal(n3.healthScore, 1, "being suspected counts against our own health (Lifeguard)");
    wire.run(2_000);
    assert.equal(n3.incarnation, before + 1);
    assert.equal(n3.stats.refutations, 1);
    assert.deepEqual(wire.eventsOf("n1", "n3", startMs), [
      `member-suspect ${before} suspect`,
      `member-alive ${before + 1} alive`,
    ]);
    assert.equal(wire.core("n2").member("n3")?.incarnation, before + 1);
    assert.ok(wire.events.every(({ event }) => event.type !== "member-dead"));
    // The refutation was persisted before it was gossiped.
    assert.equal(new TextDecoder().decode(wire.recovered("n3").get(incarnationFile)), "1\n2\n");
  });

  it("a stale suspicion of ourselves is answered with our current incarnation (so a suspecter that missed the refutation learns it)", () => {
    const solo = new Solo([record("b"), record("c")]);
    solo.receive("b", gossip("b", [suspect("a", 1, "b")]));
    assert.equal(solo.core.incarnation, 2, "refuted");
    solo.advance(10_000);
    assert.equal(solo.core.pendingBroadcasts, 0, "the refutation was fully gossiped");
    // c missed it, still suspects a@1, and probes a with the suspicion attached (buddy system).
    solo.receive("c", {
      type: "ping",
      from: "c",
      fromAddress: "c",
      seq: 77,
      target: "a",
      updates: [suspect("a", 1, "c")],
    });
    const ack = solo.sent.findLast(
      (outgoing) => outgoing.target === "c" && outgoing.message.type === "ack",
    );
    assert.ok(ack !== undefined && ack.message.type === "ack" && ack.message.seq === 77);
    assert.deepEqual(
      ack.message.updates.filter((update) => update.id === "a"),
      [alive("a", 2)],
      "the ack carries a's current alive claim",
    );
    assert.equal(solo.core.incarnation, 2, "no new incarnation is needed for a stale claim");
  });

  it("a claim about ourselves at our incarnation but with other tags is out-voted too", () => {
    const solo = new Solo([record("b")]);
    solo.receive("b", gossip("b", [alive("a", 1, { role: "impostor" })]));
    assert.equal(solo.core.incarnation, 2);
    solo.receive("b", gossip("b", [alive("a", 2)]));
    assert.equal(solo.core.incarnation, 2, "our own current claim needs no refutation");
  });
});

describe("Swim: suspicion", () => {
  // Five members: min = 4 * max(1, log10 5) * 1 s = 4 s, max = 6 * min = 24 s, k = 4 - 2 = 2.
  const five = () => new Solo(["b", "c", "d", "e"].map((id) => record(id)));

  function timeToDead(confirmers: readonly string[]): number | null {
    const solo = five();
    solo.advance(100);
    const startMs = solo.nowMs;
    solo.receive("b", gossip("b", [suspect("e", 1, "b")]));
    for (const confirmer of confirmers) {
      solo.receive(confirmer, gossip(confirmer, [suspect("e", 1, confirmer)]));
    }
    const deadAt = solo.advanceUntil(
      (event) => event.type === "member-dead" && event.member.id === "e",
      startMs + 60_000,
    );
    return deadAt === null ? null : deadAt - startMs;
  }

  it("with independent confirmations times out sooner than without (Lifeguard §4.2)", () => {
    // The first tick at or after the deadline declares it (10 ms ticks).
    assert.equal(timeToDead([]), 24_000);
    assert.equal(timeToDead(["c"]), 11_390); // 24000 - log(2)/log(3) * 20000 = 11381
    assert.equal(timeToDead(["c", "d"]), 4_000);
    assert.equal(timeToDead(["c", "d", "b", "c"]), 4_000, "repeats and the raiser do not count");
  });

  it("re-gossips a new confirmation, not a repeated one", () => {
    const solo = five();
    solo.receive("b", gossip("b", [suspect("e", 1, "b")]));
    solo.advance(2_000);
    const sentSuspects = () =>
      solo.sent.flatMap((outgoing) =>
        "updates" in outgoing.message
          ? outgoing.message.updates.filter((update) => update.kind === "suspect")
          : [],
      );
    const before = sentSuspects().filter((update) => update.from === "c").length;
    solo.receive("c", gossip("c", [suspect("e", 1, "c")]));
    solo.advance(2_000);
    const after = sentSuspects().filter((update) => update.from === "c").length;
    assert.ok(after > before, "c's confirmation is passed on");
  });

  it("a failed probe with silent helpers raises the health score; nacking helpers do not (Lifeguard §4.1)", () => {
    for (const nack of [true, false]) {
      const solo = five();
      solo.silent.add("e");
      solo.nack = nack;
      const suspectedAt = solo.advanceUntil(
        (event) => event.type === "member-suspect" && event.member.id === "e",
        10_000,
      );
      assert.ok(suspectedAt !== null, "the probe of e failed and e is suspect");
      assert.equal(solo.core.stats.probesFailed, 1);
      assert.equal(solo.core.stats.suspicionsRaised, 1);
      // Read at the suspicion itself: the next probe (acked at once here) may lower it again.
      const atSuspicion = solo.events.find(
        ({ event }) => event.type === "member-suspect",
      )?.healthScore;
      assert.equal(atSuspicion, nack ? 0 : 3, `nack=${nack}`);
      assert.equal(solo.core.stats.nacksReceived, nack ? 3 : 0);
    }
  });
});

describe("Swim: incarnation rules", () => {
  it("an alive claim with a lower (or the same) incarnation is ignored", () => {
    const solo = new Solo([record("b", 5)]);
    solo.receive("c", gossip("c", [alive("b", 3, { zone: "old" })]));
    solo.receive("c", gossip("c", [alive("b", 5, { zone: "same-incarnation" })]));
    solo.receive("c", gossip("c", [suspect("b", 4, "c")]));
    assert.deepEqual(solo.core.member("b"), record("b", 5));
    assert.deepEqual(solo.eventsAbout("b"), ["member-join 5 alive"]);
    solo.receive("c", gossip("c", [alive("b", 6, { zone: "new" })]));
    assert.deepEqual(solo.core.member("b")?.tags, { zone: "new" });
    assert.deepEqual(solo.eventsAbout("b"), ["member-join 5 alive", "member-update 6 alive"]);
  });

  it("dead is final for an incarnation: only a higher incarnation brings the member back", () => {
    const solo = new Solo([record("b", 2), record("c")]);
    solo.receive("c", gossip("c", [dead("b", 2, "c")]));
    solo.receive("c", gossip("c", [alive("b", 2)]));
    solo.receive("c", gossip("c", [suspect("b", 2, "c")]));
    solo.receive("c", gossip("c", [dead("b", 2, "c")]));
    solo.receive("c", gossip("c", [dead("b", 2, "b", true)]));
    assert.equal(solo.core.member("b")?.state, "dead");
    assert.deepEqual(solo.eventsAbout("b"), ["member-join 2 alive", "member-dead 2 dead"]);
    solo.receive("c", gossip("c", [alive("b", 3)]));
    assert.equal(solo.core.member("b")?.state, "alive");
    assert.deepEqual(solo.eventsAbout("b").at(-1), "member-join 3 alive");
  });

  it("a dead claim about a suspect with an older incarnation is ignored", () => {
    const solo = new Solo([record("b", 4), record("c")]);
    solo.receive("c", gossip("c", [dead("b", 3, "c")]));
    assert.equal(solo.core.member("b")?.state, "alive");
  });

  it("only the member itself can announce its leave: a `left` flag from another is a death", () => {
    const solo = new Solo([record("b"), record("c")]);
    solo.receive("c", gossip("c", [dead("b", 1, "c", true)]));
    assert.equal(solo.core.member("b")?.state, "dead");
  });

  it("a remote `dead` in a push-pull only makes us suspect, so the member can still refute", () => {
    const solo = new Solo([record("b"), record("c")]);
    solo.receive("c", {
      type: "push-pull",
      from: "c",
      fromAddress: "c",
      join: false,
      response: true,
      members: [record("b", 1, "dead")],
    });
    assert.equal(solo.core.member("b")?.state, "suspect");
  });
});

describe("Swim: leave", () => {
  it("a graceful leave is seen as `left` by everyone, never `dead`, even after the node stops", () => {
    const wire = threeNodes();
    const startMs = wire.nowMs;
    wire.input("n3", (core) => core.leave());
    assert.equal(wire.core("n3").isLeaving, true);
    assert.deepEqual(wire.eventsOf("n3", "n3", startMs), ["member-leave 1 left"]);
    wire.run(1_000);
    assert.equal(wire.core("n3").pendingBroadcasts, 0, "the announcement is out");
    wire.stop("n3");
    wire.run(60_000); // longer than any suspicion timeout
    for (const id of ["n1", "n2"]) {
      assert.deepEqual(wire.eventsOf(id, "n3", startMs), ["member-leave 1 left"], id);
      assert.equal(wire.core(id).member("n3")?.state, "left");
    }
    assert.ok(wire.events.every(({ event }) => event.type !== "member-dead"));
  });
});

describe("Swim: restart", () => {
  it("a restarted node starts above its previous incarnation and rejoins", () => {
    const wire = threeNodes();
    wire.input("n3", (core) => assert.equal(core.updateTags({ version: "2" }), null));
    wire.run(2_000);
    assert.equal(wire.core("n1").member("n3")?.incarnation, 2);
    wire.stop("n3");
    wire.run(20_000);
    for (const id of ["n1", "n2"]) assert.equal(wire.core(id).member("n3")?.state, "dead", id);

    const restartMs = wire.nowMs;
    const restarted = wire.start("n3", wire.recovered("n3"));
    assert.equal(restarted.incarnation, 3, "above the 2 it used before");
    wire.run(3_000);
    for (const id of ["n1", "n2"]) {
      assert.deepEqual(wire.eventsOf(id, "n3", restartMs), ["member-join 3 alive"], id);
    }
    assert.deepEqual(
      restarted.memberList().map((member) => `${member.id}@${member.incarnation}:${member.state}`),
      ["n1@1:alive", "n2@1:alive", "n3@3:alive"],
    );
  });

  it("recovers the highest complete incarnation line; a torn or garbled line is skipped", () => {
    const file = (text: string) => new Map([[incarnationFile, new TextEncoder().encode(text)]]);
    assert.equal(newSwim("a", { recovered: file("1\n2\n7\n") }).incarnation, 8);
    assert.equal(newSwim("a", { recovered: file("1\n2\n3") }).incarnation, 3, "torn last line");
    assert.equal(newSwim("a", { recovered: file("4\nxx\n\n-1\n") }).incarnation, 5);
    assert.equal(newSwim("a", { recovered: file("") }).incarnation, 1);
  });
});

describe("Swim: metadata", () => {
  it("updateTags rejects oversize tags with MetadataTooLarge and changes nothing", () => {
    const core = newSwim("a");
    core.takeOutput();
    const tooBig = { blob: "x".repeat(config.metadataBytesMax) };
    const error = core.updateTags(tooBig);
    assert.deepEqual(error, {
      code: "MetadataTooLarge",
      bytes: config.metadataBytesMax + 11, // {"blob":""} around it
      bytesMax: config.metadataBytesMax,
    });
    assert.equal(core.incarnation, 1);
    assert.deepEqual(core.takeOutput(), { messages: [], writes: [], events: [] });

    const fits = { blob: "x".repeat(config.metadataBytesMax - 11) };
    assert.equal(core.updateTags(fits), null, "exactly at the limit is allowed");
    assert.equal(core.incarnation, 2);
    assert.deepEqual(
      core.takeOutput().events.map((event) => event.type),
      ["member-update"],
    );
  });

  it("oversize initial tags are a programmer error; oversize tags from a peer are ignored and counted", () => {
    const tooBig = { blob: "x".repeat(config.metadataBytesMax) };
    assert.throws(() => newSwim("a", { tags: tooBig }), AssertionError);
    const solo = new Solo([record("b")]);
    solo.receive("b", gossip("b", [alive("c", 1, tooBig)]));
    assert.equal(solo.core.member("c"), null);
    assert.equal(solo.core.stats.messagesIgnored, 1);
  });
});

describe("Swim: bad input", () => {
  const base = { from: "b", fromAddress: "b" };
  const malformed: readonly unknown[] = [
    null,
    42,
    "ping",
    [],
    {},
    { type: "ping" },
    { type: "hello", ...base },
    { type: "ping", from: 1, fromAddress: "b", seq: 1, target: "a", updates: [] },
    { type: "ping", ...base, seq: "1", target: "a", updates: [] },
    { type: "ping", ...base, seq: 1, target: "a", updates: "none" },
    { type: "ping", ...base, seq: 2 ** 60, target: "a", updates: [] },
    { type: "ack", ...base, updates: [] },
    { type: "ack", ...base, seq: 1, updates: [null] },
    { type: "gossip", ...base, updates: [{ kind: "alive", id: 1, incarnation: 1 }] },
    { type: "gossip", ...base, updates: [{ kind: "bogus", id: "c", incarnation: 1 }] },
    { type: "gossip", ...base, updates: [{ kind: "alive", id: "c", incarnation: 1.5 }] },
    { type: "gossip", ...base, updates: [{ ...alive("c", 1), tags: { n: 1 } }] },
    { type: "gossip", ...base, updates: [{ ...alive("c", 1), tags: ["x"] }] },
    { type: "gossip", ...base, updates: [{ kind: "dead", id: "c", incarnation: 1, from: "b" }] },
    { type: "ping-req", ...base, seq: 1, target: "c", updates: [], wantNack: true },
    { type: "nack", ...base, seq: 0.5 },
    { type: "push-pull", ...base, join: true, response: false, members: [{ id: "c" }] },
    { type: "push-pull", ...base, members: [{ ...record("c"), state: "zombie" }] },
    { type: "push-pull", ...base, members: "all" },
  ];

  it("malformed messages are ignored and counted, never thrown, and change nothing", () => {
    const solo = new Solo([record("b")]);
    const membersBefore = solo.core.memberList();
    const sentBefore = solo.sent.length;
    malformed.forEach((message, index) => {
      assert.doesNotThrow(() => solo.receive("b", message as MembershipMessage), `#${index}`);
      assert.equal(solo.core.stats.messagesIgnored, index + 1, `#${index} counted`);
    });
    assert.deepEqual(solo.core.memberList(), membersBefore);
    assert.equal(solo.sent.length, sentBefore, "no answer to garbage");
    assert.ok(solo.events.every(({ event }) => event.member.id !== "c"));
  });

  it("a ping meant for another node at our address is ignored and counted", () => {
    const solo = new Solo([record("b")]);
    const sentBefore = solo.sent.length;
    solo.receive("b", { type: "ping", ...base, seq: 9, target: "old-node", updates: [] });
    assert.equal(solo.sent.length, sentBefore);
    assert.equal(solo.core.stats.messagesIgnored, 1);
    solo.receive("b", { type: "ack", ...base, seq: 12_345, updates: [] });
    assert.equal(solo.core.stats.messagesIgnored, 2, "an ack nobody waits for");
  });

  it("never throws on arbitrary input, and its invariants still hold", () => {
    const solo = new Solo([record("b"), record("c")]);
    const shaped = fc.record({
      type: fc.constantFrom("ping", "ping-req", "ack", "nack", "gossip", "push-pull", "x"),
      from: fc.oneof(fc.string(), fc.anything()),
      fromAddress: fc.oneof(fc.constant("b"), fc.anything()),
      seq: fc.oneof(fc.integer(), fc.anything()),
      target: fc.oneof(fc.constant("a"), fc.anything()),
      updates: fc.oneof(fc.array(fc.anything()), fc.anything()),
      members: fc.oneof(fc.array(fc.anything()), fc.anything()),
    });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), shaped), (message) => {
        solo.receive("b", message as MembershipMessage);
        solo.core.checkInvariants();
      }),
      { numRuns: 500 },
    );
  });
});
