/**
 * @module Histories, Jepsen-style: every client operation is an `invoke` event followed by
 * one completion — `ok` (it happened, with this result), `fail` (it certainly did not
 * happen) or `info` (unknown: it may or may not have happened, now or later). A process runs
 * one operation at a time; after an `info` it is retired and its client continues under a
 * fresh process number, because its crashed operation stays concurrent with everything after
 * it. Faults are events of the process "nemesis".
 *
 * Values by workload (the checkers rely on these shapes):
 * - register / counter: `read` invoke null → ok `number | null`; `write` n; `cas` [expected, new].
 * - set: `add` n; `read` invoke null → ok `number[]`.
 * - bank: `transfer` {from, to, amount}; `read` invoke null → ok `Record<string, number>`.
 * - append: `append` n; `read` invoke null → ok `number[]`.
 * - nemesis: an `invoke` when it starts acting and an `info` when done, both with a
 *   `NemesisValue`: a fault is in force from its "start" info to its "stop" info (or the end).
 *
 * Pure: parsing, pairing and the types. Histories are written as JSONL, one event per line.
 */

export type EventType = "invoke" | "ok" | "fail" | "info";

export type ProcessId = number | "nemesis";

export interface HistoryEvent {
  /** Position in the history (0, 1, 2, ...). */
  readonly index: number;
  readonly type: EventType;
  readonly process: ProcessId;
  /** The operation: read, write, cas, add, transfer, append; for the nemesis: start, stop. */
  readonly f: string;
  /** The independent object the operation acts on (one linearizability search per key). */
  readonly key?: string;
  /** Invoke: the argument. Completion: the result (for ok) or the argument again. */
  readonly value: unknown;
  /** Milliseconds since the run started (monotonic). */
  readonly time: number;
  /** The node the client sent the request to. */
  readonly node?: string;
  /** Why an operation failed or is indeterminate. */
  readonly error?: string;
}

/** The value of a nemesis event. `fault` pairs a start with its stop. */
export interface NemesisValue {
  readonly fault: number;
  readonly action: "start" | "stop";
  /** partition, isolate, kill, pause, skew, delay, loss. */
  readonly kind: string;
  readonly nodes: readonly string[];
  /** For a person: "n1,n2 / n3,n4,n5", "SIGKILL n3", "+500ms". */
  readonly detail: string;
}

/** An invoke paired with its completion. */
export interface Operation {
  readonly process: ProcessId;
  readonly f: string;
  readonly key: string | undefined;
  /** The invoke's argument. */
  readonly input: unknown;
  /** The ok completion's result; undefined for fail and info. */
  readonly output: unknown;
  /** ok, fail or info; an invoke with no completion counts as info. */
  readonly type: "ok" | "fail" | "info";
  readonly invokeIndex: number;
  /** Index of the completion event; -1 when the history ended first. */
  readonly completeIndex: number;
  readonly callTime: number;
  /** Infinity for info: the operation may take effect at any later time. */
  readonly returnTime: number;
  readonly node: string | undefined;
  readonly error: string | undefined;
}

/** Pairs each invoke with the next completion of the same process; nemesis events are skipped. */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<ProcessId, HistoryEvent>();
  const operations: Operation[] = [];
  const finish = (invoke: HistoryEvent, completion: HistoryEvent | null) => {
    const type = completion === null ? "info" : (completion.type as "ok" | "fail" | "info");
    operations.push({
      process: invoke.process,
      f: invoke.f,
      key: invoke.key,
      input: invoke.value,
      output: type === "ok" ? completion?.value : undefined,
      type,
      invokeIndex: invoke.index,
      completeIndex: completion?.index ?? -1,
      callTime: invoke.time,
      returnTime: type === "info" ? Number.POSITIVE_INFINITY : (completion?.time ?? invoke.time),
      node: invoke.node,
      error: completion?.error,
    });
  };
  for (const event of events) {
    if (event.process === "nemesis") continue;
    if (event.type === "invoke") {
      const previous = open.get(event.process);
      if (previous !== undefined) {
        throw new Error(
          `history event ${event.index}: process ${event.process} invoked again before event ${previous.index} completed`,
        );
      }
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    if (invoke === undefined) {
      throw new Error(
        `history event ${event.index}: ${event.type} for process ${event.process} with no open invoke`,
      );
    }
    open.delete(event.process);
    finish(invoke, event);
  }
  for (const invoke of open.values()) finish(invoke, null);
  return operations.sort((a, b) => a.invokeIndex - b.invokeIndex);
}

