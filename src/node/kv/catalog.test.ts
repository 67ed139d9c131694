import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { slotCount } from "../../lib/slots.js";
import {
  Catalog,
  type CatalogCommand,
  encodeCatalogCommand,
  validateKeyspaceRequest,
} from "./catalog.js";

function applyAll(catalog: Catalog, commands: CatalogCommand[]) {
  return commands.map((command, index) => catalog.apply(index + 1, encodeCatalogCommand(command)));
}

const threeNodes: CatalogCommand[] = ["n1", "n2", "n3"].map((id) => ({
  type: "register-node",
  id,
  zone: "none",
}));

describe("catalog (the meta group's state machine)", () => {
  it("creates a keyspace whose shards cover every slot once, with distinct group ids", () => {
    const catalog = new Catalog();
    const [, , , created] = applyAll(catalog, [
      ...threeNodes,
      { type: "create-keyspace", name: "seats", shards: 16, replicas: 3 },
    ]);
    assert.ok(created?.ok);
    const keyspace = catalog.keyspace("seats")!;
    assert.equal(keyspace.shardMap.length, 16);
    let nextSlot = 0;
    for (const shard of keyspace.shardMap) {
      assert.equal(shard.slots[0], nextSlot);
      nextSlot = shard.slots[1] + 1;
      assert.deepEqual([...shard.replicas].sort(), ["n1", "n2", "n3"]);
      assert.deepEqual(shard.founders, shard.replicas);
      assert.equal(catalog.shard(shard.group), shard);
    }
    assert.equal(nextSlot, slotCount);
    assert.equal(new Set(keyspace.shardMap.map((shard) => shard.group)).size, 16);
  });

  it("refuses a duplicate name, too few nodes, and an unknown drop — changing nothing", () => {
    const catalog = new Catalog();
    applyAll(catalog, [
      ...threeNodes,
      { type: "create-keyspace", name: "a", shards: 2, replicas: 3 },
    ]);
    const epoch = catalog.epoch;
    const [duplicate, tooMany, unknown] = applyAll(catalog, [
      { type: "create-keyspace", name: "a", shards: 2, replicas: 3 },
      { type: "create-keyspace", name: "b", shards: 2, replicas: 5 },
      { type: "drop-keyspace", name: "zzz" },
    ]);
    assert.equal(duplicate?.ok === false && duplicate.code, "CompareFailed");
    assert.equal(tooMany?.ok === false && tooMany.code, "Unavailable");
    assert.equal(unknown?.ok === false && unknown.code, "NotFound");
    assert.equal(catalog.epoch, epoch);
  });

  it("drop lists the keyspace's groups as dropped; new keyspaces never reuse group ids", () => {
    const catalog = new Catalog();
    applyAll(catalog, [
      ...threeNodes,
      { type: "create-keyspace", name: "a", shards: 4, replicas: 1 },
    ]);
    const groups = catalog.keyspace("a")!.shardMap.map((shard) => shard.group);
    applyAll(catalog, [
      { type: "drop-keyspace", name: "a" },
      { type: "create-keyspace", name: "a", shards: 4, replicas: 1 },
    ]);
    assert.deepEqual(catalog.view().droppedGroups, groups);
    for (const shard of catalog.keyspace("a")!.shardMap) assert.ok(!groups.includes(shard.group));
  });

  it("an image restores the same view, and a node outside the group adopts only newer views", () => {
    const catalog = new Catalog();
    applyAll(catalog, [
      ...threeNodes,
      { type: "create-keyspace", name: "a", shards: 3, replicas: 2 },
    ]);
    const copy = new Catalog();
    copy.restore(catalog.snapshot());
    assert.deepEqual(copy.view(), catalog.view());
    const follower = new Catalog();
    assert.equal(follower.adopt(catalog.view()), true);
    assert.equal(follower.adopt({ ...catalog.view(), epoch: 1 }), false);
    assert.deepEqual(follower.view(), catalog.view());
  });

  it("validates user requests with clear messages", () => {
    assert.deepEqual(validateKeyspaceRequest({ name: "seats" }), {
      name: "seats",
      shards: 16,
      replicas: 3,
    });
    assert.throws(() => validateKeyspaceRequest({ name: "Seats!" }), /lowercase/);
    assert.throws(() => validateKeyspaceRequest({ name: "a", shards: 0 }), /shards/);
    assert.throws(() => validateKeyspaceRequest({ name: "a", replicas: 9 }), /replicas/);
    assert.throws(() => validateKeyspaceRequest({ name: "a", consistency: "eventual" }), /strong/);
  });
});
