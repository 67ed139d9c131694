import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { placeShards } from "./placement.js";
import {
  type NodeState,
  nextMembershipChange,
  type PlacementNodeInfo,
  planLeaderTransfers,
  planReplicaChanges,
  replicaLoad,
  type ShardPlacement,
  settled,
} from "./rebalance.js";

interface Shard {
  group: number;
  replicas: string[];
  voters: string[];
  learners: string[];
  leader: string;
}

const view = (shard: Shard): ShardPlacement => ({
  group: shard.group,
  replicas: shard.replicas,
  replicasWanted: 3,
  config: { voters: shard.voters, learners: shard.learners },
  leader: shard.leader,
});

/**
 * Runs the driver's loop against a model cluster where every membership step takes effect at
 * once, checking that a step removing a live voter never leaves a shard with fewer than 3
 * live voters. Returns the number of rounds it took to settle.
 */
function converge(nodes: PlacementNodeInfo[], shards: Shard[], roundsMax = 2_000): number {
  const up = (id: string) => nodes.find((node) => node.id === id)?.state !== "dead";
  for (let round = 0; round < roundsMax; round++) {
    let acted = false;
    for (const change of planReplicaChanges(nodes, shards.map(view), { movesInFlightMax: 4 })) {
      const shard = shards.find((candidate) => candidate.group === change.group)!;
      shard.replicas = [...change.replicas];
      acted = true;
    }
    for (const shard of shards) {
      const step = nextMembershipChange(view(shard));
      if (step === null) continue;
      acted = true;
      switch (step.type) {
        case "add-learner":
          shard.learners.push(step.node);
          break;
        case "promote":
          shard.learners = shard.learners.filter((node) => node !== step.node);
          shard.voters.push(step.node);
          break;
        case "remove":
          shard.learners = shard.learners.filter((node) => node !== step.node);
          shard.voters = shard.voters.filter((node) => node !== step.node);
          break;
        case "transfer-leadership":
          assert.ok(shard.voters.includes(step.to));
          shard.leader = step.to;
          break;
      }
      assert.ok(shard.voters.includes(shard.leader), "the leader is never removed");
      if (step.type === "remove" && up(step.node))
        assert.ok(
          shard.voters.filter(up).length >= 3,
          `group ${shard.group} removed live ${step.node}, leaving ${shard.voters}`,
        );
    }
    for (const transfer of planLeaderTransfers(nodes, shards.map(view))) {
      const shard = shards.find((candidate) => candidate.group === transfer.group)!;
      assert.equal(shard.leader, transfer.from);
      shard.leader = transfer.to;
      acted = true;
    }
    if (!acted) return round;
  }
  throw new Error("did not settle");
}

function cluster(
  nodeCount: number,
  shardCount: number,
): { nodes: PlacementNodeInfo[]; shards: Shard[] } {
  const nodes = Array.from({ length: nodeCount }, (_, index) => ({
    id: `n${index + 1}`,
    zone: "z",
    state: "active" as NodeState,
  }));
  const placed = placeShards(nodes, new Map(), shardCount, 3);
  const shards = placed.map((replicas, index) => ({
    group: 1000 + index,
    replicas: [...replicas],
    voters: [...replicas],
    learners: [],
    leader: replicas[index % 3]!,
  }));
  return { nodes, shards };
}

function assertBalanced(nodes: PlacementNodeInfo[], shards: Shard[]): void {
  const active = nodes.filter((node) => node.state === "active").map((node) => node.id);
  const load = replicaLoad(shards.map(view));
  const counts = active.map((id) => load.get(id) ?? 0);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `replicas per node ${counts}`);
  const leaders = active.map((id) => shards.filter((shard) => shard.leader === id).length);
  assert.ok(Math.max(...leaders) - Math.min(...leaders) <= 1, `leaders per node ${leaders}`);
  for (const shard of shards) {
    assert.ok(settled(view(shard)));
    assert.equal(shard.replicas.length, 3);
    for (const node of shard.replicas)
      assert.ok(active.includes(node), `${node} still holds ${shard.group}`);
  }
}

describe("placement driver decisions", () => {
  it("3 nodes → 5: replicas and leaders spread to within one per node", () => {
    const { nodes, shards } = cluster(3, 16);
    nodes.push({ id: "n4", zone: "z", state: "active" }, { id: "n5", zone: "z", state: "active" });
    converge(nodes, shards);
    assertBalanced(nodes, shards);
  });

  it("decommissioning a node moves every replica and leadership off it", () => {
    const { nodes, shards } = cluster(5, 16);
    nodes[2] = { ...nodes[2]!, state: "draining" };
    converge(nodes, shards);
    assertBalanced(nodes, shards);
  });

  it("a dead node's replicas are re-created elsewhere without a shard losing its majority", () => {
    const { nodes, shards } = cluster(4, 16);
    nodes[0] = { ...nodes[0]!, state: "dead" };
    for (const shard of shards)
      if (shard.leader === "n1") shard.leader = shard.voters.find((node) => node !== "n1")!;
    converge(nodes, shards);
    assertBalanced(nodes, shards);
  });

  it("settles from any start: random sizes, joins, drains and deaths", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 7 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.constantFrom<NodeState>("draining", "dead"), { maxLength: 2 }),
        (nodeCount, shardCount, joining, failures) => {
          const { nodes, shards } = cluster(nodeCount, shardCount);
          for (let index = 0; index < joining; index++)
            nodes.push({ id: `j${index}`, zone: "z", state: "active" });
          failures.forEach((state, index) => {
            nodes[index] = { ...nodes[index]!, state };
          });
          // A dead node leads nothing: its groups elected another voter.
          const dead = new Set(
            failures.flatMap((state, index) => (state === "dead" ? [`n${index + 1}`] : [])),
          );
          for (const shard of shards)
            if (dead.has(shard.leader))
              shard.leader = shard.voters.find((node) => !dead.has(node))!;
          if (nodes.filter((node) => node.state === "active").length < 3) return;
          converge(nodes, shards);
          assertBalanced(nodes, shards);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("waits for a shard's group to catch up before it changes the shard again", () => {
    const shard: ShardPlacement = {
      group: 1,
      replicas: ["a", "b", "c", "d"],
      replicasWanted: 3,
      config: { voters: ["a", "b", "c"], learners: ["d"] },
      leader: "a",
    };
    const nodes: PlacementNodeInfo[] = ["a", "b", "c", "d"].map((id) => ({
      id,
      zone: "z",
      state: id === "c" ? "draining" : "active",
    }));
    assert.deepEqual(planReplicaChanges(nodes, [shard], { movesInFlightMax: 4 }), []);
    assert.deepEqual(nextMembershipChange(shard), { type: "promote", node: "d" });
    const caughtUp = { ...shard, config: { voters: ["a", "b", "c", "d"], learners: [] } };
    assert.deepEqual(
      planReplicaChanges(nodes, [caughtUp], { movesInFlightMax: 4 }).map(
        (change) => change.replicas,
      ),
      [["a", "b", "d"]],
    );
    assert.equal(
      planReplicaChanges(nodes, [{ ...shard, config: null }], { movesInFlightMax: 4 }).length,
      0,
      "nothing while the group's configuration is unknown",
    );
  });
});
