/**
 * @module What one `brigade verify` run produced: its settings, its history and each
 * checker's result. The runner writes it (`run.json` beside `history.jsonl`); the HTML report
 * and the CLI's summary read it.
 */
import type { CheckResult, HistoryEvent, Verdict } from "../checker/history.js";

export interface VerifySettings {
  readonly workloads: readonly string[];
  readonly nemeses: readonly string[];
  readonly seed: number;
  /** How long clients ran, ms (recovery and final reads come after). */
  readonly durationMs: number;
  /** Clients per workload. */
  readonly concurrency: number;
  /** Node ids of the cluster under test. */
  readonly nodes: readonly string[];
  /** Per-operation client timeout, ms. */
  readonly timeoutMs: number;
}

export interface VerifyRun {
  readonly settings: VerifySettings;
  /** Wall-clock ISO time when the run started; event times are ms after it. */
  readonly startedAt: string;
  readonly history: readonly HistoryEvent[];
  readonly results: readonly CheckResult[];
  /** Every checker valid → valid; any invalid → invalid; else unknown. */
  readonly verdict: Verdict;
  /** Wall time the checkers took, ms. */
  readonly checkMs: number;
}
