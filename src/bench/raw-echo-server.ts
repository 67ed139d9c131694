/**
 * @module Baseline server of the transport benchmark: a minimal raw Node TCP echo with
 * 4-byte big-endian length-prefixed framing. Each data event is split into whole frames,
 * each frame is written back unchanged, and the writes of one data event leave in one
 * syscall (cork/uncork). No encoding, no clocks, no queues: the floor Brigade is compared to.
 * Started by `transport-bench.ts`; speaks the line protocol of `child-protocol.ts` (its
 * ready message carries the port).
 */
import net from "node:net";
import { cpuTimes, serveCommands, writeMessage } from "./child-protocol.js";

const stats = { framesSent: 0, socketWrites: 0 };
const sockets = new Set<net.Socket>();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.on("close", () => sockets.delete(socket));
  socket.on("error", () => socket.destroy());
  /** The start of a frame that the previous chunk ended inside. */
  let partial: Buffer | null = null;
  socket.on("data", (chunk: Buffer) => {
    const buffer = partial === null ? chunk : Buffer.concat([partial, chunk]);
    let offset = 0;
    let frames = 0;
    socket.cork();
    while (buffer.length - offset >= 4) {
      const end = offset + 4 + buffer.readUInt32BE(offset);
      if (end > buffer.length) break;
      socket.write(buffer.subarray(offset, end));
      frames++;
      offset = end;
    }
    socket.uncork();
    partial = offset === buffer.length ? null : buffer.subarray(offset);
    if (frames > 0) {
      stats.framesSent += frames;
      stats.socketWrites++;
    }
  });
});

await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", () => resolve());
});
writeMessage({ type: "ready", port: (server.address() as net.AddressInfo).port });

serveCommands(
  {
    stats: () => ({ ...stats, ...cpuTimes() }),
  },
  async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
);
