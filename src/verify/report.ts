/**
 * @module The HTML report of a `brigade verify` run, laid out the way Jepsen's analyses are:
 * the verdict and settings, what each checker found, the faults injected, throughput and
 * latency over time against the fault bands, and a timeline of operations per key with the
 * failing window outlined and zoomed in on.
 *
 * One self-contained file: inline CSS and SVG, no script, and a Content-Security-Policy that
 * forbids fetching anything. Tooltips are SVG `<title>`s. Every user-supplied text (keys,
 * values, errors, messages) is escaped.
 *
 * Bounded output: at most `maxKeysDrawn` keys are drawn, each with at most `maxOpsPerKey`
 * operations out of a shared `opBudget`, so a 100k-operation history still gives a report of
 * a few MB. Stable hooks for tests and tools: `#verdict[data-verdict]`,
 * `section.timeline[data-key]` with `rect.op.ok|fail|info` and `rect.fault`,
 * `g[data-failing-window]`, `section.failing-window-zoom`, `svg#throughput`, `svg#latency`.
 */
import {
  type Anomaly,
  type NemesisValue,
  type Operation,
  pairOperations,
} from "../checker/history.js";
import type { VerifyRun } from "./run-types.js";

const maxKeysDrawn = 12;
const maxOpsPerKey = 2000;
/** Operations drawn over all timelines: a drawn op costs ~200 bytes of SVG. */
const opBudget = 12_000;
const maxZoomOps = 300;
/** Plot width of a timeline, px: fills the page; longer ones scroll. */
const timelineMinWidth = 1100;
const maxAnomaliesListed = 50;
const maxFaultsListed = 200;
/** Longest value text in a tooltip; a set read can hold thousands of elements. */
const maxValueChars = 240;

/** A fault in force from its "start" info event to its "stop" info event (or the end). */
interface Fault {
  readonly id: number;
  readonly kind: string;
  readonly nodes: readonly string[];
  readonly detail: string;
  readonly from: number;
  to: number;
  open: boolean;
}

/** An anomaly with the checker that reported it. */
interface Finding {
  readonly checker: string;
  readonly anomaly: Anomaly;
}

interface KeyGroup {
  readonly key: string | undefined;
  readonly ops: Operation[];
  readonly findings: Finding[];
  /** Anchor id of the key's section, when drawn. */
  anchor?: string;
}

interface Model {
  readonly run: VerifyRun;
  readonly ops: readonly Operation[];
  /** Time of the last history event, ms (at least 1). */
  readonly end: number;
  readonly faults: readonly Fault[];
  readonly findings: readonly Finding[];
  readonly keys: readonly KeyGroup[];
  /** The keys drawn, in order: keys with anomalies first, then the busiest. */
  readonly drawn: readonly KeyGroup[];
}

