/**
 * @module Brigade side of the transport benchmark: a client process with its own
 * `TcpTransport` (its own node id, the server's cluster id) that dials a running `brigade
 * node`, waits for peer-up, then on each `run` command drives "sys.echo" requests through
 * the closed loop. Started by `transport-bench.ts`; speaks the line protocol of
 * `child-protocol.ts`.
 *
 * Usage: node dist/bench/transport-bench-client.js --server HOST:PORT --cluster-id ID [--node-id ID]
 */
import { parseArgs } from "node:util";
import { HybridLogicalClock } from "../clocks/hlc.js";
import { type Logger, TcpTransport } from "../transport/tcp-transport.js";
import {
  cpuSince,
  cpuTimes,
  parseRunParams,
  serveCommands,
  writeMessage,
} from "./child-protocol.js";
import { runClosedLoop } from "./closed-loop.js";

const { values } = parseArgs({
  options: {
    server: { type: "string" },
    "cluster-id": { type: "string" },
    "node-id": { type: "string", default: "bench-client" },
  },
});
const server = values.server;
const clusterId = values["cluster-id"];
if (server === undefined || clusterId === undefined) {
  process.stderr.write("usage: transport-bench-client --server HOST:PORT --cluster-id ID\n");
  process.exit(2);
}

/** Warnings and errors go to stderr (the orchestrator shows them on failure); the rest is dropped. */
const logger: Logger = {
  debug() {},
  info() {},
  warn(object, message) {
    process.stderr.write(`warn: ${message ?? ""} ${JSON.stringify(object)}\n`);
  },
  error(object, message) {
    process.stderr.write(`error: ${message ?? ""} ${JSON.stringify(object)}\n`);
  },
};

const transport = new TcpTransport({
  nodeId: values["node-id"],
  clusterId,
  listen: { host: "127.0.0.1", port: 0 },
  clock: new HybridLogicalClock({ physicalNowMs: Date.now, maxOffsetMs: 500 }),
  logger,
  // A request is never expected to take this long; a deadline hit aborts the run.
  config: { requestTimeoutMs: 30_000 },
});
await transport.start();

const serverId = await new Promise<string>((resolve) => {
  const timer = setTimeout(() => {
    process.stderr.write(`no handshake with ${server} within 10 s\n`);
    process.exit(1);
  }, 10_000);
  transport.once("peer-up", (peerId) => {
    clearTimeout(timer);
    resolve(peerId);
  });
  transport.connect(server);
});
writeMessage({ type: "ready", serverId, nodeId: transport.nodeId });

serveCommands(
  {
    async run(params) {
      const { inFlight, payloadBytes, warmupMs, durationMs } = parseRunParams(params);
      const payload = Buffer.alloc(payloadBytes, 0xab);
      const framesBefore = transport.stats.framesSent;
      const writesBefore = transport.stats.socketWrites;
      const cpuBefore = cpuTimes();
      const result = await runClosedLoop({
        inFlight,
        warmupMs,
        durationMs,
        send: () =>
          transport.request(serverId, "sys.echo", payload).then((echoed) => {
            if (!(echoed instanceof Uint8Array) || echoed.length !== payloadBytes)
              throw new Error("sys.echo returned something other than the payload");
          }),
      });
      return {
        ...result,
        payloadBytes,
        ...cpuSince(cpuBefore),
        framesSent: transport.stats.framesSent - framesBefore,
        socketWrites: transport.stats.socketWrites - writesBefore,
      };
    },
    stats() {
      return { ...transport.stats };
    },
  },
  () => transport.close(),
);
