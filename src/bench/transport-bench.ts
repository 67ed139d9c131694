/**
 * @module `npm run bench:transport`: request/response round trips between two processes on
 * loopback, Brigade against a raw TCP baseline.
 *
 * Brigade: a real `brigade node` process (the server; its "sys.echo" handler returns the
 * payload) and a client process with its own `TcpTransport` (`transport-bench-client.ts`).
 * Baseline: a minimal raw TCP echo server with 4-byte length-prefixed framing and a raw client
 * that frames a correlation id and the payload (`raw-echo-server.ts`, `raw-echo-client.ts`).
 * Both clients run the same closed loop (`closed-loop.ts`): exactly N requests outstanding,
 * a warmup, then a fixed window in which completions and latencies are counted.
 *
 * Every (in-flight, payload) combination runs Brigade, then the baseline, back to back, so
 * both see the same machine load. Prints a table with throughput, p50/p99 latency and the
 * Brigade/baseline throughput ratio, plus coalescing (frames per socket write) and CPU per
 * request, and writes everything to bench-results/transport.json.
 *
 * Flags: --duration-ms N (measured window per run, default 3000), --warmup-ms N (default
 * 1000), --quick (500 ms windows, 200 ms warmup), --only IN_FLIGHT/BYTES (one combination,
 * e.g. 128/64), --cpu-prof DIR (the Brigade server and client write V8 CPU profiles there).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BenchChild } from "./bench-child.js";
import type { ClosedLoopResult } from "./closed-loop.js";

const inFlightLevels = [1, 16, 128] as const;
const payloadSizes = [64, 4096] as const;
const goal = { inFlight: 128, payloadBytes: 64, ratio: 0.8 } as const;

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const distDir = path.join(repoRoot, "dist");

/** What a bench client reports for one run. */
interface ClientRun extends ClosedLoopResult {
  readonly payloadBytes: number;
  readonly cpuMicros: number;
  readonly cpuSystemMicros: number;
  readonly framesSent: number;
  readonly socketWrites: number;
}

/** One side (Brigade or baseline) of one combination, with the server's counters over the run. */
interface SideResult {
  readonly client: ClientRun;
  readonly serverFramesSent: number;
  readonly serverSocketWrites: number;
  readonly serverCpuMicros: number;
  readonly serverCpuSystemMicros: number;
}

interface Combination {
  readonly inFlight: number;
  readonly payloadBytes: number;
  readonly brigade: SideResult;
  readonly baseline: SideResult;
  readonly ratio: number;
}

interface ServerCounters {
  readonly framesSent: number;
  readonly socketWrites: number;
  readonly cpuMicros: number;
  readonly cpuSystemMicros: number;
}

interface Flags {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly quick: boolean;
  /** Combinations to run, as [inFlight, payloadBytes]. */
  readonly combinations: ReadonlyArray<readonly [number, number]>;
  /** Where the Brigade server and client write `--cpu-prof` profiles, or null. */
  readonly cpuProfDir: string | null;
}

function usageError(message: string): never {
  process.stderr.write(`transport-bench: ${message}\n`);
  process.exit(2);
}

function parseFlags(): Flags {
  const { values } = parseArgs({
    options: {
      "duration-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      "cpu-prof": { type: "string" },
    },
  });
  const quick = values.quick;
  const number = (text: string | undefined, fallback: number, flag: string) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0)
      usageError(`${flag} must be a non-negative integer`);
    return value;
  };
  const durationMs = number(values["duration-ms"], quick ? 500 : 3_000, "--duration-ms");
  if (durationMs === 0) usageError("--duration-ms must be positive");
  let combinations: Array<readonly [number, number]> = payloadSizes.flatMap((payloadBytes) =>
    inFlightLevels.map((inFlight) => [inFlight, payloadBytes] as const),
  );
  if (values.only !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(values.only);
    if (match === null) usageError("--only takes IN_FLIGHT/PAYLOAD_BYTES, e.g. 128/64");
    combinations = [[Number(match[1]), Number(match[2])]];
    if (combinations.some(([inFlight, bytes]) => inFlight < 1 || bytes < 1))
      usageError("--only needs positive numbers");
  }
  return {
    durationMs,
    warmupMs: number(values["warmup-ms"], quick ? 200 : 1_000, "--warmup-ms"),
    quick,
    combinations,
    cpuProfDir: values["cpu-prof"] === undefined ? null : path.resolve(values["cpu-prof"]),
  };
}

/** Free loopback ports, all held open at once so they are distinct. */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

