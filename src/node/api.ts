/**
 * @module The node's HTTP API (fastify): health, status, Prometheus metrics, fault injection
 * (network faults and clock skew) and a transport ping. Every node serves it on its API port.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import type { Registry } from "prom-client";
import type { MembershipChange } from "../core/raft/types.js";
import { BrigadeError } from "../lib/errors.js";
import type { LinkFault } from "../transport/faults.js";
import type { TcpTransport } from "../transport/tcp-transport.js";
import type { Discovery } from "./discovery.js";
import { sendError } from "./http-errors.js";
import { registerKvRoutes } from "./kv/kv-api.js";
import type { KvService } from "./kv/kv-service.js";
import type { RegisterCommand, RegisterService } from "./register.js";

export interface NodeStatus {
  readonly id: string;
  readonly clusterId: string;
  readonly version: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly uptimeMs: number;
  readonly listen: string;
  readonly advertise: string;
  readonly api: string;
  readonly dataDir: string;
  readonly hlc: { readonly wallMs: number; readonly logical: number };
  /** The injected clock skew (ms the HLC's physical clock runs ahead; negative: behind). */
  readonly clockSkewMs: number;
  /** This node's membership incarnation and Lifeguard health score (0 = healthy). */
  readonly incarnation: number;
  readonly healthScore: number;
  /** Members by state, as this node sees them. */
  readonly members: Readonly<Record<string, number>>;
  /** Peers this node is connected to. */
  readonly peers: ReadonlyArray<{
    readonly id: string;
    readonly address: string;
    readonly sinceMs: number;
  }>;
  /** Every peer address it dials, connected or not. */
  readonly knownPeers: ReturnType<TcpTransport["peers"]>;
}

export interface ApiOptions {
  readonly logger: PinoLogger;
  readonly transport: TcpTransport;
  /** The offset added to the HLC's physical clock; `PUT /v1/clock/skew` sets it. */
  readonly clockSkew: { ms: number };
  /** Null until the node has finished starting. */
  readonly metrics: () => Registry | null;
  readonly status: () => NodeStatus;
  readonly discovery: () => Discovery;
  /** The replicated register (a Raft group), or null when this node runs no Raft. */
  readonly register: () => RegisterService | null;
  /** The key-value store, or null when this node runs no Raft. */
  readonly kv: () => KvService | null;
}

/** Largest request body the API accepts; fault rules and pings are tiny. */
const apiBodyBytesMax = 64 * 1024;
/** Largest clock skew the API injects: beyond an hour it is a broken clock, not a skewed one. */
const clockSkewMsMax = 3_600_000;
/** Most echo requests one ping call may send, so a ping cannot be turned into a load test by accident. */
const pingCountMax = 1_000;

const faultBodySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    dropRate: { type: "number", minimum: 0, maximum: 1 },
    delayMs: { type: "integer", minimum: 0, maximum: 600_000 },
    jitterMs: { type: "integer", minimum: 0, maximum: 600_000 },
    duplicateRate: { type: "number", minimum: 0, maximum: 1 },
    partitioned: { type: "boolean" },
  },
} as const;

