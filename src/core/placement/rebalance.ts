/**
 * @module The placement driver's decisions, as pure functions of what it observes (the
 * runtime driver in `node/kv/placement-driver.ts` gathers the inputs and carries the
 * decisions out). Two layers, each converging one step at a time:
 *
 * 1. The catalog holds each shard's *desired* replica set. `planReplicaChanges` edits it:
 *    a replica on a draining or dead node, or on a node holding more than its share, is
 *    replaced by one on the least loaded eligible node — first the new replica is added
 *    (the set has `replicas + 1` members while it catches up), and once the group's
 *    configuration shows it as a voter, the old one is dropped. A shard is never shrunk
 *    below `replicas`, so a move never lowers its fault tolerance.
 * 2. Each group's Raft configuration converges to the catalog's set through one-server
 *    changes (`nextMembershipChange`): add a learner, promote it once caught up, and only
 *    then remove a voter — transferring leadership first if the leader is the one leaving.
 *
 * Leaders are balanced separately (`planLeaderTransfers`): a node leading more than its
 * share hands one leadership to a replica on the node leading the fewest.
 */

export type NodeState = "active" | "unavailable" | "draining" | "dead";

export interface PlacementNodeInfo {
  readonly id: string;
  readonly zone: string;
  /**
   * `active`: may take replicas and leaderships. `unavailable`: suspected or down for less
   * than the replace delay — takes nothing new, keeps what it has (it may be back soon).
   * `draining`: decommissioned; `dead`: down for longer than the delay — both lose their
   * replicas to other nodes.
   */
  readonly state: NodeState;
}

export interface ShardPlacement {
  readonly group: number;
  /** The catalog's desired replica set. */
  readonly replicas: readonly string[];
  /** How many replicas the keyspace wants. */
  readonly replicasWanted: number;
  /** The group's configuration as its leader reports it, or null when unknown (no leader). */
  readonly config: {
    readonly voters: readonly string[];
    readonly learners: readonly string[];
  } | null;
  readonly leader: string | null;
}

export interface ReplicaChange {
  readonly group: number;
  readonly replicas: readonly string[];
  readonly reason: string;
}

export interface PlanLimits {
  /** Shards that may be moving (holding an extra replica) at once. */
  readonly movesInFlightMax: number;
}

/** True when the group's voters are exactly the catalog's set and it has no learner. */
export function settled(shard: ShardPlacement): boolean {
  if (shard.config === null || shard.config.learners.length > 0) return false;
  return sameMembers(shard.config.voters, shard.replicas);
}

/** Replica counts per node over the catalog's desired sets. */
export function replicaLoad(shards: readonly ShardPlacement[]): Map<string, number> {
  const load = new Map<string, number>();
  for (const shard of shards)
    for (const node of shard.replicas) load.set(node, (load.get(node) ?? 0) + 1);
  return load;
}

/**
 * The catalog edits to make now: finishing moves whose new replica has joined, then new
 * moves (replacing replicas on draining or dead nodes first, then evening out the load to
 * within one replica per node), at most `movesInFlightMax` shards moving at a time.
 */