async function httpGet(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

/** Waits until the node answers its health check, failing early if it exits. */
async function waitForHealthy(node: BenchChild, apiPort: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let gone = false;
  void node.exited.then(() => {
    gone = true;
  });
  for (;;) {
    if (gone)
      throw new Error(`the Brigade server node stopped during startup${node.describeOutput()}`);
    try {
      await httpGet(`http://127.0.0.1:${apiPort}/v1/health`);
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(
          `the Brigade server node was not healthy within 15 s${node.describeOutput()}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The server node's transport counters and CPU time, from its Prometheus endpoint. */
async function brigadeServerCounters(apiPort: number): Promise<ServerCounters> {
  const text = await httpGet(`http://127.0.0.1:${apiPort}/metrics`);
  const metric = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
    if (match === null) throw new Error(`metric ${name} missing from the server's /metrics`);
    return Number(match[1]);
  };
  const systemSeconds = metric("process_cpu_system_seconds_total");
  return {
    framesSent: metric("brigade_transport_frames_sent_total"),
    socketWrites: metric("brigade_transport_socket_writes_total"),
    cpuMicros: (metric("process_cpu_user_seconds_total") + systemSeconds) * 1e6,
    cpuSystemMicros: systemSeconds * 1e6,
  };
}

async function rawServerCounters(server: BenchChild): Promise<ServerCounters> {
  return (await server.command("stats")) as ServerCounters;
}

async function measure(
  client: BenchChild,
  serverCounters: () => Promise<ServerCounters>,
  params: { inFlight: number; payloadBytes: number; warmupMs: number; durationMs: number },
): Promise<SideResult> {
  const before = await serverCounters();
  const run = (await client.command(
    "run",
    params,
    params.warmupMs + params.durationMs + 60_000,
  )) as ClientRun;
  const after = await serverCounters();
  if (run.errors > 0) throw new Error(`${client.name}: request failed: ${run.firstError}`);
  return {
    client: run,
    serverFramesSent: after.framesSent - before.framesSent,
    serverSocketWrites: after.socketWrites - before.socketWrites,
    serverCpuMicros: after.cpuMicros - before.cpuMicros,
    serverCpuSystemMicros: after.cpuSystemMicros - before.cpuSystemMicros,
  };
}

// ---- output -------------------------------------------------------------------------------

const integer = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => value.toFixed(3);
const ratioText = (value: number) => `${value.toFixed(2)}x`;
const sizeText = (bytes: number) => (bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`);
const perWrite = (frames: number, writes: number) =>
  writes === 0 ? "-" : (frames / writes).toFixed(2);
/** CPU per request as "total (sys system)", in µs. */
const cpuPerRequest = (side: SideResult, which: "client" | "server") => {
  const requests = side.client.completedTotal;
  if (requests === 0) return "-";
  const [total, system] =
    which === "client"
      ? [side.client.cpuMicros, side.client.cpuSystemMicros]
      : [side.serverCpuMicros, side.serverCpuSystemMicros];
  return `${(total / requests).toFixed(1)} (sys ${(system / requests).toFixed(1)})`;
};

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column < 3 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join("  ");
  return [
    line(header),
    widths.map((width) => "-".repeat(width)).join("  "),
    ...rows.map(line),
  ].join("\n");
}

function report(combinations: readonly Combination[]): string {
  const main = table(
    [
      "mode",
      "in-flight",
      "payload",
      "Brigade ops/s",
      "p50 ms",
      "p99 ms",
      "baseline ops/s",
      "p50 ms",
      "p99 ms",
      "ratio",
    ],
    combinations.map((c) => [
      "req/resp",
      String(c.inFlight),
      sizeText(c.payloadBytes),
      integer(c.brigade.client.opsPerSec),
      ms(c.brigade.client.p50Ms),
      ms(c.brigade.client.p99Ms),
      integer(c.baseline.client.opsPerSec),
      ms(c.baseline.client.p50Ms),
      ms(c.baseline.client.p99Ms),
      ratioText(c.ratio),
    ]),
  );
  const detail = table(
    [
      "side",
      "in-flight",
      "payload",
      "client frames/write",
      "server frames/write",
      "client CPU µs/req",
      "server CPU µs/req",
    ],
    combinations.flatMap((c) =>
      (["brigade", "baseline"] as const).map((side) => [
        side,
        String(c.inFlight),
        sizeText(c.payloadBytes),
        perWrite(c[side].client.framesSent, c[side].client.socketWrites),
        perWrite(c[side].serverFramesSent, c[side].serverSocketWrites),
        cpuPerRequest(c[side], "client"),
        cpuPerRequest(c[side], "server"),
      ]),
    ),
  );
  return `${main}\n\nCoalescing (frames per socket write) and CPU per request:\n${detail}`;
}

// ---- main ---------------------------------------------------------------------------------

/** Set by SIGINT/SIGTERM: the signal handler cleans up, and the run's own error is moot. */
let interrupted = false;

async function main(): Promise<number> {
  const { durationMs, warmupMs, quick, combinations: planned, cpuProfDir } = parseFlags();
  const profile = (name: string) =>
    cpuProfDir === null
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`];
  const children: BenchChild[] = [];
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), "brigade-bench-"));
  const cleanup = async () => {
    await Promise.all(children.map((child) => child.stop()));
    rmSync(dataRoot, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\ntransport-bench: ${signal}, stopping the child processes\n`);
    cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const clusterId = `bench-${process.pid}`;
    const [peerPort, apiPort] = (await freePorts(2)) as [number, number];
    console.log(
      `transport bench: node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ` +
        `load average ${os.loadavg()[0]?.toFixed(2)}; window ${durationMs} ms, warmup ${warmupMs} ms per run${quick ? " (quick)" : ""}`,
    );

    const server = new BenchChild(
      "Brigade server node",
      [
        ...profile("brigade-server"),
        path.join(distDir, "cli", "main.js"),
        "node",
        "--id",
        "bench-server",
        "--cluster-id",
        clusterId,
        "--listen",
        `127.0.0.1:${peerPort}`,
        "--api",
        `127.0.0.1:${apiPort}`,
        "--data",
        path.join(dataRoot, "bench-server"),
        "--log-level",
        "warn",
      ],
      false,
    );
    children.push(server);
    await waitForHealthy(server, apiPort);

    const brigadeClient = new BenchChild(
      "Brigade bench client",
      [
        ...profile("brigade-client"),
        path.join(distDir, "bench", "transport-bench-client.js"),
        "--server",
        `127.0.0.1:${peerPort}`,
        "--cluster-id",
        clusterId,
        "--node-id",
        "bench-client",
      ],
      true,
    );
    children.push(brigadeClient);
    await brigadeClient.ready;

    const rawServer = new BenchChild(
      "baseline echo server",
      [path.join(distDir, "bench", "raw-echo-server.js")],
      true,
    );
    children.push(rawServer);
    const rawPort = Number((await rawServer.ready).port);
    const rawClient = new BenchChild(
      "baseline client",
      [path.join(distDir, "bench", "raw-echo-client.js"), "--port", String(rawPort)],
      true,
    );
    children.push(rawClient);
    await rawClient.ready;
    console.log(
      `processes: Brigade server pid ${server.pid}, Brigade client pid ${brigadeClient.pid}, ` +
        `baseline server pid ${rawServer.pid}, baseline client pid ${rawClient.pid}\n`,
    );

    const combinations: Combination[] = [];
    for (const [inFlight, payloadBytes] of planned) {
      const params = { inFlight, payloadBytes, warmupMs, durationMs };
      process.stderr.write(`running ${inFlight} in flight, ${sizeText(payloadBytes)}: Brigade…`);
      const brigade = await measure(brigadeClient, () => brigadeServerCounters(apiPort), params);
      process.stderr.write(" baseline…");
      const baseline = await measure(rawClient, () => rawServerCounters(rawServer), params);
      const ratio = brigade.client.opsPerSec / baseline.client.opsPerSec;
      process.stderr.write(` ${ratioText(ratio)}\n`);
      combinations.push({ inFlight, payloadBytes, brigade, baseline, ratio });
    }

    console.log(`\n${report(combinations)}\n`);
    const target = combinations.find(
      (c) => c.inFlight === goal.inFlight && c.payloadBytes === goal.payloadBytes,
    );
    const met = target !== undefined && target.ratio >= goal.ratio;
    console.log(
      `goal: at ${goal.inFlight} in flight with ${goal.payloadBytes}-byte payloads, Brigade reaches at least ` +
        `${goal.ratio}x the baseline's throughput: ${met ? "MET" : "NOT MET"} (${target ? ratioText(target.ratio) : "n/a"})`,
    );

    const outDir = path.join(repoRoot, "bench-results");
    mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, "transport.json");
    writeFileSync(
      outFile,
      `${JSON.stringify(
        {
          benchmark: "transport",
          date: new Date().toISOString(),
          node: process.version,
          platform: `${os.platform()} ${os.arch()}`,
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model ?? null,
          loadAverage: os.loadavg(),
          windowMs: durationMs,
          warmupMs,
          quick,
          goal: { ...goal, met, ratioMeasured: target?.ratio ?? null },
          results: combinations,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`results written to ${path.relative(process.cwd(), outFile) || outFile}`);
    return 0;
  } finally {
    if (!interrupted) await cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (interrupted) return;
    process.stderr.write(
      `\ntransport-bench: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
