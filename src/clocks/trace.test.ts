// Goal: on any message trace all three clocks respect happened-before and the HLC stays within ε of
// physical time; method: fast-check generates traces of 3-5 processes doing local, send and receive
// events over skewed, drifting physical clocks, and every event is checked against its explicitly
// tracked causal history.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compareHlc, type HlcTimestamp, HybridLogicalClock } from "./hlc.js";
import { LamportClock } from "./lamport.js";
import * as vc from "./vector-clock.js";

const numRuns = 200;

interface Step {
  readonly process: number;
  readonly kind: "local" | "send" | "receive";
  /** send: picks the target among the other processes; receive: picks a message in flight to us. */
  readonly choice: number;
  /** How far true time moves before this step. */
  readonly advanceMs: number;
  /** Drift: before this step, process `driftProcess` re-aims its skew at `driftPermille`‰ of ε. */
  readonly driftProcess: number;
  readonly driftPermille: number;
}

interface Scenario {
  readonly processCount: number;
  /** Bound on every physical clock's distance from true time: pt ∈ [trueTime, trueTime + ε]. */
  readonly epsilonMs: number;
  readonly initialSkewPermille: readonly number[];
  readonly steps: readonly Step[];
}

interface Event {
  readonly id: number;
  readonly process: number;
  readonly lamport: number;
  readonly vectorClock: vc.VectorClock;
  readonly hlc: HlcTimestamp;
  /** Physical time of the process when the event happened. */
  readonly physicalMs: number;
  /** Ids of every event that happened before this one, plus this one: the ground truth. */
  readonly history: ReadonlySet<number>;
}

interface Message {
  readonly target: number;
  readonly send: Event;
}

function scenarioArb(options: { readonly drift: boolean; readonly advanceMsMin: number }) {
  return fc.integer({ min: 3, max: 5 }).chain((processCount) =>
    fc.record({
      processCount: fc.constant(processCount),
      epsilonMs: fc.integer({ min: 0, max: 20 }),
      initialSkewPermille: fc.array(fc.nat({ max: 1_000 }), {
        minLength: processCount,
        maxLength: processCount,
      }),
      steps: fc.array(
        fc.record({
          process: fc.nat({ max: processCount - 1 }),
          kind: fc.constantFrom("local", "send", "receive"),
          choice: fc.nat({ max: 1_000 }),
          advanceMs: fc.integer({ min: options.advanceMsMin, max: 3 }),
          driftProcess: fc.nat({ max: processCount - 1 }),
          driftPermille: options.drift ? fc.nat({ max: 1_000 }) : fc.constant(-1),
        }),
        { minLength: 1, maxLength: 60, size: "medium" },
      ),
    }),
  );
}

/**
 * Runs the trace. Physical clocks are monotonic and within [trueTime, trueTime + ε], so any
 * two differ by at most ε, the synchronisation assumption of the HLC paper. Every HLC has
 * maxOffsetMs = ε exactly, the tightest setting under which no honest message is refused.
 */
function run(scenario: Scenario) {
  const { processCount, epsilonMs } = scenario;
  const skewMs = scenario.initialSkewPermille.map((permille) =>
    Math.floor((epsilonMs * permille) / 1_000),
  );
  let trueTimeMs = 1_000;
  const physicalMs = skewMs.map((skew) => trueTimeMs + skew);
  const lamports = physicalMs.map(() => new LamportClock());
  const hlcs = physicalMs.map(
    (_, process) =>
      new HybridLogicalClock({
        physicalNowMs: () => physicalMs[process]!,
        maxOffsetMs: epsilonMs,
      }),
  );
  const vectorClocks: vc.VectorClock[] = physicalMs.map(() => vc.emptyVectorClock);
  const lastEvent: (Event | null)[] = physicalMs.map(() => null);
  const inFlight: Message[] = [];
  const events: Event[] = [];

  for (const step of scenario.steps) {
    trueTimeMs += step.advanceMs;
    if (step.driftPermille >= 0) {
      skewMs[step.driftProcess] = Math.floor((epsilonMs * step.driftPermille) / 1_000);
    }
    for (let process = 0; process < processCount; process++) {
      // max(): a physical clock never goes back, it only slows down to drift towards its skew.
      physicalMs[process] = Math.max(physicalMs[process]!, trueTimeMs + skewMs[process]!);
    }

    const process = step.process;
    const id = events.length;
    const nodeId = `p${process}`;
    const history = new Set(lastEvent[process]?.history ?? []);
    history.add(id);
    let lamport: number;
    let hlc: HlcTimestamp;
    let vectorClock: vc.VectorClock;

    const deliverable = inFlight.filter((message) => message.target === process);
    const received =
      step.kind === "receive" && deliverable.length > 0
        ? deliverable[step.choice % deliverable.length]!
        : null;
    if (received !== null) {
      inFlight.splice(inFlight.indexOf(received), 1);
      for (const earlier of received.send.history) history.add(earlier);
      lamport = lamports[process]!.update(received.send.lamport);
      hlc = hlcs[process]!.update(received.send.hlc);
      vectorClock = vc.increment(
        vc.merge(vectorClocks[process]!, received.send.vectorClock),
        nodeId,
      );
    } else {
      // A local event, a send, or a receive with nothing in flight (treated as local).
      lamport = lamports[process]!.now();
      hlc = hlcs[process]!.now();
      vectorClock = vc.increment(vectorClocks[process]!, nodeId);
    }
    vectorClocks[process] = vectorClock;
    const event: Event = {
      id,
      process,
      lamport,
      vectorClock,
      hlc,
      physicalMs: physicalMs[process]!,
      history,
    };
    events.push(event);
    lastEvent[process] = event;
    if (step.kind === "send") {
      const target = (process + 1 + (step.choice % (processCount - 1))) % processCount;
      inFlight.push({ target, send: event });
    }
  }
  return { events, hlcs };
}