export function renderReport(run: VerifyRun): string {
  const model = buildModel(run);
  const title = `brigade verify: ${run.verdict.toUpperCase()} (${run.settings.workloads.join(", ")})`;
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    // The report must open offline and never phone home: forbid every fetch.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<link rel="icon" href="data:,">',
    `<title>${esc(title)}</title>`,
    `<style>${css}</style>`,
    "</head><body>",
    svgDefs,
    "<main>",
    renderHeader(model),
    '<nav class="toc"><a href="#checkers">Checkers</a><a href="#faults">Faults</a>',
    '<a href="#rates">Throughput &amp; latency</a><a href="#timelines">Timelines</a></nav>',
    renderCheckers(model),
    renderFaults(model),
    renderRates(model),
    renderTimelines(model),
    "</main></body></html>",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Model

function buildModel(run: VerifyRun): Model {
  const ops = pairOperations(run.history);
  let end = 1;
  for (const event of run.history) end = Math.max(end, event.time);
  const faults = faultIntervals(run, end);

  const groups = new Map<string | undefined, KeyGroup>();
  const byInvoke = new Map<number, Operation>();
  for (const op of ops) {
    byInvoke.set(op.invokeIndex, op);
    let group = groups.get(op.key);
    if (group === undefined) {
      group = { key: op.key, ops: [], findings: [] };
      groups.set(op.key, group);
    }
    group.ops.push(op);
  }
  for (const group of groups.values()) group.ops.sort((a, b) => a.callTime - b.callTime);

  const findings: Finding[] = [];
  for (const result of run.results) {
    for (const anomaly of result.anomalies) {
      const finding = { checker: result.checker, anomaly };
      findings.push(finding);
      // An anomaly without a key (a bank total, say) belongs to the keys of its operations.
      const keys = new Set<string | undefined>();
      if (anomaly.key !== undefined) keys.add(anomaly.key);
      else {
        for (const index of anomaly.events) {
          const op = byInvoke.get(index);
          if (op !== undefined) keys.add(op.key);
        }
      }
      for (const key of keys) groups.get(key)?.findings.push(finding);
    }
  }

  const keys = [...groups.values()];
  const drawn = [...keys]
    .sort(
      (a, b) =>
        Number(b.findings.length > 0) - Number(a.findings.length > 0) ||
        b.ops.length - a.ops.length ||
        keyName(a.key).localeCompare(keyName(b.key)),
    )
    .slice(0, maxKeysDrawn);
  drawn.forEach((group, i) => {
    group.anchor = `key-${i}`;
  });
  return { run, ops, end, faults, findings, keys, drawn };
}

function faultIntervals(run: VerifyRun, end: number): Fault[] {
  const open = new Map<number, Fault>();
  const faults: Fault[] = [];
  for (const event of run.history) {
    if (event.process !== "nemesis" || event.type !== "info") continue;
    const value = event.value as Partial<NemesisValue> | null;
    if (typeof value !== "object" || value === null || typeof value.fault !== "number") continue;
    if (value.action === "start") {
      const fault: Fault = {
        id: value.fault,
        kind: String(value.kind ?? "fault"),
        nodes: value.nodes ?? [],
        detail: String(value.detail ?? ""),
        from: event.time,
        to: end,
        open: true,
      };
      open.set(fault.id, fault);
      faults.push(fault);
    } else if (value.action === "stop") {
      const fault = open.get(value.fault);
      if (fault === undefined) continue;
      fault.to = event.time;
      fault.open = false;
      open.delete(value.fault);
    }
  }
  return faults;
}

// ---------------------------------------------------------------------------------------------
// Header, checkers, faults

function renderHeader(m: Model): string {
  const { settings, verdict } = m.run;
  const counts = countTypes(m.ops);
  const smallest = smallestWindow(m.findings);
  const smallestKey = smallest && m.drawn.find((group) => group.findings.includes(smallest));
  const setting = (name: string, value: string) => `<div><dt>${name}</dt><dd>${value}</dd></div>`;
  return `<header class="summary ${esc(verdict)}">
<h1 id="verdict" data-verdict="${esc(verdict)}">${esc(verdict.toUpperCase())}</h1>
<p class="lede">${esc(verdictSentence(m))}${
    smallest && smallestKey
      ? ` <a href="#${smallestKey.anchor}-window">Smallest failing window: key ${esc(keyName(smallestKey.key))} →</a>`
      : ""
  }</p>
<dl class="settings">
${setting("Workloads", esc(settings.workloads.join(", ") || "none"))}
${setting("Nemeses", esc(settings.nemeses.join(", ") || "none"))}
${setting("Seed", esc(String(settings.seed)))}
${setting("Duration", esc(duration(settings.durationMs)))}
${setting("Concurrency", `${esc(String(settings.concurrency))} clients per workload`)}
${setting("Nodes", esc(settings.nodes.join(", ")))}
${setting("Timeout", esc(duration(settings.timeoutMs)))}
${setting("Started", esc(m.run.startedAt))}
</dl>
<p class="counts" id="counts" data-ok="${counts.ok}" data-fail="${counts.fail}" data-info="${counts.info}">
<b>${num(m.ops.length)}</b> operations: <span class="c-ok">${num(counts.ok)} ok</span> · <span class="c-fail">${num(counts.fail)} fail</span> · <span class="c-info">${num(counts.info)} info</span>
 — ${plural(m.keys.length, "key")}, ${plural(m.faults.length, "fault")}, history ${duration(m.end)}, checked in ${duration(m.run.checkMs)}</p>
</header>`;
}

function verdictSentence(m: Model): string {
  const invalid = m.run.results.filter((r) => r.verdict === "invalid").map((r) => r.checker);
  const unknown = m.run.results.filter((r) => r.verdict === "unknown").map((r) => r.checker);
  const anomalies = m.findings.length === 1 ? "1 anomaly" : `${m.findings.length} anomalies`;
  if (invalid.length > 0) return `${anomalies} found by ${invalid.join(", ")}.`;
  if (unknown.length > 0) return `No anomaly found, but ${unknown.join(", ")} could not decide.`;
  if (m.run.results.length === 0) return "No checker ran.";
  if (m.run.results.length === 1)
    return `The ${m.run.results[0]!.checker} checker found the history valid.`;
  return `All ${m.run.results.length} checkers found the history valid.`;
}

function renderCheckers(m: Model): string {
  const rows = m.run.results.map((result) => {
    const stats = Object.entries(result.stats)
      .map(([name, value]) => `<span>${esc(name)} <b>${num(value)}</b></span>`)
      .join(" ");
    const listed = result.anomalies.slice(0, maxAnomaliesListed).map((anomaly) => {
      const group = m.drawn.find((g) => g.findings.some((f) => f.anomaly === anomaly));
      const key = anomaly.key ?? group?.key;
      const where =
        key === undefined
          ? ""
          : group?.anchor
            ? ` <a href="#${group.anchor}">key ${esc(key)}</a>`
            : ` key ${esc(key)}`;
      const window = anomaly.window
        ? ` · window ${seconds(anomaly.window.from)}–${seconds(anomaly.window.to)} s`
        : "";
      const events =
        anomaly.events.length > 0
          ? ` · events ${esc(
              anomaly.events
                .slice(0, 12)
                .map((i) => `#${i}`)
                .join(", "),
            )}${anomaly.events.length > 12 ? " …" : ""}`
          : "";
      return `<li class="anomaly" data-kind="${esc(anomaly.kind)}"><span class="kind">${esc(anomaly.kind)}</span>${where}: <span class="message">${esc(anomaly.message)}</span><span class="muted">${window}${events}</span></li>`;
    });
    const more = result.anomalies.length - listed.length;
    const anomalies =
      listed.length === 0
        ? ""
        : `<tr class="anomalies"><td colspan="4"><ul>${listed.join("")}${
            more > 0 ? `<li class="muted">and ${num(more)} more</li>` : ""
          }</ul></td></tr>`;
    return `<tr class="checker" data-checker="${esc(result.checker)}" data-verdict="${esc(result.verdict)}">
<td class="name">${esc(result.checker)}</td><td><span class="badge ${esc(result.verdict)}">${esc(result.verdict)}</span></td>
<td>${esc(result.summary)}</td><td class="stats">${stats}</td></tr>${anomalies}`;
  });
  return `<section id="checkers"><h2>Checkers</h2>
<table class="checkers"><thead><tr><th>Checker</th><th>Verdict</th><th>Summary</th><th>Stats</th></tr></thead>
<tbody>${rows.join("\n") || '<tr><td colspan="4" class="muted">No checker ran.</td></tr>'}</tbody></table></section>`;
}

function renderFaults(m: Model): string {
  if (m.faults.length === 0) {
    return `<section id="faults"><h2>Faults</h2><p class="muted">No faults were injected.</p></section>`;
  }
  const rows = m.faults.slice(0, maxFaultsListed).map(
    (fault) => `<tr class="fault-row" data-kind="${esc(fault.kind)}">
<td><span class="swatch" style="background:${faultColour(fault.kind)}"></span>${esc(fault.kind)}</td>
<td>${esc(fault.nodes.join(", "))}</td><td>${esc(fault.detail)}</td>
<td class="num">${seconds(fault.from)}</td><td class="num">${fault.open ? "(end)" : seconds(fault.to)}</td>
<td class="num">${duration(fault.to - fault.from)}${fault.open ? ", never healed" : ""}</td></tr>`,
  );
  const more = m.faults.length - rows.length;
  return `<section id="faults"><h2>Faults</h2>
<table class="faults"><thead><tr><th>Kind</th><th>Nodes</th><th>Detail</th><th>From (s)</th><th>To (s)</th><th>Lasted</th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table>${more > 0 ? `<p class="muted">and ${num(more)} more faults.</p>` : ""}</section>`;
}

// ---------------------------------------------------------------------------------------------
// Throughput and latency

const chartWidth = 1160;
const chartHeight = 230;
const chartPad = { left: 60, right: 16, top: 22, bottom: 30 };

function renderRates(m: Model): string {
  const buckets = Math.max(1, Math.ceil(m.end / 1000));
  const completions = { ok: zeros(buckets), fail: zeros(buckets), info: zeros(buckets) };
  for (const event of m.run.history) {
    if (event.process === "nemesis" || event.type === "invoke") continue;
    completions[event.type][bucketOf(event.time, buckets)]! += 1;
  }
  const latencies: number[][] = Array.from({ length: buckets }, () => []);
  for (const op of m.ops) {
    if (op.type === "ok")
      latencies[bucketOf(op.returnTime, buckets)]!.push(op.returnTime - op.callTime);
  }
  for (const bucket of latencies) bucket.sort((a, b) => a - b);

  const peak = maxOf([1, ...completions.ok, ...completions.fail, ...completions.info]);
  const rateStep = Math.max(1, niceStep(peak, 4));
  const rateTop = Math.ceil(peak / rateStep) * rateStep;
  const plotH = chartHeight - chartPad.top - chartPad.bottom;
  const rateY = (v: number) => chartPad.top + plotH - (v / rateTop) * plotH;
  const rateTicks: Tick[] = [];
  for (let v = 0; v <= rateTop; v += rateStep) rateTicks.push({ y: rateY(v), label: num(v) });
  const throughput = chartSvg("throughput", m, buckets, rateTicks, "ops / s", [
    { cls: "ok", colour: colours.ok, d: stepPath(completions.ok, buckets, rateY) },
    { cls: "fail", colour: colours.fail, d: stepPath(completions.fail, buckets, rateY) },
    { cls: "info", colour: colours.info, d: stepPath(completions.info, buckets, rateY) },
  ]);

  const percentile = (p: number) =>
    latencies.map((bucket) =>
      bucket.length === 0 ? null : (bucket[Math.ceil(p * bucket.length) - 1] as number),
    );
  const p50 = percentile(0.5);
  const p99 = percentile(0.99);
  const max = percentile(1);
  // Latencies spread over decades (a partition turns 2 ms into a 5 s timeout): log scale.
  const floor = 0.1;
  const seen = [...p50, ...max]
    .filter((v): v is number => v !== null)
    .map((v) => Math.max(v, floor));
  const low = niceFloor(seen.length === 0 ? 1 : minOf(seen));
  const high = Math.max(niceCeil(low * 1.5), niceCeil(maxOf([low, ...seen])));
  const latencyY = (v: number) =>
    chartPad.top +
    plotH -
    ((Math.log10(Math.max(v, floor)) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) *
      plotH;
  const decades = Math.log10(high / low);
  const latencyTicks: Tick[] = [];
  for (let decade = 10 ** Math.floor(Math.log10(low)); decade <= high * 1.0001; decade *= 10) {
    for (const mantissa of decades <= 3 ? [1, 2, 5] : [1]) {
      const v = decade * mantissa;
      if (v >= low * 0.9999 && v <= high * 1.0001) {
        latencyTicks.push({ y: latencyY(v), label: duration(v) });
      }
    }
  }
  const latency = chartSvg("latency", m, buckets, latencyTicks, "latency", [
    { cls: "max", colour: colours.max, d: stepPath(max, buckets, latencyY) },
    { cls: "p99", colour: colours.p99, d: stepPath(p99, buckets, latencyY) },
    { cls: "p50", colour: colours.p50, d: stepPath(p50, buckets, latencyY) },
  ]);

  const legend = (items: [string, string][]) =>
    `<p class="legend">${items.map(([colour, name]) => `<span><i class="line" style="background:${colour}"></i>${name}</span>`).join("")}${
      m.faults.length > 0 ? '<span><i class="band"></i>fault in force</span>' : ""
    }</p>`;
  return `<section id="rates"><h2>Throughput and latency</h2>
<figure><figcaption>Completions per second (1 s buckets)</figcaption>${legend([
    [colours.ok, "ok"],
    [colours.fail, "fail"],
    [colours.info, "info (indeterminate)"],
  ])}${throughput}</figure>
<figure><figcaption>Latency of ok operations by completion second (log scale)</figcaption>${legend([
    [colours.p50, "p50"],
    [colours.p99, "p99"],
    [colours.max, "max"],
  ])}${seen.length === 0 ? '<p class="muted">No operation completed ok.</p>' : ""}${latency}</figure></section>`;
}

interface Tick {
  readonly y: number;
  readonly label: string;
}

interface Series {
  readonly cls: string;
  readonly colour: string;
  readonly d: string;
}

function chartSvg(
  id: string,
  m: Model,
  buckets: number,
  yTicks: readonly Tick[],
  yTitle: string,
  series: readonly Series[],
): string {
  const plotW = chartWidth - chartPad.left - chartPad.right;
  const bottom = chartHeight - chartPad.bottom;
  const x = (ms: number) =>
    chartPad.left + (Math.min(ms, buckets * 1000) / (buckets * 1000)) * plotW;
  const parts = [
    `<svg id="${id}" class="chart" viewBox="0 0 ${chartWidth} ${chartHeight}" role="img" aria-label="${esc(id)}">`,
  ];
  for (const fault of m.faults) {
    const x1 = x(fault.from);
    const width = Math.max(1, x(fault.to) - x1);
    parts.push(
      `<rect class="fault" x="${f1(x1)}" y="${chartPad.top}" width="${f1(width)}" height="${bottom - chartPad.top}" fill="${faultColour(fault.kind)}"><title>${esc(faultTitle(fault))}</title></rect>`,
    );
    if (width > fault.kind.length * 6.5 + 6) {
      parts.push(
        `<text class="fault-label" x="${f1(x1 + 3)}" y="${chartPad.top - 6}" fill="${faultColour(fault.kind)}">${esc(fault.kind)}</text>`,
      );
    }
  }
  for (const tick of yTicks) {
    parts.push(
      `<line class="grid" x1="${chartPad.left}" x2="${chartWidth - chartPad.right}" y1="${f1(tick.y)}" y2="${f1(tick.y)}"/>`,
      `<text class="axis" x="${chartPad.left - 6}" y="${f1(tick.y + 3.5)}" text-anchor="end">${esc(tick.label)}</text>`,
    );
  }
  parts.push(timeAxis(0, buckets * 1000, x, bottom, plotW));
  parts.push(
    `<text class="axis-title" x="12" y="${chartPad.top + (bottom - chartPad.top) / 2}" transform="rotate(-90 12 ${chartPad.top + (bottom - chartPad.top) / 2})" text-anchor="middle">${esc(yTitle)}</text>`,
  );
  for (const s of series) {
    parts.push(`<path class="series ${s.cls}" d="${s.d}" stroke="${s.colour}"/>`);
  }
  parts.push("</svg>");
  return parts.join("");
}

/** A step line, one step per 1 s bucket; null buckets leave a gap. */
function stepPath(values: readonly (number | null)[], buckets: number, y: (v: number) => number) {
  const plotW = chartWidth - chartPad.left - chartPad.right;
  const x = (i: number) => f1(chartPad.left + (i / buckets) * plotW);
  let d = "";
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null) {
      drawing = false;
      return;
    }
    d += `${drawing ? `V${f1(y(value))}` : `M${x(i)} ${f1(y(value))}`}H${x(i + 1)}`;
    drawing = true;
  });
  return d;
}

// ---------------------------------------------------------------------------------------------
// Timelines

function renderTimelines(m: Model): string {
  const omitted = m.keys.length - m.drawn.length;
  const perKey = Math.min(maxOpsPerKey, Math.floor(opBudget / Math.max(1, m.drawn.length)));
  const intro = `<p>One lane per process; each bar runs from an operation's call to its return.
Hover a bar for its details. ${
    m.keys.length === 0
      ? "The history has no client operations."
      : `${num(m.drawn.length)} of ${plural(m.keys.length, "key")} drawn${
          omitted > 0
            ? ` (keys with anomalies first, then the busiest); <span id="keys-omitted" data-omitted="${omitted}">${plural(omitted, "key")} omitted</span>: ${esc(
                m.keys
                  .filter((group) => !m.drawn.includes(group))
                  .slice(0, 20)
                  .map((group) => keyName(group.key))
                  .join(", "),
              )}${omitted > 20 ? ", …" : ""}`
            : ""
        }.`
  }</p>`;
  const legend = `<p class="legend"><span><i class="box ok"></i>ok</span><span><i class="box fail"></i>fail</span>
<span><i class="box info"></i>info: indeterminate, may take effect any time later (marked ?)</span>
<span><i class="band"></i>fault in force</span><span><i class="box window"></i>failing window</span>
<span><i class="box implicated"></i>operation named by an anomaly</span></p>`;
  return `<section id="timelines"><h2>History timelines</h2>${intro}${legend}
${m.drawn.map((group) => renderKey(m, group, perKey)).join("\n")}</section>`;
}

function renderKey(m: Model, group: KeyGroup, limit: number): string {
  const counts = countTypes(group.ops);
  const processes = new Set(group.ops.map((op) => op.process)).size;
  const smallest = smallestWindow(group.findings);
  const implicated = new Set(group.findings.flatMap((f) => f.anomaly.events));
  const windows = group.findings.filter((f) => f.anomaly.window !== undefined).slice(0, 20);

  // Long histories: draw a contiguous run of operations, centred on the failing window.
  let shown: readonly Operation[] = group.ops;
  let from = 0;
  let to = m.end;
  let note = "";
  if (group.ops.length > limit) {
    let start = 0;
    if (smallest?.anomaly.window) {
      const { from: wFrom, to: wTo } = smallest.anomaly.window;
      const first = lowerBound(group.ops, wFrom);
      const inside = lowerBound(group.ops, wTo + 1e-9) - first;
      start = inside >= limit ? first : first - Math.floor((limit - inside) / 2);
    }
    start = Math.max(0, Math.min(start, group.ops.length - limit));
    shown = group.ops.slice(start, start + limit);
    from = shown[0]!.callTime;
    to = from;
    for (const op of shown)
      to = Math.max(to, Number.isFinite(op.returnTime) ? op.returnTime : op.callTime);
    to = Math.max(to, from + 1);
    note = `<p class="note">This key has ${num(group.ops.length)} operations; showing ${num(shown.length)} of them (t = ${seconds(from)}–${seconds(to)} s), ${
      smallest ? "around the smallest failing window" : "the first ones"
    }.</p>`;
  }

  const perLane = new Map<Operation["process"], number>();
  for (const op of shown) perLane.set(op.process, (perLane.get(op.process) ?? 0) + 1);
  const latencies = shown
    .filter((op) => Number.isFinite(op.returnTime))
    .map((op) => op.returnTime - op.callTime)
    .sort((a, b) => a - b);
  const median = Math.max(1, latencies[Math.floor(latencies.length / 2)] ?? 1);
  // Wide enough for ~9 px per op in the busiest lane and ~30 px for a median op (room for a
  // label), within a scrollable limit.
  const plotWidth = clamp(
    Math.max(maxOf([0, ...perLane.values()]) * 9, ((to - from) / median) * 30),
    timelineMinWidth,
    8000,
  );
  const anomalyList =
    group.findings.length === 0
      ? ""
      : `<ul class="key-anomalies">${group.findings
          .slice(0, 10)
          .map(
            (f) =>
              `<li><span class="kind">${esc(f.anomaly.kind)}</span> (${esc(f.checker)}): ${esc(f.anomaly.message)}</li>`,
          )
          .join(
            "",
          )}${group.findings.length > 10 ? `<li class="muted">and ${num(group.findings.length - 10)} more</li>` : ""}</ul>`;

  const svg = timelineSvg({
    ops: shown,
    from,
    to,
    plotWidth,
    faults: m.faults,
    windows,
    implicated,
  });
  return `<article class="key" id="${group.anchor}">
<h3>Key <code>${esc(keyName(group.key))}</code> <span class="muted">${plural(group.ops.length, "operation")}: ${num(counts.ok)} ok, ${num(counts.fail)} fail, ${num(counts.info)} info · ${plural(processes, "process", "processes")}</span></h3>
${anomalyList}${note}
<section class="timeline" data-key="${esc(group.key ?? "")}" data-ops="${shown.length}"><div class="scroll">${svg}</div></section>
${smallest ? renderZoom(m, group, smallest, implicated) : ""}</article>`;
}

function renderZoom(m: Model, group: KeyGroup, finding: Finding, implicated: Set<number>): string {
  const window = finding.anomaly.window!;
  const pad = Math.max((window.to - window.from) * 0.15, 5);
  const from = Math.max(0, window.from - pad);
  const to = window.to + pad;
  const overlapping = group.ops.filter((op) => op.callTime <= to && op.returnTime >= from);
  // An indeterminate operation overlaps every later window: draw only those called in this
  // one (or named by the anomaly), and count the others.
  const near = overlapping.filter(
    (op) => Number.isFinite(op.returnTime) || op.callTime >= from || implicated.has(op.invokeIndex),
  );
  const ops = near
    .map((op) => ({
      op,
      rank: implicated.has(op.invokeIndex) ? -1 : Math.max(0, window.from - op.callTime),
    }))
    .sort((a, b) => a.rank - b.rank)
    .slice(0, maxZoomOps)
    .map((entry) => entry.op)
    .sort((a, b) => a.callTime - b.callTime);
  const earlierInfo = overlapping.length - near.length;
  const overflow = near.length - ops.length;
  const hidden = [
    earlierInfo > 0 ? `${num(earlierInfo)} indeterminate since earlier` : "",
    overflow > 0 ? `${num(overflow)} past the ${maxZoomOps}-operation limit` : "",
  ].filter((text) => text !== "");
  const svg = timelineSvg({
    ops,
    from,
    to,
    plotWidth: timelineMinWidth - 40,
    faults: m.faults,
    windows: [finding],
    implicated,
  });
  return `<section class="failing-window-zoom" id="${group.anchor}-window" data-key="${esc(group.key ?? "")}">
<h4>Smallest failing window</h4>
<p class="anomaly-message"><span class="kind">${esc(finding.anomaly.kind)}</span> (${esc(finding.checker)}): ${esc(finding.anomaly.message)}
<span class="muted">— t = ${seconds(window.from)}–${seconds(window.to)} s (${duration(window.to - window.from)}), ${plural(overlapping.length, "operation")} ${overlapping.length === 1 ? "overlaps" : "overlap"} it${
    hidden.length > 0 ? ` (not drawn: ${hidden.join(", ")})` : ""
  }</span></p>
<div class="scroll">${svg}</div></section>`;
}

interface TimelineView {
  readonly ops: readonly Operation[];
  /** The time range drawn, ms. */
  readonly from: number;
  readonly to: number;
  readonly plotWidth: number;
  readonly faults: readonly Fault[];
  readonly windows: readonly Finding[];
  readonly implicated: ReadonlySet<number>;
}

function timelineSvg(view: TimelineView): string {
  const processes = [...new Set(view.ops.map((op) => op.process))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const lane = new Map(processes.map((process, i) => [process, i]));
  const laneH = clamp(Math.floor(600 / Math.max(1, processes.length)), 5, 22);
  const left = 52;
  const top = 44;
  const plotH = Math.max(1, processes.length) * laneH;
  const bottom = top + plotH;
  const width = left + view.plotWidth + 16;
  const height = bottom + 30;
  const span = Math.max(view.to - view.from, 1e-6);
  const x = (t: number) =>
    left + ((clamp(t, view.from, view.to) - view.from) / span) * view.plotWidth;

  const parts = [
    `<svg class="lanes" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline">`,
  ];
  processes.forEach((process, i) => {
    if (i % 2 === 1) {
      parts.push(
        `<rect class="stripe" x="${left}" y="${top + i * laneH}" width="${view.plotWidth}" height="${laneH}"/>`,
      );
    }
    if (laneH >= 9 || i % Math.ceil(9 / laneH) === 0) {
      parts.push(
        `<text class="lane" x="${left - 6}" y="${f1(top + i * laneH + laneH / 2 + 3.5)}" text-anchor="end">p${esc(String(process))}</text>`,
      );
    }
  });

  view.faults
    .filter((fault) => fault.to >= view.from && fault.from <= view.to)
    .forEach((fault, i) => {
      const x1 = x(fault.from);
      const w = Math.max(2, x(fault.to) - x1);
      const colour = faultColour(fault.kind);
      parts.push(
        `<rect class="fault" data-fault="${fault.id}" x="${f1(x1)}" y="${top - 4}" width="${f1(w)}" height="${plotH + 8}" fill="${colour}"><title>${esc(faultTitle(fault))}</title></rect>`,
      );
      // Narrow bands keep only their tooltip: a crowd of labels would be unreadable.
      if (w > 24) {
        parts.push(
          `<text class="fault-label" x="${f1(x1 + 3)}" y="${i % 2 === 0 ? 12 : 24}" fill="${colour}">${esc(
            `${fault.kind} ${fault.nodes.join(",")}`,
          )}</text>`,
        );
      }
    });

  for (const finding of view.windows) {
    const window = finding.anomaly.window!;
    if (window.to < view.from || window.from > view.to) continue;
    const x1 = x(window.from);
    const w = Math.max(3, x(window.to) - x1);
    parts.push(
      `<g class="failing-window" data-failing-window="${f1(window.from)}-${f1(window.to)}"><rect class="window-band" x="${f1(x1)}" y="${top - 6}" width="${f1(w)}" height="${plotH + 12}"/><text class="window-label" x="${f1(x1)}" y="36">${esc(finding.anomaly.kind)}</text><title>${esc(`${finding.anomaly.kind}: ${finding.anomaly.message}`)}</title></g>`,
    );
  }

  // Implicated operations last, so their outline is drawn on top.
  const ordered = [...view.ops].sort(
    (a, b) =>
      Number(view.implicated.has(a.invokeIndex)) - Number(view.implicated.has(b.invokeIndex)),
  );
  for (const op of ordered) {
    const y = top + (lane.get(op.process) ?? 0) * laneH;
    const x1 = x(op.callTime);
    const w = Math.max(1.5, x(op.returnTime) - x1);
    const cls = view.implicated.has(op.invokeIndex) ? `${op.type} implicated` : op.type;
    parts.push(
      `<rect class="op ${cls}" data-i="${op.invokeIndex}" x="${f1(x1)}" y="${y + 1.5}" width="${f1(w)}" height="${laneH - 3}"><title>${esc(opTitle(op))}</title></rect>`,
    );
    const label = opLabel(op);
    if (laneH >= 13 && w >= label.length * 6.1 + 5) {
      parts.push(
        `<text class="lbl ${op.type}" x="${f1(x1 + 3)}" y="${f1(y + laneH / 2 + 3.5)}">${esc(label)}</text>`,
      );
    }
  }

  parts.push(timeAxis(view.from, view.to, x, bottom, view.plotWidth), "</svg>");
  return parts.join("");
}

/** A bottom time axis in seconds, with ticks about every 110 px. */
function timeAxis(
  from: number,
  to: number,
  x: (t: number) => number,
  y: number,
  plotW: number,
): string {
  const step = niceStep(to - from, plotW / 110);
  const decimals = Math.max(0, -Math.floor(Math.log10(step / 1000)));
  const parts = [
    `<line class="axis-line" x1="${f1(x(from))}" x2="${f1(x(to))}" y1="${y}" y2="${y}"/>`,
  ];
  for (let t = Math.ceil(from / step) * step; t <= to + 1e-9; t += step) {
    parts.push(
      `<line class="axis-line" x1="${f1(x(t))}" x2="${f1(x(t))}" y1="${y}" y2="${y + 4}"/><text class="axis" x="${f1(x(t))}" y="${y + 15}" text-anchor="middle">${(t / 1000).toFixed(decimals)}</text>`,
    );
  }
  parts.push(`<text class="axis" x="${f1(x(to))}" y="${y + 27}" text-anchor="end">time (s)</text>`);
  return parts.join("");
}

// ---------------------------------------------------------------------------------------------
// Text

/** A bar label in Jepsen's shorthand: `w 3`, `r 3`, `cas 2→3`, `add 17`, `r [..5 items]`. */
function opLabel(op: Operation): string {
  const input = op.input;
  let text: string;
  if (op.f === "read") text = op.type === "ok" ? `r ${short(op.output)}` : "r";
  else if (op.f === "write") text = `w ${short(input)}`;
  else if (op.f === "cas" && Array.isArray(input) && input.length === 2) {
    text = `cas ${short(input[0])}→${short(input[1])}`;
  } else if (op.f === "transfer" && typeof input === "object" && input !== null) {
    const t = input as { from?: unknown; to?: unknown; amount?: unknown };
    text = `${short(t.amount)} ${short(t.from)}→${short(t.to)}`;
  } else text = `${op.f} ${short(input)}`;
  return op.type === "info" ? `${text} ?` : text;
}

function short(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (Array.isArray(value)) {
    const listed = `[${value.map(short).join(",")}]`;
    return value.length <= 3 && listed.length <= 12 ? listed : `[..${value.length} items]`;
  }
  if (typeof value === "object") return `{..${Object.keys(value).length} keys}`;
  const text = String(value);
  return text.length > 10 ? `${text.slice(0, 9)}…` : text;
}

function opTitle(op: Operation): string {
  const outcome =
    op.type === "ok"
      ? `ok → ${full(op.output)}`
      : op.type === "fail"
        ? `fail${op.error ? `: ${op.error}` : ""}`
        : `info (indeterminate)${op.error ? `: ${op.error}` : ""}`;
  const times = Number.isFinite(op.returnTime)
    ? `${seconds(op.callTime)}–${seconds(op.returnTime)} s (${duration(op.returnTime - op.callTime)})`
    : `called ${seconds(op.callTime)} s, never known to return`;
  return `process ${op.process}${op.node ? ` via ${op.node}` : ""} · event #${op.invokeIndex}
${op.f} ${full(op.input)}
${outcome}
${times}`;
}

function full(value: unknown): string {
  const text = JSON.stringify(value) ?? "nil";
  if (text.length <= maxValueChars) return text;
  const count = Array.isArray(value) ? ` (${value.length} items)` : "";
  return `${text.slice(0, maxValueChars)}…${count}`;
}

function faultTitle(fault: Fault): string {
  return `fault ${fault.id}: ${fault.kind} ${fault.nodes.join(", ")}${fault.detail ? ` (${fault.detail})` : ""}
${seconds(fault.from)}–${fault.open ? "end" : seconds(fault.to)} s`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => escapes[c] as string);
}

const escapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function keyName(key: string | undefined): string {
  return key ?? "(no key)";
}

function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${num(n)} ${n === 1 ? noun : nouns}`;
}

function num(n: number): string {
  return n.toLocaleString("en-US");
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function duration(ms: number): string {
  if (ms < 1) return `${Number(ms.toPrecision(2))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Number((ms / 1000).toPrecision(3))} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function f1(n: number): string {
  return String(Math.round(n * 10) / 10);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function countTypes(ops: readonly Operation[]) {
  const counts = { ok: 0, fail: 0, info: 0 };
  for (const op of ops) counts[op.type] += 1;
  return counts;
}

function smallestWindow(findings: readonly Finding[]): Finding | undefined {
  let best: Finding | undefined;
  for (const finding of findings) {
    const w = finding.anomaly.window;
    if (w === undefined) continue;
    const b = best?.anomaly.window;
    if (b === undefined || w.to - w.from < b.to - b.from) best = finding;
  }
  return best;
}

/** First index whose call time is at least `time` (ops sorted by call time). */
function lowerBound(ops: readonly Operation[], time: number): number {
  let lo = 0;
  let hi = ops.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ops[mid]!.callTime < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function bucketOf(time: number, buckets: number): number {
  return clamp(Math.floor(time / 1000), 0, buckets - 1);
}

/** Math.max and Math.min without spreading arguments: a bucket list can be long. */
function maxOf(values: readonly number[]): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const value of values) max = Math.max(max, value);
  return max;
}

function minOf(values: readonly number[]): number {
  let min = Number.POSITIVE_INFINITY;
  for (const value of values) min = Math.min(min, value);
  return min;
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function clamp(n: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, n));
}

