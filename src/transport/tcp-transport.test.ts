// Goal: the TCP transport keeps its promises on real loopback sockets — request/response and
// one-way delivery, handshake refusal, deadlines and late replies, bounded queues, write
// coalescing, containment of bad frames, reconnect, clock stamping and fault injection.
// Method: two or three transports in this process, plus raw sockets playing a bad peer.
import assert from "node:assert/strict";
import net from "node:net";
import { afterEach, describe, it } from "node:test";
import { HybridLogicalClock } from "../clocks/hlc.js";
import { BrigadeError, isBrigadeError } from "../lib/errors.js";
import { silentLogger, waitFor } from "../testkit/index.js";
import type { TransportConfig } from "./config.js";
import { encodeFrameHeader, FrameDecoder } from "./frame.js";
import { TcpTransport } from "./tcp-transport.js";
import {
  decodeFrameBody,
  encodeFrameBody,
  type Frame,
  FrameKind,
  protocolVersion,
} from "./wire.js";

const started: TcpTransport[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(started.splice(0).map((transport) => transport.close()));
});

interface MakeOptions {
  id: string;
  clusterId?: string;
  port?: number;
  config?: Partial<TransportConfig>;
  physicalNowMs?: () => number;
}

async function make(options: MakeOptions): Promise<TcpTransport> {
  const transport = new TcpTransport({
    nodeId: options.id,
    clusterId: options.clusterId ?? "test",
    listen: { host: "127.0.0.1", port: options.port ?? 0 },
    clock: new HybridLogicalClock({
      physicalNowMs: options.physicalNowMs ?? Date.now,
      maxOffsetMs: 500,
    }),
    logger: silentLogger,
    config: options.config ?? {},
  });
  await transport.start();
  started.push(transport);
  return transport;
}

/** Two transports; `a` dials `b`, and `b` dials back. Resolves once both directions are open. */
async function pair(config: Partial<TransportConfig> = {}): Promise<[TcpTransport, TcpTransport]> {
  const a = await make({ id: "a", config });
  const b = await make({ id: "b", config });
  a.connect(b.advertise);
  await waitFor(
    "a and b connected both ways",
    () => a.connectedPeerIds().includes("b") && b.connectedPeerIds().includes("a"),
  );
  return [a, b];
}

function frameBytes(frame: Frame): Buffer {
  const body = encodeFrameBody(frame);
  return Buffer.concat([encodeFrameHeader(body.length), body]);
}

