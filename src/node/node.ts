/**
 * @module One Brigade node: the process that owns a peer port (TCP, and UDP for gossip), an
 * API port and a data directory. It wires the layers together — clock → transport →
 * membership and discovery → API — and shuts them down in reverse order, leaving the
 * cluster gracefully. Later layers (consensus, keyspaces) plug in here.
 */
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { type Logger as PinoLogger, pino } from "pino";
import type { Registry } from "prom-client";
import { HybridLogicalClock } from "../clocks/hlc.js";
import { tagsBytes } from "../core/membership/messages.js";
import { formatHostPort, type HostPort } from "../lib/address.js";
import { BrigadeError } from "../lib/errors.js";
import { version } from "../lib/version.js";
import { TcpTransport } from "../transport/tcp-transport.js";
import { createApi, type NodeStatus } from "./api.js";
import type { NodeConfig } from "./config.js";
import { openDataDir } from "./data-dir.js";
import { Discovery } from "./discovery.js";
import { KvService } from "./kv/kv-service.js";
import { KvEngine } from "./kv/shard-store.js";
import { MembershipDriver } from "./membership-driver.js";
import { createNodeMetrics } from "./metrics.js";
import { RaftHost } from "./raft/raft-host.js";
import { RegisterService, RegisterStateMachine } from "./register.js";

/** The demo register's Raft group id in the node's write-ahead log. */
const registerGroupId = 1;
/** How long a register command may wait to be applied before DeadlineExceeded. */
const registerCommandTimeoutMs = 5_000;
/** How long a key-value request may wait to be applied or confirmed before DeadlineExceeded. */
const kvRequestTimeoutMs = 5_000;

export interface StartedNode {
  readonly listen: HostPort;
  readonly api: HostPort;
}

/**
 * The offset injected into this node's physical clock (`brigade chaos skew`), read by its
 * HLC on every event. A plain mutable holder: the API sets it, the clock reads it.
 */
export interface ClockSkew {
  ms: number;
}

export class BrigadeNode {
  readonly logger: PinoLogger;
  readonly clock: HybridLogicalClock;
  readonly clockSkew: ClockSkew = { ms: 0 };
  readonly transport: TcpTransport;
  private api: FastifyInstance | null = null;
  private membershipDriver: MembershipDriver | null = null;
  private discoveryService: Discovery | null = null;
  private raftHost: RaftHost | null = null;
  private register: RegisterService | null = null;
  private kvEngine: KvEngine | null = null;
  private kvService: KvService | null = null;
  private metrics: Registry | null = null;
  private releaseDataDir: (() => void) | null = null;
  private readonly startedAtMs = Date.now();
  private started: StartedNode | null = null;

  constructor(
    readonly config: NodeConfig,
    logger?: PinoLogger,
  ) {
    this.logger = logger ?? pino({ level: config.logLevel, base: { node: config.id } });
    this.clock = new HybridLogicalClock({
      // Real time plus the injected skew: every HLC stamp (frames, gossip, metrics) sees it.
      physicalNowMs: () => Date.now() + this.clockSkew.ms,
      maxOffsetMs: config.maxClockOffsetMs,
    });
    this.transport = new TcpTransport({
      nodeId: config.id,
      clusterId: config.clusterId,
      listen: config.listen,
      ...(config.advertise === null ? {} : { advertise: config.advertise }),
      clock: this.clock,
      logger: this.logger.child({ component: "transport" }),
      config: config.transport,
    });
    this.transport.handle("sys.echo", (payload) => payload);
    this.transport.on("peer-up", (peer, address) =>
      this.logger.debug({ peer, address }, "peer connected"),
    );
    this.transport.on("peer-down", (peer, reason) =>
      this.logger.debug({ peer, reason }, "peer disconnected"),
    );
  }

