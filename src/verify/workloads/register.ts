/**
 * @module The `register` workload: reads, writes and compare-and-sets on a few keys, each
 * key one linearizable register. Written values are unique, so a read names the write it
 * saw, and a read of a value nobody wrote cannot pass for a real one.
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
import { checkRegisters } from "./checks.js";
import { getKey, isCompareFailed, putKey, readFailure, writeOutcome } from "./kv-calls.js";

export interface RegisterOptions extends WorkloadOptions {
  /** How many independent registers (default 3). */
  readonly keys?: number;
}

export class RegisterWorkload implements Workload {
  readonly name = "register";
  readonly keyspace: string;
  readonly keys: readonly string[];
  #nextValue = 1;

  ownsKey(key: string): boolean {
    return /^r\d+$/.test(key);
  }

  constructor(options: RegisterOptions) {
    this.keyspace = options.keyspace;
    this.keys = Array.from({ length: options.keys ?? 3 }, (_, i) => `r${i}`);
  }

  setup(): readonly OpRequest[] {
    return [];
  }

  next(random: Prng, memory: WorkerMemory): OpRequest {
    const key = random.pick(this.keys);
    const roll = random.float();
    if (roll < 0.5) return { f: "read", key, value: null };
    const value = this.#nextValue++;
    if (roll < 0.75) return { f: "write", key, value };
    // Compare against what this worker last saw, so a good share of CASes can succeed.
    const expected = (memory.get(key) as number | null | undefined) ?? null;
    return { f: "cas", key, value: [expected, value] };
  }

  apply(client: NodeClient, op: OpRequest, memory: WorkerMemory): Promise<OpOutcome> {
    return applyRegisterOp(client, this.keyspace, op, memory);
  }

  finalReads(): readonly OpRequest[] {
    return this.keys.map((key) => ({ f: "read", key, value: null }));
  }

  check(events: readonly HistoryEvent[], budget: CheckBudget): CheckResult[] {
    return [checkRegisters(events, null, budget)];
  }
}

/** read / write / cas on a register whose value is a number stored as text. */
export async function applyRegisterOp(
  client: NodeClient,
  keyspace: string,
  op: OpRequest,
  memory: WorkerMemory,
): Promise<OpOutcome> {
  if (op.f === "read") {
    const result = await getKey(client, keyspace, op.key);
    if ("failed" in result) return readFailure(result.failed);
    const value = result.read.value === null ? null : Number(result.read.value);
    memory.set(op.key, value);
    return { type: "ok", value };
  }
  if (op.f === "write") {
    const outcome = writeOutcome(
      await putKey(client, keyspace, op.key, String(op.value)),
      op.value,
    );
    if (outcome.type === "ok") memory.set(op.key, op.value);
    return outcome;
  }
  const [expected, value] = op.value as [number | null, number];
  const answer = await putKey(
    client,
    keyspace,
    op.key,
    String(value),
    expected === null ? { ifAbsent: true } : { ifValue: String(expected) },
  );
  if (isCompareFailed(answer)) {
    // The answer carries the current value: the next CAS of this worker aims at it.
    const current = (answer.body as { current?: { value: string } | null }).current;
    memory.set(op.key, current ? Number(current.value) : null);
  }
  const outcome = writeOutcome(answer, op.value);
  if (outcome.type === "ok") memory.set(op.key, value);
  return outcome;
}
