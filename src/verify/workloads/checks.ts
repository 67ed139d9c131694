/** @module The checkers each workload runs, with the run's budget (see `checker/`). */
import { checkAppend } from "../../checker/append.js";
import { checkBank } from "../../checker/bank.js";
import type { CheckResult, HistoryEvent } from "../../checker/history.js";
import { checkLinearizable } from "../../checker/linearizability.js";
import { type RegisterValue, registerModel } from "../../checker/models.js";
import { checkSet } from "../../checker/set.js";
import type { CheckBudget } from "../workload.js";

export { checkCounter } from "../../checker/counter.js";

/** Each key a linearizable register (read, write, cas); drops the per-key detail. */
export function checkRegisters(
  events: readonly HistoryEvent[],
  initial: RegisterValue,
  budget: CheckBudget,
): CheckResult {
  const { perKey: _perKey, ...result } = checkLinearizable(events, registerModel(initial), {
    maxStepsPerKey: budget.stepsPerKey,
    shouldStop: budget.shouldStop,
  });
  return result;
}

export function checkSetHistory(events: readonly HistoryEvent[]): CheckResult {
  return checkSet(events);
}

export function checkBankHistory(
  events: readonly HistoryEvent[],
  accounts: readonly string[],
  total: number,
): CheckResult {
  return checkBank(events, { accounts, total });
}

export function checkAppendHistory(
  events: readonly HistoryEvent[],
  budget: CheckBudget,
): CheckResult {
  const { linearizability: _linearizability, ...result } = checkAppend(events, {
    maxStepsPerKey: budget.stepsPerKey,
    shouldStop: budget.shouldStop,
  });
  return result;
}
