/**
 * @module The load generator of `bench:kv`, a child process of the orchestrator
 * (`kv-bench.ts`) speaking the line protocol of `child-protocol.ts`, so that its CPU is its
 * own (measured with `process.cpuUsage`) and the orchestrator's sampling does not disturb
 * it. The same code drives both stores:
 *
 *   - Brigade: every single-key request goes straight to the leader of the key's shard
 *     (`shardOfKey` and the keyspace's shard map, as `src/client` does): `PUT
 *     /v1/kv/:ks/:key?requestId=…` with the raw 256-byte value (application/octet-stream),
 *     `GET /v1/kv/:ks/:key` (linearizable, the default). The shard map is the merge of
 *     `GET /v1/keyspaces/:ks` from every node (a node reports the leader of the shards it
 *     holds a replica of) and is read again after a 503 or a failed connection.
 *   - etcd: `POST /v3/kv/put` to the leader, `POST /v3/kv/range` (linearizable, etcd's
 *     default) round-robin over all members; base64 key and value in JSON (the v3 gateway).
 *
 * A 503 or a failed connection is retried (after a fresh shard map for Brigade), up to 50
 * times within the request; retries are counted and reported. Anything else aborts the run.
 *
 * Usage: node dist/bench/kv-load.js --http agent|fetch
 */
import { parseArgs } from "node:util";
import { shardOfKey } from "../lib/slots.js";
import { cpuSince, cpuTimes, serveCommands, writeMessage } from "./child-protocol.js";
import { runClosedLoop } from "./closed-loop.js";
import {
  type HttpClient,
  type HttpMachinery,
  httpClient,
  type Origin,
  originOf,
} from "./kv-http.js";

const { values: args } = parseArgs({
  options: { http: { type: "string", default: "agent" } },
});
const machinery = args.http as HttpMachinery;
if (machinery !== "agent" && machinery !== "fetch") {
  process.stderr.write("usage: kv-load --http agent|fetch\n");
  process.exit(2);
}
const client: HttpClient = httpClient(machinery);

export type LoadTarget =
  | {
      readonly system: "brigade";
      readonly keyspace: string;
      readonly nodes: readonly { readonly id: string; readonly api: string }[];
    }
  | { readonly system: "etcd"; readonly leader: string; readonly members: readonly string[] };

export const valueBytes = 256;
/** The key of index i: `k` and 7 digits (so 10M keys keep one length). */
export const keyOf = (index: number) => `k${String(index).padStart(7, "0")}`;

/** A 256-byte printable value, the same for every key and both stores. */
const value = Buffer.alloc(valueBytes);
for (let i = 0; i < valueBytes; i++) value[i] = 0x21 + ((i * 7) % 94);
const valueBase64 = value.toString("base64");

const retriesMax = 50;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A 503: worth retrying. */
class Retry extends Error {}
/** An answer that is not worth retrying. */
class Fatal extends Error {}

interface Store {
  put(index: number): Promise<void>;
  get(index: number): Promise<void>;
  describe(): unknown;
}

let retries = 0;
/** Why the last retry happened (a 503's message, a connection error). */
let lastRetryReason: string | null = null;

async function withRetries(attempt: () => Promise<void>, onRetry: () => Promise<void>) {
  for (let tries = 0; ; tries++) {
    try {
      await attempt();
      return;
    } catch (error) {
      // A 503 (Retry) or a failed connection is transient; a Fatal answer is not.
      if (error instanceof Fatal || tries >= retriesMax) throw error;
      retries++;
      lastRetryReason = error instanceof Error ? error.message : String(error);
      await onRetry();
    }
  }
}

function check(status: number, text: string, what: string): void {
  if (status === 200) return;
  if (status === 503) throw new Retry(`${what}: 503 ${text.slice(0, 200)}`);
  throw new Fatal(`${what}: HTTP ${status} ${text.slice(0, 300)}`);
}

// ---- Brigade -----------------------------------------------------------------------------------

interface ShardEntry {
  shard: number;
  replicas: string[];
  leader: string | null;
  leaderApi: string | null;
}

class BrigadeStore implements Store {
  readonly #nodes: { id: string; origin: Origin }[];
  #leaders: (Origin | null)[] = [];
  #shards = 0;
  #refreshing: Promise<void> | null = null;
  #lastRefresh = 0;
  #sequence = 0;
  #rotation = 0;
  readonly #requestIdPrefix = `kvb-${process.pid}-${Date.now().toString(36)}-`;

