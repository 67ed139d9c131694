/**
 * @module Linearizability checking: Wing & Gong's search with Lowe's memoization, as
 * Porcupine does it, split by key (P-compositionality: a history is linearizable iff each
 * independent key's sub-history is, so each key is searched on its own and a violation names
 * its key).
 *
 * The search, per key:
 * - The key's call and return events form a doubly-linked list sorted by time (a call before
 *   a return at equal times: ops touching at one instant count as concurrent). The candidates
 *   to linearize next are the calls before the first return still in the list; linearizing one
 *   lifts its call and return out of the list (dancing links), backtracking puts them back.
 * - Lowe's memo: a state (linearized set, model state) seen before is not explored again. The
 *   linearized set lives in a bitset with an incremental hash (two 32-bit XOR accumulators of
 *   per-operation random values), so a lookup hashes in O(1) and compares sets only on a hit.
 *   A cache entry stores the set compactly: every op below the first unlinearized one `m` is
 *   linearized and nothing called after m's return can be, so the words from m to that point
 *   are the whole set (a few words at any realistic concurrency, whatever the history length).
 * - Iterative with an explicit stack; a step budget and a state budget per key turn a search
 *   that would run away into the verdict "unknown", and `shouldStop` (the caller's clock: this
 *   layer reads none) ends the whole check early. Buffers are reused from key to key.
 *
 * Two reductions, both sound (any linearization can be rearranged into one the search
 * tries), keep the search from enumerating orders that cannot matter:
 * - A read-only op that succeeds in the current state is linearized at once, and that level
 *   tries nothing else: moving a read earlier, to a point where it already returns the right
 *   value, breaks nothing. Orders of concurrent reads are never searched.
 * - A write whose value nobody observes (`Model.unobserved`) is never placed on its own
 *   except at its return: every op that `overwrites` it takes it along, placed just before.
 *   Without this, each subset of the unread writes in flight multiplies every failing subtree
 *   (at 20 concurrent clients per key, the search ran out of budget on valid histories).
 *
 * Indeterminate (`info`) operations may take effect at any time after their call, or never,
 * which is the same as at the very end: the search succeeds once every `ok` operation is
 * linearized. Three things keep them from blowing the search up:
 * - They are tried last, only where no `ok` operation can go next (a dead end), so histories
 *   that never need them never pay for them.
 * - Dominance: two states with the same `ok` set and model state differ only in which info
 *   ops are used up, and the one that used fewer can do everything the other can. A state is
 *   pruned if the cache holds one with a subset of its info ops. At a dead end every info
 *   child is entered into the cache before any is explored, so the small sets come first
 *   (otherwise depth-first order finds {a,b,c} before {c} and the pruning never fires).
 * - Info ops nothing could observe (`Model.unobserved`: a write of a value no read returned)
 *   are left out: they are as good as never having happened.
 *
 * Tests check all of this against a brute-force search over every order.
 *
 * The verdict of a key that is not linearizable comes with the smallest failing window, as
 * Knossos and Porcupine report it: the furthest any linearization got (the longest
 * linearizable prefix), the operation whose return no linearization could pass, and the
 * operations concurrent with it at that point.
 */
import { prngFromSeed } from "../lib/prng.js";
import {
  type Anomaly,
  type CheckResult,
  combineVerdicts,
  groupByKey,
  type HistoryEvent,
  type Operation,
  pairOperations,
  type Verdict,
} from "./history.js";

export interface StepResult<State> {
  /** Whether `op` can take effect in this state with the result the history recorded. */
  readonly ok: boolean;
  /** The state after it (ignored when not ok). */
  readonly state: State;
}

/** A sequential specification of one object (a register, a list, ...). States are immutable. */
export interface Model<State> {
  readonly name: string;
  init(): State;
  /**
   * Applies `op` (ok or info) to `state`. For an ok op, ok means its recorded output is
   * what the object would return; for an info op (no output) ok means it can take effect here.
   */
  step(state: State, op: Operation): StepResult<State>;
  /** Identifies a state for the memo: equal keys ⇔ equal states. */
  key(state: State): string | number;
  /** A state for messages. */
  describe(state: State): string;
  /**
   * Optional: the model specialized to one key's operations, stricter where no valid
   * linearization could go (e.g. a list element placed anywhere but where the reads show it).
   * Sound only if every linearization valid under this model stays valid under the
   * specialized one.
   */
  forKey?(operations: readonly Operation[]): Model<State>;
  /** Operations with no effect (reads): dropped when indeterminate. Default: f is "read". */
  readOnly?(op: Operation): boolean;
  /**
   * Optional, given all of one key's operations: the ones whose effect no operation could
   * ever observe (a write of a value nobody read). An unobserved info op is left out (it is as
   * good as never having happened); an unobserved ok op that something `overwrites` is placed
   * right before the first op that overwrites it (see `overwrites`).
   */
  unobserved?(operations: readonly Operation[]): (op: Operation) => boolean;
  /**
   * Optional: true if `earlier` immediately followed by `later` is the same as `later` alone,
   * in every state: both always succeed and `later`'s result does not depend on the state (a
   * write after a write, on the same object; not a CAS, which can fail).
   */
  overwrites?(later: Operation, earlier: Operation): boolean;
}

export interface LinearizabilityOptions {
  /** Model steps one key's search may take before its verdict is "unknown". */
  readonly maxStepsPerKey?: number;
  /** Distinct states one key's search may keep in its memo before "unknown" (bounds memory). */
  readonly maxStatesPerKey?: number;
  /** Polled during the search (every 1024 steps and per key); true ends the check: the rest is unknown. */
  readonly shouldStop?: () => boolean;
  /** Seeds the per-operation hash values (any seed is correct; fixed for reproducible stats). */
  readonly seed?: number;
  /** "key" (default): one search per key. "none": one search over everything (the model must handle keys). */
  readonly partition?: "key" | "none";
}

