/**
 * @module The client's engine: the configured nodes, the cached shard maps, one HTTP round
 * trip, and the retry loop. A call's attempts share its deadline; between attempts it
 * backs off exponentially with full jitter, and after an answer that suggests the map is
 * out of date (Unavailable, a node that cannot be reached, a timeout) it
 * forgets the keyspace's map so the next attempt reads a fresh one.
 */
import { BrigadeError } from "../lib/errors.js";
import { shardOfKey } from "../lib/slots.js";
import { isRetriable, ServerError, serverError } from "./errors.js";
import type { CallOptions, ConnectOptions, KeyspaceInfo } from "./types.js";

export const clientDefaults = {
  deadlineMs: 10_000,
  attemptTimeoutMs: 5_000,
  backoffBaseMs: 50,
  backoffMaxMs: 1_000,
} as const;

/** Lease ids carry their shard's Raft group: id = group × 2^24 + a per-shard counter. */
const leaseIdsPerGroup = 2 ** 24;

/** One attempt of a call: its signal and what it used, so the retry loop can react. */
export interface Attempt {
  readonly signal: AbortSignal;
  readonly number: number;
  /** Addresses that failed to answer during this call: avoided while others remain. */
  readonly avoid: Set<string>;
  /** The shard maps this attempt routed with (forgotten if the attempt fails retriably). */
  readonly used: Map<string, KeyspaceInfo>;
  /** The address of the last request. */
  base: string | null;
}

export interface HttpRequest {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  /** Path and query string. */
  readonly path: string;
  readonly json?: unknown;
  readonly bytes?: Uint8Array;
  readonly headers?: Record<string, string>;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** The node did not answer (refused, reset, unreachable): worth another node. */
export class ConnectionFailed extends BrigadeError {
  constructor(
    readonly address: string,
    message: string,
    cause: unknown,
  ) {
    super("Unavailable", message, { cause, retriable: true });
  }
}

/** "host:port" → "http://host:port" (URLs pass unchanged, without a trailing slash). */
export function baseUrl(address: string): string {
  const trimmed = address.trim().replace(/\/+$/, "");
  return /^https?:\/\//.test(trimmed) ? trimmed : `http://${trimmed}`;
}

/** A key as one URL path segment; refuses keys a URL cannot carry. */
export function keyPath(key: string): string {
  if (typeof key !== "string" || key.length === 0)
    throw new BrigadeError("InvalidArgument", "a key must be a non-empty string");
  // URL parsers resolve "." and ".." segments (also percent-encoded) before sending.
  if (key === "." || key === "..")
    throw new BrigadeError(
      "InvalidArgument",
      `the key ${JSON.stringify(key)} cannot be addressed in a URL`,
    );
  return encodeURIComponent(key);
}

export function segment(text: string, what: string): string {
  if (typeof text !== "string" || text.length === 0 || text === "." || text === "..")
    throw new BrigadeError("InvalidArgument", `${what} must be a non-empty string`);
  return encodeURIComponent(text);
}

export function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text.length > 0 ? `?${text}` : "";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Rejects with `signal`'s reason when it aborts before `promise` settles. */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
    throw new BrigadeError("InvalidArgument", `${name} must be a positive number of milliseconds`);
  return value;
}

export class Connection {
  readonly nodes: readonly string[];
  readonly deadlineMs: number;
  readonly attemptTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly #closer = new AbortController();
  readonly #maps = new Map<string, KeyspaceInfo>();
  readonly #loading = new Map<string, Promise<KeyspaceInfo>>();
  #nextNode = 0;

  constructor(options: ConnectOptions) {
    if (!Array.isArray(options?.nodes) || options.nodes.length === 0)
      throw new BrigadeError("InvalidArgument", "connect needs at least one node address");
    this.nodes = [...new Set(options.nodes.map((node) => baseUrl(String(node))))];
    this.deadlineMs = positive(options.deadlineMs, clientDefaults.deadlineMs, "deadlineMs");
    this.attemptTimeoutMs = positive(
      options.attemptTimeoutMs,
      clientDefaults.attemptTimeoutMs,
      "attemptTimeoutMs",
    );
    this.backoffBaseMs = positive(
      options.backoffBaseMs,
      clientDefaults.backoffBaseMs,
      "backoffBaseMs",
    );
    this.backoffMaxMs = positive(options.backoffMaxMs, clientDefaults.backoffMaxMs, "backoffMaxMs");
    // Starting at a random node spreads many clients' first requests.
    this.#nextNode = Math.floor(Math.random() * this.nodes.length);
  }

  /** Aborted by `close()`: every request and watch listens to it. */
  get closeSignal(): AbortSignal {
    return this.#closer.signal;
  }

  get closed(): boolean {
    return this.#closer.signal.aborted;
  }

