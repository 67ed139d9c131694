/**
 * @module Baseline client of the transport benchmark: raw Node TCP with 4-byte length-prefixed
 * frames whose body is a 4-byte correlation id and the payload. Responses are matched to
 * requests through a map of pending promises, as a real request/response client must, and
 * the frames issued during one tick leave in one syscall (cork, uncork on the next tick).
 * It runs the same closed loop as the Brigade client. Started by `transport-bench.ts`; speaks
 * the line protocol of `child-protocol.ts`.
 *
 * Usage: node dist/bench/raw-echo-client.js --port PORT
 */
import net from "node:net";
import { parseArgs } from "node:util";
import {
  cpuSince,
  cpuTimes,
  parseRunParams,
  serveCommands,
  writeMessage,
} from "./child-protocol.js";
import { runClosedLoop } from "./closed-loop.js";

const { values } = parseArgs({ options: { port: { type: "string" } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write("usage: raw-echo-client --port PORT\n");
  process.exit(2);
}

interface Pending {
  readonly resolve: (payload: Buffer) => void;
  readonly reject: (error: Error) => void;
}

const pending = new Map<number, Pending>();
const stats = { framesSent: 0, socketWrites: 0 };
let nextId = 1;
let corked = false;

const socket = net.connect({ host: "127.0.0.1", port });
socket.setNoDelay(true);
await new Promise<void>((resolve, reject) => {
  socket.once("connect", resolve);
  socket.once("error", reject);
});
const failPending = (error: Error) => {
  for (const entry of pending.values()) entry.reject(error);
  pending.clear();
};
socket.on("error", failPending);
socket.on("close", () => failPending(new Error("connection closed")));

const uncork = () => {
  corked = false;
  socket.uncork();
  stats.socketWrites++;
};

function request(payload: Buffer): Promise<Buffer> {
  const id = nextId;
  nextId = nextId === 0xffff_ffff ? 1 : nextId + 1;
  const frame = Buffer.allocUnsafe(8 + payload.length);
  frame.writeUInt32BE(4 + payload.length, 0);
  frame.writeUInt32BE(id, 4);
  payload.copy(frame, 8);
  if (!corked) {
    corked = true;
    socket.cork();
    process.nextTick(uncork);
  }
  socket.write(frame);
  stats.framesSent++;
  return new Promise<Buffer>((resolve, reject) => pending.set(id, { resolve, reject }));
}

let partial: Buffer | null = null;
socket.on("data", (chunk: Buffer) => {
  const buffer = partial === null ? chunk : Buffer.concat([partial, chunk]);
  let offset = 0;
  while (buffer.length - offset >= 4) {
    const end = offset + 4 + buffer.readUInt32BE(offset);
    if (end > buffer.length) break;
    const id = buffer.readUInt32BE(offset + 4);
    const entry = pending.get(id);
    if (entry !== undefined) {
      pending.delete(id);
      entry.resolve(buffer.subarray(offset + 8, end));
    }
    offset = end;
  }
  partial = offset === buffer.length ? null : buffer.subarray(offset);
});

writeMessage({ type: "ready", port });

serveCommands(
  {
    async run(params) {
      const { inFlight, payloadBytes, warmupMs, durationMs } = parseRunParams(params);
      const payload = Buffer.alloc(payloadBytes, 0xab);
      const framesBefore = stats.framesSent;
      const writesBefore = stats.socketWrites;
      const cpuBefore = cpuTimes();
      const result = await runClosedLoop({
        inFlight,
        warmupMs,
        durationMs,
        send: () =>
          request(payload).then((echoed) => {
            if (echoed.length !== payloadBytes) throw new Error("echo returned a different length");
          }),
      });
      return {
        ...result,
        payloadBytes,
        ...cpuSince(cpuBefore),
        framesSent: stats.framesSent - framesBefore,
        socketWrites: stats.socketWrites - writesBefore,
      };
    },
  },
  async () => {
    socket.destroy();
  },
);
