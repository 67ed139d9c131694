/**
 * @module Sequential specifications for the linearizability checker: a register (with
 * compare-and-set, which also models a counter incremented by CAS), an append-only list, and
 * a map of independent objects (for checking a history without splitting it by key).
 * States are immutable: a step returns a new state and never changes the one it got.
 */
import { groupByKey, type Operation } from "./history.js";
import type { Model, StepResult } from "./linearizability.js";

export type RegisterValue = number | null;

function unsupported(model: string, op: Operation): never {
  throw new Error(`${model} model: no operation "${op.f}" (event ${op.invokeIndex})`);
}

/**
 * A register: `read` → value (ok iff it returns the current value), `write n`, `cas
 * [expected, new]` (takes effect iff the value is `expected`; an ok CAS whose compare would
 * fail cannot go at that point). An unwritten register reads null. A counter incremented by
 * CAS `[n, n + 1]` is the same object.
 */
export function registerModel(initial: RegisterValue = null): Model<RegisterValue> {
  return {
    name: "register",
    init: () => initial,
    step(state, op): StepResult<RegisterValue> {
      switch (op.f) {
        case "read":
          // An info read has no result to check (it is dropped before the search anyway).
          return { ok: op.type !== "ok" || op.output === state, state };
        case "write":
          return { ok: true, state: op.input as RegisterValue };
        case "cas": {
          const [expected, value] = op.input as [RegisterValue, RegisterValue];
          return state === expected ? { ok: true, state: value } : { ok: false, state };
        }
        default:
          return unsupported("register", op);
      }
    },
    key: (state) => (state === null ? "nil" : state),
    describe: (state) => (state === null ? "nil" : String(state)),
    // A CAS can fail, so it is never as good as absent: only a write erases a write.
    overwrites: (later, earlier) => later.f === "write" && earlier.f === "write",
    unobserved(operations) {
      // A value is observed by an ok read that returned it or an ok CAS that compared against
      // it. A write or CAS of a value nobody observes could only have been overwritten unseen
      // (or, if info, never happened). An info CAS observes its expected value only if it
      // matters itself, hence the closure: from the observed values, back through the info
      // ops that could have produced them.
      const producers = new Map<unknown, Operation[]>();
      const pending: unknown[] = [];
      for (const op of operations) {
        if (op.type === "ok") {
          if (op.f === "read") pending.push(op.output);
          else if (op.f === "cas") pending.push((op.input as [unknown, unknown])[0]);
          continue;
        }
        const produced =
          op.f === "write"
            ? op.input
            : op.f === "cas"
              ? (op.input as [unknown, unknown])[1]
              : undefined;
        if (produced === undefined) continue;
        const list = producers.get(produced);
        if (list === undefined) producers.set(produced, [op]);
        else list.push(op);
      }
      const observed = new Set<unknown>();
      const relevant = new Set<Operation>();
      while (pending.length > 0) {
        const value = pending.pop();
        if (observed.has(value)) continue;
        observed.add(value);
        for (const op of producers.get(value) ?? []) {
          relevant.add(op);
          if (op.f === "cas") pending.push((op.input as [unknown, unknown])[0]);
        }
      }
      return (op) => {
        if (op.type === "info") return (op.f === "write" || op.f === "cas") && !relevant.has(op);
        const produced =
          op.f === "write"
            ? op.input
            : op.f === "cas"
              ? (op.input as [unknown, unknown])[1]
              : undefined;
        return produced !== undefined && !observed.has(produced);
      };
    },
  };
}

/**
 * An append-only list: `append n` adds n at the end; `read` → the list (ok iff it is the
 * whole list, in order).
 */