  close(): void {
    if (!this.closed)
      this.#closer.abort(new BrigadeError("ConnectionClosed", "the client is closed"));
  }

  assertOpen(): void {
    if (this.closed) throw new BrigadeError("ConnectionClosed", "the client is closed");
  }

  /** A configured node, round robin, skipping `avoid` while others remain. */
  anyNode(avoid?: ReadonlySet<string>): string {
    for (let tries = 0; tries < this.nodes.length; tries++) {
      const node = this.nodes[this.#nextNode++ % this.nodes.length] as string;
      if (!avoid?.has(node)) return node;
    }
    return this.nodes[this.#nextNode++ % this.nodes.length] as string;
  }

  /** Full-jitter backoff before attempt `number + 1`. */
  backoffMs(number: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(number, 20));
    return Math.random() * ceiling;
  }

  // ---- Shard maps ----

  cachedMap(keyspace: string): KeyspaceInfo | undefined {
    return this.#maps.get(keyspace);
  }

  remember(info: KeyspaceInfo): void {
    this.#maps.set(info.name, info);
  }

  /** Forgets `keyspace`'s map (only if it is still `info`, when given: a newer one stays). */
  forget(keyspace: string, info?: KeyspaceInfo): void {
    if (info === undefined || this.#maps.get(keyspace) === info) this.#maps.delete(keyspace);
  }

  /** The keyspace's map, from the cache or read from a node (one read shared by concurrent callers). */
  async keyspaceMap(keyspace: string, attempt: Attempt): Promise<KeyspaceInfo> {
    const cached = this.#maps.get(keyspace);
    if (cached !== undefined) {
      attempt.used.set(keyspace, cached);
      return cached;
    }
    let loading = this.#loading.get(keyspace);
    if (loading === undefined) {
      const base = this.anyNode(attempt.avoid);
      const signal = AbortSignal.any([
        AbortSignal.timeout(this.attemptTimeoutMs),
        this.#closer.signal,
      ]);
      loading = this.send(
        base,
        { method: "GET", path: `/v1/keyspaces/${segment(keyspace, "a keyspace name")}` },
        signal,
        `describe keyspace ${keyspace}`,
      )
        .then((answer) => {
          const info = answer.body as KeyspaceInfo;
          this.#maps.set(keyspace, info);
          return info;
        })
        .catch((error: unknown) => {
          if (error instanceof ConnectionFailed) attempt.avoid.add(error.address);
          if (signal.aborted && !this.closed && !(error instanceof BrigadeError))
            throw new BrigadeError(
              "DeadlineExceeded",
              `describe keyspace ${keyspace}: no answer from ${base} within ${this.attemptTimeoutMs} ms`,
              { retriable: true },
            );
          throw error;
        })
        .finally(() => this.#loading.delete(keyspace));
      this.#loading.set(keyspace, loading);
    }
    const info = await raceSignal(loading, attempt.signal);
    attempt.used.set(keyspace, info);
    return info;
  }

  /** The API address of `shard`'s leader, or any configured node when unknown or failing. */
  shardTarget(info: KeyspaceInfo, shard: number, attempt: Attempt): string {
    const leader = info.shardMap?.find((entry) => entry.shard === shard)?.leaderApi;
    if (leader) {
      const base = baseUrl(leader);
      if (!attempt.avoid.has(base)) return base;
    }
    return this.anyNode(attempt.avoid);
  }

  /** Where a single-key request goes: the leader of the key's shard. */
  async keyTarget(
    keyspace: string,
    key: string,
    attempt: Attempt,
  ): Promise<{ base: string; shard: number }> {
    const info = await this.keyspaceMap(keyspace, attempt);
    const shard = shardOfKey(key, info.shards);
    return { base: this.shardTarget(info, shard, attempt), shard };
  }

  /** Where a lease call goes: the lease id names its shard's group (else any node). */
  async leaseTarget(
    keyspace: string,
    lease: number,
    key: string | undefined,
    attempt: Attempt,
  ): Promise<string> {
    const info = await this.keyspaceMap(keyspace, attempt);
    if (key !== undefined) return this.shardTarget(info, shardOfKey(key, info.shards), attempt);
    const group = Math.floor(lease / leaseIdsPerGroup);
    const entry = info.shardMap?.find((candidate) => candidate.group === group);
    return entry === undefined
      ? this.anyNode(attempt.avoid)
      : this.shardTarget(info, entry.shard, attempt);
  }

  // ---- HTTP ----

  /** One HTTP exchange; a non-2xx answer throws its ServerError, a failed connection ConnectionFailed. */
  async send(
    base: string,
    request: HttpRequest,
    signal: AbortSignal,
    what: string,
  ): Promise<HttpAnswer> {
    const url = `${base}${request.path}`;
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    let body: Uint8Array | string | undefined;
    if (request.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(request.json);
    } else if (request.bytes !== undefined) {
      headers["content-type"] = "application/octet-stream";
      body = request.bytes;
    }
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await fetch(url, {
        method: request.method,
        headers,
        signal,
        ...(body === undefined ? {} : { body }),
      });
      status = response.status;
      retryAfter = response.headers.get("retry-after");
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new ConnectionFailed(
        base,
        `${what}: cannot reach ${base}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
        error,
      );
    }
    let parsed: unknown = text;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
    } else {
      parsed = null;
    }
    if (status < 200 || status > 299) {
      const error = serverError(status, parsed, what);
      const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
      if (Number.isFinite(seconds) && seconds >= 0) error.retryAfterMs = seconds * 1000;
      throw error;
    }
    if (typeof parsed !== "object" || parsed === null)
      throw new BrigadeError(
        "RemoteError",
        `${what}: ${base} answered ${status} without a JSON body`,
      );
    return { status, body: parsed };
  }

  /** `send` as part of `attempt` (remembering where it went). */
  sendFor(attempt: Attempt, base: string, request: HttpRequest, what: string): Promise<HttpAnswer> {
    attempt.base = base;
    return this.send(base, request, attempt.signal, what);
  }

  /** A fresh attempt record for callers that run their own loop (watches). */
  newAttempt(signal: AbortSignal, avoid: Set<string>): Attempt {
    return { signal, number: 0, avoid, used: new Map(), base: null };
  }

  /**
   * Runs `operation` until it succeeds, fails for good, or the deadline passes (then
   * DeadlineExceeded, naming the last failure). `operation` routes and sends one attempt.
   */
  async call<T>(
    what: string,
    options: CallOptions | undefined,
    operation: (attempt: Attempt) => Promise<T>,
  ): Promise<T> {
    this.assertOpen();
    const deadlineMs = positive(options?.deadlineMs, this.deadlineMs, "deadlineMs");
    const userSignal = options?.signal;
    const deadlineAt = Date.now() + deadlineMs;
    const avoid = new Set<string>();
    let lastError: unknown = null;
    for (let number = 0; ; number++) {
      this.assertOpen();
      if (userSignal?.aborted) throw userSignal.reason;
      const remaining = deadlineAt - Date.now();
      if (remaining <= 0) throw this.#deadlineError(what, deadlineMs, number, lastError);
      const attemptMs = Math.min(remaining, this.attemptTimeoutMs);
      const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(attemptMs)));
      const signals = [timeout, this.#closer.signal];
      if (userSignal !== undefined) signals.push(userSignal);
      const attempt: Attempt = {
        signal: AbortSignal.any(signals),
        number,
        avoid,
        used: new Map(),
        base: null,
      };
      let failure: unknown;
      try {
        return await operation(attempt);
      } catch (error) {
        if (this.closed)
          throw new BrigadeError("ConnectionClosed", `${what}: the client is closed`);
        if (userSignal?.aborted) throw userSignal.reason;
        failure = error;
        if (timeout.aborted && !(error instanceof BrigadeError)) {
          if (Date.now() >= deadlineAt)
            throw this.#deadlineError(what, deadlineMs, number + 1, lastError);
          failure = new BrigadeError(
            "DeadlineExceeded",
            `${what}: no answer${attempt.base ? ` from ${attempt.base}` : ""} within ${Math.round(attemptMs)} ms`,
            { retriable: true },
          );
          if (attempt.base !== null) avoid.add(attempt.base);
        }
      }
      if (!isRetriable(failure)) throw failure;
      lastError = failure;
      if (failure instanceof ConnectionFailed) avoid.add(failure.address);
      const serverCode = failure instanceof ServerError ? failure.serverCode : null;
      if (serverCode !== "QueueFull")
        for (const [keyspace, info] of attempt.used) this.forget(keyspace, info);
      let delay = this.backoffMs(number);
      if (
        serverCode === "QueueFull" &&
        failure instanceof ServerError &&
        failure.retryAfterMs !== undefined
      )
        delay = Math.max(delay, failure.retryAfterMs);
      // Near the deadline: wait half of what is left, so a last attempt still has time.
      const left = deadlineAt - Date.now();
      if (left < 5) throw this.#deadlineError(what, deadlineMs, number + 1, lastError);
      if (delay >= left) delay = left / 2;
      await sleep(
        delay,
        userSignal === undefined
          ? this.#closer.signal
          : AbortSignal.any([this.#closer.signal, userSignal]),
      );
    }
  }

  #deadlineError(
    what: string,
    deadlineMs: number,
    attempts: number,
    lastError: unknown,
  ): BrigadeError {
    const last = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
    return new BrigadeError(
      "DeadlineExceeded",
      `${what}: deadline of ${deadlineMs} ms exceeded after ${attempts} attempt${attempts === 1 ? "" : "s"}${last}`,
      { cause: lastError ?? undefined, retriable: true },
    );
  }
}
