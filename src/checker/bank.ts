/**
 * @module The bank checker: transfers move money between accounts and never create or
 * destroy it, so every successful read (a snapshot of all balances) must show exactly the
 * known accounts, balances summing to the total ("wrong-total"), and none below zero
 * ("negative-balance"). An account missing from a read, or one nobody opened, is
 * "missing-account" / "unknown-account"; a balance that is not a finite number is
 * "malformed-balance". Transfers themselves are not checked (their effects show in reads).
 */
import {
  type Anomaly,
  type CheckResult,
  type HistoryEvent,
  type Operation,
  pairOperations,
} from "./history.js";

export interface BankCheckOptions {
  readonly accounts: readonly string[];
  /** The sum of all balances, at all times. */
  readonly total: number;
  /** Anomalies listed (all are counted). */
  readonly anomaliesMax?: number;
}

const defaultAnomaliesMax = 1000;

export function checkBank(events: readonly HistoryEvent[], options: BankCheckOptions): CheckResult {
  return checkBankOperations(pairOperations(events), options);
}

export function checkBankOperations(
  operations: readonly Operation[],
  options: BankCheckOptions,
): CheckResult {
  const anomaliesMax = options.anomaliesMax ?? defaultAnomaliesMax;
  const known = new Set(options.accounts);
  const anomalies: Anomaly[] = [];
  const counts = new Map<string, number>();
  const stats = { reads: 0, transfersOk: 0, transfersFail: 0, transfersInfo: 0 };

  for (const op of operations) {
    if (op.f === "transfer") {
      if (op.type === "ok") stats.transfersOk++;
      else if (op.type === "fail") stats.transfersFail++;
      else stats.transfersInfo++;
      continue;
    }
    if (op.f !== "read" || op.type !== "ok") continue;
    stats.reads++;
    const found: { kind: string; detail: string }[] = [];
    const balances =
      typeof op.output === "object" && op.output !== null
        ? (op.output as Record<string, unknown>)
        : {};
    let sum = 0;
    for (const account of options.accounts) {
      if (!(account in balances)) {
        found.push({ kind: "missing-account", detail: `no balance for ${account}` });
        continue;
      }
      const balance = balances[account];
      if (typeof balance !== "number" || !Number.isFinite(balance)) {
        found.push({
          kind: "malformed-balance",
          detail: `${account} = ${JSON.stringify(balance)}`,
        });
        continue;
      }
      sum += balance;
      if (balance < 0) found.push({ kind: "negative-balance", detail: `${account} = ${balance}` });
    }
    for (const account of Object.keys(balances))
      if (!known.has(account))
        found.push({ kind: "unknown-account", detail: `${account} is not an account` });
    // A missing or malformed balance already explains a wrong sum.
    if (
      sum !== options.total &&
      !found.some((f) => f.kind === "missing-account" || f.kind === "malformed-balance")
    )
      found.push({ kind: "wrong-total", detail: `total ${sum}, expected ${options.total}` });
    for (const { kind, detail } of found) {
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      if (anomalies.length >= anomaliesMax) continue;
      anomalies.push({
        kind,
        ...(op.key === undefined ? {} : { key: op.key }),
        message: `read [#${op.invokeIndex}] by p${op.process}: ${detail} (${JSON.stringify(balances)})`,
        events: [op.invokeIndex],
        window: { from: op.callTime, to: op.returnTime },
      });
    }
  }

  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const verdict = total > 0 ? "invalid" : stats.reads === 0 ? "unknown" : "valid";
  const summary =
    verdict === "valid"
      ? `bank: ${stats.reads} reads all total ${options.total} with no negative balance`
      : verdict === "invalid"
        ? `bank: ${total} anomalies (${[...counts].map(([kind, n]) => `${n} ${kind}`).join(", ")})`
        : "bank: no successful read";
  return {
    checker: "bank",
    verdict,
    summary,
    anomalies,
    stats: { ...stats, anomalies: total },
  };
}