/** For anomaly messages: the first `max` values as JSON, then how many there are in all. */
export function listValues(values: readonly unknown[], max: number): string {
  const head = values
    .slice(0, max)
    .map((value) => JSON.stringify(value))
    .join(", ");
  return values.length > max ? `${head}, ... (${values.length} in all)` : head;
}

/** Operations grouped by key (by default `op.key`, "" when absent), in key order. */
export function groupByKey(
  operations: Iterable<Operation>,
  keyOf: (op: Operation) => string = (op) => op.key ?? "",
): Map<string, Operation[]> {
  const groups = new Map<string, Operation[]>();
  for (const op of operations) {
    const key = keyOf(op);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [op]);
    else group.push(op);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Parses JSONL text into events; a malformed line throws with its line number. */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split("\n");
  for (let line = 0; line < lines.length; line++) {
    const event = parseHistoryLine(lines[line] as string, line + 1, events.length);
    if (event !== null) events.push(event);
  }
  return events;
}

/**
 * Parses one JSONL line (`lineNumber` for the error message) into the event at position
 * `index`; null for a blank line. For histories too large to hold as one string.
 */
export function parseHistoryLine(
  text: string,
  lineNumber: number,
  index: number,
): HistoryEvent | null {
  const raw = text.trim();
  if (raw === "") return null;
  let event: HistoryEvent;
  try {
    event = JSON.parse(raw) as HistoryEvent;
  } catch (error) {
    throw new Error(`history line ${lineNumber}: not JSON (${(error as Error).message})`);
  }
  if (
    typeof event !== "object" ||
    event === null ||
    !["invoke", "ok", "fail", "info"].includes(event.type) ||
    typeof event.f !== "string" ||
    typeof event.time !== "number" ||
    (typeof event.process !== "number" && event.process !== "nemesis")
  ) {
    throw new Error(`history line ${lineNumber}: not a history event: ${raw.slice(0, 200)}`);
  }
  return { ...event, index };
}

/** One line of JSONL per event. */
export function formatEvent(event: HistoryEvent): string {
  return JSON.stringify(event);
}

export type Verdict = "valid" | "invalid" | "unknown";

/** Combines verdicts: any invalid wins, then unknown. */
export function combineVerdicts(verdicts: Iterable<Verdict>): Verdict {
  let result: Verdict = "valid";
  for (const verdict of verdicts) {
    if (verdict === "invalid") return "invalid";
    if (verdict === "unknown") result = "unknown";
  }
  return result;
}

/** A problem a checker found, pointing at the history events that show it. */
export interface Anomaly {
  /** e.g. "nonlinearizable", "lost-add", "unexpected-element", "wrong-total", "negative-balance". */
  readonly kind: string;
  readonly message: string;
  readonly key?: string;
  /** Event indices (invokes) of the operations involved. */
  readonly events: readonly number[];
  /** The smallest window of the history that shows the problem, in run time. */
  readonly window?: { readonly from: number; readonly to: number };
}

export interface CheckResult {
  /** Which checker: "linearizable", "set", "bank", "append", ... */
  readonly checker: string;
  readonly verdict: Verdict;
  /** One line for a person. */
  readonly summary: string;
  readonly anomalies: readonly Anomaly[];
  /** Counters worth reporting (operations checked, states explored, keys, ...). */
  readonly stats: Readonly<Record<string, number>>;
}
