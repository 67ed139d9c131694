/**
 * @module The set checker (Jepsen's set-full, simplified). Operations: `add n`, and `read` →
 * every element. Per key (one set per key; "set" when the history has none):
 * - lost-add: an add acknowledged before a read was invoked is missing from that read. The
 *   final read (the last ok read invoked), run after the clients have stopped, so holds every
 *   acknowledged add; its anomaly says so. An add racing a read may go either way;
 * - unexpected-element: a read holds a value no add ever attempted;
 * - duplicate-element: a read holds a value twice.
 * Invalid on any anomaly; unknown when adds were acknowledged but no read ever succeeded
 * (nothing to check them against). Indeterminate adds may or may not show up; those in the
 * final read count as recovered.
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
  type Verdict,
} from "./history.js";

export interface SetCheckOptions {
  /** Anomalies listed (all are counted); bounds the report on a badly broken run. */
  readonly anomaliesMax?: number;
  /** Elements named in one anomaly's message. */
  readonly elementsShownMax?: number;
}

const defaultAnomaliesMax = 1000;
const defaultElementsShownMax = 20;

export function checkSet(
  events: readonly HistoryEvent[],
  options: SetCheckOptions = {},
): CheckResult {
  return checkSetOperations(pairOperations(events), options);
}

export function checkSetOperations(
  operations: readonly Operation[],
  options: SetCheckOptions = {},
): CheckResult {
  const anomaliesMax = options.anomaliesMax ?? defaultAnomaliesMax;
  const shownMax = options.elementsShownMax ?? defaultElementsShownMax;
  const byKey = groupByKey(
    operations.filter((op) => op.f === "add" || op.f === "read"),
    (op) => op.key ?? "set",
  );

  const anomalies: Anomaly[] = [];
  const counts = { lostAdd: 0, unexpected: 0, duplicate: 0 };
  const report = (anomaly: Anomaly) => {
    if (anomalies.length < anomaliesMax) anomalies.push(anomaly);
  };
  const shown = (values: readonly unknown[]) => listValues(values, shownMax);
  const verdicts: Verdict[] = [];
  let attempted = 0;
  let acknowledged = 0;
  let lost = 0;
  let recovered = 0;
  let reads = 0;

  for (const [key, ops] of byKey) {
    const adds = ops.filter((op) => op.f === "add");
    const okReads = ops
      .filter((op) => op.f === "read" && op.type === "ok")
      .sort((a, b) => a.callTime - b.callTime || a.invokeIndex - b.invokeIndex);
    // A failed add did not happen: its element may never appear.
    const possibleValues = new Set<unknown>(
      adds.filter((op) => op.type !== "fail").map((op) => op.input),
    );
    const failedValues = new Set<unknown>(
      adds.filter((op) => op.type === "fail").map((op) => op.input),
    );
    // Sets only grow: an element a completed read showed must be in every read begun after.
    const readsByReturn = [...okReads].sort((a, b) => a.returnTime - b.returnTime);
    const observed = new Map<unknown, Operation>();
    let observedThrough = 0;
    const okAdds = adds
      .filter((op) => op.type === "ok")
      .sort((a, b) => a.returnTime - b.returnTime || a.invokeIndex - b.invokeIndex);
    attempted += adds.length;
    acknowledged += okAdds.length;
    reads += okReads.length;
    const lostHere = new Set<Operation>();
    const final = okReads.at(-1);
    let keyInvalid = false;

    for (const read of okReads) {
      const elements = Array.isArray(read.output) ? (read.output as unknown[]) : [];
      const present = new Set<unknown>();
      const duplicates: unknown[] = [];
      const unexpected: unknown[] = [];
      const failedPresent: unknown[] = [];
      for (const element of elements) {
        if (present.has(element)) duplicates.push(element);
        present.add(element);
        if (failedValues.has(element)) failedPresent.push(element);
        else if (!possibleValues.has(element)) unexpected.push(element);
      }
      for (; observedThrough < readsByReturn.length; observedThrough++) {
        const earlier = readsByReturn[observedThrough] as Operation;
        if (earlier.returnTime >= read.callTime) break;
        for (const element of earlier.output as unknown[])
          if (possibleValues.has(element) && !observed.has(element)) observed.set(element, earlier);
      }
      const shownBefore = [...observed].filter(([element]) => !present.has(element));
      const readWindow = { from: read.callTime, to: read.returnTime };
      if (duplicates.length > 0) {
        counts.duplicate++;
        keyInvalid = true;
        report({
          kind: "duplicate-element",
          key,
          message: `read [#${read.invokeIndex}] of set ${JSON.stringify(key)} holds ${shown(duplicates)} more than once`,
          events: [read.invokeIndex],
          window: readWindow,
        });
      }
      if (unexpected.length > 0) {
        counts.unexpected++;
        keyInvalid = true;
        report({
          kind: "unexpected-element",
          key,
          message: `read [#${read.invokeIndex}] of set ${JSON.stringify(key)} holds ${shown(unexpected)}, which no add attempted`,
          events: [read.invokeIndex],
          window: readWindow,
        });
      }
      if (failedPresent.length > 0) {
        counts.unexpected++;
        keyInvalid = true;
        report({
          kind: "failed-add-present",
          key,
          message: `read [#${read.invokeIndex}] of set ${JSON.stringify(key)} holds ${shown(failedPresent)}, whose adds were answered as not applied`,
          events: [read.invokeIndex],
          window: readWindow,
        });
      }
      // Acknowledged before this read was invoked (okAdds is sorted by return time).
      const missing: Operation[] = [];
      const isFinal = read === final;
      for (const add of okAdds) {
        if (add.returnTime >= read.callTime) break;
        if (!present.has(add.input)) missing.push(add);
      }
      if (missing.length > 0) {
        counts.lostAdd++;
        keyInvalid = true;
        for (const add of missing) lostHere.add(add);
        report({
          kind: "lost-add",
          key,
          message:
            `${isFinal ? "final read" : "read"} [#${read.invokeIndex}] of set ${JSON.stringify(key)} ` +
            `misses ${missing.length} acknowledged add${missing.length === 1 ? "" : "s"}: ${shown(missing.map((add) => add.input))}`,
          events: [read.invokeIndex, ...missing.slice(0, shownMax).map((add) => add.invokeIndex)],
          window: {
            from: Math.min(read.callTime, ...missing.slice(0, shownMax).map((add) => add.callTime)),
            to: read.returnTime,
          },
        });
      }
      // Elements an earlier read showed that are not acknowledged adds (indeterminate ones).
      const missingValues = new Set(missing.map((add) => add.input));
      const vanished = shownBefore.filter(([element]) => !missingValues.has(element));
      if (vanished.length > 0) {
        counts.lostAdd++;
        keyInvalid = true;
        const [element, earlier] = vanished[0] as [unknown, Operation];
        report({
          kind: "lost-element",
          key,
          message: `read [#${read.invokeIndex}] of set ${JSON.stringify(key)} misses ${shown(vanished.map(([value]) => value))}, which the earlier read [#${earlier.invokeIndex}] showed (${JSON.stringify(element)})`,
          events: [earlier.invokeIndex, read.invokeIndex],
          window: { from: earlier.callTime, to: read.returnTime },
        });
      }
    }
    lost += lostHere.size;
    if (final !== undefined && Array.isArray(final.output)) {
      const finalElements = new Set<unknown>(final.output as unknown[]);
      for (const add of adds) if (add.type === "info" && finalElements.has(add.input)) recovered++;
    }
    verdicts.push(
      keyInvalid ? "invalid" : okAdds.length > 0 && final === undefined ? "unknown" : "valid",
    );
  }

  const verdict = combineVerdicts(verdicts);
  const total = counts.lostAdd + counts.unexpected + counts.duplicate;
  const summary =
    verdict === "valid"
      ? `set: ${acknowledged} of ${attempted} adds acknowledged, none lost (${recovered} indeterminate recovered)`
      : verdict === "invalid"
        ? `set: ${total} bad reads (${lost} acknowledged adds lost, ${counts.unexpected} reads with unexpected elements, ${counts.duplicate} with duplicates)`
        : "set: no successful read to check the acknowledged adds against";
  return {
    checker: "set",
    verdict,
    summary,
    anomalies,
    stats: {
      keys: byKey.size,
      attempted,
      acknowledged,
      lost,
      recovered,
      reads,
      readsMissingAdds: counts.lostAdd,
      readsWithUnexpected: counts.unexpected,
      readsWithDuplicates: counts.duplicate,
    },
  };
}