describe("clocks on random message traces", () => {
  it("vector clocks count the true causal history, and happened-before orders Lamport and HLC", () => {
    fc.assert(
      fc.property(scenarioArb({ drift: true, advanceMsMin: 0 }), (scenario) => {
        const { events } = run(scenario);
        for (const event of events) {
          // The vector clock is exactly the per-process count of the causal history.
          const counts = new Map<string, number>();
          for (const id of event.history) {
            const nodeId = `p${events[id]!.process}`;
            counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
          }
          assert.deepStrictEqual(event.vectorClock, vc.parse(Object.fromEntries(counts)));
        }
        for (const e of events) {
          for (const f of events) {
            if (e === f) continue;
            const eBeforeF = f.history.has(e.id);
            assert.equal(vc.happenedBefore(e.vectorClock, f.vectorClock), eBeforeF);
            if (!eBeforeF && !e.history.has(f.id)) {
              assert.equal(vc.compare(e.vectorClock, f.vectorClock), "concurrent");
            }
            if (eBeforeF) {
              assert.ok(e.lamport < f.lamport, `lamport ${e.lamport} !< ${f.lamport}`);
              assert.equal(compareHlc(e.hlc, f.hlc), -1, `hlc of ${e.id} !< hlc of ${f.id}`);
            }
          }
        }
      }),
      { numRuns },
    );
  });

  it("HLC stays within ε of physical time (pt ≤ l ≤ pt + ε) and c is bounded by same-l history", () => {
    fc.assert(
      fc.property(scenarioArb({ drift: true, advanceMsMin: 0 }), (scenario) => {
        const { events, hlcs } = run(scenario);
        for (const event of events) {
          assert.ok(event.hlc.wallMs >= event.physicalMs, "l >= pt");
          assert.ok(
            event.hlc.wallMs - event.physicalMs <= scenario.epsilonMs,
            `l - pt = ${event.hlc.wallMs - event.physicalMs} > ε = ${scenario.epsilonMs}`,
          );
          // Paper: c.f ≤ |{g : g hb f ∧ l.g = l.f}|.
          let sameWallBefore = 0;
          for (const id of event.history) {
            if (id !== event.id && events[id]!.hlc.wallMs === event.hlc.wallMs) sameWallBefore += 1;
          }
          assert.ok(
            event.hlc.logical <= sameWallBefore,
            `c = ${event.hlc.logical} > ${sameWallBefore}`,
          );
        }
        // maxOffsetMs = ε is enough: honest peers are never refused.
        for (const hlc of hlcs) assert.equal(hlc.rejectedCount, 0);
      }),
      { numRuns },
    );
  });

  it("c ≤ N·(ε + 1) when every physical clock ticks between events", () => {
    fc.assert(
      fc.property(scenarioArb({ drift: false, advanceMsMin: 1 }), (scenario) => {
        const { events } = run(scenario);
        const bound = scenario.processCount * (scenario.epsilonMs + 1);
        for (const event of events) {
          assert.ok(event.hlc.logical <= bound, `c = ${event.hlc.logical} > N·(ε+1) = ${bound}`);
        }
      }),
      { numRuns },
    );
  });
});
