/**
 * @module The `bank` workload: accounts `{bank}/a0..` on one shard (a hash tag), transfers
 * as transactions, reads of every balance in one transaction. Money is neither created nor
 * destroyed: every read must see the same total and no negative balance.
 *
 * A transfer reads both balances, then commits only if neither account changed since
 * (compare on modRevision); a conflict or an overdraft is a definite fail.
 */
import type { CheckResult, HistoryEvent } from "../../checker/history.js";
import type { Prng } from "../../lib/prng.js";
import type { NodeClient } from "../node-client.js";
import type { CheckBudget, OpOutcome, OpRequest, Workload, WorkloadOptions } from "../workload.js";
import { checkBankHistory } from "./checks.js";
import { readFailure, txn, writeOutcome } from "./kv-calls.js";

export interface BankOptions extends WorkloadOptions {
  /** Number of accounts (default 5). */
  readonly accounts?: number;
  /** Initial balance of each account (default 20). */
  readonly balance?: number;
}

interface TxnAnswer {
  readonly succeeded: boolean;
  readonly results: readonly {
    readonly op: string;
    readonly kv?: { readonly value: string; readonly modRevision: number } | null;
  }[];
}

export interface Transfer {
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

export class BankWorkload implements Workload {
  readonly name = "bank";
  readonly keyspace: string;
  ownsKey(key: string): boolean {
    return key === "bank";
  }
  readonly accounts: readonly string[];
  readonly total: number;
  readonly #balance: number;

  constructor(options: BankOptions) {
    this.keyspace = options.keyspace;
    this.accounts = Array.from({ length: options.accounts ?? 5 }, (_, i) => `a${i}`);
    this.#balance = options.balance ?? 20;
    this.total = this.#balance * this.accounts.length;
  }

  setup(): readonly OpRequest[] {
    return [{ f: "open", key: "bank", value: this.#balance }];
  }

  next(random: Prng): OpRequest {
    if (random.chance(0.3)) return { f: "read", key: "bank", value: null };
    const [from, to] = random.shuffle([...this.accounts]) as [string, string];
    return {
      f: "transfer",
      key: "bank",
      value: { from, to, amount: random.intInclusive(1, 5) } satisfies Transfer,
    };
  }

  async apply(client: NodeClient, op: OpRequest): Promise<OpOutcome> {
    if (op.f === "open") return this.#open(client, op.value as number);
    if (op.f === "read") {
      const answer = await txn(client, this.keyspace, {
        compare: [],
        success: this.accounts.map((account) => ({ op: "get", key: accountKey(account) })),
      });
      if (answer.status !== 200) return readFailure(answer);
      const { results } = answer.body as TxnAnswer;
      const balances: Record<string, number> = {};
      this.accounts.forEach((account, i) => {
        const kv = results[i]?.kv;
        // A missing account is left out, and the checker reports it missing.
        if (kv) balances[account] = Number(kv.value);
      });
      return { type: "ok", value: balances };
    }
    const { from, to, amount } = op.value as Transfer;
    const read = await txn(client, this.keyspace, {
      compare: [],
      success: [from, to].map((account) => ({ op: "get", key: accountKey(account) })),
    });
    // Nothing was written yet: a failed read makes the transfer a definite fail.
    if (read.status !== 200) return { ...readFailure(read), value: op.value };
    const [fromKv, toKv] = (read.body as TxnAnswer).results.map((result) => result.kv);
    if (!fromKv || !toKv) return { type: "fail", value: op.value, error: "account missing" };
    const fromBalance = Number(fromKv.value);
    if (fromBalance < amount) return { type: "fail", value: op.value, error: "insufficient funds" };
    const answer = await txn(client, this.keyspace, {
      compare: [
        { key: accountKey(from), target: "modRevision", op: "==", value: fromKv.modRevision },
        { key: accountKey(to), target: "modRevision", op: "==", value: toKv.modRevision },
      ],
      success: [
        { op: "put", key: accountKey(from), value: String(fromBalance - amount) },
        { op: "put", key: accountKey(to), value: String(Number(toKv.value) + amount) },
      ],
    });
    if (answer.status === 200 && !(answer.body as TxnAnswer).succeeded)
      return { type: "fail", value: op.value, error: "conflict" };
    return writeOutcome(answer, op.value);
  }

  /** Opens every account with the initial balance, once (a retry after success is a no-op). */
  async #open(client: NodeClient, balance: number): Promise<OpOutcome> {
    const first = accountKey(this.accounts[0] as string);
    const answer = await txn(client, this.keyspace, {
      compare: [{ key: first, target: "version", op: "==", value: 0 }],
      success: this.accounts.map((account) => ({
        op: "put",
        key: accountKey(account),
        value: String(balance),
      })),
    });
    return writeOutcome(answer, balance);
  }

  finalReads(): readonly OpRequest[] {
    return [{ f: "read", key: "bank", value: null }];
  }

  check(events: readonly HistoryEvent[], _budget: CheckBudget): CheckResult[] {
    return [checkBankHistory(events, this.accounts, this.total)];
  }
}

function accountKey(account: string): string {
  return `{bank}/${account}`;
}
