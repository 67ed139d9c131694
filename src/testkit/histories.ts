/**
 * @module Hand-made histories for checker tests: an operation is written as one spec (process,
 * call and return time, result) and becomes its invoke and completion events, in time order.
 */
import type { HistoryEvent } from "../checker/history.js";

export interface OpSpec {
  readonly p: number;
  readonly f: string;
  readonly key?: string;
  /** The argument (write n, cas [e, n], add n, append n). */
  readonly value?: unknown;
  /** A read's result. */
  readonly out?: unknown;
  readonly call: number;
  /** Omitted: the history ends before the op completes (indeterminate). */
  readonly ret?: number;
  readonly type?: "ok" | "fail" | "info";
}

/** Events for the specs: an invoke at `call` and a completion at `ret` (key `defaultKey` if none). */
export function historyOf(specs: readonly OpSpec[], defaultKey: string): HistoryEvent[] {
  const raw: Omit<HistoryEvent, "index">[] = [];
  for (const spec of specs) {
    const key = spec.key ?? defaultKey;
    raw.push({
      type: "invoke",
      process: spec.p,
      f: spec.f,
      key,
      value: spec.value ?? null,
      time: spec.call,
    });
    if (spec.ret === undefined) continue;
    const type = spec.type ?? "ok";
    raw.push({
      type,
      process: spec.p,
      f: spec.f,
      key,
      value: type === "ok" && spec.f === "read" ? spec.out : (spec.value ?? null),
      time: spec.ret,
    });
  }
  // At equal times: completions, then invokes, then completions of zero-length ops, so a
  // process's next invoke follows its completion (callers keep zero-length ops from being
  // followed at the same instant by their process).
  const rank = (event: Omit<HistoryEvent, "index">, order: number) =>
    event.type === "invoke" ? 1 : raw[order - 1]?.time === event.time ? 2 : 0;
  const sorted = raw
    .map((event, order) => ({ event, order, rank: rank(event, order) }))
    .sort((a, b) => a.event.time - b.event.time || a.rank - b.rank || a.order - b.order);
  return sorted.map(({ event }, index) => ({ ...event, index }));
}
