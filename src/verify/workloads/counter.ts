/**
 * @module The `counter` workload: one key holding a number, incremented only by
 * compare-and-set (read, then CAS old → old + 1), and read. The history is checked as a
 * linearizable register, and the final value against the increments: at least every
 * acknowledged one, at most those plus the indeterminate ones.
 */
import type { CheckResult, HistoryEvent } from "../../checker/history.js";
import type { Prng } from "../../lib/prng.js";
import type { NodeClient } from "../node-client.js";
import type {
  CheckBudget,
  OpOutcome,
  OpRequest,
  WorkerMemory,
  Workload,
  WorkloadOptions,
} from "../workload.js";
import { checkCounter, checkRegisters } from "./checks.js";
import { applyRegisterOp } from "./register.js";

export class CounterWorkload implements Workload {
  readonly name = "counter";
  readonly keyspace: string;
  ownsKey(key: string): boolean {
    return key === "counter";
  }

  constructor(options: WorkloadOptions) {
    this.keyspace = options.keyspace;
  }

  setup(): readonly OpRequest[] {
    // Conditional, so a retry cannot reset a counter an earlier attempt already started.
    return [{ f: "cas", key: "counter", value: [null, 0] }];
  }

  next(random: Prng, memory: WorkerMemory): OpRequest {
    const seen = memory.get("counter") as number | null | undefined;
    if (typeof seen !== "number" || random.chance(0.3))
      return { f: "read", key: "counter", value: null };
    return { f: "cas", key: "counter", value: [seen, seen + 1] };
  }

  apply(client: NodeClient, op: OpRequest, memory: WorkerMemory): Promise<OpOutcome> {
    return applyRegisterOp(client, this.keyspace, op, memory);
  }

  finalReads(): readonly OpRequest[] {
    return [{ f: "read", key: "counter", value: null }];
  }

  check(events: readonly HistoryEvent[], budget: CheckBudget): CheckResult[] {
    return [checkRegisters(events, null, budget), checkCounter(events)];
  }
}
