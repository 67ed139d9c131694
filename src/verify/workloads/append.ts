/**
 * @module The `append` workload: each key holds a JSON list; an append reads the list and
 * writes it back with one more element, conditional on the key's modRevision (a lost race is
 * retried inside the operation, since a 409 proves nothing was written). Reads return the
 * list. Checked as linearizable lists, plus direct anomalies: elements nobody appended,
 * duplicates, orders that disagree, acknowledged appends missing at the end.
 */
import type { CheckResult, HistoryEvent } from "../../checker/history.js";
import type { Prng } from "../../lib/prng.js";
import type { NodeClient } from "../node-client.js";
import type { CheckBudget, OpOutcome, OpRequest, Workload, WorkloadOptions } from "../workload.js";
import { checkAppendHistory } from "./checks.js";
import { getKey, isCompareFailed, putKey, readFailure, writeOutcome } from "./kv-calls.js";

export interface AppendOptions extends WorkloadOptions {
  /** How many lists are in use at once (default 3). */
  readonly keys?: number;
  /** Appends a list gets before a fresh key replaces it (default 100). */
  readonly appendsPerKey?: number;
}

/** Conditional writes an append tries before it gives up (a definite fail). */
const appendAttemptsMax = 8;

export class AppendWorkload implements Workload {
  readonly name = "append";
  readonly keyspace: string;
  /**
   * The lists in use. Each retires after `appendsPerKey` appends, as in Jepsen's list-append:
   * every append rewrites the whole list and every read records it, so lists stay short and
   * the history grows linearly with the run.
   */
  readonly #active: string[];
  readonly #appends = new Map<string, number>();
  readonly #appendsPerKey: number;
  #keysUsed: number;
  #nextElement = 1;

  constructor(options: AppendOptions) {
    this.keyspace = options.keyspace;
    this.#keysUsed = options.keys ?? 3;
    this.#active = Array.from({ length: this.#keysUsed }, (_, i) => `l${i}`);
    this.#appendsPerKey = options.appendsPerKey ?? 100;
  }

  ownsKey(key: string): boolean {
    return /^l\d+$/.test(key);
  }

  setup(): readonly OpRequest[] {
    return [];
  }

  next(random: Prng): OpRequest {
    const slot = random.int(this.#active.length);
    const key = this.#active[slot] as string;
    if (random.chance(0.4)) return { f: "read", key, value: null };
    const appends = (this.#appends.get(key) ?? 0) + 1;
    this.#appends.set(key, appends);
    if (appends >= this.#appendsPerKey) this.#active[slot] = `l${this.#keysUsed++}`;
    return { f: "append", key, value: this.#nextElement++ };
  }

  async apply(client: NodeClient, op: OpRequest): Promise<OpOutcome> {
    if (op.f === "read") {
      const result = await getKey(client, this.keyspace, op.key);
      if ("failed" in result) return readFailure(result.failed);
      return { type: "ok", value: parseList(result.read.value) };
    }
    for (let attempt = 0; attempt < appendAttemptsMax; attempt++) {
      const result = await getKey(client, this.keyspace, op.key);
      // Nothing written so far in this operation: a failed read is a definite fail.
      if ("failed" in result) return { ...readFailure(result.failed), value: op.value };
      const list = [...parseList(result.read.value), op.value as number];
      const answer = await putKey(client, this.keyspace, op.key, JSON.stringify(list), {
        ifModRevision: result.read.modRevision,
      });
      if (!isCompareFailed(answer)) return writeOutcome(answer, op.value);
    }
    return { type: "fail", value: op.value, error: `lost ${appendAttemptsMax} races` };
  }

  finalReads(): readonly OpRequest[] {
    return Array.from({ length: this.#keysUsed }, (_, i) => ({
      f: "read",
      key: `l${i}`,
      value: null,
    }));
  }

  check(events: readonly HistoryEvent[], budget: CheckBudget): CheckResult[] {
    return [checkAppendHistory(events, budget)];
  }
}

function parseList(text: string | null): number[] {
  return text === null ? [] : (JSON.parse(text) as number[]);
}
