// Checks the dissemination queue and its retransmit limit against memberlist's TransmitLimitedQueue rules (util.go retransmitLimit table; newer update replaces older, least-transmitted and then newest first, dropped after the limit, bounded capacity, packet budgets) by enqueuing updates and reading back what each take returns.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BroadcastQueue, retransmitLimit } from "./broadcast-queue.js";
import { type MemberTags, type MemberUpdate, updateBytesEstimate } from "./messages.js";

const alive = (id: string, incarnation = 1, tags: MemberTags = {}): MemberUpdate => ({
  kind: "alive",
  id,
  address: id,
  incarnation,
  tags,
});
const suspect = (id: string, incarnation = 1): MemberUpdate => ({
  kind: "suspect",
  id,
  incarnation,
  from: "x",
});
const unlimited = { countMax: 100, bytesMax: 100_000, limit: 100 };
const ids = (updates: readonly MemberUpdate[]) => updates.map((update) => update.id);

describe("retransmitLimit", () => {
  it("is retransmitMult * ceil(log10(n + 1)) (memberlist TestRetransmitLimit and more)", () => {
    const table: readonly (readonly [number, number, number])[] = [
      [3, 0, 0],
      [3, 1, 3],
      [3, 99, 6],
      [4, 1, 4],
      [4, 9, 4],
      [4, 10, 8],
      [4, 16, 8],
      [4, 64, 8],
      [4, 99, 8],
      [4, 100, 12],
      [4, 256, 12],
      [4, 999, 12],
      [4, 1000, 16],
    ];
    for (const [mult, n, expected] of table) {
      assert.equal(retransmitLimit(mult, n), expected, `mult=${mult} n=${n}`);
    }
  });
});

describe("BroadcastQueue", () => {
  it("a newer update about a member replaces the older one (and starts over at 0 sends)", () => {
    const queue = new BroadcastQueue(10);
    queue.enqueue(alive("a", 1));
    queue.take({ ...unlimited, limit: 3 });
    queue.enqueue(suspect("a", 1));
    assert.equal(queue.size, 1);
    const sent = [1, 2, 3].flatMap(() => queue.take({ ...unlimited, limit: 3 }));
    assert.deepEqual(sent, [suspect("a", 1), suspect("a", 1), suspect("a", 1)]);
    assert.equal(queue.size, 0);
  });

  it("takes the least-transmitted first, and among equals the newest first", () => {
    const queue = new BroadcastQueue(10);
    queue.enqueue(alive("a"));
    queue.enqueue(alive("b"));
    const one = { countMax: 1, bytesMax: 100_000, limit: 10 };
    assert.deepEqual(ids(queue.take(one)), ["b"], "both unsent: newer first");
    assert.deepEqual(ids(queue.take(one)), ["a"], "a has fewer sends now");
    queue.enqueue(alive("c"));
    assert.deepEqual(ids(queue.take({ ...one, countMax: 3 })), ["c", "b", "a"]);
    assert.deepEqual(ids(queue.take({ ...one, countMax: 3 })), ["c", "b", "a"]);
  });

  it("drops an update once it was sent `limit` times", () => {
    const queue = new BroadcastQueue(10);
    queue.enqueue(alive("a"));
    const limit = retransmitLimit(4, 64);
    let sends = 0;
    while (queue.take({ ...unlimited, limit }).length > 0) sends++;
    assert.equal(sends, 8);
    assert.equal(queue.size, 0);
  });

  it("is bounded: past capacity it drops the most-sent (then oldest) update and counts it", () => {
    const queue = new BroadcastQueue(3);
    queue.enqueue(alive("a"));
    queue.enqueue(alive("b"));
    queue.take({ countMax: 1, bytesMax: 100_000, limit: 10 }); // b sent once
    queue.enqueue(alive("c"));
    queue.enqueue(alive("d")); // over capacity: b (most sent) goes
    assert.equal(queue.size, 3);
    assert.equal(queue.dropped, 1);
    assert.deepEqual(ids(queue.take(unlimited)).sort(), ["a", "c", "d"]);
    queue.enqueue(alive("e")); // all sent once now: the oldest, a, goes
    assert.equal(queue.dropped, 2);
    assert.deepEqual(ids(queue.take(unlimited)).sort(), ["c", "d", "e"]);
    for (let index = 0; index < 1000; index++) queue.enqueue(alive(`m${index}`));
    assert.equal(queue.size, 3);
  });

  it("fills a packet up to countMax and bytesMax, skipping an update that does not fit", () => {
    const queue = new BroadcastQueue(10);
    const big = alive("big", 1, { blob: "x".repeat(500) });
    queue.enqueue(alive("a"));
    queue.enqueue(big);
    queue.enqueue(alive("b"));
    const smallBytes = updateBytesEstimate(alive("a"));
    const taken = queue.take({ countMax: 10, bytesMax: 2 * smallBytes + 10, limit: 10 });
    assert.deepEqual(ids(taken), ["b", "a"], "big did not fit, the smaller older one did");
    assert.equal(queue.size, 3, "nothing was dropped for not fitting");
    assert.deepEqual(ids(queue.take({ countMax: 1, bytesMax: 100_000, limit: 10 })), ["big"]);
    assert.deepEqual(queue.take({ countMax: 0, bytesMax: 100_000, limit: 10 }), []);
  });
});