export function createApi(options: ApiOptions): FastifyInstance {
  const { transport, clockSkew } = options;
  const app = Fastify({
    // Per-request logs are info level; the API logs warnings and errors only.
    loggerInstance: options.logger.child({}, { level: "warn" }) as FastifyBaseLogger,
    bodyLimit: apiBodyBytesMax,
  });

  app.setErrorHandler(
    (
      error: Error & { statusCode?: number; validation?: unknown; code?: string },
      _request,
      reply,
    ) => {
      if (error instanceof BrigadeError) return sendError(reply, error);
      const status = error.statusCode ?? 500;
      if (status >= 500) options.logger.error({ err: error }, "API error");
      return reply.code(status).send({
        error: {
          code: error.validation
            ? "InvalidArgument"
            : error.code === "FST_ERR_CTP_BODY_TOO_LARGE"
              ? "MessageTooLarge"
              : (error.code ?? "Internal"),
          message: error.message,
          retriable: false,
        },
      });
    },
  );

  app.get("/v1/health", async () => ({ status: "ok" }));

  app.get("/v1/status", async () => options.status());

  app.get("/metrics", async (_request, reply) => {
    const metrics = options.metrics();
    if (metrics === null) throw new BrigadeError("Unavailable", "the node is still starting");
    reply.header("content-type", metrics.contentType);
    return metrics.metrics();
  });

  app.get("/v1/members", async () => options.discovery().members());

  registerKvRoutes(app, options.kv, (nodeId) => {
    if (nodeId === options.status().id) return options.status().api;
    return (
      options
        .discovery()
        .members()
        .find((member) => member.id === nodeId)?.api ?? null
    );
  });

  // The replicated register (a Raft group): any node accepts; followers forward to the leader.
  const raft = (): RegisterService => {
    const driver = options.register();
    if (driver === null)
      throw new BrigadeError(
        "NotFound",
        "this node runs no Raft group (start it with --raft-voters)",
      );
    return driver;
  };
  const requestIdOf = (query: { requestId?: string }) => query.requestId ?? randomUUID();
  /** One optional idempotency key per request (a repeated ?requestId= is refused, not an array). */
  const requestIdQuery = {
    querystring: {
      type: "object",
      properties: { requestId: { type: "string", minLength: 1, maxLength: 128 } },
    },
  } as const;
  app.get("/v1/raft", async () => raft().group.status());
  // Membership change, one server at a time, on the leader (thesis §4.1).
  app.post<{ Body: MembershipChange }>(
    "/v1/raft/members",
    {
      schema: {
        body: {
          type: "object",
          required: ["type", "node"],
          properties: {
            type: { type: "string", enum: ["add-learner", "promote", "remove"] },
            node: { type: "string", minLength: 1, maxLength: 128 },
          },
        },
      },
    },
    async (request) => {
      const config = await raft().group.changeMembership(
        { type: request.body.type, node: request.body.node } as MembershipChange,
        5_000,
      );
      return { config };
    },
  );
  app.get<{
    Params: { key: string };
    Querystring: { requestId?: string; consistency?: "linearizable" | "serializable" };
  }>(
    "/v1/register/:key",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            ...requestIdQuery.querystring.properties,
            consistency: { type: "string", enum: ["linearizable", "serializable"] },
          },
        },
      },
    },
    async (request) =>
      raft().execute({
        op: "get",
        key: request.params.key,
        requestId: requestIdOf(request.query),
        ...(request.query.consistency === undefined
          ? {}
          : { consistency: request.query.consistency }),
      }),
  );
  app.put<{ Params: { key: string }; Querystring: { requestId?: string }; Body: unknown }>(
    "/v1/register/:key",
    { schema: requestIdQuery },
    async (request) => {
      const body = request.body;
      const value =
        typeof body === "string"
          ? body
          : typeof (body as { value?: unknown })?.value === "string"
            ? (body as { value: string }).value
            : null;
      if (value === null)
        throw new BrigadeError(
          "InvalidArgument",
          'body must be the value as text, or JSON {"value": "..."}',
        );
      return raft().execute({
        op: "set",
        key: request.params.key,
        value,
        requestId: requestIdOf(request.query),
      });
    },
  );
  app.post<{
    Params: { key: string };
    Querystring: { requestId?: string };
    Body: { expected?: string | null; value?: string };
  }>(
    "/v1/register/:key/cas",
    {
      schema: {
        ...requestIdQuery,
        body: {
          type: "object",
          required: ["value"],
          properties: { expected: { type: ["string", "null"] }, value: { type: "string" } },
        },
      },
    },
    async (request) => {
      const command: RegisterCommand = {
        op: "cas",
        key: request.params.key,
        expected: request.body.expected ?? null,
        value: request.body.value as string,
        requestId: requestIdOf(request.query),
      };
      const result = await raft().execute(command);
      if (!result.ok)
        throw new BrigadeError(
          "CompareFailed",
          `compare failed: the value is ${JSON.stringify(result.value)}`,
        );
      return result;
    },
  );
  app.post<{
    Params: { key: string };
    Querystring: { requestId?: string };
    Body: { delta?: number };
  }>(
    "/v1/register/:key/incr",
    {
      schema: {
        ...requestIdQuery,
        body: { type: "object", properties: { delta: { type: "integer" } } },
      },
    },
    async (request) =>
      raft().execute({
        op: "incr",
        key: request.params.key,
        delta: request.body?.delta ?? 1,
        requestId: requestIdOf(request.query),
      }),
  );

  app.get<{
    Params: { name: string };
    Querystring: { tag?: string | string[]; includeCritical?: boolean };
  }>(
    "/v1/services/:name",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            tag: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] },
            includeCritical: { type: "boolean", default: false },
          },
        },
      },
    },
    async (request) => {
      const tags: Record<string, string> = {};
      for (const pair of [request.query.tag ?? []].flat()) {
        const index = pair.indexOf("=");
        if (index <= 0)
          throw new BrigadeError("InvalidArgument", `tag filter must be key=value, got "${pair}"`);
        tags[pair.slice(0, index)] = pair.slice(index + 1);
      }
      return options.discovery().find(request.params.name, {
        tags,
        includeCritical: request.query.includeCritical ?? false,
      });
    },
  );

  // Replaces this node's user tags at runtime (gossiped to the cluster).
  app.put<{ Body: Record<string, string> }>(
    "/v1/tags",
    { schema: { body: { type: "object", additionalProperties: { type: "string" } } } },
    async (request) => {
      options.discovery().setUserTags(request.body ?? {});
      return { tags: request.body };
    },
  );

  app.get("/v1/faults", async () => ({
    rules: transport.faults.list(),
    clockSkewMs: clockSkew.ms,
    droppedFrames: transport.faults.droppedFrames,
    delayedFrames: transport.faults.delayedFrames,
    duplicatedFrames: transport.faults.duplicatedFrames,
  }));

  app.put<{ Params: { peer: string }; Body: Partial<LinkFault> }>(
    "/v1/faults/:peer",
    { schema: { body: faultBodySchema } },
    async (request) => {
      const rule = transport.faults.set(request.params.peer, request.body ?? {});
      options.logger.warn({ peer: request.params.peer, rule }, "fault injected");
      return { peer: request.params.peer, rule };
    },
  );

  app.delete<{ Params: { peer: string } }>("/v1/faults/:peer", async (request) => {
    transport.faults.heal(request.params.peer);
    options.logger.warn({ peer: request.params.peer }, "fault healed");
    return { healed: request.params.peer };
  });

  // Heals the clock too: `DELETE /v1/faults` leaves the node as if nothing was injected.
  app.delete("/v1/faults", async () => {
    transport.faults.heal();
    const previousSkewMs = clockSkew.ms;
    clockSkew.ms = 0;
    options.logger.warn({ previousSkewMs }, "all faults healed");
    return { healed: "all" };
  });

  // Clock skew: the HLC's physical clock runs `skewMs` ahead (negative: behind); 0 resets.
  // Validated by hand so a bad value gets the same InvalidArgument message as elsewhere.
  app.put<{ Body: { skewMs?: unknown } }>("/v1/clock/skew", async (request) => {
    const skewMs = (request.body as { skewMs?: unknown } | undefined)?.skewMs;
    if (
      typeof skewMs !== "number" ||
      !Number.isFinite(skewMs) ||
      Math.abs(skewMs) > clockSkewMsMax
    ) {
      throw new BrigadeError(
        "InvalidArgument",
        `skewMs must be a finite number of milliseconds within ±${clockSkewMsMax}, got ${JSON.stringify(skewMs) ?? "nothing"}`,
      );
    }
    const previousMs = clockSkew.ms;
    clockSkew.ms = skewMs;
    options.logger.warn(
      { skewMs, previousMs },
      skewMs === 0 ? "clock skew reset" : "clock skew injected",
    );
    return { skewMs };
  });

  // Round trips over the node-to-node transport: an operator's ping, and a probe for tests
  // that faults act on real traffic.
  app.post<{
    Params: { peer: string };
    Querystring: { count?: number; timeoutMs?: number; payloadBytes?: number };
  }>(
    "/v1/peers/:peer/ping",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            count: { type: "integer", minimum: 1, maximum: pingCountMax, default: 5 },
            timeoutMs: { type: "integer", minimum: 1, maximum: 60_000, default: 1_000 },
            payloadBytes: { type: "integer", minimum: 0, maximum: 1024 * 1024, default: 64 },
          },
        },
      },
    },
    async (request) => {
      const { peer } = request.params;
      const { count = 5, timeoutMs = 1_000, payloadBytes = 64 } = request.query;
      const payload = Buffer.alloc(payloadBytes, 0x61);
      const results = await Promise.all(
        Array.from({ length: count }, async () => {
          const started = performance.now();
          try {
            await transport.request(peer, "sys.echo", payload, { timeoutMs });
            return { ok: true as const, latencyMs: performance.now() - started };
          } catch (error) {
            return {
              ok: false as const,
              code: error instanceof BrigadeError ? error.code : "Internal",
            };
          }
        }),
      );
      const latencies = results
        .flatMap((result) => (result.ok ? [result.latencyMs] : []))
        .sort((a, b) => a - b);
      const errors: Record<string, number> = {};
      for (const result of results)
        if (!result.ok) errors[result.code] = (errors[result.code] ?? 0) + 1;
      return {
        peer,
        sent: count,
        ok: latencies.length,
        failed: count - latencies.length,
        errors,
        latencyMs:
          latencies.length === 0
            ? null
            : {
                min: latencies[0],
                p50: latencies[Math.floor((latencies.length - 1) / 2)],
                max: latencies[latencies.length - 1],
              },
      };
    },
  );

  return app;
}
