/**
 * @module What a verify workload is: a generator of operations, a way to run one against a
 * node, the final reads that must see everything, and the checkers that judge the history.
 * Workloads know nothing of faults, and checkers nothing of HTTP: the same pieces will
 * verify the eventually consistent keyspaces later.
 */
import type { CheckResult, HistoryEvent } from "../checker/history.js";
import type { Prng } from "../lib/prng.js";
import type { NodeClient } from "./node-client.js";

/** An operation to run: it becomes the invoke event. */
export interface OpRequest {
  readonly f: string;
  readonly key: string;
  readonly value: unknown;
}

/** How an operation ended: it becomes the completion event. */
export interface OpOutcome {
  readonly type: "ok" | "fail" | "info";
  /** For ok: the result (a read's value); otherwise the argument. */
  readonly value: unknown;
  readonly error?: string;
}

/** What a worker remembers between its operations (e.g. the last value it read per key). */
export type WorkerMemory = Map<string, unknown>;

export interface CheckBudget {
  /** The linearizability search gives up on a key (verdict unknown) past this many steps. */
  readonly stepsPerKey: number;
  /** True once the whole check has run out of time. */
  readonly shouldStop: () => boolean;
}

export interface Workload {
  readonly name: string;
  /** The keyspace it creates and uses. */
  readonly keyspace: string;
  /** Whether a history key is one of its own: its events are those on its keys. */
  ownsKey(key: string): boolean;
  /** Operations run once, in order, before the clients start (retried until ok). */
  setup(): readonly OpRequest[];
  /** The next operation of a worker. */
  next(random: Prng, memory: WorkerMemory): OpRequest;
  /** Runs one operation through `client` (one attempt: no retries that could hide a fault). */
  apply(client: NodeClient, op: OpRequest, memory: WorkerMemory): Promise<OpOutcome>;
  /** Reads run after the cluster has healed and recovered: they must see every acknowledged write. */
  finalReads(): readonly OpRequest[];
  check(events: readonly HistoryEvent[], budget: CheckBudget): CheckResult[];
}

/** Settings every workload takes. */
export interface WorkloadOptions {
  /** The keyspace name (unique per run, so runs against one cluster do not mix). */
  readonly keyspace: string;
}
