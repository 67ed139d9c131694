/**
 * @module One Brigade node: the process that owns a peer port, an API port and a data
 * directory. It wires the layers together (clock → transport → API) and shuts them down in
 * reverse order. Later layers (membership, consensus, keyspaces) plug in here.
 */
import type { FastifyInstance } from "fastify";
import { type Logger as PinoLogger, pino } from "pino";
import { HybridLogicalClock } from "../clocks/hlc.js";
import { formatHostPort, type HostPort } from "../lib/address.js";
import { BrigadeError } from "../lib/errors.js";
import { TcpTransport } from "../transport/tcp-transport.js";
import { createApi, type NodeStatus } from "./api.js";
import type { NodeConfig } from "./config.js";
import { openDataDir } from "./data-dir.js";
import { createNodeMetrics } from "./metrics.js";

export interface StartedNode {
  readonly listen: HostPort;
  readonly api: HostPort;
}

export class BrigadeNode {
  readonly logger: PinoLogger;
  readonly clock: HybridLogicalClock;
  readonly transport: TcpTransport;
  private api: FastifyInstance | null = null;
  private releaseDataDir: (() => void) | null = null;
  private readonly startedAtMs = Date.now();
  private started: StartedNode | null = null;

  constructor(
    readonly config: NodeConfig,
    logger?: PinoLogger,
  ) {
    this.logger = logger ?? pino({ level: config.logLevel, base: { node: config.id } });
    this.clock = new HybridLogicalClock({
      physicalNowMs: Date.now,
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
    this.transport.on("peer-up", (peer, address) => this.logger.info({ peer, address }, "peer up"));
    this.transport.on("peer-down", (peer, reason) =>
      this.logger.warn({ peer, reason }, "peer down"),
    );
  }

  async start(): Promise<StartedNode> {
    const { config } = this;
    this.releaseDataDir = openDataDir(config.dataDir, config.id, config.clusterId).release;
    try {
      const listen = await this.transport.start();
      const metrics = createNodeMetrics({
        transport: this.transport,
        clock: this.clock,
        nodeId: config.id,
      });
      const api = createApi({
        logger: this.logger.child({ component: "api" }),
        transport: this.transport,
        metrics,
        status: () => this.status(),
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

  status(): NodeStatus {
    const knownPeers = this.transport.peers();
    return {
      id: this.config.id,
      clusterId: this.config.clusterId,
      pid: process.pid,
      startedAt: new Date(this.startedAtMs).toISOString(),
      uptimeMs: Date.now() - this.startedAtMs,
      listen: this.started ? formatHostPort(this.started.listen) : "",
      advertise: this.transport.advertise,
      api: this.started ? formatHostPort(this.started.api) : "",
      dataDir: this.config.dataDir,
      hlc: this.clock.peek(),
      peers: knownPeers
        .filter((peer) => peer.connected && peer.id !== null)
        .map((peer) => ({ id: peer.id as string, address: peer.address, sinceMs: peer.sinceMs })),
      knownPeers,
    };
  }

  async stop(): Promise<void> {
    await this.api?.close();
    this.api = null;
    await this.transport.close();
    this.releaseDataDir?.();
    this.releaseDataDir = null;
  }
}
