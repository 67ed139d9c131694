/**
 * @module The closed-loop load generator shared by the Brigade and the baseline bench
 * clients, so both sides are measured by exactly the same code: it keeps `inFlight` requests
 * outstanding (each completion issues the next one), discards a warmup, then counts the
 * completions inside a fixed window and records their latencies.
 */
import { performance } from "node:perf_hooks";

export interface ClosedLoopOptions {
  readonly inFlight: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Issues one request; settles when its response arrives. */
  readonly send: () => Promise<unknown>;
}

export interface ClosedLoopResult {
  readonly inFlight: number;
  /** Completions inside the measured window. */
  readonly ops: number;
  /** Successful completions over warmup + window + drain (for CPU per request). */
  readonly completedTotal: number;
  readonly windowMs: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** Non-zero only when the run was aborted by a failed request. */
  readonly errors: number;
  readonly firstError: string | null;
}

/** Nearest-rank percentile of an ascending array; 0 for an empty one. */
export function percentile(sorted: Float64Array, quantile: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(quantile * sorted.length)));
  return sorted[rank - 1] as number;
}

/**
 * Runs the loop: warmup, then the window. After the window closes no request is issued and
 * the loop resolves once the outstanding ones have settled, so the next run starts idle.
 * The first failed request aborts the run (a benchmark with errors measures nothing).
 */
export function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const { inFlight, warmupMs, durationMs, send } = options;
  return new Promise<ClosedLoopResult>((resolve) => {
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    let completedTotal = 0;
    let outstanding = 0;
    let errors = 0;
    let firstError: string | null = null;
    let stopping = false;
    const start = performance.now();
    const windowStart = start + warmupMs;
    const windowEnd = windowStart + durationMs;

    const finish = () => {
      const sorted = latencies.subarray(0, count).sort();
      let sum = 0;
      for (let i = 0; i < count; i++) sum += sorted[i] as number;
      resolve({
        inFlight,
        ops: count,
        completedTotal,
        windowMs: durationMs,
        opsPerSec: count / (durationMs / 1000),
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        meanMs: count === 0 ? 0 : sum / count,
        maxMs: count === 0 ? 0 : (sorted[count - 1] as number),
        errors,
        firstError,
      });
    };

    const settled = (sentAt: number, error: unknown) => {
      outstanding--;
      const now = performance.now();
      if (error !== undefined) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        stopping = true;
      } else {
        completedTotal++;
        if (now >= windowStart && now <= windowEnd) record(now - sentAt);
      }
      if (!stopping && now < windowEnd) issue();
      else if (outstanding === 0) finish();
    };

    const record = (latencyMs: number) => {
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = latencyMs;
    };

    const issue = () => {
      const sentAt = performance.now();
      outstanding++;
      let pending: Promise<unknown>;
      try {
        pending = send();
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        () => settled(sentAt, undefined),
        (error: unknown) => settled(sentAt, error ?? new Error("request failed")),
      );
    };

    for (let i = 0; i < inFlight; i++) issue();
  });
}
