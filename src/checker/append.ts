/**
 * @module The append checker: each key is an append-only list (`append n`, `read` → the
 * list). Per key, the appends and reads must be linearizable against `appendModel`; and
 * because a failed linearizability search says little about why, the cheap direct anomalies
 * are reported too, each pointing at the reads that show it:
 * - unexpected-element: a read holds an element no append attempted;
 * - duplicate-element: a read holds an element twice;
 * - incompatible-order: two reads neither of which is a prefix of the other (the list was
 *   reordered or forked);
 * - lost-append: an append acknowledged before the final read began, missing from it (final
 *   reads run after the clients stop; one racing appends proves nothing about them).
 */
import {
  type Anomaly,
  type CheckResult,
  combineVerdicts,
  groupByKey,
  type HistoryEvent,
  listValues,
  type Operation,
  pairOperations,
} from "./history.js";
import {
  checkLinearizableOperations,
  type LinearizabilityOptions,
  type LinearizabilityResult,
} from "./linearizability.js";
import { appendModel } from "./models.js";

export interface AppendCheckResult extends CheckResult {
  /** The linearizability search, per key. */
  readonly linearizability: LinearizabilityResult;
}

export interface AppendCheckOptions extends LinearizabilityOptions {
  /** Direct anomalies listed (all are counted). */
  readonly anomaliesMax?: number;
}

const defaultAnomaliesMax = 1000;
const elementsShownMax = 20;

export function checkAppend(
  events: readonly HistoryEvent[],
  options: AppendCheckOptions = {},
): AppendCheckResult {
  return checkAppendOperations(pairOperations(events), options);
}

export function checkAppendOperations(
  operations: readonly Operation[],
  options: AppendCheckOptions = {},
): AppendCheckResult {
  const anomaliesMax = options.anomaliesMax ?? defaultAnomaliesMax;
  const relevant = operations.filter((op) => op.f === "append" || op.f === "read");
  const linearizability = checkLinearizableOperations(relevant, appendModel(), options);

  const byKey = groupByKey(relevant);
  const direct: Anomaly[] = [];
  const counts = new Map<string, number>();
  const report = (anomaly: Anomaly) => {
    counts.set(anomaly.kind, (counts.get(anomaly.kind) ?? 0) + 1);
    if (direct.length < anomaliesMax) direct.push(anomaly);
  };
  const shown = (values: readonly unknown[]) => listValues(values, elementsShownMax);
  let reads = 0;

  for (const [key, ops] of byKey) {
    const appended = new Set<unknown>();
    for (const op of ops) if (op.f === "append") appended.add(op.input);
    const okReads = ops
      .filter((op) => op.f === "read" && op.type === "ok" && Array.isArray(op.output))
      .sort((a, b) => a.callTime - b.callTime || a.invokeIndex - b.invokeIndex);
    reads += okReads.length;
    const listOf = (read: Operation) => read.output as readonly unknown[];
    const window = (...involved: Operation[]) => ({
      from: Math.min(...involved.map((op) => op.callTime)),
      to: Math.max(...involved.map((op) => op.returnTime).filter(Number.isFinite)),
    });

    let longest: Operation | undefined;
    for (const read of okReads) {
      const list = listOf(read);
      const seen = new Set<unknown>();
      const duplicates: unknown[] = [];
      const unexpected: unknown[] = [];
      for (const element of list) {
        if (seen.has(element)) duplicates.push(element);
        seen.add(element);
        if (!appended.has(element)) unexpected.push(element);
      }
      if (duplicates.length > 0)
        report({
          kind: "duplicate-element",
          key,
          message: `read [#${read.invokeIndex}] of list ${JSON.stringify(key)} holds ${shown(duplicates)} more than once`,
          events: [read.invokeIndex],
          window: window(read),
        });
      if (unexpected.length > 0)
        report({
          kind: "unexpected-element",
          key,
          message: `read [#${read.invokeIndex}] of list ${JSON.stringify(key)} holds ${shown(unexpected)}, which no append attempted`,
          events: [read.invokeIndex],
          window: window(read),
        });
      if (longest === undefined || list.length > listOf(longest).length) longest = read;
    }
    // Reads that agree are all prefixes of the longest: one pass finds every read that does not.
    if (longest !== undefined) {
      const full = listOf(longest);
      for (const read of okReads) {
        const list = listOf(read);
        const at = list.findIndex((element, index) => element !== full[index]);
        if (at === -1) continue;
        report({
          kind: "incompatible-order",
          key,
          message:
            `reads [#${read.invokeIndex}] and [#${longest.invokeIndex}] of list ${JSON.stringify(key)} ` +
            `disagree at position ${at}: ${JSON.stringify(list[at])} vs ${JSON.stringify(full[at])}; neither is a prefix of the other`,
          events: [read.invokeIndex, longest.invokeIndex].sort((a, b) => a - b),
          window: window(read, longest),
        });
      }
    }
    const final = okReads.at(-1);
    if (final !== undefined) {
      const present = new Set<unknown>(listOf(final));
      const missing = ops.filter(
        (op) =>
          op.f === "append" &&
          op.type === "ok" &&
          op.returnTime < final.callTime &&
          !present.has(op.input),
      );
      if (missing.length > 0)
        report({
          kind: "lost-append",
          key,
          message: `final read [#${final.invokeIndex}] of list ${JSON.stringify(key)} misses ${missing.length} acknowledged append${missing.length === 1 ? "" : "s"}: ${shown(missing.map((op) => op.input))}`,
          events: [
            final.invokeIndex,
            ...missing.slice(0, elementsShownMax).map((op) => op.invokeIndex),
          ],
          window: window(final, ...missing.slice(0, elementsShownMax)),
        });
    }
  }

  const directCount = [...counts.values()].reduce((a, b) => a + b, 0);
  const verdict = combineVerdicts([linearizability.verdict, directCount > 0 ? "invalid" : "valid"]);
  const summary =
    directCount === 0
      ? `append: ${linearizability.summary}`
      : `append: ${directCount} direct anomalies (${[...counts].map(([kind, n]) => `${n} ${kind}`).join(", ")}); ${linearizability.summary}`;
  return {
    checker: "append",
    verdict,
    summary,
    anomalies: [...direct, ...linearizability.anomalies],
    stats: {
      ...linearizability.stats,
      reads,
      directAnomalies: directCount,
      ...Object.fromEntries([...counts].map(([kind, n]) => [kind, n])),
    },
    linearizability,
  };
}
