/**
 * @module The entry point of the client library: `connect` to a cluster through one or more
 * nodes' HTTP API, manage keyspaces, and get a `Keyspace` handle for data operations.
 *
 * @example
 * ```ts
 * import { connect } from "brigade";
 * const client = await connect({ nodes: ["127.0.0.1:7101", "127.0.0.1:7102"] });
 * await client.keyspaces.create({ name: "seats", shards: 16, replicas: 3 });
 * const seats = client.keyspace("seats");
 * await seats.put("{f1}:4A", "alice", { ifAbsent: true });
 * console.log((await seats.get("{f1}:4A"))?.text());
 * client.close();
 * ```
 */
import { Connection, segment } from "./connection.js";
import { ServerError } from "./errors.js";
import { Keyspace } from "./keyspace.js";
import type { CallOptions, ConnectOptions, KeyspaceInfo, KeyspaceSpec } from "./types.js";

/** Creates, lists, describes and drops keyspaces (through any configured node). */
export class Keyspaces {
  readonly #connection: Connection;

  constructor(connection: Connection) {
    this.#connection = connection;
  }

  /**
   * Creates a keyspace; CompareFailed if it exists. The server does not deduplicate
   * creates, so when an earlier attempt of this call may have succeeded (it timed out) and
   * a retry finds the keyspace with the requested shape, that counts as created.
   */
  async create(spec: KeyspaceSpec, options?: CallOptions): Promise<KeyspaceInfo> {
    const name = spec?.name;
    segment(name, "a keyspace name");
    const body = {
      name,
      consistency: spec.consistency ?? "strong",
      ...(spec.shards === undefined ? {} : { shards: spec.shards }),
      ...(spec.replicas === undefined ? {} : { replicas: spec.replicas }),
    };
    const what = `create keyspace ${name}`;
    const info = await this.#connection.call(what, options, async (attempt) => {
      const base = this.#connection.anyNode(attempt.avoid);
      try {
        return (
          await this.#connection.sendFor(
            attempt,
            base,
            { method: "POST", path: "/v1/keyspaces", json: body },
            what,
          )
        ).body as KeyspaceInfo;
      } catch (error) {
        if (
          attempt.number > 0 &&
          error instanceof ServerError &&
          error.serverCode === "CompareFailed"
        ) {
          const existing = (
            await this.#connection.sendFor(
              attempt,
              base,
              { method: "GET", path: `/v1/keyspaces/${segment(name, "a keyspace name")}` },
              what,
            )
          ).body as KeyspaceInfo;
          const same =
            (spec.shards === undefined || existing.shards === spec.shards) &&
            (spec.replicas === undefined || existing.replicas === spec.replicas);
          if (same) return existing;
        }
        throw error;
      }
    });
    this.#connection.remember(info);
    return info;
  }

  async list(options?: CallOptions): Promise<KeyspaceInfo[]> {
    const what = "list keyspaces";
    return this.#connection.call(what, options, async (attempt) => {
      const answer = (
        await this.#connection.sendFor(
          attempt,
          this.#connection.anyNode(attempt.avoid),
          { method: "GET", path: "/v1/keyspaces" },
          what,
        )
      ).body as { keyspaces?: KeyspaceInfo[] };
      return answer.keyspaces ?? [];
    });
  }

  /** Reads the keyspace's current shard map from a node (and refreshes the client's cache). */
  async describe(name: string, options?: CallOptions): Promise<KeyspaceInfo> {
    const path = `/v1/keyspaces/${segment(name, "a keyspace name")}`;
    const what = `describe keyspace ${name}`;
    const info = await this.#connection.call(what, options, async (attempt) => {
      return (
        await this.#connection.sendFor(
          attempt,
          this.#connection.anyNode(attempt.avoid),
          { method: "GET", path },
          what,
        )
      ).body as KeyspaceInfo;
    });
    this.#connection.remember(info);
    return info;
  }

  /** Drops the keyspace and its data; NotFound if there is none (not after a retry of this call). */
  async drop(name: string, options?: CallOptions): Promise<{ dropped: string }> {
    const path = `/v1/keyspaces/${segment(name, "a keyspace name")}`;
    const what = `drop keyspace ${name}`;
    try {
      return await this.#connection.call(what, options, async (attempt) => {
        try {
          return (
            await this.#connection.sendFor(
              attempt,
              this.#connection.anyNode(attempt.avoid),
              { method: "DELETE", path },
              what,
            )
          ).body as { dropped: string };
        } catch (error) {
          // An earlier attempt of this call may have dropped it before its answer was lost.
          if (attempt.number > 0 && error instanceof ServerError && error.serverCode === "NotFound")
            return { dropped: name };
          throw error;
        }
      });
    } finally {
      this.#connection.forget(name);
    }
  }
}

/** A connection to a cluster: keyspace administration and per-keyspace handles. */
export class BrigadeClient {
  readonly keyspaces: Keyspaces;
  readonly #connection: Connection;

  constructor(options: ConnectOptions) {
    this.#connection = new Connection(options);
    this.keyspaces = new Keyspaces(this.#connection);
  }

  /** The configured node addresses (as base URLs). */
  get nodes(): readonly string[] {
    return this.#connection.nodes;
  }

  get closed(): boolean {
    return this.#connection.closed;
  }

  /** A handle on one keyspace (no I/O: the shard map is read on first use). */
  keyspace(name: string): Keyspace {
    return new Keyspace(name, this.#connection);
  }

  /** Aborts every call and watch in flight; later calls fail with ConnectionClosed. */
  close(): void {
    this.#connection.close();
  }
}

/**
 * Creates a client for the cluster reachable through `options.nodes`. It does not contact
 * the cluster: the first call does (and fails with Unavailable/DeadlineExceeded if no node
 * answers). Throws InvalidArgument for bad options.
 */
export async function connect(options: ConnectOptions): Promise<BrigadeClient> {
  return new BrigadeClient(options);
}