/**
 * 5e6 steps is about a second of search: far above what a valid 10k-op key needs (measured
 * with `bench:checker`: ~80k steps at 10 concurrent clients, ~1M at 20), small enough that a
 * pathological key cannot hold up a verify run for long.
 */
export const defaultMaxStepsPerKey = 5_000_000;
/** About 40 bytes per state plus a few words of set: ~100 MiB at the limit. */
export const defaultMaxStatesPerKey = 2_000_000;
const defaultSeed = 0x11ea7;
/** Shown in a message: the tail of the longest linearizable prefix. */
const prefixTailShown = 3;
/** Distinct model states reported at the failure point. */
const failureStatesMax = 4;

/** What the search reached on one key: for reports. */
export interface KeyDetail {
  readonly key: string;
  readonly verdict: Verdict;
  /** Operations searched (ok, plus info ones that could have an effect). */
  readonly operations: number;
  /**
   * Invoke indices in linearization order: all of it when valid, else the longest
   * linearizable prefix reached.
   */
  readonly linearizedPrefix: readonly number[];
  /** Invoke index of the operation no linearization could get past (invalid, or unknown after a dead end). */
  readonly failedOperation?: number;
  /** Invoke indices of the operations concurrent with it at that point. */
  readonly concurrentOperations?: readonly number[];
  /** The model states the longest prefixes ended in. */
  readonly finalStates?: readonly string[];
  /** Why the verdict is unknown: "steps", "states" or "stopped". */
  readonly budgetExhausted?: "steps" | "states" | "stopped";
  readonly statesExplored: number;
  readonly cacheHits: number;
  readonly steps: number;
}

export interface LinearizabilityResult extends CheckResult {
  readonly perKey: readonly KeyDetail[];
}

/** Checks a history (events of every process; nemesis events are ignored). */
export function checkLinearizable<State>(
  events: readonly HistoryEvent[],
  model: Model<State>,
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  return checkLinearizableOperations(pairOperations(events), model, options);
}

/** Checks already-paired operations. */
export function checkLinearizableOperations<State>(
  operations: readonly Operation[],
  model: Model<State>,
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  const limits: SearchLimits = {
    maxSteps: options.maxStepsPerKey ?? defaultMaxStepsPerKey,
    maxStates: options.maxStatesPerKey ?? defaultMaxStatesPerKey,
    shouldStop: options.shouldStop ?? (() => false),
    seed: options.seed ?? defaultSeed,
  };
  const readOnly = model.readOnly?.bind(model) ?? ((op: Operation) => op.f === "read");
  // A failed op did not happen; an indeterminate read neither changed nor showed anything.
  const searchable = operations.filter(
    (op) => !(op.type === "fail" || (op.type === "info" && readOnly(op))),
  );
  const dropped = operations.length - searchable.length;
  const byKey = groupByKey(searchable, (op) =>
    options.partition === "none" ? "*" : (op.key ?? ""),
  );

  const perKey: KeyDetail[] = [];
  const workspace = new Workspace();
  const anomalies: Anomaly[] = [];
  let stopped = false;
  let searched = 0;
  let ignored = 0;
  let statesExplored = 0;
  let cacheHits = 0;
  let steps = 0;
  for (const [key, ops] of byKey) {
    if (!stopped && limits.shouldStop()) stopped = true;
    if (stopped) {
      perKey.push({
        key,
        verdict: "unknown",
        operations: ops.length,
        linearizedPrefix: [],
        budgetExhausted: "stopped",
        statesExplored: 0,
        cacheHits: 0,
        steps: 0,
      });
      searched += ops.length;
      continue;
    }
    const outcome = searchKey(key, ops, model, readOnly, limits, workspace);
    if (outcome.detail.budgetExhausted === "stopped") stopped = true;
    perKey.push(outcome.detail);
    if (outcome.anomaly !== null) anomalies.push(outcome.anomaly);
    searched += outcome.detail.operations;
    ignored += outcome.ignored;
    statesExplored += outcome.detail.statesExplored;
    cacheHits += outcome.detail.cacheHits;
    steps += outcome.detail.steps;
  }

  const verdict = combineVerdicts(perKey.map((detail) => detail.verdict));
  const invalidKeys = perKey.filter((detail) => detail.verdict === "invalid");
  const unknownKeys = perKey.filter((detail) => detail.verdict === "unknown");
  const keysText = (details: KeyDetail[]) =>
    details
      .slice(0, 5)
      .map((detail) => detail.key)
      .join(", ") + (details.length > 5 ? ", ..." : "");
  const summary =
    verdict === "valid"
      ? `linearizable (${model.name}): ${perKey.length} keys, ${searched} operations`
      : verdict === "invalid"
        ? `not linearizable (${model.name}): ${invalidKeys.length} of ${perKey.length} keys (${keysText(invalidKeys)})`
        : `unknown (${model.name}): search budget exhausted on ${unknownKeys.length} of ${perKey.length} keys (${keysText(unknownKeys)})`;
  return {
    checker: "linearizable",
    verdict,
    summary,
    anomalies,
    stats: {
      keys: perKey.length,
      operations: searched,
      dropped,
      infoIgnored: ignored,
      statesExplored,
      cacheHits,
      steps,
      keysInvalid: invalidKeys.length,
      keysUnknown: unknownKeys.length,
    },
    perKey,
  };
}

/** One operation, for messages: `p3 read → 2 [#17]`, `p4 write 5 (info) [#20]`. */
export function describeOperation(op: Operation): string {
  const input = op.input === null || op.input === undefined ? "" : ` ${JSON.stringify(op.input)}`;
  const result =
    op.type === "ok"
      ? op.output === undefined || (op.f !== "read" && op.output === op.input)
        ? ""
        : ` → ${JSON.stringify(op.output)}`
      : ` (${op.type})`;
  return `p${op.process} ${op.f}${input}${result} [#${op.invokeIndex}]`;
}

