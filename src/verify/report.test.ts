// Goal: the verify report renders, in a real browser, what a reader of a Jepsen analysis looks
// for — the verdict, a timeline per key with every operation coloured by outcome, the fault
// bands, throughput and latency charts, and for an invalid run the failing window with the
// anomaly's message — with no console error, no fetch, and a bounded size for long histories.
// Method: hand-built VerifyRun values rendered to files and opened in headless Chromium via
// playwright-core; the screenshots are kept as artifacts (their paths are in the test log).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type {
  CheckResult,
  EventType,
  HistoryEvent,
  NemesisValue,
  ProcessId,
} from "../checker/history.js";
import { temporaryDirectory } from "../testkit/index.js";
import { renderReport } from "./report.js";
import type { VerifyRun } from "./run-types.js";

const chromiumPath = "/usr/bin/chromium";
const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

type Outcome = "ok" | "fail" | "info" | "open";

/** Builds a history from operations given in any order; events are sorted by time. */
class HistoryBuilder {
  private readonly pending: Omit<HistoryEvent, "index">[] = [];
  /** Per key: how many ops of each outcome (an op left open counts as info). */
  readonly counts = new Map<string, { ok: number; fail: number; info: number }>();

  op(spec: {
    process: number;
    f: string;
    key: string;
    value: unknown;
    call: number;
    ret: number;
    outcome: Outcome;
    result?: unknown;
    node?: string;
  }): void {
    const { process, f, key, value, call, ret, outcome, node = "n1" } = spec;
    this.push("invoke", process, f, key, value, call, node);
    if (outcome !== "open") {
      const completion = outcome === "ok" ? (spec.result ?? value) : value;
      this.push(outcome, process, f, key, completion, ret, node, outcome === "ok" ? "" : "timeout");
    }
    const counts = this.counts.get(key) ?? { ok: 0, fail: 0, info: 0 };
    counts[outcome === "open" ? "info" : outcome] += 1;
    this.counts.set(key, counts);
  }

  fault(fault: Omit<NemesisValue, "action">, from: number, to: number | null): void {
    for (const [action, time] of [
      ["start", from],
      ["stop", to],
    ] as const) {
      if (time === null) continue;
      const value = { ...fault, action };
      this.push("invoke", "nemesis", action, undefined, value, time - 5);
      this.push("info", "nemesis", action, undefined, value, time);
    }
  }

  events(): HistoryEvent[] {
    // Stable: a process's completion stays before its next invoke at the same time.
    return [...this.pending]
      .sort((a, b) => a.time - b.time)
      .map((event, index) => ({ ...event, index }));
  }

  private push(
    type: EventType,
    process: ProcessId,
    f: string,
    key: string | undefined,
    value: unknown,
    time: number,
    node?: string,
    error?: string,
  ): void {
    this.pending.push({
      type,
      process,
      f,
      value,
      time,
      ...(key === undefined ? {} : { key }),
      ...(node === undefined ? {} : { node }),
      ...(error ? { error } : {}),
    });
  }
}

function settings(overrides: Partial<VerifyRun["settings"]> = {}): VerifyRun["settings"] {
  return {
    workloads: ["register"],
    nemeses: ["partition"],
    seed: 42,
    durationMs: 3000,
    concurrency: 4,
    nodes: ["n1", "n2", "n3"],
    timeoutMs: 1000,
    ...overrides,
  };
}

/** Keys in the valid run: one plain, one that needs escaping everywhere. */
const plainKey = "x";
const nastyKey = `<y & "z">`;

