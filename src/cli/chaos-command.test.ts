// Goal: `brigade chaos` reads its arguments as documented — durations (10s, 200ms, 1.5s, 2m),
// signed clock offsets, percents (10% or 0.1) and partition groups in every spelling
// ("n1,n2 / n3", "n1,n2/n3", one quoted word) — and refuses anything else as bad usage
// (CliError with exit code 2) before it contacts a cluster. Method: the exported parsers and
// actions, with a recording fake ChaosControl; no processes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChaosControl } from "../supervisor/chaos.js";
import {
  chaosActions,
  formatChaosStatus,
  formatMs,
  parseChaosLine,
  parsePartitionGroups,
  parsePercent,
  parseSignedDuration,
} from "./chaos-command.js";
import { CliError } from "./cli-error.js";
import { parseDuration } from "./options.js";

function usageError(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CliError, `expected CliError, got ${String(error)}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, message);
    return true;
  });
}

/** A ChaosControl that records the calls it gets. */
function recorder(): { chaos: ChaosControl; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const record =
    (name: string) =>
    async (...args: unknown[]) => {
      calls.push([name, ...args]);
    };
  const chaos: ChaosControl = {
    nodes: async () => [],
    kill: record("kill"),
    restart: record("restart"),
    pause: record("pause"),
    resume: record("resume"),
    partition: record("partition"),
    isolate: record("isolate"),
    link: record("link"),
    skew: record("skew"),
    heal: record("heal"),
    status: async () => ({ nodes: [], faults: [] }),
  };
  return { chaos, calls };
}

describe("chaos argument parsing", () => {
  it("reads durations with a unit", () => {
    assert.equal(parseDuration("10s"), 10_000);
    assert.equal(parseDuration("200ms"), 200);
    assert.equal(parseDuration("1.5s"), 1_500);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration(".5s"), 500);
    assert.equal(parseDuration("0"), 0);
  });

  it("refuses malformed durations, and bare numbers other than 0", () => {
    for (const text of ["soon", "", "10", "-5s", "5 s", "1.2.3s", "5d", "ms", "1e3ms"])
      usageError(() => parseDuration(text), /malformed duration/);
    usageError(() => parseDuration("soon", "--for duration"), /malformed --for duration "soon"/);
  });

  it("reads signed clock offsets", () => {
    assert.equal(parseSignedDuration("+500ms"), 500);
    assert.equal(parseSignedDuration("500ms"), 500);
    assert.equal(parseSignedDuration("-200ms"), -200);
    assert.equal(parseSignedDuration("-1.5s"), -1_500);
    assert.equal(parseSignedDuration("0"), 0);
    assert.equal(Object.is(parseSignedDuration("-0"), 0), true, "-0 is a plain reset");
    usageError(() => parseSignedDuration("+-5ms"), /malformed offset/);
    usageError(() => parseSignedDuration("ahead"), /malformed offset/);
  });

  it("reads percents and fractions in 0..1", () => {
    assert.equal(parsePercent("10%"), 0.1);
    assert.equal(parsePercent("0.1"), 0.1);
    assert.equal(parsePercent("100%"), 1);
    assert.equal(parsePercent("0"), 0);
    assert.equal(parsePercent("1"), 1);
    assert.equal(parsePercent("12.5%"), 0.125);
  });

  it("refuses rates outside 0..1 and malformed ones", () => {
    usageError(() => parsePercent("150%"), /between 0% and 100%.*"150%"/);
    usageError(() => parsePercent("10"), /did you mean 10%\?/);
    usageError(() => parsePercent("-5%"), /malformed rate/);
    usageError(() => parsePercent("ten"), /malformed rate/);
    usageError(() => parsePercent("10%%"), /malformed rate/);
  });

  it("reads partition groups in every spelling", () => {
    const expected = [
      ["n1", "n2"],
      ["n3", "n4", "n5"],
    ];
    assert.deepEqual(parsePartitionGroups(["n1,n2", "/", "n3,n4,n5"]), expected);
    assert.deepEqual(parsePartitionGroups(["n1,n2/n3,n4,n5"]), expected);
    assert.deepEqual(parsePartitionGroups(["n1,n2 / n3,n4,n5"]), expected);
    assert.deepEqual(parsePartitionGroups(["n1,n2/", "n3,n4,n5"]), expected);
    assert.deepEqual(parsePartitionGroups(["n1", "n2", "/", "n3", "n4", "n5"]), expected);
    assert.deepEqual(parsePartitionGroups(["n1/n2/n3"]), [["n1"], ["n2"], ["n3"]]);
  });

  it("refuses partitions that are not two or more disjoint, non-empty groups", () => {
    usageError(() => parsePartitionGroups(["n1,n2"]), /at least two groups/);
    usageError(() => parsePartitionGroups(["n1", "/"]), /empty group/);
    usageError(() => parsePartitionGroups(["n1//n2"]), /empty group/);
    usageError(() => parsePartitionGroups(["n1,n2/n2,n3"]), /n2 is in more than one group/);
    usageError(() => parsePartitionGroups(["n1/n$"]), /malformed node id "n\$"/);
  });

  it("formats durations for people", () => {
    assert.equal(formatMs(200), "200ms");
    assert.equal(formatMs(1_500), "1.5s");
    assert.equal(formatMs(10_000), "10s");
    assert.equal(formatMs(120_000), "2m");
    assert.equal(formatMs(-200), "-200ms");
  });
});

describe("chaos actions", () => {
  it("turn arguments into ChaosControl calls", async () => {
    const { chaos, calls } = recorder();
    await chaosActions.pause("n3", "10s")(chaos);
    await chaosActions.pause("n3")(chaos);
    await chaosActions.delay("n1", "n2", "200ms", "50ms")(chaos);
    await chaosActions.loss("n1", "n2", "10%")(chaos);
    await chaosActions.skew("n4", "-200ms")(chaos);
    await chaosActions.partition(["n1,n2/n3"])(chaos);
    assert.deepEqual(calls, [
      ["pause", "n3", 10_000],
      ["pause", "n3", undefined],
      ["link", "n1", "n2", { delayMs: 200, jitterMs: 50 }],
      ["link", "n1", "n2", { dropRate: 0.1 }],
      ["skew", "n4", -200],
      ["partition", [["n1", "n2"], ["n3"]]],
    ]);
  });

  it("refuse bad usage before contacting the cluster", () => {
    usageError(() => chaosActions.pause("n1", "soon"), /malformed --for duration "soon"/);
    usageError(() => chaosActions.pause("n1", "0"), /--for must be longer than 0/);
    usageError(() => chaosActions.loss("n1", "n2", "150%"), /loss rate must be between/);
    usageError(() => chaosActions.delay("n1", "n2", "0.5ms"), /whole milliseconds/);
    usageError(() => chaosActions.delay("n1", "n1", "5ms"), /two different nodes/);
    usageError(() => chaosActions.kill("n 1"), /malformed node id/);
  });

  it("parses the chaos verbs typed at the `brigade up` prompt, leaving the older forms alone", async () => {
    const { chaos, calls } = recorder();
    for (const line of [
      "isolate n1",
      "skew n4 +500ms",
      "loss n1 n2 10%",
      "partition n1 / n2,n3",
      "pause n2 --for 1s",
      "delay n1 n2 200ms --jitter 50ms",
    ]) {
      const action = parseChaosLine(line);
      assert.ok(action, line);
      await action(chaos);
    }
    assert.deepEqual(
      calls.map((call) => call[0]),
      ["isolate", "skew", "link", "partition", "pause", "link"],
    );
    for (const line of ["partition n1 n2", "pause n2", "delay n1 n2 200", "kill n1", "heal", ""])
      assert.equal(parseChaosLine(line), null, line);
    usageError(() => parseChaosLine("skew n4"), /usage: skew/);
  });

  it("formats the status as two tables", () => {
    const text = formatChaosStatus(
      {
        nodes: [
          {
            id: "n1",
            listen: "127.0.0.1:1",
            api: "127.0.0.1:2",
            dataDir: "/tmp/n1",
            pid: 42,
            state: "paused",
            lastExit: null,
          },
        ],
        faults: [
          { kind: "pause", nodes: ["n1"], detail: "SIGSTOP", since: 0, until: 10_000 },
          { kind: "skew", nodes: ["n1"], detail: "+500ms", since: 0 },
        ],
      },
      5_000,
    );
    assert.match(text, /n1\s+paused\s+42/);
    assert.match(text, /pause\s+n1\s+SIGSTOP\s+00:00:00\s+00:00:10 \(in 5s\)/);
    assert.match(text, /skew\s+n1\s+\+500ms/);
    assert.match(formatChaosStatus({ nodes: [], faults: [] }), /no faults in force/);
  });
});