/** A raw socket that performs a valid handshake as node `id`, for sending bad frames afterwards. */
async function rawPeer(
  target: TcpTransport,
  hello: Partial<Extract<Frame, { kind: 0 }>> = {},
): Promise<{ socket: net.Socket; replies: Frame[]; closed: Promise<void> }> {
  const [host, port] = target.advertise.split(":");
  const socket = net.connect({ host: host as string, port: Number(port) });
  sockets.push(socket);
  const replies: Frame[] = [];
  const decoder = new FrameDecoder(1 << 20);
  socket.on("data", (chunk) => {
    for (const body of decoder.push(chunk)) replies.push(decodeFrameBody(body));
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(
    frameBytes({
      kind: FrameKind.Hello,
      version: protocolVersion,
      clusterId: "test",
      nodeId: "raw",
      advertise: "127.0.0.1:1",
      hlc: { wallMs: Date.now(), logical: 0 },
      ...hello,
    }),
  );
  await waitFor("a handshake reply", () => replies.length > 0);
  return { socket, replies, closed };
}

describe("TcpTransport", () => {
  it("answers requests and delivers one-way messages, stamping them with the sender's HLC", async () => {
    const [a, b] = await pair();
    b.handle("double", (payload) => (payload as number) * 2);
    assert.equal(await a.request("b", "double", 21), 42);
    const received: unknown[] = [];
    let stamp = { wallMs: 0, logical: 0 };
    b.onMessage("note", (payload, context) => {
      received.push(payload);
      stamp = context.hlc;
    });
    a.send("b", "note", { text: "hi" });
    await waitFor("the message", () => received.length === 1);
    assert.deepEqual(received, [{ text: "hi" }]);
    assert.equal(stamp.wallMs > 0, true);
  });

  it("maps a handler's typed error to the same code at the caller", async () => {
    const [a, b] = await pair();
    b.handle("fail", () => {
      throw new BrigadeError("Unavailable", "not now");
    });
    b.handle("crash", () => {
      throw new Error("boom");
    });
    await assert.rejects(
      a.request("b", "fail", null),
      (error) => isBrigadeError(error, "Unavailable") && error.retriable,
    );
    await assert.rejects(
      a.request("b", "crash", null),
      (error) => isBrigadeError(error, "RemoteError") && !error.retriable,
    );
    await assert.rejects(a.request("b", "missing", null), (error) =>
      isBrigadeError(error, "NoHandler"),
    );
  });

  it("refuses a peer of another cluster on both sides, and counts it", async () => {
    const a = await make({ id: "a" });
    const b = await make({ id: "b", clusterId: "other" });
    a.connect(b.advertise);
    await waitFor(
      "handshake failures on both sides",
      () => a.stats.handshakeFailures > 0 && b.stats.handshakeFailures > 0,
    );
    assert.deepEqual(a.connectedPeerIds(), []);
    assert.deepEqual(b.connectedPeerIds(), []);
    await assert.rejects(a.request("b", "x", null), (error) =>
      isBrigadeError(error, "UnknownPeer"),
    );
  });

  it("rejects a handshake with another protocol version, saying why", async () => {
    const a = await make({ id: "a" });
    const { replies, closed } = await rawPeer(a, { version: protocolVersion + 1 });
    await closed;
    const reply = replies[0];
    assert.equal(reply?.kind, FrameKind.Reject);
    assert.match((reply as { reason: string }).reason, /protocol version/);
    assert.equal(a.stats.handshakeFailures, 1);
  });

  it("rejects a handshake advertising an address it cannot dial back, without crashing", async () => {
    const a = await make({ id: "a" });
    for (const advertise of ["", "nohost", "h:0", ":7001"]) {
      const { replies, closed } = await rawPeer(a, { advertise });
      await closed;
      assert.equal(replies[0]?.kind, FrameKind.Reject, `advertise "${advertise}"`);
    }
    assert.equal(a.stats.handshakeFailures, 4);
  });

  it("never hands what waited for one node to another that took over its address", async () => {
    const a = await make({ id: "a", config: { reconnectDelayMsMax: 100 } });
    const x = await make({ id: "x" });
    const port = Number(x.advertise.split(":")[1]);
    a.connect(x.advertise);
    await waitFor("a connected to x", () => a.connectedPeerIds().includes("x"));
    await x.close();
    started.splice(started.indexOf(x), 1);
    await waitFor("a notices x is gone", () => !a.connectedPeerIds().includes("x"));
    const meantForX = a.request("x", "echo", "for x", { timeoutMs: 5_000 });
    const received: unknown[] = [];
    const y = await make({ id: "y", port });
    y.handle("echo", (payload) => {
      received.push(payload);
      return payload;
    });
    await assert.rejects(meantForX, (error) => isBrigadeError(error, "UnknownPeer"));
    await waitFor("a connected to y", () => a.connectedPeerIds().includes("y"));
    assert.deepEqual(received, []);
  });

  it("rejects a peer whose clock is further ahead than the maximum offset", async () => {
    const a = await make({ id: "a" });
    const b = await make({ id: "b", physicalNowMs: () => Date.now() + 60_000 });
    b.connect(a.advertise);
    await waitFor("the offset rejection", () => a.stats.clockOffsetRejections > 0);
    assert.deepEqual(b.connectedPeerIds(), []);
  });

  it("fails a request at its deadline with a retriable error and drops the late reply", async () => {
    const [a, b] = await pair();
    let release: (value: string) => void = () => {};
    b.handle("slow", () => new Promise<string>((resolve) => (release = resolve)));
    const started = Date.now();
    await assert.rejects(
      a.request("b", "slow", null, { timeoutMs: 150 }),
      (error) => isBrigadeError(error, "DeadlineExceeded") && error.retriable,
    );
    assert.ok(Date.now() - started >= 140);
    release("too late");
    await waitFor("the late reply to be counted", () => a.stats.lateResponses === 1);
    assert.equal(a.pendingRequests(), 0);
  });

  it("fails fast with QueueFull when a peer's send queue is full", async () => {
    const a = await make({ id: "a", config: { sendQueueFramesMax: 10 } });
    const b = await make({ id: "b" });
    a.connect(b.advertise);
    await waitFor("connected", () => a.connectedPeerIds().includes("b"));
    await b.close(); // a keeps the peer and queues for the reconnect
    await waitFor("a notices b is gone", () => !a.connectedPeerIds().includes("b"));
    for (let index = 0; index < 10; index++) a.send("b", "t", index);
    assert.throws(
      () => a.send("b", "t", 10),
      (error) => isBrigadeError(error, "QueueFull") && error.retriable,
    );
    assert.equal(a.stats.queueFullRejections, 1);
  });

  it("bounds the requests awaiting answers", async () => {
    const [a, b] = await pair({ pendingRequestsMax: 3 });
    b.handle("hang", () => new Promise(() => {}));
    const hanging = [1, 2, 3].map(() =>
      a.request("b", "hang", null, { timeoutMs: 300 }).catch((error: unknown) => error),
    );
    await assert.rejects(a.request("b", "hang", null), (error) =>
      isBrigadeError(error, "QueueFull"),
    );
    for (const error of await Promise.all(hanging))
      assert.ok(isBrigadeError(error, "DeadlineExceeded"));
  });

  it("refuses to send a message over the size limit", async () => {
    const [a] = await pair({ frameBytesMax: 1024 });
    assert.throws(
      () => a.send("b", "t", Buffer.alloc(2000)),
      (error) => isBrigadeError(error, "MessageTooLarge") && !error.retriable,
    );
  });

  it("coalesces frames sent in one turn into few socket writes", async () => {
    const [a, b] = await pair();
    let count = 0;
    b.onMessage("many", () => count++);
    const writesBefore = a.stats.socketWrites;
    for (let index = 0; index < 1000; index++) a.send("b", "many", index);
    await waitFor("all 1000 messages", () => count === 1000);
    const writes = a.stats.socketWrites - writesBefore;
    // Batches are capped at coalesceFramesMax (32): 1000 frames need about 32 writes, not 1000.
    assert.ok(
      writes <= Math.ceil(1000 / a.config.coalesceFramesMax) + 3,
      `1000 frames took ${writes} socket writes`,
    );
  });

  describe("contains a bad peer to its own connection", () => {
    for (const [name, payload, counter] of [
      ["an oversize frame", encodeFrameHeader(64 * 1024 * 1024), "framesOversize"],
      [
        "a garbage frame",
        Buffer.concat([encodeFrameHeader(4), Buffer.from([0xc1, 0xc1, 0xc1, 0xc1])]),
        "framesMalformed",
      ],
      [
        "a well-framed body of the wrong shape",
        frameBytes({ kind: FrameKind.Reject, reason: "x" }),
        "framesMalformed",
      ],
    ] as const) {
      it(`closes the connection on ${name} and keeps serving others`, async () => {
        const [a, b] = await pair();
        b.handle("echo", (payload) => payload);
        const bad = await rawPeer(b);
        bad.socket.write(payload);
        await bad.closed;
        assert.equal(b.stats[counter], 1);
        assert.equal(await a.request("b", "echo", "still here"), "still here");
      });
    }

    it("counts a connection that ends inside a frame as truncated", async () => {
      const a = await make({ id: "a" });
      const bad = await rawPeer(a);
      bad.socket.end(encodeFrameHeader(100));
      await waitFor("the truncation to be counted", () => a.stats.framesTruncated === 1);
    });

    it("drops a connection that never says hello", async () => {
      const a = await make({ id: "a", config: { connectTimeoutMs: 200 } });
      const [host, port] = a.advertise.split(":");
      const socket = net.connect({ host: host as string, port: Number(port) });
      sockets.push(socket);
      socket.on("error", () => {});
      await new Promise<void>((resolve) => socket.on("close", () => resolve()));
      assert.equal(a.stats.handshakeFailures, 1);
    });
  });

  it("reconnects after the peer restarts on the same port", async () => {
    const [a, b] = await pair({ reconnectDelayMsMax: 200 });
    const port = Number(b.advertise.split(":")[1]);
    await b.close();
    started.splice(started.indexOf(b), 1);
    await waitFor("a notices b is gone", () => !a.connectedPeerIds().includes("b"));
    const restarted = await make({ id: "b", port, config: { reconnectDelayMsMax: 200 } });
    restarted.handle("echo", (payload) => payload);
    await waitFor("a reconnects", () => a.connectedPeerIds().includes("b"));
    assert.equal(await a.request("b", "echo", 1), 1);
  });

  describe("fault injection acts on real traffic", () => {
    it("drop: every frame to the peer is lost until healed", async () => {
      const [a, b] = await pair();
      b.handle("echo", (payload) => payload);
      a.faults.set("b", { dropRate: 1 });
      await assert.rejects(a.request("b", "echo", 1, { timeoutMs: 200 }), (error) =>
        isBrigadeError(error, "DeadlineExceeded"),
      );
      assert.ok(a.faults.droppedFrames >= 1);
      a.faults.heal("b");
      assert.equal(await a.request("b", "echo", 2), 2);
    });

    it("delay: a round trip takes at least the injected delay", async () => {
      const [a, b] = await pair();
      b.handle("echo", (payload) => payload);
      a.faults.set("b", { delayMs: 150, jitterMs: 20 });
      const started = performance.now();
      await a.request("b", "echo", 1);
      // Node timers may fire up to a millisecond early against performance.now(); an
      // undelayed loopback round trip takes well under 5 ms.
      const elapsedMs = performance.now() - started;
      assert.ok(elapsedMs >= 148, `round trip took ${elapsedMs} ms`);
    });

    it("duplicate: every response arrives twice; the copy is dropped as late", async () => {
      const [a, b] = await pair();
      b.handle("echo", (payload) => payload);
      b.faults.set("a", { duplicateRate: 1 });
      assert.equal(await a.request("b", "echo", 1), 1);
      await waitFor("the duplicate response", () => a.stats.lateResponses === 1);
    });

    it("partition: both directions go silent, connections die by idle timeout, heal restores", async () => {
      const config = { pingIntervalMs: 50, idleTimeoutMs: 300, reconnectDelayMsMax: 100 };
      const [a, b] = await pair(config);
      b.handle("echo", (payload) => payload);
      a.faults.set("b", { partitioned: true });
      await waitFor(
        "both sides see the link down",
        () => !a.connectedPeerIds().includes("b") && !b.connectedPeerIds().includes("a"),
      );
      await assert.rejects(a.request("b", "echo", 1, { timeoutMs: 200 }));
      a.faults.heal();
      await waitFor(
        "the link back up",
        () => a.connectedPeerIds().includes("b") && b.connectedPeerIds().includes("a"),
      );
      assert.equal(await a.request("b", "echo", 3), 3);
    });
  });
});