/** (a) A valid register run: 2 keys, 4 processes, two info ops and a partition. */
function validRun(): { run: VerifyRun; builder: HistoryBuilder } {
  const builder = new HistoryBuilder();
  const last = new Map<string, number>();
  for (let process = 0; process < 4; process++) {
    let time = 20 + process * 35;
    for (let i = 0; time < 2800; i++) {
      const key = Math.floor((i + process) / 2) % 2 === 0 ? plainKey : nastyKey;
      const length = 70 + ((i * 37 + process * 53) % 90);
      const f = ["write", "read", "cas", "read"][(i + process) % 4] as string;
      const previous = last.get(key) ?? null;
      const next = process * 100 + i;
      const value = f === "write" ? next : f === "cas" ? [previous, next] : null;
      // A partition from 1.0 s to 1.8 s: ops there fail or time out.
      const partitioned = time > 1000 && time < 1800 && process >= 2;
      const lastOp = time + length + 40 >= 2800;
      const outcome: Outcome =
        lastOp && process === 2
          ? "info"
          : lastOp && process === 3
            ? "open"
            : partitioned
              ? "fail"
              : "ok";
      if (outcome === "ok" && f !== "read") last.set(key, next);
      builder.op({
        process,
        f,
        key,
        value,
        call: time,
        ret: time + length,
        outcome,
        result: f === "read" ? previous : value,
        node: `n${(process % 3) + 1}`,
      });
      time += length + 25;
    }
  }
  builder.fault({ fault: 1, kind: "partition", nodes: ["n3"], detail: "n1,n2 / n3" }, 1000, 1800);
  const run: VerifyRun = {
    settings: settings(),
    startedAt: "2025-01-02T03:04:05.000Z",
    history: builder.events(),
    results: [
      {
        checker: "linearizable",
        verdict: "valid",
        summary: "2 keys linearizable",
        anomalies: [],
        stats: { operations: 100, states: 1234, keys: 2 },
      },
    ],
    verdict: "valid",
    checkMs: 42,
  };
  return { run, builder };
}

const staleMessage = "read of r returned 1 at 0.640 s, but write 2 had completed at 0.520 s";

/** (b) An invalid run: a stale read of key r inside a failing window, during a kill. */
function invalidRun(): { run: VerifyRun; staleEvents: number[] } {
  const builder = new HistoryBuilder();
  const ops: Parameters<HistoryBuilder["op"]>[0][] = [
    { process: 0, f: "write", key: "r", value: 1, call: 100, ret: 210, outcome: "ok" },
    { process: 1, f: "read", key: "r", value: null, call: 150, ret: 260, outcome: "ok", result: 1 },
    { process: 2, f: "read", key: "r", value: null, call: 180, ret: 300, outcome: "ok", result: 1 },
    { process: 0, f: "write", key: "r", value: 2, call: 400, ret: 520, outcome: "ok" },
    { process: 1, f: "cas", key: "r", value: [1, 3], call: 420, ret: 560, outcome: "fail" },
    { process: 2, f: "read", key: "r", value: null, call: 600, ret: 640, outcome: "ok", result: 1 },
    { process: 0, f: "read", key: "r", value: null, call: 700, ret: 790, outcome: "ok", result: 2 },
    { process: 1, f: "write", key: "r", value: 4, call: 720, ret: 1000, outcome: "info" },
    { process: 2, f: "read", key: "r", value: null, call: 900, ret: 980, outcome: "ok", result: 2 },
  ];
  for (const op of ops) builder.op(op);
  builder.fault({ fault: 7, kind: "kill", nodes: ["n2"], detail: "SIGKILL n2" }, 350, 850);
  const history = builder.events();
  const invokeAt = (call: number) =>
    history.find((e) => e.type === "invoke" && e.time === call && e.process !== "nemesis")!.index;
  const staleEvents = [invokeAt(400), invokeAt(600)];
  const results: CheckResult[] = [
    {
      checker: "linearizable",
      verdict: "invalid",
      summary: "key r is not linearizable",
      anomalies: [
        {
          kind: "stale-read",
          message: staleMessage,
          key: "r",
          events: staleEvents,
          window: { from: 400, to: 640 },
        },
      ],
      stats: { operations: 9, states: 57 },
    },
  ];
  const run: VerifyRun = {
    settings: settings({ nemeses: ["kill"], durationMs: 1000, concurrency: 3 }),
    startedAt: "2025-01-02T03:04:05.000Z",
    history,
    results,
    verdict: "invalid",
    checkMs: 7,
  };
  return { run, staleEvents };
}