/** 1, 2 or 5 × 10^k, giving about `ticks` steps over `span`. */
/** The 1-2-5 ladder value at or below `v` (log-scale bounds). */
function niceFloor(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [5, 2, 1].map((m) => m * magnitude).find((candidate) => candidate <= v * 1.0001)!;
}

/** The 1-2-5 ladder value at or above `v`. */
function niceCeil(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= v * 0.9999)!;
}

function niceStep(span: number, ticks: number): number {
  const raw = Math.max(span, 1e-9) / Math.max(1, ticks);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

const colours = {
  ok: "#1a7f37",
  fail: "#b35c5c",
  info: "#d4691b",
  p50: "#0969da",
  p99: "#8250df",
  max: "#8c959f",
};

const faultColours: Record<string, string> = {
  partition: "#8250df",
  isolate: "#bf3989",
  kill: "#cf222e",
  pause: "#0969da",
  skew: "#9a6700",
  delay: "#1b7c83",
  loss: "#57606a",
};

function faultColour(kind: string): string {
  return faultColours[kind] ?? "#57606a";
}

/** Shared SVG definitions: the hatch of indeterminate operations. */
const svgDefs = `<svg class="defs" width="0" height="0" aria-hidden="true"><defs>
<pattern id="hatch-info" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#fde3c8"/><line x1="0" y1="0" x2="0" y2="6" stroke="#f0a060" stroke-width="2.4"/></pattern>
</defs></svg>`;

const css = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--valid:#1a7f37;--invalid:#cf222e;--unknown:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
main{max-width:1240px;margin:0 auto;padding:24px 28px 60px}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:28px 0 6px}
h4{font-size:14px;margin:14px 0 4px;color:var(--invalid)}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--bg);padding:1px 5px;border-radius:4px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.muted{color:var(--muted)}
.summary{border-left:8px solid var(--muted);padding:6px 0 6px 20px}
.summary.valid{border-color:var(--valid)}.summary.invalid{border-color:var(--invalid)}.summary.unknown{border-color:var(--unknown)}
#verdict{font-size:44px;letter-spacing:.04em;margin:0;line-height:1.1}
.valid #verdict{color:var(--valid)}.invalid #verdict{color:var(--invalid)}.unknown #verdict{color:var(--unknown)}
.lede{font-size:16px;margin:6px 0 14px}
.settings{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:8px 24px;margin:0 0 12px}
.settings dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.settings dd{margin:0;overflow-wrap:anywhere}
.counts{margin:0}
.c-ok{color:var(--valid)}.c-fail{color:#9a3d3d}.c-info{color:#bc4c00}
.toc{display:flex;gap:18px;margin:20px 0 0;padding:8px 12px;background:var(--bg);border-radius:6px}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-size:12px;color:var(--muted);font-weight:600;border-bottom:1px solid var(--line);padding:6px 8px}
td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:top}
td.name{font-weight:600}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.checker td{border-bottom:none}
tr.anomalies td{padding-top:0}
.stats span{display:inline-block;margin-right:10px;color:var(--muted);white-space:nowrap}.stats b{color:var(--fg);font-weight:600}
ul{margin:4px 0;padding-left:20px}
.anomaly{margin:3px 0}
.kind{font:600 12px ui-monospace,Menlo,monospace;color:var(--invalid);background:#ffebe9;padding:1px 6px;border-radius:10px}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;color:#fff;background:var(--muted)}
.badge.valid{background:var(--valid)}.badge.invalid{background:var(--invalid)}.badge.unknown{background:var(--unknown)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;opacity:.8}
figure{margin:14px 0 22px}figcaption{font-weight:600;margin-bottom:2px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 0 6px}
.legend i{display:inline-block;vertical-align:middle;margin-right:5px}
.legend .line{width:16px;height:3px;border-radius:2px}
.legend .band{width:14px;height:12px;background:#8250df;opacity:.18}
.legend .box{width:18px;height:11px;border:1px solid}
.box.ok{background:#8ad4a0;border-color:#1a7f37}.box.fail{background:#ead0d0;border-color:#b35c5c}
.box.info{background:repeating-linear-gradient(45deg,#fde3c8 0 3px,#f0a060 3px 5px);border-color:#d4691b}
.box.window{border:2px dashed var(--invalid);background:#fff5f5}.box.implicated{border:2.5px solid var(--invalid);background:#8ad4a0}
.note{background:#fff8c5;border:1px solid #eed888;border-radius:6px;padding:6px 10px;margin:6px 0}
.key{margin-bottom:10px}
.key-anomalies{margin:2px 0 6px}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
.failing-window-zoom{margin:12px 0 8px 24px;padding-left:12px;border-left:3px solid var(--invalid)}
.anomaly-message{margin:2px 0 8px}
svg.defs{position:absolute}
svg.chart{width:100%;height:auto;display:block;border:1px solid var(--line);border-radius:6px}
svg text{font:11px system-ui,sans-serif}
.axis,.lane{fill:var(--muted)}.axis-title{fill:var(--muted);font-size:11px}
.axis-line{stroke:#8c959f;stroke-width:1}
.grid{stroke:#eaeef2;stroke-width:1}
.stripe{fill:#f6f8fa}
rect.fault{fill-opacity:.13}
.fault-label{font-weight:600;font-size:10.5px}
.series{fill:none;stroke-width:1.6;stroke-linejoin:round}
.series.max{stroke-dasharray:3 2;stroke-width:1.2}
rect.op{stroke-width:.6}
rect.op.ok{fill:#8ad4a0;stroke:#1a7f37}
rect.op.fail{fill:#ead0d0;stroke:#b35c5c}
rect.op.info{fill:url(#hatch-info);stroke:#d4691b;opacity:.8}
rect.op.implicated{stroke:var(--invalid);stroke-width:2.5}
rect.op:hover{stroke:#1f2328;stroke-width:1.6}
text.lbl{font:10px ui-monospace,Menlo,monospace;fill:#0b3d1b;pointer-events:none}
text.lbl.fail{fill:#6e2b2b}text.lbl.info{fill:#8a3b00}
.window-band{fill:#cf222e;fill-opacity:.06;stroke:#cf222e;stroke-width:1.6;stroke-dasharray:5 3}
.window-label{fill:#cf222e;font-weight:600;font-size:10.5px}
`;
