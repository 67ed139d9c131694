/**
 * @module Runs the SWIM core (`core/membership/swim.ts`) for real: probes, acks and gossip
 * over UDP on the node's peer port, push-pull state exchange over the TCP transport, time
 * from the monotonic clock, the incarnation persisted in the data directory. Datagrams carry
 * the cluster id (and a MAC when a gossip key is set) and the sender's HLC timestamp; bad,
 * foreign or unauthenticated datagrams are dropped and counted. Network fault injection
 * applies to gossip exactly as to the TCP traffic.
 */

import dgram from "node:dgram";
import { EventEmitter } from "node:events";
import { appendFileSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { HybridLogicalClock } from "../clocks/hlc.js";
import type { MembershipConfig } from "../core/membership/config.js";
import {
  type MemberRecord,
  type MembershipEvent,
  type MembershipMessage,
  type MemberTags,
  needsStream,
} from "../core/membership/messages.js";
import { incarnationFile, Swim } from "../core/membership/swim.js";
import { type HostPort, isDialableAddress, parseHostPort } from "../lib/address.js";
import { BrigadeError, isBrigadeError } from "../lib/errors.js";
import { prngFromSeed } from "../lib/prng.js";
import { DatagramError, decodeDatagram, encodeDatagram } from "../transport/datagram.js";
import type { Logger, TcpTransport } from "../transport/tcp-transport.js";

const pushPullTopic = "membership.push-pull";

export interface MembershipDriverOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  /** Shared secret that authenticates gossip datagrams (HMAC-SHA256); null for none. */
  readonly gossipKey: Buffer | null;
  /** Where to bind the UDP socket: the peer port's host and (actual) port. */
  readonly bind: HostPort;
  /** The address members use to reach this node (same port for UDP and TCP). */
  readonly advertise: string;
  readonly seeds: readonly string[];
  readonly config: MembershipConfig;
  readonly transport: TcpTransport;
  readonly clock: HybridLogicalClock;
  readonly dataDir: string;
  readonly logger: Logger;
}

/** Counters exported as metrics. */
export class GossipStats {
  datagramsSent = 0;
  datagramsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  datagramsMalformed = 0;
  datagramsOversize = 0;
  datagramsWrongCluster = 0;
  datagramsUnauthenticated = 0;
  /** Dropped by fault injection, in either direction. */
  datagramsFaulted = 0;
  clockOffsetRejections = 0;
  sendErrors = 0;
}

/** Events: `event` for every change, and one per type (`member-join`, `member-dead`, ...) with the member. */
export type MembershipDriverEvents = { event: [MembershipEvent] } & {
  [Type in MembershipEvent["type"]]: [MemberRecord];
};

export class MembershipDriver extends EventEmitter<MembershipDriverEvents> {
  readonly stats = new GossipStats();
  private readonly socket: dgram.Socket;
  private core: Swim | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Member addresses and ids, so fault injection (keyed by node id) applies to datagrams. */
  private readonly addressToId = new Map<string, string>();
  private readonly idToAddress = new Map<string, string>();
  private readonly incarnationPath: string;
  private stopped = false;

  constructor(private readonly options: MembershipDriverOptions) {
    super();
    this.socket = dgram.createSocket({ type: net.isIPv6(options.bind.host) ? "udp6" : "udp4" });
    this.incarnationPath = path.join(options.dataDir, incarnationFile);
  }