/** A long run: `total` ops over 20 keys and 600 s, one anomaly in the middle of the busiest. */
function longRun(total: number): VerifyRun {
  const builder = new HistoryBuilder();
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const clients = 50;
  const perClient = Math.ceil(total / clients);
  // Each client's operations spread evenly over 600 s; an op takes 5–205 ms of its slot.
  const slot = 600_000 / perClient;
  let nextProcess = clients;
  for (let client = 0; client < clients; client++) {
    let process = client;
    for (let i = 0; i < perClient; i++) {
      const key = random() < 0.3 ? "hot" : `k${Math.floor(random() * 19)}`;
      const call = client * 5 + i * slot;
      const roll = random();
      const outcome: Outcome = roll < 0.01 ? "info" : roll < 0.05 ? "fail" : "ok";
      const f = random() < 0.5 ? "read" : "add";
      builder.op({
        process,
        f,
        key,
        value: f === "add" ? i : null,
        call,
        ret: call + 5 + random() * 200,
        outcome,
        // Set reads grow: the report must not copy them whole into every tooltip.
        result: f === "read" ? Array.from({ length: 50 }, (_, j) => j) : i,
      });
      // After an indeterminate op the client carries on as a fresh process.
      if (outcome === "info") process = nextProcess++;
    }
  }
  const history = builder.events();
  const middle = history.find((e) => e.key === "hot" && e.type === "invoke" && e.time > 300_000)!;
  return {
    settings: settings({
      workloads: ["set"],
      nemeses: [],
      durationMs: 600_000,
      concurrency: clients,
    }),
    startedAt: "2025-01-02T03:04:05.000Z",
    history,
    results: [
      {
        checker: "set",
        verdict: "invalid",
        summary: "1 lost add",
        anomalies: [
          {
            kind: "lost-add",
            message: "add of hot acknowledged but never read",
            key: "hot",
            events: [middle.index],
            window: { from: middle.time, to: middle.time + 2000 },
          },
        ],
        stats: { operations: total },
      },
    ],
    verdict: "invalid",
    checkMs: 1234,
  };
}

interface Opened {
  readonly page: Page;
  /** Console errors and uncaught exceptions. */
  readonly errors: string[];
  readonly requests: string[];
}