  constructor(private readonly target: Extract<LoadTarget, { system: "brigade" }>) {
    this.#nodes = target.nodes.map((node) => ({ id: node.id, origin: originOf(node.api) }));
  }

  /** Merges every node's shard map: each shard's leader as a replica of it sees it. */
  async refresh(): Promise<void> {
    const views = await Promise.all(
      this.#nodes.map(async (node) => {
        try {
          const answer = await client.request(
            node.origin,
            "GET",
            `/v1/keyspaces/${this.target.keyspace}`,
            null,
            null,
          );
          if (answer.status !== 200) return null;
          const body = JSON.parse(answer.text) as { shards: number; shardMap: ShardEntry[] };
          return { id: node.id, body };
        } catch {
          return null;
        }
      }),
    );
    const answered = views.filter((view) => view !== null);
    if (answered.length === 0) throw new Error("no node describes the keyspace");
    this.#shards = answered[0]!.body.shards;
    const leaders: (Origin | null)[] = [];
    for (let shard = 0; shard < this.#shards; shard++) {
      let best: string | null = null;
      for (const view of answered) {
        const entry = view.body.shardMap[shard];
        if (entry?.leaderApi == null) continue;
        // A replica knows its own group's leader; another node only has a hint.
        if (entry.replicas.includes(view.id)) {
          best = entry.leaderApi;
          break;
        }
        best ??= entry.leaderApi;
      }
      leaders.push(best === null ? null : originOf(best));
    }
    this.#leaders = leaders;
    this.#lastRefresh = Date.now();
  }

  /** One refresh at a time, at most every 100 ms; callers wait for it. */
  #refreshSoon(): Promise<void> {
    if (this.#refreshing === null) {
      const wait = Math.max(0, this.#lastRefresh + 100 - Date.now());
      this.#refreshing = sleep(wait)
        .then(() => this.refresh())
        .catch(() => {})
        .finally(() => {
          this.#refreshing = null;
        });
    }
    return this.#refreshing;
  }

  #originFor(key: string): Origin {
    const leader = this.#leaders[shardOfKey(key, this.#shards)];
    if (leader) return leader;
    return this.#nodes[this.#rotation++ % this.#nodes.length]!.origin;
  }

  put(index: number): Promise<void> {
    const key = keyOf(index);
    const path = `/v1/kv/${this.target.keyspace}/${key}?requestId=${this.#requestIdPrefix}${this.#sequence++}`;
    return withRetries(
      async () => {
        const answer = await client.request(
          this.#originFor(key),
          "PUT",
          path,
          "application/octet-stream",
          value,
        );
        check(answer.status, answer.text, `put ${key}`);
        const body = JSON.parse(answer.text) as { succeeded?: boolean };
        if (body.succeeded !== true) throw new Fatal(`put ${key}: ${answer.text.slice(0, 200)}`);
      },
      () => this.#refreshSoon(),
    );
  }

  get(index: number): Promise<void> {
    const key = keyOf(index);
    const path = `/v1/kv/${this.target.keyspace}/${key}`;
    return withRetries(
      async () => {
        const answer = await client.request(this.#originFor(key), "GET", path, null, null);
        check(answer.status, answer.text, `get ${key}`);
        const body = JSON.parse(answer.text) as { kv?: { value?: string } };
        if (body.kv?.value?.length !== valueBytes)
          throw new Fatal(`get ${key}: unexpected answer ${answer.text.slice(0, 200)}`);
      },
      () => this.#refreshSoon(),
    );
  }

  describe(): unknown {
    return {
      shards: this.#shards,
      leaders: this.#leaders.map((origin) => (origin === null ? null : origin.base)),
    };
  }
}

// ---- etcd --------------------------------------------------------------------------------------

class EtcdStore implements Store {
  readonly #leader: Origin;
  readonly #members: Origin[];
  #rotation = 0;

  constructor(target: Extract<LoadTarget, { system: "etcd" }>) {
    this.#leader = originOf(target.leader);
    this.#members = target.members.map(originOf);
  }