export function planReplicaChanges(
  nodes: readonly PlacementNodeInfo[],
  shards: readonly ShardPlacement[],
  limits: PlanLimits,
): ReplicaChange[] {
  const state = new Map(nodes.map((node) => [node.id, node]));
  const mustLeave = (id: string) => {
    const nodeState = state.get(id)?.state;
    return nodeState === undefined || nodeState === "draining" || nodeState === "dead";
  };
  const load = replicaLoad(shards);
  const changes: ReplicaChange[] = [];
  let moving = shards.filter((shard) => shard.replicas.length > shard.replicasWanted).length;

  // 1. A moving shard whose group caught up with its set drops the replica that should go.
  for (const shard of shards) {
    if (shard.replicas.length <= shard.replicasWanted || !settled(shard)) continue;
    const leaving = pickLeaving(shard, state, load);
    load.set(leaving, (load.get(leaving) ?? 1) - 1);
    changes.push({
      group: shard.group,
      replicas: shard.replicas.filter((node) => node !== leaving),
      reason: `${leaving} leaves (its replacement caught up)`,
    });
    moving--;
  }

  // 2. New moves on settled shards: a replica on a node that must go, or too few replicas.
  const movable = shards.filter(
    (shard) => shard.replicas.length <= shard.replicasWanted && settled(shard),
  );
  for (const shard of movable) {
    if (moving >= limits.movesInFlightMax) return changes;
    const mustGo = shard.replicas.find(mustLeave);
    if (mustGo === undefined && shard.replicas.length === shard.replicasWanted) continue;
    const target = pickTarget(shard, nodes, load);
    if (target === null) continue;
    load.set(target, (load.get(target) ?? 0) + 1);
    changes.push({
      group: shard.group,
      replicas: [...shard.replicas, target],
      reason:
        mustGo === undefined
          ? `${target} added (the shard has too few replicas)`
          : `${target} replaces ${mustGo} (${state.get(mustGo)?.state ?? "unknown"})`,
    });
    moving++;
  }

  // 3. Evening out: from the most loaded node to the least loaded one, while they differ by 2+.
  for (const shard of movable) {
    if (moving >= limits.movesInFlightMax) break;
    if (changes.some((change) => change.group === shard.group)) continue;
    const active = nodes.filter((node) => node.state === "active");
    if (active.length === 0) break;
    const loadOf = (id: string) => load.get(id) ?? 0;
    const heaviest = shard.replicas.reduce((a, b) => (loadOf(b) > loadOf(a) ? b : a));
    const target = pickTarget(shard, nodes, load);
    if (target === null || loadOf(heaviest) - loadOf(target) < 2) continue;
    load.set(target, loadOf(target) + 1);
    // The heaviest gives its replica up once the target caught up (step 1 picks it then).
    changes.push({
      group: shard.group,
      replicas: [...shard.replicas, target],
      reason: `${target} takes a replica from ${heaviest} (${loadOf(heaviest)} vs ${loadOf(target) - 1} replicas)`,
    });
    moving++;
  }
  return changes;
}

/** Which replica a shard with one too many gives up: a down one, a draining one, else the most loaded. */
function pickLeaving(
  shard: ShardPlacement,
  state: ReadonlyMap<string, PlacementNodeInfo>,
  load: ReadonlyMap<string, number>,
): string {
  // Down before draining: removing a live replica while a down one stays would leave the
  // shard with fewer live voters than it wants.
  const rankOf = { active: 0, draining: 1, unavailable: 2, dead: 3 } as const;
  const rank = (id: string) => rankOf[state.get(id)?.state ?? "dead"];
  let best = shard.replicas[0]!;
  for (const node of shard.replicas) {
    const byState = rank(node) - rank(best);
    const byLoad = (load.get(node) ?? 0) - (load.get(best) ?? 0);
    if (byState > 0 || (byState === 0 && (byLoad > 0 || (byLoad === 0 && node > best))))
      best = node;
  }
  return best;
}

/** The active node to add to a shard: a new zone first, then the least loaded, then by id. */
function pickTarget(
  shard: ShardPlacement,
  nodes: readonly PlacementNodeInfo[],
  load: ReadonlyMap<string, number>,
): string | null {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const zones = new Set(
    shard.replicas.filter((id) => byId.get(id)?.state === "active").map((id) => byId.get(id)?.zone),
  );
  let best: PlacementNodeInfo | null = null;
  for (const node of nodes) {
    if (node.state !== "active" || shard.replicas.includes(node.id)) continue;
    if (best === null) {
      best = node;
      continue;
    }
    const zone = (zones.has(node.zone) ? 1 : 0) - (zones.has(best.zone) ? 1 : 0);
    const weight = (load.get(node.id) ?? 0) - (load.get(best.id) ?? 0);
    if (zone < 0 || (zone === 0 && (weight < 0 || (weight === 0 && node.id < best.id))))
      best = node;
  }
  return best?.id ?? null;
}

