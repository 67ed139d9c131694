/**
 * @module Where a new shard's replicas go. Pure and deterministic (the meta group's state
 * machine calls it while applying a command, so every replica computes the same map):
 * each replica goes to the node holding the fewest replicas so far, preferring a zone the
 * shard does not use yet, ties broken by node id. Spreading across zones first means a
 * whole zone failing takes at most ⌈replicas / zones⌉ replicas of any shard.
 */

export interface PlacementNode {
  readonly id: string;
  readonly zone: string;
}

/**
 * Replica sets for `shards` new shards of `replicas` each. `load` counts the replicas each
 * node already holds (updated as shards are placed). Requires `replicas <= nodes.length`.
 */
export function placeShards(
  nodes: readonly PlacementNode[],
  load: Map<string, number>,
  shards: number,
  replicas: number,
): string[][] {
  const placed: string[][] = [];
  for (let shard = 0; shard < shards; shard++) {
    const chosen: PlacementNode[] = [];
    while (chosen.length < replicas) {
      const zones = new Set(chosen.map((node) => node.zone));
      let best: PlacementNode | null = null;
      for (const node of nodes) {
        if (chosen.includes(node)) continue;
        if (best === null || better(node, best, zones, load)) best = node;
      }
      if (best === null) break;
      chosen.push(best);
      load.set(best.id, (load.get(best.id) ?? 0) + 1);
    }
    placed.push(chosen.map((node) => node.id));
  }
  return placed;
}

function better(
  node: PlacementNode,
  than: PlacementNode,
  usedZones: ReadonlySet<string>,
  load: ReadonlyMap<string, number>,
): boolean {
  const newZone = usedZones.has(node.zone) ? 1 : 0;
  const thanNewZone = usedZones.has(than.zone) ? 1 : 0;
  if (newZone !== thanNewZone) return newZone < thanNewZone;
  const nodeLoad = load.get(node.id) ?? 0;
  const thanLoad = load.get(than.id) ?? 0;
  if (nodeLoad !== thanLoad) return nodeLoad < thanLoad;
  return node.id < than.id;
}