  put(index: number): Promise<void> {
    const key = keyOf(index);
    const body = `{"key":"${Buffer.from(key).toString("base64")}","value":"${valueBase64}"}`;
    return withRetries(
      async () => {
        const answer = await client.request(
          this.#leader,
          "POST",
          "/v3/kv/put",
          "application/json",
          body,
        );
        check(answer.status, answer.text, `etcd put ${key}`);
        const parsed = JSON.parse(answer.text) as { header?: unknown; error?: string };
        if (parsed.header === undefined || parsed.error !== undefined)
          throw new Fatal(`etcd put ${key}: ${answer.text.slice(0, 200)}`);
      },
      () => sleep(20),
    );
  }

  get(index: number): Promise<void> {
    const key = keyOf(index);
    const body = `{"key":"${Buffer.from(key).toString("base64")}"}`;
    const member = this.#members[this.#rotation++ % this.#members.length]!;
    return withRetries(
      async () => {
        const answer = await client.request(
          member,
          "POST",
          "/v3/kv/range",
          "application/json",
          body,
        );
        check(answer.status, answer.text, `etcd range ${key}`);
        const parsed = JSON.parse(answer.text) as { kvs?: { value?: string }[] };
        if (parsed.kvs?.[0]?.value?.length !== valueBase64.length)
          throw new Fatal(`etcd range ${key}: unexpected answer ${answer.text.slice(0, 200)}`);
      },
      () => sleep(20),
    );
  }

  describe(): unknown {
    return { leader: this.#leader.base, members: this.#members.map((member) => member.base) };
  }
}

// ---- Commands ----------------------------------------------------------------------------------

let store: Store | null = null;

function currentStore(): Store {
  if (store === null) throw new Error("no target yet (send `target` first)");
  return store;
}

function integer(params: Record<string, unknown>, key: string, min = 0): number {
  const found = params[key];
  if (typeof found !== "number" || !Number.isSafeInteger(found) || found < min)
    throw new Error(`command field "${key}" must be an integer >= ${min}`);
  return found;
}

writeMessage({ type: "ready", http: machinery, pid: process.pid });

serveCommands(
  {
    async target(params) {
      const target = params.target as LoadTarget;
      if (target.system === "brigade") {
        const brigade = new BrigadeStore(target);
        await brigade.refresh();
        store = brigade;
      } else {
        store = new EtcdStore(target);
      }
      return store.describe();
    },
    async refresh() {
      if (store instanceof BrigadeStore) await store.refresh();
      return currentStore().describe();
    },
    /** Writes keys [from, to) once each with `inFlight` outstanding. */
    async load(params) {
      const from = integer(params, "from");
      const to = integer(params, "to", from);
      const inFlight = integer(params, "inFlight", 1);
      const target = currentStore();
      const retriesBefore = retries;
      const cpuBefore = cpuTimes();
      const startedAt = performance.now();
      let next = from;
      const worker = async () => {
        while (next < to) await target.put(next++);
      };
      await Promise.all(Array.from({ length: Math.min(inFlight, to - from) }, worker));
      return {
        keys: to - from,
        ms: performance.now() - startedAt,
        retries: retries - retriesBefore,
        lastRetryReason: retries > retriesBefore ? lastRetryReason : null,
        ...cpuSince(cpuBefore),
      };
    },
    /** The closed loop: `op` on uniformly random keys of [0, keys). */
    async run(params) {
      const op = params.op;
      if (op !== "put" && op !== "get") throw new Error('op must be "put" or "get"');
      const inFlight = integer(params, "inFlight", 1);
      const warmupMs = integer(params, "warmupMs");
      const durationMs = integer(params, "durationMs", 1);
      const keys = integer(params, "keys", 1);
      const target = currentStore();
      const send =
        op === "put"
          ? () => target.put(Math.floor(Math.random() * keys))
          : () => target.get(Math.floor(Math.random() * keys));
      const retriesBefore = retries;
      const cpuBefore = cpuTimes();
      const startedAt = performance.now();
      const result = await runClosedLoop({ inFlight, warmupMs, durationMs, send });
      return {
        ...result,
        op,
        elapsedMs: performance.now() - startedAt,
        retries: retries - retriesBefore,
        lastRetryReason: retries > retriesBefore ? lastRetryReason : null,
        ...cpuSince(cpuBefore),
      };
    },
  },
  async () => client.close(),
);
