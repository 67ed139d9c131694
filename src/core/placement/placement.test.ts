import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { placeShards } from "./placement.js";

describe("placeShards", () => {
  it("spreads replicas evenly (±1 per node) and never twice on one node", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 5 }),
        (nodeCount, shards, replicasWanted) => {
          const replicas = Math.min(replicasWanted, nodeCount);
          const nodes = Array.from({ length: nodeCount }, (_, index) => ({
            id: `n${index}`,
            zone: "z",
          }));
          const load = new Map<string, number>();
          const placed = placeShards(nodes, load, shards, replicas);
          assert.equal(placed.length, shards);
          for (const set of placed) {
            assert.equal(set.length, replicas);
            assert.equal(new Set(set).size, replicas);
          }
          const counts = nodes.map((node) => load.get(node.id) ?? 0);
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, counts.join(","));
        },
      ),
    );
  });

  it("puts a shard's replicas in different zones before doubling up", () => {
    const nodes = [
      { id: "a1", zone: "a" },
      { id: "a2", zone: "a" },
      { id: "a3", zone: "a" },
      { id: "b1", zone: "b" },
      { id: "c1", zone: "c" },
    ];
    const placed = placeShards(nodes, new Map(), 10, 3);
    for (const set of placed) {
      const zones = new Set(set.map((id) => id[0]));
      assert.equal(zones.size, 3, set.join(","));
    }
  });

  it("is deterministic: the same inputs give the same map", () => {
    const nodes = [
      { id: "n2", zone: "x" },
      { id: "n1", zone: "y" },
      { id: "n3", zone: "x" },
    ];
    assert.deepEqual(placeShards(nodes, new Map(), 8, 2), placeShards(nodes, new Map(), 8, 2));
  });
});
