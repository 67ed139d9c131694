/**
 * @module The placement driver's runtime: on the meta group's leader only, once a second, it
 * observes the cluster — the catalog, each shard group's configuration and leader (asked of
 * the group's leader), and which nodes membership has declared dead for longer than the
 * replace delay — and carries out what `core/placement/rebalance.ts` decides: catalog edits
 * through the meta group, one-server membership changes and leadership transfers through the
 * shard leaders. It keeps no state of its own beyond "dead since": a new meta leader picks
 * up where the old one stopped, because the catalog holds the desired sets and the groups
 * hold their actual configurations.
 */
import type { Logger } from "pino";
import {
  type MembershipStep,
  nextMembershipChange,
  type PlacementNodeInfo,
  planLeaderTransfers,
  planReplicaChanges,
  type ShardPlacement,
  settled,
} from "../../core/placement/rebalance.js";
import type { Catalog, CatalogCommand } from "./catalog.js";

export interface GroupObservation {
  readonly leader: string;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface PlacementDriverOptions {
  readonly catalog: Catalog;
  readonly logger: Logger;
  readonly isMetaLeader: () => boolean;
  /** Membership's view: a node absent or alive is up; "dead" or "left" is down. */
  readonly memberStates: () => ReadonlyMap<string, string>;
  /** The group's configuration from its leader, or null (no leader, unreachable). */
  readonly observeGroup: (group: number) => Promise<GroupObservation | null>;
  readonly applyStep: (group: number, step: MembershipStep) => Promise<void>;
  readonly proposeCatalog: (command: CatalogCommand) => Promise<void>;
  readonly settings: PlacementSettings;
}

export interface PlacementSettings {
  /** How often the meta leader looks at the cluster. */
  readonly intervalMs: number;
  /** How long membership must have declared a node dead before its replicas are re-created elsewhere. */
  readonly deadReplaceDelayMs: number;
  /** Shards moving (holding an extra replica while it catches up) at once. */
  readonly movesInFlightMax: number;
}

export const placementDefaults: PlacementSettings = {
  intervalMs: 1_000,
  // Long enough that a restart or a short partition does not trigger copying every replica
  // the node held (CockroachDB waits 5 minutes by default; a laptop cluster wants less).
  deadReplaceDelayMs: 60_000,
  movesInFlightMax: 4,
};

export interface PlacementStatus {
  readonly nodes: readonly {
    readonly id: string;
    readonly state: PlacementNodeInfo["state"];
    readonly replicas: number;
    readonly leaders: number;
  }[];
  /** Shards whose configuration differs from the catalog's set (a move in progress). */
  readonly moving: number;
  /** Shards not settled (a move in progress, or no leader to ask), with what was seen. */
  readonly unsettled: readonly {
    readonly group: number;
    readonly replicas: readonly string[];
    readonly voters: readonly string[] | null;
    readonly learners: readonly string[] | null;
    readonly leader: string | null;
    readonly problem: string | null;
  }[];
  readonly observedAt: string | null;
}

export class PlacementDriver {
  readonly #deadSince = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #status: PlacementStatus = { nodes: [], moving: 0, unsettled: [], observedAt: null };

  constructor(private readonly options: PlacementDriverOptions) {}

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.options.settings.intervalMs);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The last observation (on the meta leader; empty elsewhere). */
  get status(): PlacementStatus {
    return this.#status;
  }

  /** One look at the cluster and the steps it calls for (skipped while the last is running). */
  async tick(): Promise<void> {
    if (this.#running || !this.options.isMetaLeader()) return;
    this.#running = true;
    try {
      await this.#tick();
    } catch (error) {
      this.options.logger.warn({ err: error }, "placement round failed");
    } finally {
      this.#running = false;
    }
  }

  async #tick(): Promise<void> {
    const { catalog, logger } = this.options;
    const view = catalog.view();
    const nodes = this.#nodeStates(view.nodes);
    const shards: ShardPlacement[] = [];
    const problems = new Map<number, string>();
    await Promise.all(
      view.keyspaces.flatMap((keyspace) =>
        keyspace.shardMap.map(async (shard) => {
          const observed = await this.options.observeGroup(shard.group).catch((error: unknown) => {
            problems.set(shard.group, (error as Error).message);
            return null;
          });
          shards.push({
            group: shard.group,
            replicas: shard.replicas,
            replicasWanted: keyspace.replicas,
            config:
              observed === null ? null : { voters: observed.voters, learners: observed.learners },
            leader: observed?.leader ?? null,
          });
        }),
      ),
    );
    shards.sort((a, b) => a.group - b.group);
    this.#status = statusOf(nodes, shards, problems);

    const steps: Promise<void>[] = [];
    for (const change of planReplicaChanges(nodes, shards, this.options.settings)) {
      logger.info({ group: change.group, replicas: change.replicas }, change.reason);
      steps.push(
        this.options.proposeCatalog({
          type: "set-replicas",
          group: change.group,
          replicas: change.replicas,
        }),
      );
    }
    for (const shard of shards) {
      const step = nextMembershipChange(shard);
      if (step === null) continue;
      logger.info({ group: shard.group, step }, "placement: membership step");
      steps.push(this.options.applyStep(shard.group, step));
    }
    for (const transfer of planLeaderTransfers(nodes, shards)) {
      logger.info(transfer, "placement: moving a leadership");
      steps.push(
        this.options.applyStep(transfer.group, { type: "transfer-leadership", to: transfer.to }),
      );
    }
    const results = await Promise.allSettled(steps);
    for (const result of results)
      if (result.status === "rejected")
        logger.debug({ err: result.reason }, "placement step not done; retried next round");
  }

  /** Catalog nodes with what membership says: dead for longer than the delay counts as dead. */
  #nodeStates(
    nodes: readonly { id: string; zone: string; state: "active" | "draining" }[],
  ): PlacementNodeInfo[] {
    const members = this.options.memberStates();
    const now = Date.now();
    return nodes.map((node) => {
      const member = members.get(node.id);
      const down = member === "dead" || member === "left";
      if (!down) this.#deadSince.delete(node.id);
      else if (!this.#deadSince.has(node.id)) this.#deadSince.set(node.id, now);
      const downForMs = down ? now - (this.#deadSince.get(node.id) ?? now) : 0;
      let state: PlacementNodeInfo["state"] = node.state;
      if (down && downForMs >= this.options.settings.deadReplaceDelayMs) state = "dead";
      else if ((down || member === "suspect") && state === "active") state = "unavailable";
      return { id: node.id, zone: node.zone, state };
    });
  }
}

function statusOf(
  nodes: readonly PlacementNodeInfo[],
  shards: readonly ShardPlacement[],
  problems: ReadonlyMap<number, string>,
): PlacementStatus {
  return {
    nodes: nodes.map((node) => ({
      id: node.id,
      state: node.state,
      replicas: shards.filter((shard) => shard.replicas.includes(node.id)).length,
      leaders: shards.filter((shard) => shard.leader === node.id).length,
    })),
    moving: shards.filter((shard) => nextMembershipChange(shard) !== null).length,
    unsettled: shards
      .filter((shard) => !settled(shard))
      .map((shard) => ({
        group: shard.group,
        replicas: shard.replicas,
        voters: shard.config?.voters ?? null,
        learners: shard.config?.learners ?? null,
        leader: shard.leader,
        problem: problems.get(shard.group) ?? null,
      })),
    observedAt: new Date().toISOString(),
  };
}
