// Runs the membership simulation's join and leave scenarios on many seeds (64 nodes joining through one seed; a graceful leave in 32) and asserts, per seed, full membership within the bound derived from the config and `left` everywhere with no `dead`, plus that gossip (not only the push-pull backstop) does the joining on most seeds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runMembershipScenario } from "./scenario.js";
import { assertPassed, median, seeds } from "./test-support.js";

describe("swim simulation: join", () => {
  it("64 nodes joining through one seed all see all 64 alive within the join bound, with no suspicion (20 seeds)", (t) => {
    const results = seeds(20).map((seed) => runMembershipScenario("join", seed));
    for (const result of results) {
      assertPassed(result);
      assert.equal(result.options.nodeCount, 64);
      assert.ok(result.summary.joinedMs !== null);
      assert.ok(result.summary.joinedMs <= result.options.bounds.joinMs);
      assert.equal(result.summary.suspectEvents, 0, `seed ${result.options.seed}`);
    }
    const joined = results.map((result) => result.summary.joinedMs!);
    const { disseminationMs, joinMs } = results[0]!.options.bounds;
    // Gossip does the work; push-pull only repairs the rare member an epidemic missed.
    assert.ok(median(joined) <= disseminationMs, `median ${median(joined)} ms`);
    t.diagnostic(
      `joined in median ${median(joined)} ms, max ${Math.max(...joined)} ms (bound ${joinMs} ms);` +
        ` ${joined.filter((ms) => ms > disseminationMs).length}/20 needed a push-pull`,
    );
  });
});

describe("swim simulation: leave", () => {
  it("a graceful leave is seen as `left` by every member within the bound, and never as `dead` (30 seeds, 32 nodes)", (t) => {
    const times: number[] = [];
    for (const seed of seeds(30)) {
      const result = runMembershipScenario("leave", seed);
      assertPassed(result);
      assert.equal(result.summary.deadEvents, 0);
      assert.ok(result.summary.fullDetectionMs !== null);
      assert.ok(result.summary.fullDetectionMs <= result.options.bounds.leaveMs);
      times.push(result.summary.fullDetectionMs);
    }
    t.diagnostic(`left everywhere in median ${median(times)} ms, max ${Math.max(...times)} ms`);
  });
});