  async start(): Promise<StartedNode> {
    const { config } = this;
    this.releaseDataDir = openDataDir(config.dataDir, config.id, config.clusterId).release;
    try {
      const listen = await this.transport.start();
      const api = createApi({
        logger: this.logger.child({ component: "api" }),
        transport: this.transport,
        clockSkew: this.clockSkew,
        metrics: () => this.metrics,
        status: () => this.status(),
        discovery: () => this.discovery,
        register: () => this.register,
        kv: () => this.kvService,
      });
      this.api = api;
      try {
        await api.listen({ host: config.api.host, port: config.api.port });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
          throw new BrigadeError(
            "PortInUse",
            `API port ${config.api.port} on ${config.api.host} is already in use`,
          );
        }
        throw error;
      }
      const apiAddress = api.server.address();
      const apiPort =
        typeof apiAddress === "object" && apiAddress !== null ? apiAddress.port : config.api.port;
      this.started = { listen, api: { host: config.api.host, port: apiPort } };
      await this.startMembership(listen, formatHostPort(this.started.api));
      if (config.raftVoters.length > 0) await this.startRaft(config);
      this.metrics = createNodeMetrics({
        transport: this.transport,
        clock: this.clock,
        nodeId: config.id,
        membership: this.membership,
        raft: this.raftHost,
      });
      for (const seed of config.join) this.transport.connect(seed);
      this.logger.info(
        {
          listen: formatHostPort(listen),
          advertise: this.transport.advertise,
          api: formatHostPort(this.started.api),
          dataDir: config.dataDir,
          join: config.join,
        },
        "node started",
      );
      return this.started;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  get membership(): MembershipDriver {
    if (this.membershipDriver === null)
      throw new BrigadeError("Unavailable", "membership is not started");
    return this.membershipDriver;
  }

  get discovery(): Discovery {
    if (this.discoveryService === null)
      throw new BrigadeError("Unavailable", "discovery is not started");
    return this.discoveryService;
  }

  /** The replicated register: Raft group 1 on this node's write-ahead log. */
  private async startRaft(config: NodeConfig): Promise<void> {
    const host = new RaftHost({
      nodeId: config.id,
      transport: this.transport,
      dataDir: config.dataDir,
      logger: this.logger.child({ component: "raft" }),
      tickMs: config.raftTickMs,
      snapshotEntries: config.raftSnapshotEntries,
    });
    this.raftHost = host;
    await host.start();
    const machine = new RegisterStateMachine();
    // A node that is not a founding voter starts outside the group, until a leader adds it.
    const founders = config.raftVoters.includes(config.id) ? config.raftVoters : [];
    const group = await host.addGroup(registerGroupId, founders, machine);
    this.register = new RegisterService(
      group,
      machine,
      this.transport,
      config.id,
      registerCommandTimeoutMs,
    );
    // The store: the catalog's meta group on the first founders, shard groups as placed.
    this.kvEngine = KvEngine.open(path.join(config.dataDir, "kv"));
    const kv = new KvService({
      nodeId: config.id,
      zone: config.zone ?? "none",
      founders: config.raftVoters,
      host,
      engine: this.kvEngine,
      transport: this.transport,
      logger: this.logger.child({ component: "kv" }),
      requestTimeoutMs: kvRequestTimeoutMs,
      memberStates: () =>
        new Map(this.membership.members().map((member) => [member.id, member.state])),
      placement: { deadReplaceDelayMs: config.placementDeadDelayMs },
    });
    await kv.start();
    this.kvService = kv;
  }

  get kv(): KvService {
    if (this.kvService === null)
      throw new BrigadeError("Unavailable", "the key-value store is not started");
    return this.kvService;
  }

  private async startMembership(listen: HostPort, api: string): Promise<void> {
    const { config } = this;
    const membership = new MembershipDriver({
      nodeId: config.id,
      clusterId: config.clusterId,
      gossipKey: config.gossipKey,
      bind: listen,
      advertise: this.transport.advertise,
      seeds: config.join,
      config: config.membership,
      transport: this.transport,
      clock: this.clock,
      dataDir: config.dataDir,
      logger: this.logger.child({ component: "membership" }),
    });
    const discovery = new Discovery(
      membership,
      { zone: config.zone, roles: config.roles, version, api },
      config.tags,
      this.logger.child({ component: "discovery" }),
    );
    for (const service of config.services) discovery.register(service);
    const bytes = tagsBytes(discovery.tags());
    if (bytes > config.membership.metadataBytesMax) {
      throw new BrigadeError(
        "InvalidConfig",
        `node metadata (tags, roles, zone, services) is ${bytes} bytes; the limit is ${config.membership.metadataBytesMax}`,
      );
    }
    this.membershipDriver = membership;
    this.discoveryService = discovery;
    await membership.start(discovery.tags());
  }

  status(): NodeStatus {
    const knownPeers = this.transport.peers();
    return {
      id: this.config.id,
      clusterId: this.config.clusterId,
      version,
      pid: process.pid,
      startedAt: new Date(this.startedAtMs).toISOString(),
      uptimeMs: Date.now() - this.startedAtMs,
      listen: this.started ? formatHostPort(this.started.listen) : "",
      advertise: this.transport.advertise,
      api: this.started ? formatHostPort(this.started.api) : "",
      dataDir: this.config.dataDir,
      hlc: this.clock.peek(),
      clockSkewMs: this.clockSkew.ms,
      incarnation: this.membershipDriver?.incarnation ?? 0,
      healthScore: this.membershipDriver?.healthScore ?? 0,
      members: countStates(this.membershipDriver?.members() ?? []),
      peers: knownPeers
        .filter((peer) => peer.connected && peer.id !== null)
        .map((peer) => ({ id: peer.id as string, address: peer.address, sinceMs: peer.sinceMs })),
      knownPeers,
    };
  }

  async stop(): Promise<void> {
    // Health checks first (a status flip must not re-announce us), then say goodbye, so
    // members record "left" rather than suspecting a failure.
    this.discoveryService?.stop();
    await this.kvService?.stop();
    await this.raftHost?.stop();
    this.kvEngine?.close();
    this.kvEngine = null;
    await this.membershipDriver?.leave();
    await this.membershipDriver?.stop();
    await this.api?.close();
    this.api = null;
    await this.transport.close();
    this.releaseDataDir?.();
    this.releaseDataDir = null;
  }
}

function countStates(members: readonly { state: string }[]): Record<string, number> {
  const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const member of members) counts[member.state] = (counts[member.state] ?? 0) + 1;
  return counts;
}