  /** Binds the UDP socket and starts gossiping with the given initial tags. */
  async start(tags: MemberTags): Promise<void> {
    const { bind } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.socket.once("error", (error: NodeJS.ErrnoException) => {
        reject(
          error.code === "EADDRINUSE"
            ? new BrigadeError(
                "PortInUse",
                `gossip UDP port ${bind.port} on ${bind.host} is already in use`,
              )
            : new BrigadeError(
                "InvalidConfig",
                `cannot bind gossip UDP ${bind.host}:${bind.port}: ${error.message}`,
              ),
        );
      });
      this.socket.bind(bind.port, bind.host, () => resolve());
    });
    this.socket.removeAllListeners("error");
    this.socket.on("error", (error) =>
      this.options.logger.warn({ err: error }, "gossip socket error"),
    );
    this.socket.on("message", (bytes) => this.onDatagram(bytes));
    this.options.transport.onMessage(pushPullTopic, (payload) =>
      this.input((core) => core.receive("", payload as MembershipMessage)),
    );

    const recovered = new Map<string, Uint8Array>();
    try {
      const bytes = readFileSync(this.incarnationPath);
      recovered.set(incarnationFile, bytes);
      // The core appends a line per incarnation; keep the file to its last complete line.
      const lines = bytes
        .toString("utf8")
        .split("\n")
        .filter((line) => /^\d+$/.test(line));
      if (lines.length > 16) {
        const temporary = `${this.incarnationPath}.tmp`;
        writeFileSync(temporary, `${lines.map(Number).reduce((a, b) => Math.max(a, b))}\n`);
        renameSync(temporary, this.incarnationPath);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const seed = Number.parseInt(Math.random().toString().slice(2, 11), 10);
    this.core = new Swim({
      nodeId: this.options.nodeId,
      address: this.options.advertise,
      seeds: this.options.seeds,
      tags,
      config: this.options.config,
      prng: prngFromSeed(seed),
      nowMs: monotonicMs(),
      recovered,
      isValidAddress: isDialableAddress,
    });
    this.flush();
    // Tick often enough to honour the probe timeout to within a tenth of it.
    const tickMs = Math.max(5, Math.min(50, Math.floor(this.options.config.probeTimeoutMs / 10)));
    this.timer = setInterval(() => this.input((core) => core.tick(monotonicMs())), tickMs);
  }

  /** Every known member, this node included. */
  members(): MemberRecord[] {
    return this.core?.memberList() ?? [];
  }

  get incarnation(): number {
    return this.core?.incarnation ?? 0;
  }

  get healthScore(): number {
    return this.core?.healthScore ?? 0;
  }

  /** Replaces this node's tags; throws MetadataTooLarge (nothing changes) past the limit. */
  updateTags(tags: MemberTags): void {
    this.input((core) => {
      const error = core.updateTags(tags);
      if (error?.code === "Leaving")
        throw new BrigadeError("Unavailable", "this node is leaving the cluster");
      if (error?.code === "MetadataTooLarge") {
        throw new BrigadeError(
          "MetadataTooLarge",
          `node metadata of ${error.bytes} bytes exceeds the limit of ${error.bytesMax} bytes`,
        );
      }
    });
  }

  /** Announces a graceful leave and waits (up to `timeoutMs`) for it to be gossiped. */
  async leave(timeoutMs = 1_000): Promise<void> {
    if (this.core === null || this.stopped) return;
    this.input((core) => core.leave());
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (this.core?.pendingBroadcasts ?? 0) > 0)
      await new Promise((resolve) => setTimeout(resolve, 20));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  /** Runs one input on the core and carries out its output (persist, then send, then events). */
  private input(apply: (core: Swim) => void): void {
    if (this.core === null || this.stopped) return;
    apply(this.core);
    this.flush();
  }

  private flush(): void {
    const core = this.core as Swim;
    const output = core.takeOutput();
    for (const write of output.writes) {
      try {
        appendFileSync(path.join(this.options.dataDir, write.file), write.data);
      } catch (error) {
        // Only the incarnation is written, unsynced by design: a lost record costs a refutation.
        this.options.logger.error({ err: error, file: write.file }, "membership write failed");
      }
    }
    for (const { target, message } of output.messages) this.sendMessage(target, message);
    for (const event of output.events) {
      if (event.member.id !== this.options.nodeId) {
        // Kept while the member is dead too, so faults still apply to gossip to the dead.
        const previous = this.idToAddress.get(event.member.id);
        if (previous !== undefined && previous !== event.member.address)
          this.addressToId.delete(previous);
        this.addressToId.set(event.member.address, event.member.id);
        this.idToAddress.set(event.member.id, event.member.address);
        // Raft and the store send by node id: keep a connection to every member (redialed
        // through failures and partitions) until it leaves for good.
        if (event.type === "member-leave") this.options.transport.release(event.member.address);
        else this.options.transport.connect(event.member.address);
      }
      this.options.logger.info(
        {
          member: event.member.id,
          address: event.member.address,
          incarnation: event.member.incarnation,
        },
        `membership: ${event.member.id} ${eventVerb[event.type]}`,
      );
      this.emit("event", event);
      this.emit(event.type, event.member);
    }
  }

  private sendMessage(address: string, message: MembershipMessage): void {
    if (needsStream(message)) {
      try {
        this.options.transport.sendToAddress(address, pushPullTopic, message);
      } catch (error) {
        this.stats.sendErrors++;
        this.options.logger.debug({ err: error, address }, "push-pull not sent");
      }
      return;
    }
    const targetId = this.addressToId.get(address);
    const decision =
      targetId === undefined
        ? { copies: 1 as const, delayMs: 0 }
        : this.options.transport.faults.onOutbound(targetId);
    if (decision.copies === 0) {
      this.stats.datagramsFaulted++;
      return;
    }
    let bytes: Buffer;
    try {
      bytes = encodeDatagram(
        {
          clusterId: this.options.clusterId,
          senderId: this.options.nodeId,
          hlc: this.options.clock.now(),
          payload: message,
        },
        this.options.gossipKey,
      );
    } catch (error) {
      this.stats.sendErrors++;
      this.options.logger.warn({ err: error, type: message.type }, "gossip message not sent");
      return;
    }
    let to: HostPort;
    try {
      to = parseHostPort(address);
    } catch {
      this.stats.sendErrors++;
      return;
    }
    const send = () => {
      if (this.stopped) return;
      try {
        this.socket.send(bytes, to.port, to.host, (error) => {
          if (error) this.stats.sendErrors++;
        });
      } catch {
        this.stats.sendErrors++;
        return;
      }
      this.stats.datagramsSent++;
      this.stats.bytesSent += bytes.length;
    };
    for (let copy = 0; copy < decision.copies; copy++) {
      if (decision.delayMs === 0) send();
      else setTimeout(send, decision.delayMs).unref();
    }
  }

  private onDatagram(bytes: Buffer): void {
    this.stats.datagramsReceived++;
    this.stats.bytesReceived += bytes.length;
    let datagram: ReturnType<typeof decodeDatagram>;
    try {
      datagram = decodeDatagram(bytes, {
        clusterId: this.options.clusterId,
        key: this.options.gossipKey,
      });
    } catch (error) {
      if (!(error instanceof DatagramError)) throw error;
      const counter = {
        Oversize: "datagramsOversize",
        Malformed: "datagramsMalformed",
        WrongCluster: "datagramsWrongCluster",
        Unauthenticated: "datagramsUnauthenticated",
      } as const;
      this.stats[counter[error.code]]++;
      return;
    }
    if (this.options.transport.faults.dropInbound(datagram.senderId)) {
      this.stats.datagramsFaulted++;
      return;
    }
    try {
      this.options.clock.update(datagram.hlc);
    } catch (error) {
      if (!isBrigadeError(error, "ClockOffsetExceeded")) {
        this.stats.datagramsMalformed++;
        return;
      }
      // The timestamp is refused (our clock does not jump ahead), but liveness must not
      // depend on clocks: a node whose clock is skewed is still alive, so process the message.
      this.stats.clockOffsetRejections++;
      this.options.logger.debug(
        { peer: datagram.senderId, reason: error.message },
        "gossip from a skewed clock",
      );
    }
    this.input((core) => core.receive(datagram.senderId, datagram.payload as MembershipMessage));
  }
}

const eventVerb: Record<MembershipEvent["type"], string> = {
  "member-join": "joined",
  "member-suspect": "is suspected",
  "member-alive": "is alive again",
  "member-dead": "is dead",
  "member-leave": "left",
  "member-update": "updated its tags",
};

function monotonicMs(): number {
  return Math.floor(performance.now());
}
