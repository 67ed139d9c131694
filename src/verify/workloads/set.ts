/**
 * @module The `set` workload: each add puts a new key `{set}/<n>` (the hash tag keeps them
 * on one shard), and a read scans them all. Every add acknowledged before a read started
 * must be in that read, and the final read must hold every acknowledged add.
 */
import type { CheckResult, HistoryEvent } from "../../checker/history.js";
import type { Prng } from "../../lib/prng.js";
import type { NodeClient } from "../node-client.js";
import type { CheckBudget, OpOutcome, OpRequest, Workload, WorkloadOptions } from "../workload.js";
import { checkSetHistory } from "./checks.js";
import { putKey, readFailure, scanPrefix, writeOutcome } from "./kv-calls.js";

const prefix = "{set}/";

export class SetWorkload implements Workload {
  readonly name = "set";
  readonly keyspace: string;
  ownsKey(key: string): boolean {
    return key === "set";
  }
  #nextElement = 1;

  constructor(options: WorkloadOptions) {
    this.keyspace = options.keyspace;
  }

  setup(): readonly OpRequest[] {
    return [];
  }

  next(random: Prng): OpRequest {
    // Reads are rare (2 %): each records every element added so far, so the history grows
    // with the square of the run length.
    if (random.chance(0.02)) return { f: "read", key: "set", value: null };
    return { f: "add", key: "set", value: this.#nextElement++ };
  }

  async apply(client: NodeClient, op: OpRequest): Promise<OpOutcome> {
    if (op.f === "add") {
      const element = op.value as number;
      return writeOutcome(await putKey(client, this.keyspace, `${prefix}${element}`, "1"), element);
    }
    const result = await scanPrefix(client, this.keyspace, prefix);
    if ("failed" in result) return readFailure(result.failed);
    const elements = result.items
      .map((item) => Number(item.key.slice(prefix.length)))
      .sort((a, b) => a - b);
    return { type: "ok", value: elements };
  }

  finalReads(): readonly OpRequest[] {
    return [{ f: "read", key: "set", value: null }];
  }

  check(events: readonly HistoryEvent[], _budget: CheckBudget): CheckResult[] {
    return [checkSetHistory(events)];
  }
}
