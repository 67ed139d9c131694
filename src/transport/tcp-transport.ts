/**
 * @module Node-to-node TCP transport: one-way messages and request/response over
 * length-prefixed msgpack frames, with a handshake (cluster id, node id, protocol version),
 * per-request deadlines, bounded per-peer send queues, write coalescing, reconnect with
 * capped exponential backoff and jitter, idle detection, hybrid-logical-clock stamping of
 * every frame and fault injection on real traffic.
 *
 * Each node dials every peer it knows and sends on that outbound connection; a peer's
 * inbound connection carries its requests and one-way messages to us, and our responses
 * back. So a pair of nodes holds two connections, and no tie-break is needed when both
 * dial at once. A node that connects to us is dialed back at the address it advertises.
 *
 * Failures are contained per connection: a bad frame, a failed handshake or an idle
 * timeout closes that one connection and bumps a counter; nothing here throws out of an
 * event handler.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import type { HlcTimestamp, HybridLogicalClock } from "../clocks/hlc.js";
import { formatHostPort, type HostPort, isDialableAddress, parseHostPort } from "../lib/address.js";
import { AssertionError } from "../lib/assert.js";
import { BrigadeError, isBrigadeError, isBrigadeErrorCode } from "../lib/errors.js";
import { reconnectDelayMs, type TransportConfig, transportDefaults } from "./config.js";
import { FaultInjector } from "./faults.js";
import { FrameDecoder, FrameError, frameHeaderBytes } from "./frame.js";
import {
  correlationIdModulus,
  decodeFrameBody,
  encodeFrame,
  type Frame,
  FrameKind,
  protocolVersion,
  WireError,
} from "./wire.js";

export interface Logger {
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface TransportOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  /** Where to accept connections; port 0 picks a free port. */
  readonly listen: HostPort;
  /** Address peers should dial; defaults to the listen address (127.0.0.1 when listening on all interfaces). */
  readonly advertise?: string;
  readonly clock: HybridLogicalClock;
  readonly logger: Logger;
  readonly config?: Partial<TransportConfig>;
  readonly faults?: FaultInjector;
}

export interface RequestContext {
  readonly source: string;
  readonly hlc: HlcTimestamp;
  /** How long the caller will still wait for the answer. */
  readonly timeoutMs: number;
}
export type RequestHandler = (
  payload: unknown,
  context: RequestContext,
) => unknown | Promise<unknown>;
export type MessageListener = (
  payload: unknown,
  context: { readonly source: string; readonly hlc: HlcTimestamp },
) => void;

export interface PeerStatus {
  readonly id: string | null;
  readonly address: string;
  readonly connected: boolean;
  /** Wall-clock ms when the current connection opened, or when the last one closed. */
  readonly sinceMs: number;
  readonly reconnectFailures: number;
}

/** Counters exported as metrics; monotonically increasing. */
export class TransportStats {
  framesSent = 0;
  framesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  /** Socket write calls; framesSent / socketWrites is the coalescing factor. */
  socketWrites = 0;
  connectionsOpened = 0;
  connectionsClosed = 0;
  handshakeFailures = 0;
  framesOversize = 0;
  framesMalformed = 0;
  framesTruncated = 0;
  requestsTimedOut = 0;
  lateResponses = 0;
  queueFullRejections = 0;
  clockOffsetRejections = 0;
  unroutableFrames = 0;
}

type ConnectionState = "handshaking" | "open" | "closed";

class Connection {
  state: ConnectionState = "handshaking";
  peerId: string | null = null;
  readonly decoder: FrameDecoder;
  /** Monotonic (performance.now) times: a wall-clock step must not kill or keep connections. */
  lastReceivedMs = performance.now();
  lastSentMs = performance.now();
  /** Frames accepted but not yet handed to the socket (coalesced on the next turn). */
  writeQueue: Buffer[] = [];
  writeQueueBytes = 0;
  flushScheduled = false;

  constructor(
    readonly socket: net.Socket,
    readonly direction: "inbound" | "outbound",
    frameBytesMax: number,
  ) {
    this.decoder = new FrameDecoder(frameBytesMax);
  }
}

/** A peer we dial: its address, the open outbound connection if any, and what waits for it. */
class Peer {
  id: string | null;
  connection: Connection | null = null;
  dialing = false;
  stopped = false;
  reconnectFailures = 0;
  reconnectTimer: NodeJS.Timeout | null = null;
  sinceMs = Date.now();
  /** Frames waiting for a connection to open. */
  backlog: Buffer[] = [];
  backlogBytes = 0;

  constructor(
    public address: string,
    id: string | null,
    /** Dialed for a protocol's one-off send (not a seed): forgotten after repeated failures. */
    public ephemeral: boolean,
  ) {
    this.id = id;
  }
}

