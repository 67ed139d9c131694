/**
 * @module The counter checker: a counter set to 0 once (a write, or a cas from absent), then
 * incremented only by CAS (old → old + 1).
 * The final read must count every acknowledged increment and no more than the increments
 * that may have happened (acknowledged plus indeterminate); no read may ever exceed that.
 * Linearizability of the same history is checked separately; this one names the failure in
 * the counter's own terms (lost or phantom increments).
 */
import type { Anomaly, CheckResult, HistoryEvent } from "./history.js";
import { pairOperations } from "./history.js";

export function checkCounter(events: readonly HistoryEvent[]): CheckResult {
  const operations = pairOperations(events);
  // cas [v, v + 1]; a cas from null (absent) is the initial 0, not an increment.
  const increments = operations.filter(
    (op) => op.f === "cas" && (op.input as [number | null, number])[0] !== null,
  );
  const acknowledged = increments.filter((op) => op.type === "ok").length;
  const possible = acknowledged + increments.filter((op) => op.type === "info").length;
  const reads = operations.filter((op) => op.f === "read" && op.type === "ok");
  const anomalies: Anomaly[] = [];
  for (const read of reads) {
    const value = read.output as number | null;
    if (value !== null && (value < 0 || value > possible)) {
      anomalies.push({
        kind: "phantom-increment",
        message: `a read returned ${value}, but at most ${possible} increments ever happened`,
        events: [read.invokeIndex],
        window: { from: read.callTime, to: read.returnTime },
      });
    }
  }
  const final = reads.reduce<(typeof reads)[number] | null>(
    (latest, read) => (latest === null || read.callTime > latest.callTime ? read : latest),
    null,
  );
  const finalValue = (final?.output as number | null | undefined) ?? null;
  // Only increments acknowledged before the final read began must be in it (when the
  // run's last reads failed, the final read may be one from the middle of the run).
  const acknowledgedBefore =
    final === null
      ? 0
      : increments.filter((op) => op.type === "ok" && op.returnTime < final.callTime).length;
  if (final !== null && (finalValue ?? 0) < acknowledgedBefore) {
    anomalies.push({
      kind: "lost-increment",
      message: `the final read returned ${finalValue}, but ${acknowledgedBefore} increments were acknowledged before it began`,
      events: [final.invokeIndex],
      window: { from: final.callTime, to: final.returnTime },
    });
  }
  const stats = { increments: increments.length, acknowledged, possible, reads: reads.length };
  if (anomalies.length > 0)
    return {
      checker: "counter",
      verdict: "invalid",
      summary: anomalies.map((anomaly) => anomaly.message).join("; "),
      anomalies,
      stats,
    };
  if (final === null)
    return {
      checker: "counter",
      verdict: "unknown",
      summary: "no read succeeded, so the count cannot be checked",
      anomalies,
      stats: { ...stats },
    };
  return {
    checker: "counter",
    verdict: "valid",
    summary: `final value ${finalValue}: ${acknowledged} acknowledged increments, at most ${possible} possible`,
    anomalies,
    stats: { ...stats, final: finalValue ?? 0 },
  };
}