interface SearchLimits {
  readonly maxSteps: number;
  readonly maxStates: number;
  readonly shouldStop: () => boolean;
  readonly seed: number;
}

interface KeyOutcome {
  readonly detail: KeyDetail;
  readonly anomaly: Anomaly | null;
  readonly ignored: number;
}

const NIL = -1;
/** Entry 0 of each list is its head sentinel. */
const HEAD = 0;
const stopPollMask = 1023;

/** Searches one key's operations. */
function searchKey<State>(
  key: string,
  ops: readonly Operation[],
  generalModel: Model<State>,
  readOnly: (op: Operation) => boolean,
  limits: SearchLimits,
  workspace: Workspace,
): KeyOutcome {
  const ws = workspace;
  const model = generalModel.forKey?.(ops) ?? generalModel;
  const unobserved = model.unobserved?.(ops);
  const okOpsInput: Operation[] = [];
  const infoOpsInput: Operation[] = [];
  let ignored = 0;
  for (const op of ops) {
    if (op.type === "ok") okOpsInput.push(op);
    else if (unobserved?.(op)) ignored++;
    else infoOpsInput.push(op);
  }
  const nOk = okOpsInput.length;
  const nInfo = infoOpsInput.length;

  // Sort every call and return by (time, call before return, history index).
  const nEvents = 2 * nOk + nInfo;
  const eventTime = ws.float64("eventTime", nEvents);
  const eventIsReturn = ws.uint8("eventIsReturn", nEvents);
  const eventIndex = ws.float64("eventIndex", nEvents);
  for (let k = 0; k < nOk; k++) {
    const op = okOpsInput[k] as Operation;
    eventTime[k] = op.callTime;
    eventIndex[k] = op.invokeIndex;
    // A return stamped before its call (clock trouble) is read as at the call.
    eventTime[nOk + k] = Math.max(op.returnTime, op.callTime);
    eventIsReturn[nOk + k] = 1;
    eventIndex[nOk + k] = op.completeIndex;
  }
  for (let k = 0; k < nInfo; k++) {
    const op = infoOpsInput[k] as Operation;
    eventTime[2 * nOk + k] = op.callTime;
    eventIndex[2 * nOk + k] = op.invokeIndex;
  }
  const order = ws.int32("order", nEvents);
  for (let e = 0; e < nEvents; e++) order[e] = e;
  order.sort(
    (a, b) =>
      (eventTime[a] as number) - (eventTime[b] as number) ||
      (eventIsReturn[a] as number) - (eventIsReturn[b] as number) ||
      (eventIndex[a] as number) - (eventIndex[b] as number),
  );

  // Ok ops are numbered by call order (ids), so "ids below m" = "called before m".
  const okOps: Operation[] = new Array(nOk);
  const infoOps: Operation[] = new Array(nInfo);
  const okIdOfInput = ws.int32("okIdOfInput", nOk);
  const okCallPos = ws.int32("okCallPos", nOk);
  const okReturnPos = ws.int32("okReturnPos", nOk);
  const infoCallPos = ws.int32("infoCallPos", nInfo);
  // The main list: entries 1..2·nOk in time order, entry 0 the head.
  const entryCount = 2 * nOk + 1;
  const entryOp = ws.int32("entryOp", entryCount);
  const entryIsReturn = ws.uint8("entryIsReturn", entryCount);
  const entryPos = ws.int32("entryPos", entryCount);
  const next = ws.int32("next", entryCount);
  const prev = ws.int32("prev", entryCount);
  const callEntry = ws.int32("callEntry", nOk);
  const returnEntry = ws.int32("returnEntry", nOk);
  let okCount = 0;
  let infoCount = 0;
  let entry = 1;
  for (let pos = 0; pos < nEvents; pos++) {
    const e = order[pos] as number;
    if (e < nOk) {
      const id = okCount++;
      okIdOfInput[e] = id;
      okOps[id] = okOpsInput[e] as Operation;
      okCallPos[id] = pos;
      callEntry[id] = entry;
      entryOp[entry] = id;
      entryPos[entry++] = pos;
    } else if (e < 2 * nOk) {
      const id = okIdOfInput[e - nOk] as number;
      okReturnPos[id] = pos;
      returnEntry[id] = entry;
      entryOp[entry] = id;
      entryIsReturn[entry] = 1;
      entryPos[entry++] = pos;
    } else {
      const id = infoCount++;
      infoOps[id] = infoOpsInput[e - 2 * nOk] as Operation;
      infoCallPos[id] = pos;
    }
  }
  for (let e = 0; e < entryCount; e++) {
    next[e] = e + 1 < entryCount ? e + 1 : NIL;
    prev[e] = e - 1;
  }
  // The info list: entry j + 1 is info op j, in call order; 0 is the head.
  const infoNext = ws.int32("infoNext", nInfo + 1);
  const infoPrev = ws.int32("infoPrev", nInfo + 1);
  for (let x = 0; x <= nInfo; x++) {
    infoNext[x] = x + 1 <= nInfo ? x + 1 : NIL;
    infoPrev[x] = x - 1;
  }

  // windowEnd[m]: the last op called before m returns. While m is unlinearized nothing
  // after it can be linearized, so m..windowEnd[m] bounds the set's uncertain part.
  const windowEnd = ws.int32("windowEnd", nOk);
  for (let m = 0; m < nOk; m++) {
    let low = m;
    let high = nOk - 1;
    const limit = okReturnPos[m] as number;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if ((okCallPos[middle] as number) < limit) low = middle;
      else high = middle - 1;
    }
    windowEnd[m] = low;
  }

  const random = prngFromSeed(limits.seed);
  const opHashA = ws.int32("opHashA", nOk);
  const opHashB = ws.int32("opHashB", nOk);
  for (let i = 0; i < nOk; i++) {
    opHashA[i] = (random.float() * 0x1_0000_0000) | 0;
    opHashB[i] = (random.float() * 0x1_0000_0000) | 0;
  }

  const okBits = ws.uint32("okBits", (nOk >>> 5) + 1);
  const infoBits = ws.uint32("infoBits", (nInfo >>> 5) + 1);
  const cache = ws.cache;
  cache.reset(okBits, infoBits, windowEnd);

  const lift = (i: number) => {
    const c = callEntry[i] as number;
    const r = returnEntry[i] as number;
    next[prev[c] as number] = next[c] as number;
    if (next[c] !== NIL) prev[next[c] as number] = prev[c] as number;
    next[prev[r] as number] = next[r] as number;
    if (next[r] !== NIL) prev[next[r] as number] = prev[r] as number;
  };
  // Exactly the reverse of lift, so links restore in LIFO order.
  const unlift = (i: number) => {
    const c = callEntry[i] as number;
    const r = returnEntry[i] as number;
    next[prev[r] as number] = r;
    if (next[r] !== NIL) prev[next[r] as number] = r;
    next[prev[c] as number] = c;
    if (next[c] !== NIL) prev[next[c] as number] = c;
  };
  const liftInfo = (x: number) => {
    infoNext[infoPrev[x] as number] = infoNext[x] as number;
    if (infoNext[x] !== NIL) infoPrev[infoNext[x] as number] = infoPrev[x] as number;
  };
  const unliftInfo = (x: number) => {
    infoNext[infoPrev[x] as number] = x;
    if (infoNext[x] !== NIL) infoPrev[infoNext[x] as number] = x;
  };

  // The stack: one frame per linearized op. An info frame also remembers its level's other
  // info children (on the child stack) still to try.
  let frameOp = ws.frameOp; // ok id, or ~info id
  let frameNode = ws.frameNode;
  let frameBound = ws.frameBound;
  let frameChildNext = ws.frameChildNext;
  let frameChildEnd = ws.frameChildEnd;
  let frameChildStart = ws.frameChildStart;
  let frameAbsorbedStart = ws.frameAbsorbedStart;
  let absorbed = ws.absorbed;
  let absorbedTop = 0;
  const frameState = ws.frameState as (State | undefined)[];
  let childOp = ws.childOp;
  const childState = ws.childState as (State | undefined)[];
  let childTop = 0;
  // Path nodes (op, parent): the linearization behind any state, kept so the furthest dead
  // end's prefix can be reported without copying the stack at every new maximum.
  let nodeOp = ws.nodeOp;
  let nodeParent = ws.nodeParent;
  let nodeCount = 0;
  const newNode = (op: number, parent: number): number => {
    if (nodeCount === nodeOp.length) {
      nodeOp = grow(nodeOp, nodeCount * 2);
      nodeParent = grow(nodeParent, nodeCount * 2);
    }
    nodeOp[nodeCount] = op;
    nodeParent[nodeCount] = parent;
    return nodeCount++;
  };

  let state = model.init();
  let depth = 0;
  let node = NIL;
  let hashA = 0;
  let hashB = 0;
  let okLinearized = 0;
  let infoLinearized = 0;
  let steps = 0;
  let cacheHits = 0;
  let exhausted: KeyDetail["budgetExhausted"];
  let verdict: Verdict = "invalid";

  // The furthest dead end: the first return no linearization got past.
  let bestPos = -1;
  let bestEntry = NIL;
  let bestNode = NIL;
  let bestDepth = -1;
  const bestStates: State[] = [];
  const bestKeys: (string | number)[] = [];
  const recordDeadEnd = (bound: number) => {
    const pos = entryPos[bound] as number;
    if (pos > bestPos) {
      bestPos = pos;
      bestEntry = bound;
      bestNode = node;
      bestDepth = depth;
      bestStates.length = 0;
      bestKeys.length = 0;
    } else if (pos < bestPos) return;
    // Of the linearizations stuck at the same return, report the longest.
    if (depth > bestDepth) {
      bestNode = node;
      bestDepth = depth;
    }
    if (bestStates.length >= failureStatesMax) return;
    const stateKey = model.key(state);
    if (bestKeys.includes(stateKey)) return;
    bestStates.push(state);
    bestKeys.push(stateKey);
  };

  const pushFrame = (op: number, parentState: State) => {
    if (depth === frameOp.length) {
      const length = depth * 2;
      frameOp = grow(frameOp, length);
      frameNode = grow(frameNode, length);
      frameBound = grow(frameBound, length);
      frameChildNext = grow(frameChildNext, length);
      frameChildEnd = grow(frameChildEnd, length);
      frameChildStart = grow(frameChildStart, length);
      frameAbsorbedStart = grow(frameAbsorbedStart, length);
    }
    node = newNode(op, node);
    frameOp[depth] = op;
    frameNode[depth] = node;
    frameState[depth] = parentState;
    depth++;
  };

  // Takes info child `c` of the level whose frame goes at `depth`.
  const enterInfoChild = (c: number, bound: number, start: number, end: number) => {
    const j = childOp[c] as number;
    const parentState = state;
    const absorbedStart = absorbedTop;
    okLinearized += collectAbsorbed(infoOps[j] as Operation, NIL, bound);
    applyAbsorbed(absorbedStart);
    nodeAbsorbed(absorbedStart);
    pushFrame(~j, parentState);
    frameAbsorbedStart[depth - 1] = absorbedStart;
    frameBound[depth - 1] = bound;
    frameChildStart[depth - 1] = start;
    frameChildNext[depth - 1] = c + 1;
    frameChildEnd[depth - 1] = end;
    liftInfo(j + 1);
    infoBits[j >>> 5] = (infoBits[j >>> 5] as number) | (1 << (j & 31));
    infoLinearized++;
    state = childState[c] as State;
  };

  const overBudget = (): boolean => {
    if (steps > limits.maxSteps) exhausted = "steps";
    else if (cache.count > limits.maxStates) exhausted = "states";
    else if ((steps & stopPollMask) === 0 && limits.shouldStop()) exhausted = "stopped";
    return exhausted !== undefined;
  };

  // A read-only op that can go next may go next: any linearization that places it later
  // still works with it moved here (it changes no state, and everything that had to precede
  // it already has). So a level where one succeeds commits to it and never branches: the
  // orders of concurrent reads are not searched, only the orders of what changes state.
  const okReadOnly = ws.uint8("okReadOnly", nOk);
  for (let i = 0; i < nOk; i++) okReadOnly[i] = readOnly(okOps[i] as Operation) ? 1 : 0;
  const forced = -2; // frameBound of an ok frame that committed a read-only op

  // A write whose value nobody observes can be moved, in any linearization, to just before
  // the first write after it could have gone (that write erases it), or it is never followed
  // by a write and sits at its own return. So the search never tries such an op on its own
  // except at its return; every op that overwrites it takes it along ("absorbs" it). Without
  // this, each subset of the unread writes in flight multiplies every failing subtree.
  const overwrites = model.overwrites?.bind(model);
  const okAbsorbable = ws.uint8("okAbsorbable", nOk);
  // Only an op that always succeeds can be moved like that: one that overwrites itself.
  if (overwrites !== undefined && unobserved !== undefined)
    for (let i = 0; i < nOk; i++) {
      const op = okOps[i] as Operation;
      okAbsorbable[i] = unobserved(op) && overwrites(op, op) ? 1 : 0;
    }

  /** The first return in the list: ops called before it are the candidates. */
  const firstReturn = (): number => {
    let e = next[HEAD] as number;
    while (entryIsReturn[e] === 0) e = next[e] as number;
    return e;
  };
  /** Pushes onto the absorbed stack the candidates `op` overwrites; returns how many. */
  const collectAbsorbed = (op: Operation, self: number, bound: number): number => {
    if (overwrites === undefined) return 0;
    const start = absorbedTop;
    for (let e = next[HEAD] as number; e !== bound; e = next[e] as number) {
      const j = entryOp[e] as number;
      if (j === self || okAbsorbable[j] === 0 || !overwrites(op, okOps[j] as Operation)) continue;
      if (absorbedTop === absorbed.length) absorbed = grow(absorbed, absorbedTop * 2);
      absorbed[absorbedTop++] = j;
    }
    return absorbedTop - start;
  };
  const linearizeOk = (i: number) => {
    lift(i);
    okBits[i >>> 5] = (okBits[i >>> 5] as number) | (1 << (i & 31));
    hashA ^= opHashA[i] as number;
    hashB ^= opHashB[i] as number;
  };
  const unlinearizeOk = (i: number) => {
    unlift(i);
    okBits[i >>> 5] = (okBits[i >>> 5] as number) & ~(1 << (i & 31));
    hashA ^= opHashA[i] as number;
    hashB ^= opHashB[i] as number;
  };
  const applyAbsorbed = (start: number) => {
    for (let k = start; k < absorbedTop; k++) linearizeOk(absorbed[k] as number);
  };
  const undoAbsorbed = (start: number) => {
    for (let k = absorbedTop - 1; k >= start; k--) unlinearizeOk(absorbed[k] as number);
  };
  /** Path nodes for the absorbed ops, which go just before the op absorbing them. */
  const nodeAbsorbed = (start: number) => {
    for (let k = start; k < absorbedTop; k++) node = newNode(absorbed[k] as number, node);
  };

  /**
   * Linearizes ok op `i` (with the unobserved ops it overwrites, before it) if the state is
   * new; false (all undone) if the memo has it. `bound` is the level's first return, or
   * `forced` for a committed read-only op.
   */
  const tryOk = (i: number, result: StepResult<State>, bound: number): boolean => {
    const absorbedStart = absorbedTop;
    const count = 1 + (bound === forced ? 0 : collectAbsorbed(okOps[i] as Operation, i, bound));
    linearizeOk(i);
    applyAbsorbed(absorbedStart);
    if (
      okLinearized + count === nOk ||
      !cache.visit(
        hashA,
        hashB,
        model.key(result.state),
        entryOp[next[HEAD] as number] as number,
        infoLinearized > 0,
        nInfo,
      )
    ) {
      nodeAbsorbed(absorbedStart);
      pushFrame(i, state);
      frameBound[depth - 1] = bound;
      frameAbsorbedStart[depth - 1] = absorbedStart;
      okLinearized += count;
      state = result.state;
      return true;
    }
    cacheHits++;
    undoAbsorbed(absorbedStart);
    unlinearizeOk(i);
    absorbedTop = absorbedStart;
    return false;
  };

  if (nOk === 0) verdict = "valid";
  // A level (a state of the search) first tries the read-only candidates (committing to the
  // first that succeeds), then the others from `cursor` in time order, then at the first
  // return the info ops; when all fail it backtracks.
  let readsDone = false;
  let cursor = next[HEAD] as number;
  search: while (nOk > 0) {
    if (okLinearized === nOk) {
      verdict = "valid";
      break;
    }
    let deadLevel = false;
    if (!readsDone) {
      readsDone = true;
      for (let e = next[HEAD] as number; entryIsReturn[e] === 0; e = next[e] as number) {
        const i = entryOp[e] as number;
        if (okReadOnly[i] === 0) continue;
        steps++;
        if (overBudget()) break search;
        const result = model.step(state, okOps[i] as Operation);
        if (!result.ok) continue;
        // Committed: if its state is in the memo, this whole level is done.
        if (tryOk(i, result, forced)) {
          if (okLinearized === nOk) {
            verdict = "valid";
            break search;
          }
          readsDone = false;
          continue search;
        }
        deadLevel = true;
        break;
      }
      cursor = next[HEAD] as number;
    }

    const levelBound = firstReturn();
    while (!deadLevel) {
      const e = cursor;
      if (entryIsReturn[e] === 0) {
        const i = entryOp[e] as number;
        cursor = next[e] as number;
        if (okReadOnly[i] === 1) continue; // failed in the read pass, same state
        // An unobserved op goes only with what overwrites it, or at its return.
        if (okAbsorbable[i] === 1 && returnEntry[i] !== levelBound) continue;
        steps++;
        if (overBudget()) break search;
        const result = model.step(state, okOps[i] as Operation);
        if (result.ok && tryOk(i, result, levelBound)) {
          if (okLinearized === nOk) {
            verdict = "valid";
            break search;
          }
          readsDone = false;
          continue search;
        }
        continue;
      }

      // A return: no ok op can go next. Enter every info op that can into the memo, then
      // try them one by one (see the module comment on dominance).
      const bound = e;
      const boundPos = entryPos[bound] as number;
      const first = entryOp[next[HEAD] as number] as number;
      const start = childTop;
      for (let x = infoNext[HEAD] as number; x !== NIL; x = infoNext[x] as number) {
        const j = x - 1;
        if ((infoCallPos[j] as number) > boundPos) break;
        steps++;
        if (overBudget()) break search;
        const result = model.step(state, infoOps[j] as Operation);
        if (!result.ok) continue;
        const absorbedStart = absorbedTop;
        const absorbing = collectAbsorbed(infoOps[j] as Operation, NIL, bound) > 0;
        if (absorbing) applyAbsorbed(absorbedStart);
        infoBits[j >>> 5] = (infoBits[j >>> 5] as number) | (1 << (j & 31));
        // (Absorbing the last ok ops finishes the search: nothing to remember.)
        const seen =
          next[HEAD] !== NIL &&
          cache.visit(
            hashA,
            hashB,
            model.key(result.state),
            absorbing ? (entryOp[next[HEAD] as number] as number) : first,
            true,
            nInfo,
          );
        infoBits[j >>> 5] = (infoBits[j >>> 5] as number) & ~(1 << (j & 31));
        if (absorbing) undoAbsorbed(absorbedStart);
        absorbedTop = absorbedStart;
        if (seen) {
          cacheHits++;
          continue;
        }
        if (childTop === childOp.length) childOp = grow(childOp, childTop * 2);
        childOp[childTop] = j;
        childState[childTop] = result.state;
        childTop++;
      }
      if (childTop > start) {
        enterInfoChild(start, bound, start, childTop);
        readsDone = false;
        continue search;
      }
      recordDeadEnd(bound);
      deadLevel = true;
    }

    // Backtrack to the next alternative.
    for (;;) {
      if (depth === 0) break search;
      steps++;
      if (overBudget()) break search;
      depth--;
      const op = frameOp[depth] as number;
      const parentState = frameState[depth] as State;
      frameState[depth] = undefined;
      node = nodeParent[frameNode[depth] as number] as number;
      state = parentState;
      const absorbedStart = frameAbsorbedStart[depth] as number;
      for (let k = absorbedStart; k < absorbedTop; k++) node = nodeParent[node] as number;
      okLinearized -= absorbedTop - absorbedStart;
      undoAbsorbed(absorbedStart);
      absorbedTop = absorbedStart;
      if (op >= 0) {
        unlinearizeOk(op);
        okLinearized--;
        // A committed read-only op: its level has nothing else worth trying.
        if (frameBound[depth] === forced) continue;
        readsDone = true;
        cursor = next[callEntry[op] as number] as number;
        continue search;
      }
      const j = ~op;
      unliftInfo(j + 1);
      infoBits[j >>> 5] = (infoBits[j >>> 5] as number) & ~(1 << (j & 31));
      infoLinearized--;
      const c = frameChildNext[depth] as number;
      const end = frameChildEnd[depth] as number;
      if (c < end) {
        enterInfoChild(c, frameBound[depth] as number, frameChildStart[depth] as number, end);
        readsDone = false;
        continue search;
      }
      // Every info child of this level failed, and its ok candidates did before them.
      for (let k = frameChildStart[depth] as number; k < childTop; k++) childState[k] = undefined;
      childTop = frameChildStart[depth] as number;
    }
  }

  if (exhausted !== undefined) verdict = "unknown";
  // Hand the (possibly grown) stacks back for the next key; drop states for the collector.
  for (let d = 0; d < depth; d++) frameState[d] = undefined;
  for (let c = 0; c < childTop; c++) childState[c] = undefined;
  ws.frameOp = frameOp;
  ws.frameNode = frameNode;
  ws.frameBound = frameBound;
  ws.frameChildNext = frameChildNext;
  ws.frameChildEnd = frameChildEnd;
  ws.frameChildStart = frameChildStart;
  ws.frameAbsorbedStart = frameAbsorbedStart;
  ws.absorbed = absorbed;
  ws.childOp = childOp;
  ws.nodeOp = nodeOp;
  ws.nodeParent = nodeParent;
  const pathOf = (from: number): number[] => {
    const path: number[] = [];
    for (let n = from; n !== NIL; n = nodeParent[n] as number) path.push(nodeOp[n] as number);
    return path.reverse();
  };
  const opOf = (code: number): Operation => (code >= 0 ? okOps[code] : infoOps[~code]) as Operation;
  const base = {
    key,
    operations: nOk + nInfo,
    statesExplored: cache.count,
    cacheHits,
    steps,
  };
  if (verdict === "valid") {
    const path = pathOf(node).map((code) => opOf(code).invokeIndex);
    return { detail: { ...base, verdict, linearizedPrefix: path }, anomaly: null, ignored };
  }

  // Invalid, or unknown: report the furthest point reached.
  const current = pathOf(node);
  const furthest = bestEntry === NIL ? current : pathOf(bestNode);
  const prefixCodes =
    exhausted !== undefined && current.length > furthest.length ? current : furthest;
  const prefix = prefixCodes.map((code) => opOf(code).invokeIndex);
  if (bestEntry === NIL) {
    return {
      detail: { ...base, verdict, linearizedPrefix: prefix, budgetExhausted: exhausted },
      anomaly: null,
      ignored,
    };
  }
  const failedId = entryOp[bestEntry] as number;
  const failed = okOps[failedId] as Operation;
  const failedCallPos = okCallPos[failedId] as number;
  // Concurrent: overlapping the failed op in real time, whether or not the prefix placed them.
  const concurrent: Operation[] = [];
  for (let i = 0; i < nOk && (okCallPos[i] as number) < bestPos; i++)
    if (i !== failedId && (okReturnPos[i] as number) > failedCallPos)
      concurrent.push(okOps[i] as Operation);
  let from = failed.callTime;
  for (const op of concurrent) from = Math.min(from, op.callTime);
  // Info ops overlap everything after their call; those called before the window and left
  // out of the prefix could have gone anywhere and did not help: listing every one since the
  // start of the run would only bury the window.
  for (let j = 0; j < nInfo && (infoCallPos[j] as number) < bestPos; j++) {
    const op = infoOps[j] as Operation;
    if (op.callTime >= from) concurrent.push(op);
  }
  concurrent.sort((a, b) => a.invokeIndex - b.invokeIndex);
  let to = failed.returnTime;
  for (const op of concurrent) if (Number.isFinite(op.returnTime)) to = Math.max(to, op.returnTime);
  const finalStates = bestStates.map((s) => model.describe(s));
  const tail = furthest.slice(-prefixTailShown).map((code) => describeOperation(opOf(code)));
  const message =
    `key ${JSON.stringify(key)}: ${describeOperation(failed)} cannot be linearized. ` +
    `Longest linearizable prefix: ${furthest.length} operations` +
    (tail.length > 0
      ? ` (${furthest.length > tail.length ? "..., " : ""}${tail.join(", ")})`
      : "") +
    `, leaving the ${model.name} ${finalStates.length > 1 ? "in one of " : "at "}${finalStates.join(" | ")}. ` +
    `Concurrent with it: ${concurrent.length === 0 ? "none" : concurrent.map(describeOperation).join(", ")}.`;
  const detail: KeyDetail = {
    ...base,
    verdict,
    linearizedPrefix: prefix,
    failedOperation: failed.invokeIndex,
    concurrentOperations: concurrent.map((op) => op.invokeIndex),
    finalStates,
    budgetExhausted: exhausted,
  };
  // An unknown key has no anomaly: a dead end short of the budget proves nothing.
  const anomaly: Anomaly | null =
    verdict === "invalid"
      ? {
          kind: "nonlinearizable",
          key,
          message,
          events: [failed.invokeIndex, ...concurrent.map((op) => op.invokeIndex)],
          window: { from, to },
        }
      : null;
  return { detail, anomaly, ignored };
}