/** Batches at least this large are written as a gather list (writev) instead of copied together. */
const gatherWriteBytesMin = 32 * 1024;

/** An ephemeral peer unreachable this many dials in a row is forgotten, with its backlog. */
const ephemeralDialAttemptsMax = 10;

interface PendingRequest {
  readonly peer: Peer;
  readonly topic: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: BrigadeError) => void;
  readonly target: string;
  readonly timeoutMs: number;
  /** performance.now() after which the request fails with DeadlineExceeded. */
  readonly deadline: number;
  /** The connection the request was written to, so its close can fail the request at once. */
  sentOn: Connection | null;
}

export class TcpTransport extends EventEmitter<{
  "peer-up": [peerId: string, address: string];
  "peer-down": [peerId: string, reason: string];
}> {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly config: TransportConfig;
  readonly faults: FaultInjector;
  readonly stats = new TransportStats();
  private readonly clock: HybridLogicalClock;
  private readonly logger: Logger;
  private readonly server: net.Server;
  private readonly peersByAddress = new Map<string, Peer>();
  private readonly peersById = new Map<string, Peer>();
  /** Other addresses a known node was reached at (e.g. a DNS name in --join). */
  private readonly aliases = new Map<string, Peer>();
  private readonly inbound = new Set<Connection>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly messageListeners = new Map<string, MessageListener>();
  private readonly pending = new Map<number, PendingRequest>();
  private nextCorrelationId = 1;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineTimerAt = Number.POSITIVE_INFINITY;
  private housekeeping: NodeJS.Timeout | null = null;
  private closed = false;
  private advertiseAddress: string;

  constructor(private readonly options: TransportOptions) {
    super();
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.config = Object.freeze({ ...transportDefaults, ...options.config });
    this.clock = options.clock;
    this.logger = options.logger;
    this.faults = options.faults ?? new FaultInjector();
    this.advertiseAddress = options.advertise ?? "";
    this.server = net.createServer((socket) => this.onInboundSocket(socket));
  }

  /** Starts listening. Fails with PortInUse naming the port when it is taken. */
  async start(): Promise<HostPort> {
    const { host, port } = this.options.listen;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.server.off("listening", onListening);
        if (error.code === "EADDRINUSE") {
          reject(
            new BrigadeError("PortInUse", `peer port ${port} on ${host} is already in use`, {
              cause: error,
            }),
          );
        } else {
          reject(
            new BrigadeError(
              "InvalidConfig",
              `cannot listen on ${host}:${port}: ${error.message}`,
              { cause: error },
            ),
          );
        }
      };
      const onListening = () => {
        this.server.off("error", onError);
        resolve();
      };
      this.server.once("error", onError);
      this.server.once("listening", onListening);
      this.server.listen(port, host);
    });
    this.server.on("error", (error) => this.logger.error({ err: error }, "peer listener error"));
    const bound = this.server.address() as net.AddressInfo;
    const address = { host, port: bound.port };
    if (this.advertiseAddress === "") {
      const advertisedHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      this.advertiseAddress = formatHostPort({ host: advertisedHost, port: bound.port });
    }
    this.housekeeping = setInterval(
      () => this.keepAlive(),
      Math.max(10, this.config.pingIntervalMs / 2),
    );
    this.housekeeping.unref();
    return address;
  }

  get advertise(): string {
    return this.advertiseAddress;
  }

  /**
   * Dials `address` (and keeps redialing it) until `close()` or `release(address)`; its node
   * id is learned in the handshake. A peer already known at the address (dialed back after
   * it connected to us, or for a one-off send) becomes one that is never forgotten, unless
   * this call is itself `ephemeral`.
   */
  connect(address: string, options: { ephemeral?: boolean } = {}): void {
    parseHostPort(address);
    if (this.closed || address === this.advertiseAddress) return;
    const known = this.peersByAddress.get(address) ?? this.aliases.get(address);
    if (known !== undefined) {
      if (!(options.ephemeral ?? false)) known.ephemeral = false;
      return;
    }
    const peer = new Peer(address, null, options.ephemeral ?? false);
    this.peersByAddress.set(address, peer);
    this.dial(peer);
  }

  /** Lets the peer at `address` be forgotten after repeated failed dials (it left the cluster). */
  release(address: string): void {
    const known = this.peersByAddress.get(address) ?? this.aliases.get(address);
    if (known !== undefined) known.ephemeral = true;
  }

  /**
   * True while an open connection to node `id` exists and no injected partition cuts it (a
   * real cut shows as a closed connection once `idleTimeoutMs` passes without a frame).
   */
  isConnected(id: string): boolean {
    return this.peersById.get(id)?.connection?.state === "open" && !this.faults.isPartitioned(id);
  }

  /**
   * Sends a one-way message to whichever node listens at `address`, dialing it first if
   * needed (the frame waits in the peer's bounded backlog until the handshake completes).
   * For protocols that know peers by address before they know their ids (gossip joins).
   */
  sendToAddress(address: string, topic: string, payload: unknown): void {
    if (this.closed || address === this.advertiseAddress) return;
    let peer = this.aliases.get(address) ?? this.peersByAddress.get(address);
    if (peer === undefined) {
      this.connect(address, { ephemeral: true });
      peer = this.peersByAddress.get(address);
    }
    if (peer === undefined || peer.stopped) return;
    const frame = this.encode({ kind: FrameKind.Message, topic, payload, hlc: this.clock.now() });
    this.sendFrame(peer, frame);
  }

  /** Registers the handler of requests on `topic`. Its result (or thrown error) is the response. */
  handle(topic: string, handler: RequestHandler): void {
    this.handlers.set(topic, handler);
  }

  /** Registers the listener of one-way messages on `topic`. */
  onMessage(topic: string, listener: MessageListener): void {
    this.messageListeners.set(topic, listener);
  }

  /**
   * Sends a one-way message. Delivery is best effort: it may be lost if the connection
   * drops. Throws UnknownPeer, MessageTooLarge or QueueFull synchronously.
   */
  send(target: string, topic: string, payload: unknown): void {
    if (this.closed) throw new BrigadeError("ConnectionClosed", "transport closed");
    const peer = this.requirePeer(target);
    const frame = this.encode({ kind: FrameKind.Message, topic, payload, hlc: this.clock.now() });
    this.sendFrame(peer, frame);
  }

  /**
   * Sends a request and resolves with the response. Fails with DeadlineExceeded (retriable)
   * when no answer arrives within `timeoutMs`; a late answer is dropped. Fails with
   * ConnectionClosed (retriable; the request may or may not have run) when the connection
   * it was written to closes first, and with RemoteError carrying the remote code when the
   * handler threw.
   */
  request(
    target: string,
    topic: string,
    payload: unknown,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    if (this.closed)
      return Promise.reject(new BrigadeError("ConnectionClosed", "transport closed"));
    const timeoutMs = options.timeoutMs ?? this.config.requestTimeoutMs;
    let peer: Peer;
    try {
      peer = this.requirePeer(target);
      if (this.pending.size >= this.config.pendingRequestsMax) {
        this.stats.queueFullRejections++;
        throw new BrigadeError(
          "QueueFull",
          `${this.pending.size} requests already pending (limit ${this.config.pendingRequestsMax})`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const correlationId = this.nextCorrelationId;
    // Ids travel as u32 (wire.ts); wrap long before any could still be pending.
    this.nextCorrelationId = (this.nextCorrelationId % (correlationIdModulus - 1)) + 1;
    let frame: Buffer;
    try {
      frame = this.encode({
        kind: FrameKind.Request,
        correlationId,
        topic,
        payload,
        timeoutMs,
        hlc: this.clock.now(),
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<unknown>((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      const entry: PendingRequest = {
        peer,
        topic,
        target,
        timeoutMs,
        deadline,
        resolve,
        reject,
        sentOn: null,
      };
      this.pending.set(correlationId, entry);
      try {
        this.sendFrame(peer, frame, entry);
      } catch (error) {
        this.pending.delete(correlationId);
        reject(error);
        return;
      }
      this.armDeadlineTimer(deadline);
    });
  }

  /**
   * One timer for every request deadline (a timer per request costs more than the request):
   * it fires at the earliest deadline, fails what has expired and re-arms for the next.
   */
  private armDeadlineTimer(deadline: number): void {
    if (this.closed || deadline >= this.deadlineTimerAt) return;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = deadline;
    this.deadlineTimer = setTimeout(
      () => this.expireRequests(),
      Math.max(0, Math.ceil(deadline - performance.now())),
    );
  }

  private expireRequests(): void {
    this.deadlineTimer = null;
    this.deadlineTimerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [correlationId, entry] of this.pending) {
      if (entry.deadline <= now) {
        this.pending.delete(correlationId);
        this.stats.requestsTimedOut++;
        entry.reject(
          new BrigadeError(
            "DeadlineExceeded",
            `request "${entry.topic}" to ${entry.target} got no answer within ${entry.timeoutMs} ms`,
          ),
        );
      } else if (entry.deadline < next) {
        next = entry.deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.armDeadlineTimer(next);
  }

  /** Peers we dial and their connection state. */
  peers(): PeerStatus[] {
    return [...this.peersByAddress.values()].map((peer) => ({
      id: peer.id,
      address: peer.address,
      connected: peer.connection?.state === "open",
      sinceMs: peer.sinceMs,
      reconnectFailures: peer.reconnectFailures,
    }));
  }

  /** Ids of the peers with an open outbound connection. */
  connectedPeerIds(): string[] {
    return [...this.peersById.values()]
      .filter((peer) => peer.connection?.state === "open")
      .map((peer) => peer.id as string);
  }

  /** Total frames and bytes waiting to be written, across peers (a gauge). */
  queuedFrames(): number {
    let frames = 0;
    for (const peer of this.peersByAddress.values())
      frames += peer.backlog.length + (peer.connection?.writeQueue.length ?? 0);
    return frames;
  }

  pendingRequests(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.housekeeping) clearInterval(this.housekeeping);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    for (const peer of this.peersByAddress.values()) {
      peer.stopped = true;
      if (peer.reconnectTimer) clearTimeout(peer.reconnectTimer);
      if (peer.connection) this.closeConnection(peer.connection, "transport closed", false);
    }
    for (const connection of this.inbound)
      this.closeConnection(connection, "transport closed", false);
    for (const [correlationId, entry] of this.pending) {
      this.pending.delete(correlationId);
      entry.reject(new BrigadeError("ConnectionClosed", "transport closed"));
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- sending ---------------------------------------------------------------------------

  private requirePeer(target: string): Peer {
    const peer = this.peersById.get(target);
    if (peer === undefined)
      throw new BrigadeError("UnknownPeer", `no known peer with id "${target}"`, {
        retriable: true,
      });
    return peer;
  }

  private encode(frame: Frame): Buffer {
    const framed = encodeFrame(frame);
    const bodyBytes = framed.length - frameHeaderBytes;
    if (bodyBytes > this.config.frameBytesMax) {
      throw new BrigadeError(
        "MessageTooLarge",
        `message of ${bodyBytes} bytes exceeds the limit of ${this.config.frameBytesMax} bytes`,
      );
    }
    return framed;
  }

  /** Applies fault injection, then queues the frame for the peer's outbound connection. */
  private sendFrame(peer: Peer, frame: Buffer, request?: PendingRequest): void {
    const decision =
      peer.id === null ? { copies: 1 as const, delayMs: 0 } : this.faults.onOutbound(peer.id);
    if (decision.copies === 0) return;
    for (let copy = 0; copy < decision.copies; copy++) {
      if (decision.delayMs === 0) {
        this.enqueueToPeer(peer, frame, request);
      } else {
        const timer = setTimeout(() => {
          try {
            this.enqueueToPeer(peer, frame, request);
          } catch {
            // A delayed frame that meets a full queue is lost, as on a congested network.
          }
        }, decision.delayMs);
        timer.unref();
      }
    }
  }

  private enqueueToPeer(peer: Peer, frame: Buffer, request?: PendingRequest): void {
    const connection = peer.connection;
    const queuedFrames = peer.backlog.length + (connection?.writeQueue.length ?? 0);
    const queuedBytes =
      peer.backlogBytes +
      (connection ? connection.writeQueueBytes + connection.socket.writableLength : 0);
    if (
      queuedFrames >= this.config.sendQueueFramesMax ||
      queuedBytes + frame.length > this.config.sendQueueBytesMax
    ) {
      this.stats.queueFullRejections++;
      throw new BrigadeError(
        "QueueFull",
        `send queue to ${peer.id ?? peer.address} is full (${queuedFrames} frames, ${queuedBytes} bytes)`,
      );
    }
    if (connection?.state === "open") {
      if (request) request.sentOn = connection;
      this.enqueueToConnection(connection, frame);
    } else {
      peer.backlog.push(frame);
      peer.backlogBytes += frame.length;
    }
  }

  private enqueueToConnection(connection: Connection, frame: Buffer): void {
    connection.writeQueue.push(frame);
    connection.writeQueueBytes += frame.length;
    // Write a full batch at once, so the peer starts on it while we encode the rest: both
    // processes then work at the same time instead of taking turns.
    if (
      connection.writeQueue.length >= this.config.coalesceFramesMax ||
      connection.writeQueueBytes >= this.config.coalesceBytesMax
    ) {
      this.flush(connection);
      return;
    }
    if (!connection.flushScheduled) {
      connection.flushScheduled = true;
      // Coalesce the frames queued during this turn of the event loop into one write.
      setImmediate(() => {
        connection.flushScheduled = false;
        this.flush(connection);
      });
    }
  }

  private flush(connection: Connection): void {
    if (connection.state !== "open" || connection.writeQueue.length === 0) return;
    const frames = connection.writeQueue;
    const bytes = connection.writeQueueBytes;
    connection.writeQueue = [];
    connection.writeQueueBytes = 0;
    const socket = connection.socket;
    if (frames.length === 1) {
      socket.write(frames[0] as Buffer);
    } else if (bytes < gatherWriteBytesMin) {
      // Small frames: one copy into one buffer is cheaper than a gather list.
      socket.write(Buffer.concat(frames, bytes));
    } else {
      // Large frames: corked writes become one writev, with no copy of the payloads.
      socket.cork();
      for (const frame of frames) socket.write(frame);
      socket.uncork();
    }
    this.stats.socketWrites++;
    this.stats.framesSent += frames.length;
    this.stats.bytesSent += bytes;
    connection.lastSentMs = performance.now();
  }

  /** Handshake frames and rejections bypass queues and faults. */
  private writeDirect(connection: Connection, frame: Frame): void {
    const encoded = this.encode(frame);
    connection.socket.write(encoded);
    this.stats.socketWrites++;
    this.stats.framesSent++;
    this.stats.bytesSent += encoded.length;
    connection.lastSentMs = performance.now();
  }

  // ---- connections -------------------------------------------------------------------------

  private dial(peer: Peer): void {
    if (this.closed || peer.stopped || peer.dialing || peer.connection) return;
    peer.dialing = true;
    const { host, port } = parseHostPort(peer.address);
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const connection = new Connection(socket, "outbound", this.config.frameBytesMax);
    const connectTimer = setTimeout(
      () => this.closeConnection(connection, "connect timeout"),
      this.config.connectTimeoutMs,
    );
    connectTimer.unref();
    peer.connection = connection;
    socket.once("connect", () => {
      this.writeDirect(connection, {
        kind: FrameKind.Hello,
        version: protocolVersion,
        clusterId: this.clusterId,
        nodeId: this.nodeId,
        advertise: this.advertiseAddress,
        hlc: this.clock.now(),
      });
    });
    this.attachSocket(connection, (frame) => {
      if (connection.state === "handshaking") {
        clearTimeout(connectTimer);
        this.onWelcome(peer, connection, frame);
      } else {
        this.onFrame(connection, frame);
      }
    });
    socket.once("close", () => {
      clearTimeout(connectTimer);
      peer.dialing = false;
      if (peer.connection === connection) peer.connection = null;
      const wasOpen = connection.state === "open";
      connection.state = "closed";
      this.failRequestsOn(connection);
      if (wasOpen && peer.id !== null) {
        peer.sinceMs = Date.now();
        this.emit("peer-down", peer.id, "connection closed");
      }
      this.scheduleRedial(peer);
    });
  }

  private scheduleRedial(peer: Peer): void {
    if (this.closed || peer.stopped) return;
    if (peer.ephemeral && peer.reconnectFailures >= ephemeralDialAttemptsMax) {
      this.forget(peer);
      return;
    }
    const delayMs = reconnectDelayMs(this.config, peer.reconnectFailures, Math.random);
    peer.reconnectFailures++;
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = null;
      this.dial(peer);
    }, delayMs);
    peer.reconnectTimer.unref();
  }

  private onWelcome(peer: Peer, connection: Connection, frame: Frame): void {
    if (frame.kind === FrameKind.Reject) {
      this.handshakeFailed(connection, `rejected by ${peer.address}: ${frame.reason}`);
      return;
    }
    if (frame.kind !== FrameKind.Welcome) {
      this.handshakeFailed(
        connection,
        `expected a handshake reply from ${peer.address}, got frame kind ${frame.kind}`,
      );
      return;
    }
    const problem = this.checkIdentity(frame.version, frame.clusterId, frame.nodeId, frame.hlc);
    if (problem !== null) {
      this.handshakeFailed(connection, `${peer.address}: ${problem}`);
      return;
    }
    if (frame.nodeId === this.nodeId) {
      // We dialed ourselves (a seed list that includes our own address): stop dialing it.
      peer.stopped = true;
      this.closeConnection(connection, "dialed self", false);
      return;
    }
    if (peer.id !== null && peer.id !== frame.nodeId) {
      this.logger.warn(
        { address: peer.address, expected: peer.id, actual: frame.nodeId },
        "peer at address changed identity",
      );
      if (this.peersById.get(peer.id) === peer) this.peersById.delete(peer.id);
      // What waits was meant for the old node: never hand it to the new one.
      peer.backlog = [];
      peer.backlogBytes = 0;
      for (const [correlationId, entry] of this.pending) {
        if (entry.peer !== peer) continue;
        this.pending.delete(correlationId);
        entry.reject(
          new BrigadeError("UnknownPeer", `${entry.target} no longer listens at ${peer.address}`, {
            retriable: true,
          }),
        );
      }
    }
    const existing = this.peersById.get(frame.nodeId);
    if (existing !== undefined && existing !== peer) {
      // The same node reached through a second address: keep one peer per node, remember
      // this address as an alias of it, and move over what waited here.
      peer.stopped = true;
      this.peersByAddress.delete(peer.address);
      this.aliases.set(peer.address, existing);
      for (const queued of peer.backlog) {
        try {
          this.enqueueToPeer(existing, queued);
        } catch {
          // QueueFull: counted; the frame is lost like any frame to a congested peer
        }
      }
      peer.backlog = [];
      peer.backlogBytes = 0;
      this.closeConnection(connection, "duplicate peer", false);
      return;
    }
    peer.id = frame.nodeId;
    this.peersById.set(frame.nodeId, peer);
    connection.peerId = frame.nodeId;
    connection.state = "open";
    peer.dialing = false;
    peer.reconnectFailures = 0;
    peer.sinceMs = Date.now();
    this.stats.connectionsOpened++;
    this.logger.info({ peer: frame.nodeId, address: peer.address }, "connected to peer");
    // Release what waited for the connection, in order.
    const backlog = peer.backlog;
    peer.backlog = [];
    peer.backlogBytes = 0;
    for (const queued of backlog) this.enqueueToConnection(connection, queued);
    for (const entry of this.pending.values()) {
      if (entry.peer === peer && entry.sentOn === null) entry.sentOn = connection;
    }
    this.emit("peer-up", frame.nodeId, peer.address);
  }

  private onInboundSocket(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const connection = new Connection(socket, "inbound", this.config.frameBytesMax);
    this.inbound.add(connection);
    const helloTimer = setTimeout(
      () => this.handshakeFailed(connection, "no handshake within the connect timeout"),
      this.config.connectTimeoutMs,
    );
    helloTimer.unref();
    this.attachSocket(connection, (frame) => {
      if (connection.state === "handshaking") {
        clearTimeout(helloTimer);
        this.onHello(connection, frame);
      } else {
        this.onFrame(connection, frame);
      }
    });
    socket.once("close", () => {
      clearTimeout(helloTimer);
      connection.state = "closed";
      this.inbound.delete(connection);
    });
  }

  private onHello(connection: Connection, frame: Frame): void {
    const remote = connection.socket.remoteAddress;
    if (frame.kind !== FrameKind.Hello) {
      this.handshakeFailed(connection, `connection from ${remote} did not start with a handshake`);
      return;
    }
    let problem = this.checkIdentity(frame.version, frame.clusterId, frame.nodeId, frame.hlc);
    if (
      problem === null &&
      frame.nodeId === this.nodeId &&
      frame.advertise !== this.advertiseAddress
    ) {
      problem = `node id "${frame.nodeId}" is our own id: two nodes share one id`;
    }
    if (problem === null && !isDialableAddress(frame.advertise)) {
      problem = `advertised address "${frame.advertise.slice(0, 64)}" is not host:port`;
    }
    if (problem === null && this.faults.isPartitioned(frame.nodeId))
      problem = "partitioned (fault injection)";
    if (problem !== null) {
      this.writeDirect(connection, { kind: FrameKind.Reject, reason: problem });
      this.handshakeFailed(connection, `${frame.nodeId}@${remote}: ${problem}`);
      return;
    }
    connection.peerId = frame.nodeId;
    connection.state = "open";
    this.writeDirect(connection, {
      kind: FrameKind.Welcome,
      version: protocolVersion,
      clusterId: this.clusterId,
      nodeId: this.nodeId,
      hlc: this.clock.now(),
    });
    if (frame.nodeId === this.nodeId) return;
    // Dial back so we can send to this node too; learn a changed address after a restart.
    const known = this.peersById.get(frame.nodeId);
    if (known === undefined) {
      if (!this.peersByAddress.has(frame.advertise)) {
        const peer = new Peer(frame.advertise, frame.nodeId, true);
        this.peersByAddress.set(frame.advertise, peer);
        this.dial(peer);
      }
    } else if (known.address !== frame.advertise && known.connection?.state !== "open") {
      this.peersByAddress.delete(known.address);
      known.address = frame.advertise;
      this.peersByAddress.set(frame.advertise, known);
    }
  }

  /** The handshake rules shared by both directions; null when the remote is acceptable. */
  private checkIdentity(
    version: number,
    clusterId: string,
    nodeId: string,
    hlc: HlcTimestamp,
  ): string | null {
    if (version !== protocolVersion)
      return `protocol version ${version} is not ours (${protocolVersion})`;
    if (clusterId !== this.clusterId)
      return `cluster id "${clusterId}" is not ours ("${this.clusterId}")`;
    if (nodeId.length === 0) return "empty node id";
    try {
      this.clock.update(hlc);
    } catch (error) {
      if (!isBrigadeError(error)) throw error;
      if (error.code === "ClockOffsetExceeded") this.stats.clockOffsetRejections++;
      return error.message;
    }
    return null;
  }

  private handshakeFailed(connection: Connection, reason: string): void {
    this.stats.handshakeFailures++;
    this.logger.warn({ reason }, "handshake failed; closing connection");
    this.closeConnection(connection, reason, false);
  }

  private attachSocket(connection: Connection, onFrame: (frame: Frame) => void): void {
    const socket = connection.socket;
    socket.on("data", (chunk: Buffer) => {
      if (connection.state === "closed") return;
      this.stats.bytesReceived += chunk.length;
      // Frames a partition discards must not keep the connection looking alive.
      if (connection.peerId === null || !this.faults.isPartitioned(connection.peerId)) {
        connection.lastReceivedMs = performance.now();
      }
      try {
        connection.decoder.forEachBody(chunk, (buffer, start, end) => {
          let frame: Frame;
          try {
            frame = decodeFrameBody(buffer, start, end);
          } catch (error) {
            if (!(error instanceof WireError)) throw error;
            this.stats.framesMalformed++;
            this.closeConnection(connection, error.message);
            return false;
          }
          this.stats.framesReceived++;
          try {
            onFrame(frame);
          } catch (error) {
            // Nothing a peer sends may throw out of a socket handler; bugs (assertions) still crash.
            if (error instanceof AssertionError) throw error;
            this.logger.error({ err: error, peer: connection.peerId }, "frame handler failed");
          }
          return connection.state !== "closed"; // a frame handler may have closed it
        });
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        if (error.code === "FrameTooLarge") this.stats.framesOversize++;
        else this.stats.framesMalformed++;
        this.closeConnection(connection, error.message);
      }
    });
    socket.on("end", () => {
      if (connection.decoder.pendingBytes > 0) this.stats.framesTruncated++;
    });
    socket.on("error", (error) => {
      this.logger.debug({ err: error, peer: connection.peerId }, "socket error");
    });
  }

  private closeConnection(connection: Connection, reason: string, log = true): void {
    if (connection.state === "closed" && connection.socket.destroyed) return;
    if (log)
      this.logger.warn(
        { peer: connection.peerId, direction: connection.direction, reason },
        "closing connection",
      );
    if (connection.state === "open") this.stats.connectionsClosed++;
    connection.state = "closed";
    connection.writeQueue = [];
    connection.writeQueueBytes = 0;
    // Let a rejection frame already written reach the peer, then close.
    connection.socket.end();
    connection.socket.destroySoon();
    setTimeout(() => connection.socket.destroy(), 100).unref();
  }

  private failRequestsOn(connection: Connection): void {
    for (const [correlationId, entry] of this.pending) {
      if (entry.sentOn !== connection) continue;
      this.pending.delete(correlationId);
      entry.reject(
        new BrigadeError(
          "ConnectionClosed",
          `connection to ${entry.peer.id} closed before "${entry.topic}" was answered`,
        ),
      );
    }
  }

  /** Drops a peer, its backlog and its requests (nothing will dial it again unless asked). */
  private forget(peer: Peer): void {
    peer.stopped = true;
    if (this.peersByAddress.get(peer.address) === peer) this.peersByAddress.delete(peer.address);
    if (peer.id !== null && this.peersById.get(peer.id) === peer) this.peersById.delete(peer.id);
    for (const [alias, target] of this.aliases) if (target === peer) this.aliases.delete(alias);
    peer.backlog = [];
    peer.backlogBytes = 0;
    for (const [correlationId, entry] of this.pending) {
      if (entry.peer !== peer) continue;
      this.pending.delete(correlationId);
      entry.reject(
        new BrigadeError("Unavailable", `${entry.target} at ${peer.address} is unreachable`),
      );
    }
  }

  /** Pings idle connections and closes the ones that stopped hearing from their peer. */
  private keepAlive(): void {
    const now = performance.now();
    const check = (connection: Connection) => {
      if (connection.state !== "open") return;
      if (now - connection.lastReceivedMs > this.config.idleTimeoutMs) {
        this.closeConnection(
          connection,
          `nothing received for ${now - connection.lastReceivedMs} ms`,
        );
        return;
      }
      if (now - connection.lastSentMs >= this.config.pingIntervalMs && connection.peerId !== null) {
        const decision = this.faults.onOutbound(connection.peerId);
        if (decision.copies === 0) return;
        connection.lastSentMs = now;
        this.enqueueToConnection(
          connection,
          this.encode({ kind: FrameKind.Ping, hlc: this.clock.now() }),
        );
      }
    };
    for (const peer of this.peersByAddress.values()) if (peer.connection) check(peer.connection);
    for (const connection of this.inbound) check(connection);
  }

  // ---- receiving ---------------------------------------------------------------------------

  private onFrame(connection: Connection, frame: Frame): void {
    const source = connection.peerId as string;
    if (this.faults.dropInbound(source)) return;
    if ("hlc" in frame) {
      try {
        this.clock.update(frame.hlc);
      } catch (error) {
        if (!isBrigadeError(error)) throw error;
        if (error.code !== "ClockOffsetExceeded") {
          this.stats.framesMalformed++;
          this.closeConnection(connection, `bad timestamp: ${error.message}`);
          return;
        }
        this.stats.clockOffsetRejections++;
        this.logger.warn({ peer: source, reason: error.message }, "frame rejected: clock offset");
        if (frame.kind === FrameKind.Request)
          this.respondError(connection, frame.correlationId, error);
        return;
      }
    }
    switch (frame.kind) {
      case FrameKind.Ping:
        return;
      case FrameKind.Message: {
        const listener = this.messageListeners.get(frame.topic);
        if (listener === undefined) {
          this.stats.unroutableFrames++;
          return;
        }
        listener(frame.payload, { source, hlc: frame.hlc });
        return;
      }
      case FrameKind.Request:
        this.onRequest(
          connection,
          source,
          frame.correlationId,
          frame.topic,
          frame.payload,
          frame.timeoutMs,
          frame.hlc,
        );
        return;
      case FrameKind.Response:
      case FrameKind.ErrorResponse: {
        const entry = this.pending.get(frame.correlationId);
        if (entry === undefined || connection.direction !== "outbound") {
          this.stats.lateResponses++;
          return;
        }
        this.pending.delete(frame.correlationId);
        if (frame.kind === FrameKind.Response) entry.resolve(frame.payload);
        else {
          const code = isBrigadeErrorCode(frame.code) ? frame.code : "RemoteError";
          entry.reject(
            new BrigadeError(code, `${source}: ${frame.message}`, { retriable: frame.retriable }),
          );
        }
        return;
      }
      case FrameKind.Hello:
      case FrameKind.Welcome:
      case FrameKind.Reject:
        this.stats.framesMalformed++;
        this.closeConnection(connection, "handshake frame on an open connection");
        return;
    }
  }

  private onRequest(
    connection: Connection,
    source: string,
    correlationId: number,
    topic: string,
    payload: unknown,
    timeoutMs: number,
    hlc: HlcTimestamp,
  ): void {
    const handler = this.handlers.get(topic);
    if (handler === undefined) {
      this.stats.unroutableFrames++;
      this.respondError(
        connection,
        correlationId,
        new BrigadeError("NoHandler", `no handler for "${topic}" on ${this.nodeId}`),
      );
      return;
    }
    let result: unknown;
    try {
      result = handler(payload, { source, hlc, timeoutMs });
    } catch (error) {
      this.respondError(connection, correlationId, error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value) => this.respond(connection, correlationId, value),
        (error) => this.respondError(connection, correlationId, error),
      );
    } else {
      this.respond(connection, correlationId, result);
    }
  }

  private respond(connection: Connection, correlationId: number, payload: unknown): void {
    if (connection.state !== "open") return;
    let frame: Buffer;
    try {
      frame = this.encode({
        kind: FrameKind.Response,
        correlationId,
        payload,
        hlc: this.clock.now(),
      });
    } catch (error) {
      this.respondError(connection, correlationId, error);
      return;
    }
    this.sendResponseFrame(connection, frame);
  }

  private respondError(connection: Connection, correlationId: number, error: unknown): void {
    if (connection.state !== "open") return;
    const typed = error instanceof BrigadeError;
    const frame = this.encode({
      kind: FrameKind.ErrorResponse,
      correlationId,
      code: typed ? error.code : "RemoteError",
      message: error instanceof Error ? error.message : String(error),
      retriable: typed ? error.retriable : false,
      hlc: this.clock.now(),
    });
    this.sendResponseFrame(connection, frame);
  }

  private sendResponseFrame(connection: Connection, frame: Buffer): void {
    const decision = this.faults.onOutbound(connection.peerId as string);
    if (decision.copies === 0) return;
    const queuedBytes = connection.writeQueueBytes + connection.socket.writableLength;
    if (
      connection.writeQueue.length >= this.config.sendQueueFramesMax ||
      queuedBytes + frame.length > this.config.sendQueueBytesMax
    ) {
      // The caller's deadline turns this into DeadlineExceeded on its side.
      this.stats.queueFullRejections++;
      return;
    }
    for (let copy = 0; copy < decision.copies; copy++) {
      if (decision.delayMs === 0) this.enqueueToConnection(connection, frame);
      else
        setTimeout(
          () => connection.state === "open" && this.enqueueToConnection(connection, frame),
          decision.delayMs,
        ).unref();
    }
  }
}