describe("renderReport in Chromium", () => {
  const profile = temporaryDirectory("brigade-report-profile-");
  const pages = temporaryDirectory("brigade-report-html-");
  // Kept after the test: the screenshots are artifacts for a person (and CI) to look at.
  const shots = mkdtempSync(path.join(os.tmpdir(), "brigade-report-shots-"));
  let browser: BrowserContext | undefined;

  /** Launched by the first test that needs it, so a missing Chromium fails each test. */
  async function launched(): Promise<BrowserContext> {
    assert.ok(
      existsSync(chromiumPath),
      `Chromium is required at ${chromiumPath} for the report test (apt-get install chromium); this test does not skip`,
    );
    browser ??= await chromium.launchPersistentContext(profile.path, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: { width: 1300, height: 900 },
    });
    return browser;
  }

  after(async () => {
    try {
      await browser?.close();
    } finally {
      profile.remove();
      pages.remove();
    }
  });

  async function open(html: string, name: string): Promise<Opened> {
    const file = path.join(pages.path, `${name}.html`);
    writeFileSync(file, html);
    const page = await (await launched()).newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("request", (request) => requests.push(request.url()));
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    return { page, errors, requests };
  }

  async function screenshot(
    t: TestContext,
    page: Page,
    name: string,
    fullPage = true,
  ): Promise<void> {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage });
    const png = readFileSync(file);
    assert.ok(png.length > 1000, `screenshot ${file} is ${png.length} bytes`);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    t.diagnostic(`screenshot: ${file}`);
  }

  /** Per timeline section: its key and how many op rects of each outcome it draws. */
  function timelines(page: Page) {
    return page.$$eval("section.timeline", (sections) =>
      sections.map((section) => ({
        key: section.getAttribute("data-key"),
        ok: section.querySelectorAll("rect.op.ok").length,
        fail: section.querySelectorAll("rect.op.fail").length,
        info: section.querySelectorAll("rect.op.info").length,
        faults: section.querySelectorAll("rect.fault").length,
        windows: section.querySelectorAll("[data-failing-window]").length,
        implicated: section.querySelectorAll("rect.op.implicated").length,
      })),
    );
  }

  async function assertClean(opened: Opened): Promise<void> {
    assert.deepEqual(opened.errors, [], "console errors on the report page");
    const fetched = opened.requests.filter((url) => !url.startsWith("file://"));
    assert.deepEqual(fetched, [], "the report fetched something");
    assert.equal(opened.requests.length, 1, `requests: ${opened.requests.join(", ")}`);
  }

  it("renders a valid run: verdict, per-key timelines, fault band and charts", async (t) => {
    const { run, builder } = validRun();
    const opened = await open(renderReport(run), "valid");
    const { page } = opened;
    try {
      const verdict = page.locator("#verdict");
      assert.equal(await verdict.textContent(), "VALID");
      assert.equal(await verdict.getAttribute("data-verdict"), "valid");
      assert.ok(await verdict.isVisible());

      const drawn = await timelines(page);
      assert.deepEqual(drawn.map((s) => s.key).sort(), [plainKey, nastyKey].sort());
      for (const section of drawn) {
        const expected = builder.counts.get(section.key as string)!;
        assert.deepEqual(
          { ok: section.ok, fail: section.fail, info: section.info },
          expected,
          `op rects of key ${section.key}`,
        );
        assert.equal(section.faults, 1, "the partition band over each timeline");
        assert.equal(section.windows, 0);
      }
      assert.ok(drawn.some((s) => s.info > 0) && drawn.some((s) => s.fail > 0));
      // The escaped key reads back as itself, not as markup.
      assert.equal(await page.locator("article.key h3 code").getByText(nastyKey).count(), 1);

      assert.equal(await page.locator("table.faults tr.fault-row[data-kind=partition]").count(), 1);
      for (const id of ["throughput", "latency"]) {
        const chart = page.locator(`svg#${id}`);
        const box = await chart.boundingBox();
        assert.ok(box && box.width > 500 && box.height > 80, `${id} chart is drawn`);
        assert.equal(await chart.locator("rect.fault").count(), 1, `${id} has the fault band`);
        const paths = await chart
          .locator("path.series")
          .evaluateAll((nodes) => nodes.map((node) => node.getAttribute("d") ?? ""));
        assert.equal(paths.length, 3);
        assert.ok(paths.filter((d) => d.length > 20).length >= 2, `${id} has lines`);
      }
      assert.equal(await page.locator("[data-failing-window]").count(), 0);
      await screenshot(t, page, "valid");
      await assertClean(opened);
    } finally {
      await page.close();
    }
  });

  it("renders an invalid run: the failing window, its operations and the anomaly", async (t) => {
    const { run } = invalidRun();
    const opened = await open(renderReport(run), "invalid");
    const { page } = opened;
    try {
      assert.equal(await page.locator("#verdict").textContent(), "INVALID");
      assert.equal(await page.locator("#verdict").getAttribute("data-verdict"), "invalid");
      assert.equal(
        await page.locator("tr.checker[data-checker=linearizable]").getAttribute("data-verdict"),
        "invalid",
      );

      const [section, ...others] = await timelines(page);
      assert.deepEqual(others, []);
      assert.deepEqual(section, {
        key: "r",
        ok: 7,
        fail: 1,
        info: 1,
        faults: 1,
        windows: 1,
        implicated: 2,
      });

      const zoom = page.locator("section.failing-window-zoom[data-key=r]");
      assert.equal(await zoom.locator("h4").textContent(), "Smallest failing window");
      assert.equal(await zoom.locator("[data-failing-window]").count(), 1);
      assert.ok(await zoom.locator("[data-failing-window]").isVisible());
      const message = zoom.locator(".anomaly-message");
      assert.ok(await message.isVisible());
      assert.match((await message.textContent()) ?? "", /stale-read/);
      assert.ok(((await message.textContent()) ?? "").includes(staleMessage));
      assert.ok(await page.locator("li.anomaly .message").getByText(staleMessage).isVisible());
      // The zoom draws only the ops overlapping the (padded) window: write 2, the cas, the read.
      assert.equal(await zoom.locator("rect.op").count(), 3);
      assert.equal(await zoom.locator("rect.op.implicated").count(), 2);

      await screenshot(t, page, "invalid");
      await assertClean(opened);
    } finally {
      await page.close();
    }
  });

  it("keeps a 100k-operation report bounded and still usable", async (t) => {
    const run = longRun(100_000);
    const started = performance.now();
    const html = renderReport(run);
    const ms = performance.now() - started;
    const mb = Buffer.byteLength(html) / 2 ** 20;
    t.diagnostic(
      `100k ops (${run.history.length} events): report ${mb.toFixed(2)} MiB in ${ms.toFixed(0)} ms`,
    );
    assert.ok(mb < 4, `report is ${mb.toFixed(2)} MiB`);

    const opened = await open(html, "long");
    const { page } = opened;
    try {
      const drawn = await timelines(page);
      assert.equal(drawn.length, 12);
      assert.equal(drawn[0]?.key, "hot", "the key with the anomaly comes first");
      assert.equal(drawn[0]?.windows, 1);
      assert.equal(drawn[0]?.implicated, 1);
      for (const section of drawn) assert.ok(section.ok + section.fail + section.info <= 2000);
      assert.equal(await page.locator("#keys-omitted").getAttribute("data-omitted"), "8");
      assert.match(
        (await page.locator("#key-0 .note").textContent()) ?? "",
        /showing .* around the smallest failing window/,
      );
      await screenshot(t, page, "long", false); // the top only: the whole page is ~19k px tall
      await assertClean(opened);
    } finally {
      await page.close();
    }
  });
});