export function appendModel(): Model<readonly number[]> {
  const model = listModel(null);
  return {
    ...model,
    forKey(operations) {
      // In any valid linearization the longest read saw every element appended before it,
      // in order, and none after: an element it holds goes exactly at its index there, any
      // other after its end. Enforcing that in `step` keeps every valid order and spares the
      // search the orders of concurrent appends, which the memo cannot merge (each order is
      // a different list).
      let longest: readonly unknown[] = [];
      for (const op of operations)
        if (op.f === "read" && op.type === "ok" && Array.isArray(op.output))
          if (op.output.length > longest.length) longest = op.output;
      const position = new Map<unknown, number>();
      longest.forEach((element, index) => {
        if (!position.has(element)) position.set(element, index);
      });
      return listModel({ position, length: longest.length });
    },
  };
}

/** The list model, with the placement rule of `forKey` when `placement` is given. */
function listModel(
  placement: { position: ReadonlyMap<unknown, number>; length: number } | null,
): Model<readonly number[]> {
  return {
    name: "list",
    init: () => [],
    step(state, op): StepResult<readonly number[]> {
      switch (op.f) {
        case "append": {
          if (placement !== null) {
            const at = placement.position.get(op.input);
            if (at === undefined ? state.length < placement.length : state.length !== at)
              return { ok: false, state };
          }
          return { ok: true, state: [...state, op.input as number] };
        }
        case "read": {
          if (op.type !== "ok") return { ok: true, state };
          const read = op.output;
          if (!Array.isArray(read) || read.length !== state.length) return { ok: false, state };
          for (let index = 0; index < read.length; index++)
            if (read[index] !== state[index]) return { ok: false, state };
          return { ok: true, state };
        }
        default:
          return unsupported("list", op);
      }
    },
    key: (state) => state.join(","),
    describe: (state) =>
      state.length <= 12
        ? `[${state.join(", ")}]`
        : `[${state.slice(0, 4).join(", ")}, ... ${state.length - 8} more ..., ${state.slice(-4).join(", ")}]`,
    unobserved(operations) {
      // The list only grows: an element no read ever shows was appended after the last read
      // that could see it, or never: the same to the search.
      const observed = new Set<unknown>();
      for (const op of operations)
        if (op.f === "read" && op.type === "ok" && Array.isArray(op.output))
          for (const element of op.output) observed.add(element);
      return (op) => op.type === "info" && op.f === "append" && !observed.has(op.input);
    },
  };
}

/**
 * Independent objects by `op.key`, as one state (a map key → inner state). Only for checking
 * a history as one search (`partition: "none"`), e.g. to measure what splitting by key buys.
 */
export function keyedModel<State>(inner: Model<State>): Model<ReadonlyMap<string, State>> {
  const keyOf = (op: Operation) => op.key ?? "";
  return {
    name: `map of ${inner.name}`,
    init: () => new Map(),
    step(state, op) {
      const key = keyOf(op);
      const current = state.has(key) ? (state.get(key) as State) : inner.init();
      const result = inner.step(current, op);
      if (!result.ok) return { ok: false, state };
      const updated = new Map(state);
      updated.set(key, result.state);
      return { ok: true, state: updated };
    },
    key(state) {
      const parts: string[] = [];
      for (const key of [...state.keys()].sort()) {
        parts.push(`${key}=${inner.key(state.get(key) as State)}`);
      }
      return parts.join(";");
    },
    describe(state) {
      const parts: string[] = [];
      for (const [key, value] of state) parts.push(`${key}: ${inner.describe(value)}`);
      return `{${parts.join(", ")}}`;
    },
    readOnly: inner.readOnly?.bind(inner),
    // Only ops on the same object overwrite each other.
    overwrites: (later, earlier) =>
      keyOf(later) === keyOf(earlier) && (inner.overwrites?.(later, earlier) ?? false),
    unobserved(operations) {
      const byKey = groupByKey(operations, keyOf);
      const predicates = new Map<string, (op: Operation) => boolean>();
      for (const [key, group] of byKey) {
        const predicate = inner.unobserved?.(group);
        if (predicate !== undefined) predicates.set(key, predicate);
      }
      return (op) => predicates.get(keyOf(op))?.(op) ?? false;
    },
  };
}