export type MembershipStep =
  | { readonly type: "add-learner"; readonly node: string }
  | { readonly type: "promote"; readonly node: string }
  | { readonly type: "remove"; readonly node: string }
  /** The leader is the voter to remove: hand leadership to another voter first. */
  | { readonly type: "transfer-leadership"; readonly to: string };

/** The next one-server change bringing the group's configuration to the catalog's set. */
export function nextMembershipChange(shard: ShardPlacement): MembershipStep | null {
  const config = shard.config;
  if (config === null) return null;
  const learner = config.learners[0];
  if (learner !== undefined) {
    return shard.replicas.includes(learner)
      ? { type: "promote", node: learner }
      : { type: "remove", node: learner };
  }
  const missing = shard.replicas.find((node) => !config.voters.includes(node));
  if (missing !== undefined) return { type: "add-learner", node: missing };
  const extra = config.voters.find((node) => !shard.replicas.includes(node));
  if (extra === undefined) return null;
  if (extra === shard.leader) {
    const to = config.voters.find((node) => node !== extra && shard.replicas.includes(node));
    return to === undefined ? null : { type: "transfer-leadership", to };
  }
  return { type: "remove", node: extra };
}

/**
 * Leaderships to move so leaders spread to within one per active node. A node leading two or
 * more shards more than another hands one over along a chain: it may not share a shard with
 * the least loaded node, but one of its shards has a replica on a node that leads a shard
 * with a replica there, and so on (a breadth-first search over "u leads s, v holds s"). Every
 * chain lowers the spread, so repeated rounds settle. Leaders on a node that must go move
 * first, to any active replica. Only settled shards with a known leader move.
 */
export function planLeaderTransfers(
  nodes: readonly PlacementNodeInfo[],
  shards: readonly ShardPlacement[],
): { readonly group: number; readonly from: string; readonly to: string }[] {
  const active = new Set(nodes.filter((node) => node.state === "active").map((node) => node.id));
  const movable = shards.filter((shard) => shard.leader !== null && settled(shard));
  const led = new Map<string, number>([...active].map((id) => [id, 0]));
  for (const shard of shards)
    if (shard.leader !== null) led.set(shard.leader, (led.get(shard.leader) ?? 0) + 1);
  const count = (id: string) => led.get(id) ?? 0;
  const leastLed = (shard: ShardPlacement) =>
    shard.replicas
      .filter((id) => active.has(id) && id !== shard.leader)
      .sort((a, b) => count(a) - count(b) || (a < b ? -1 : 1))[0];

  const leaving = movable.filter((shard) => !active.has(shard.leader as string));
  if (leaving.length > 0) {
    return leaving.flatMap((shard) => {
      const to = leastLed(shard);
      return to === undefined ? [] : [{ group: shard.group, from: shard.leader as string, to }];
    });
  }
  const sources = [...active].sort((a, b) => count(b) - count(a) || (a < b ? -1 : 1));
  for (const source of sources) {
    // Breadth-first from `source`; `via` remembers the shard that reached each node.
    const via = new Map<string, { shard: ShardPlacement; from: string }>();
    const queue = [source];
    const seen = new Set([source]);
    while (queue.length > 0) {
      const node = queue.shift() as string;
      if (count(node) <= count(source) - 2) {
        const path: { group: number; from: string; to: string }[] = [];
        for (let at = node; at !== source; ) {
          const step = via.get(at)!;
          path.unshift({ group: step.shard.group, from: step.from, to: at });
          at = step.from;
        }
        return path;
      }
      for (const shard of movable) {
        if (shard.leader !== node) continue;
        for (const next of shard.replicas) {
          if (seen.has(next) || !active.has(next)) continue;
          seen.add(next);
          via.set(next, { shard, from: node });
          queue.push(next);
        }
      }
    }
  }
  return [];
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((node) => b.includes(node));
}