/**
 * Buffers reused from key to key. Allocating them afresh for each key churns external memory,
 * and every major collection that churn triggers has to mark the whole history (hundreds of
 * MiB at 1M operations): that cost more than the search itself.
 */
class Workspace {
  readonly cache = new StateCache();
  frameOp = new Int32Array(64);
  frameNode = new Int32Array(64);
  frameBound = new Int32Array(64);
  frameChildNext = new Int32Array(64);
  frameChildEnd = new Int32Array(64);
  frameChildStart = new Int32Array(64);
  frameAbsorbedStart = new Int32Array(64);
  absorbed = new Int32Array(64);
  readonly frameState: unknown[] = [];
  childOp = new Int32Array(64);
  readonly childState: unknown[] = [];
  nodeOp = new Int32Array(1024);
  nodeParent = new Int32Array(1024);
  readonly #buffers = new Map<string, Int32Array | Float64Array | Uint8Array | Uint32Array>();

  /** A view of `length` elements, contents undefined. */
  int32(name: string, length: number): Int32Array {
    return this.#view(name, length, (n) => new Int32Array(n)) as Int32Array;
  }
  float64(name: string, length: number): Float64Array {
    return this.#view(name, length, (n) => new Float64Array(n)) as Float64Array;
  }
  /** Zeroed. */
  uint8(name: string, length: number): Uint8Array {
    return (this.#view(name, length, (n) => new Uint8Array(n)) as Uint8Array).fill(0);
  }
  /** Zeroed. */
  uint32(name: string, length: number): Uint32Array {
    return (this.#view(name, length, (n) => new Uint32Array(n)) as Uint32Array).fill(0);
  }

  #view<T extends Int32Array | Float64Array | Uint8Array | Uint32Array>(
    name: string,
    length: number,
    make: (length: number) => T,
  ): T {
    let buffer = this.#buffers.get(name) as T | undefined;
    if (buffer === undefined || buffer.length < length) {
      buffer = make(Math.max(length, 2 * (buffer?.length ?? 0), 64));
      this.#buffers.set(name, buffer);
    }
    return buffer.subarray(0, length) as T;
  }
}

function grow(array: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const grown = new Int32Array(length);
  grown.set(array);
  return grown;
}

function hashStateKey(stateKey: string | number): number {
  if (typeof stateKey === "number" && (stateKey | 0) === stateKey) {
    let h = Math.imul(stateKey ^ (stateKey >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 0;
  }
  const text = typeof stateKey === "string" ? stateKey : `#${stateKey}`;
  let h = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    h = Math.imul(h ^ text.charCodeAt(index), 0x01000193);
  }
  return h | 0;
}

/**
 * Lowe's memo: the states (ok set, model state, info set) the search has entered, in an open
 * hash table over typed arrays (no object per entry). An entry stores its ok set as the words
 * from the first unlinearized op to the end of its window, and its info set as the span of
 * non-zero words; both go in one growing word arena.
 */
class StateCache {
  count = 0;
  #buckets = new Int32Array(1024).fill(NIL);
  #chain = new Int32Array(1024);
  #hashA = new Int32Array(1024);
  #hashB = new Int32Array(1024);
  #first = new Int32Array(1024);
  #okOffset = new Int32Array(1024);
  #infoOffset = new Int32Array(1024);
  #infoLow = new Int32Array(1024);
  #infoLength = new Int32Array(1024);
  #keys: (string | number)[] = [];
  #arena = new Uint32Array(4096);
  #arenaLength = 0;

  private okBits: Uint32Array = new Uint32Array(0);
  private infoBits: Uint32Array = new Uint32Array(0);
  private windowEnd: Int32Array = new Int32Array(0);

  /** Empties the cache for a new key, keeping its memory (clearing only the buckets in use). */
  reset(okBits: Uint32Array, infoBits: Uint32Array, windowEnd: Int32Array): void {
    this.okBits = okBits;
    this.infoBits = infoBits;
    this.windowEnd = windowEnd;
    const mask = this.#buckets.length - 1;
    for (let entry = 0; entry < this.count; entry++)
      this.#buckets[(this.#hashA[entry] as number) & mask] = NIL;
    this.#keys.fill(0, 0, this.count);
    this.count = 0;
    this.#arenaLength = 0;
  }

  /**
   * True if this state, or one with the same ok set and model state and a subset of its info
   * ops, is already in; otherwise adds it and returns false. `first` is the first
   * unlinearized ok op (all below it are linearized).
   */
  visit(
    setHashA: number,
    setHashB: number,
    stateKey: string | number,
    first: number,
    anyInfo: boolean,
    nInfo: number,
  ): boolean {
    const stateHash = hashStateKey(stateKey);
    const hashA = setHashA ^ stateHash;
    const hashB = setHashB ^ Math.imul(stateHash, 0x9e3779b1);
    const okBits = this.okBits;
    const infoBits = this.infoBits;
    const okLow = first >>> 5;
    const okHigh = (this.windowEnd[first] as number) >>> 5;
    const arena = this.#arena;
    for (
      let entry = this.#buckets[hashA & (this.#buckets.length - 1)] as number;
      entry !== NIL;
      entry = this.#chain[entry] as number
    ) {
      if (
        this.#hashA[entry] !== hashA ||
        this.#hashB[entry] !== hashB ||
        this.#first[entry] !== first ||
        this.#keys[entry] !== stateKey
      )
        continue;
      let same = true;
      const okOffset = this.#okOffset[entry] as number;
      for (let w = okLow; w <= okHigh; w++) {
        if (arena[okOffset + w - okLow] !== okBits[w]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      const infoOffset = this.#infoOffset[entry] as number;
      const infoLow = this.#infoLow[entry] as number;
      const infoLength = this.#infoLength[entry] as number;
      let subset = true;
      for (let w = 0; w < infoLength; w++) {
        if (((arena[infoOffset + w] as number) & ~(infoBits[infoLow + w] as number)) !== 0) {
          subset = false;
          break;
        }
      }
      if (subset) return true;
    }

    // Insert.
    let infoLow = 0;
    let infoHigh = -1;
    if (anyInfo) {
      const words = (nInfo >>> 5) + 1;
      while (infoLow < words && infoBits[infoLow] === 0) infoLow++;
      infoHigh = words - 1;
      while (infoHigh >= infoLow && infoBits[infoHigh] === 0) infoHigh--;
    }
    const infoLength = infoHigh - infoLow + 1;
    const okLength = okHigh - okLow + 1;
    if (this.#arenaLength + okLength + infoLength > this.#arena.length) {
      const grown = new Uint32Array(
        Math.max(this.#arena.length * 2, this.#arenaLength + okLength + infoLength),
      );
      grown.set(this.#arena.subarray(0, this.#arenaLength));
      this.#arena = grown;
    }
    const entry = this.count++;
    if (entry === this.#chain.length) this.#growEntries();
    const okOffset = this.#arenaLength;
    this.#arena.set(okBits.subarray(okLow, okHigh + 1), okOffset);
    const infoOffset = okOffset + okLength;
    if (infoLength > 0) this.#arena.set(infoBits.subarray(infoLow, infoHigh + 1), infoOffset);
    this.#arenaLength = infoOffset + infoLength;
    this.#hashA[entry] = hashA;
    this.#hashB[entry] = hashB;
    this.#first[entry] = first;
    this.#keys[entry] = stateKey;
    this.#okOffset[entry] = okOffset;
    this.#infoOffset[entry] = infoOffset;
    this.#infoLow[entry] = infoLow;
    this.#infoLength[entry] = infoLength;
    if (this.count > this.#buckets.length * 0.75) this.#rehash(this.#buckets.length * 2);
    else {
      const bucket = hashA & (this.#buckets.length - 1);
      this.#chain[entry] = this.#buckets[bucket] as number;
      this.#buckets[bucket] = entry;
    }
    return false;
  }

  #growEntries(): void {
    const length = this.#chain.length * 2;
    this.#chain = grow(this.#chain, length);
    this.#hashA = grow(this.#hashA, length);
    this.#hashB = grow(this.#hashB, length);
    this.#first = grow(this.#first, length);
    this.#okOffset = grow(this.#okOffset, length);
    this.#infoOffset = grow(this.#infoOffset, length);
    this.#infoLow = grow(this.#infoLow, length);
    this.#infoLength = grow(this.#infoLength, length);
  }

  #rehash(size: number): void {
    const buckets = new Int32Array(size).fill(NIL);
    for (let entry = 0; entry < this.count; entry++) {
      const bucket = (this.#hashA[entry] as number) & (size - 1);
      this.#chain[entry] = buckets[bucket] as number;
      buckets[bucket] = entry;
    }
    this.#buckets = buckets;
  }
}
