/**
 * @module The baseline for `bench:checker`: Wing & Gong's linearizability search as first
 * published, with neither Lowe's memoization nor P-compositionality. One search over the whole
 * history, the state a map of registers (mutated in place and undone on backtrack, so the
 * baseline pays nothing for copying). Indeterminate writes and CASes sit in the list as calls
 * with no return, as Porcupine treats them, and are tried in time order like everything else.
 * Without a memo, the same configuration is explored again along every path that reaches it.
 */
import type { Operation } from "../checker/history.js";

export interface PlainSearchResult {
  /** "timeout" when `shouldStop` said so before an answer. */
  readonly verdict: "valid" | "invalid" | "timeout";
  readonly steps: number;
}

const NIL = -1;
const HEAD = 0;
const stopPollMask = 4095;

/** Registers (read/write/cas) by key; fail ops and indeterminate reads are left out. */
export function plainWingGong(
  operations: readonly Operation[],
  shouldStop: () => boolean,
): PlainSearchResult {
  const ops = operations.filter(
    (op) => op.type === "ok" || (op.type === "info" && op.f !== "read"),
  );
  const keyIds = new Map<string, number>();
  const opKey = ops.map((op) => {
    const key = op.key ?? "";
    let id = keyIds.get(key);
    if (id === undefined) {
      id = keyIds.size;
      keyIds.set(key, id);
    }
    return id;
  });
  // Events: calls of every op, returns of ok ops; sorted (time, call first, index).
  interface Event {
    readonly time: number;
    readonly isReturn: boolean;
    readonly index: number;
    readonly op: number;
  }
  const events: Event[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.callTime, isReturn: false, index: op.invokeIndex, op: i });
    if (op.type === "ok")
      events.push({
        time: Math.max(op.returnTime, op.callTime),
        isReturn: true,
        index: op.completeIndex,
        op: i,
      });
  });
  events.sort(
    (a, b) => a.time - b.time || Number(a.isReturn) - Number(b.isReturn) || a.index - b.index,
  );
  const size = events.length + 1;
  const entryOp = new Int32Array(size);
  const entryIsReturn = new Uint8Array(size);
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const callEntry = new Int32Array(ops.length).fill(NIL);
  const returnEntry = new Int32Array(ops.length).fill(NIL);
  events.forEach((event, position) => {
    const entry = position + 1;
    entryOp[entry] = event.op;
    entryIsReturn[entry] = event.isReturn ? 1 : 0;
    if (event.isReturn) returnEntry[event.op] = entry;
    else callEntry[event.op] = entry;
  });
  for (let e = 0; e < size; e++) {
    next[e] = e + 1 < size ? e + 1 : NIL;
    prev[e] = e - 1;
  }
  const unlink = (e: number) => {
    next[prev[e] as number] = next[e] as number;
    if (next[e] !== NIL) prev[next[e] as number] = prev[e] as number;
  };
  const relink = (e: number) => {
    next[prev[e] as number] = e;
    if (next[e] !== NIL) prev[next[e] as number] = e;
  };

  const registers: (number | null)[] = new Array(keyIds.size).fill(null);
  const stackOp: number[] = [];
  const stackPrevious: (number | null)[] = [];
  let okRemaining = ops.filter((op) => op.type === "ok").length;
  let steps = 0;
  if (okRemaining === 0) return { verdict: "valid", steps };
  let cursor = next[HEAD] as number;
  for (;;) {
    steps++;
    if ((steps & stopPollMask) === 0 && shouldStop()) return { verdict: "timeout", steps };
    if (cursor !== NIL && entryIsReturn[cursor] === 0) {
      const i = entryOp[cursor] as number;
      const op = ops[i] as Operation;
      const key = opKey[i] as number;
      const current = registers[key] as number | null;
      let ok = false;
      let value = current;
      if (op.f === "read") ok = op.output === current;
      else if (op.f === "write") {
        ok = true;
        value = op.input as number;
      } else if (op.f === "cas") {
        const [expected, replacement] = op.input as [number | null, number];
        ok = current === expected;
        value = replacement;
      }
      if (ok) {
        stackOp.push(i);
        stackPrevious.push(current);
        registers[key] = value;
        unlink(callEntry[i] as number);
        if (returnEntry[i] !== NIL) unlink(returnEntry[i] as number);
        if (op.type === "ok" && --okRemaining === 0) return { verdict: "valid", steps };
        cursor = next[HEAD] as number;
        continue;
      }
      cursor = next[cursor] as number;
      continue;
    }
    // A return (or the end of the list): backtrack.
    const i = stackOp.pop();
    if (i === undefined) return { verdict: "invalid", steps };
    registers[opKey[i] as number] = stackPrevious.pop() as number | null;
    if (returnEntry[i] !== NIL) relink(returnEntry[i] as number);
    relink(callEntry[i] as number);
    if ((ops[i] as Operation).type === "ok") okRemaining++;
    cursor = next[callEntry[i] as number] as number;
  }
}
