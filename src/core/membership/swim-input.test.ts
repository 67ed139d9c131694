// Goal: the SWIM core is safe against what peers send and against misuse during leave:
// updates naming undialable addresses or malformed ids are dropped and counted (so they can
// neither crash a driver nor spread), and a tag update after leave() is refused rather than
// bringing the node back. Method: one core driven by hand.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prngFromSeed } from "../../lib/prng.js";
import { membershipProfiles } from "./config.js";
import type { MembershipMessage } from "./messages.js";
import { Swim } from "./swim.js";

function core(): Swim {
  return new Swim({
    nodeId: "n1",
    address: "127.0.0.1:7001",
    seeds: [],
    tags: {},
    config: membershipProfiles.lan,
    prng: prngFromSeed(1),
    nowMs: 0,
    recovered: new Map(),
    isValidAddress: (address) => /^[^:\s]+:\d{1,5}$/.test(address),
  });
}

describe("Swim input validation", () => {
  const poisonous: Array<[string, unknown]> = [
    [
      "a ping from an undialable address",
      { type: "ping", from: "x", fromAddress: "x", seq: 1, target: "n1", updates: [] },
    ],
    [
      "a ping-req toward an undialable address",
      {
        type: "ping-req",
        from: "x",
        fromAddress: "h:1",
        seq: 1,
        target: "n2",
        targetAddress: "nohost",
        wantNack: true,
        updates: [],
      },
    ],
    [
      "gossip with an undialable member address",
      {
        type: "gossip",
        from: "x",
        fromAddress: "h:1",
        updates: [{ kind: "alive", id: "bogus", address: "bogus", incarnation: 1, tags: {} }],
      },
    ],
    [
      "gossip with a malformed member id",
      {
        type: "gossip",
        from: "x",
        fromAddress: "h:1",
        updates: [{ kind: "alive", id: "../etc", address: "h:2", incarnation: 1, tags: {} }],
      },
    ],
    [
      "a push-pull with a bad record",
      {
        type: "push-pull",
        from: "x",
        fromAddress: "h:1",
        join: true,
        response: false,
        members: [{ id: "m", address: "", incarnation: 1, state: "alive", tags: {} }],
      },
    ],
    ["not an object", 42],
  ];
  for (const [name, message] of poisonous) {
    it(`drops ${name}`, () => {
      const swim = core();
      swim.takeOutput();
      const ignoredBefore = swim.stats.messagesIgnored;
      swim.receive("x", message as MembershipMessage);
      assert.equal(swim.stats.messagesIgnored, ignoredBefore + 1);
      assert.deepEqual(swim.takeOutput().messages, [], "nothing may be sent in answer");
      assert.deepEqual(
        swim.memberList().map((member) => member.id),
        ["n1"],
      );
    });
  }

  it("refuses a tag update while leaving, keeping the leave", () => {
    const swim = core();
    swim.leave();
    assert.deepEqual(swim.updateTags({ late: "yes" }), { code: "Leaving" });
    assert.equal(swim.member("n1")?.state, "left");
    swim.checkInvariants();
  });
});
