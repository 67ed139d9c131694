/**
 * @module Watches: a Server-Sent Events stream of one key's or one prefix's changes. The
 * watch remembers the last event's id (its resume token) and, when the connection drops,
 * the server ends the stream or nothing arrives for `idleTimeoutMs`, reconnects with
 * `Last-Event-ID` so no event is lost or repeated. An `error` event that retrying cannot
 * fix (e.g. Compacted: the resume point is older than the kept history) ends the watch
 * with that error.
 */
import { BrigadeError } from "../lib/errors.js";
import { KeyValue, type KvJson, keyValueOrNull } from "./codec.js";
import { type Connection, ConnectionFailed, query, segment } from "./connection.js";
import { isRetriable, serverError } from "./errors.js";
import { SseParser } from "./sse.js";
import type { WatchEvent, WatchOptions, WatchTarget } from "./types.js";

const watchDefaults = { idleTimeoutMs: 30_000, reconnectForMs: 60_000 } as const;

interface EventData {
  readonly type?: string;
  readonly revision?: number;
  readonly shard?: number;
  readonly kv?: KvJson;
  readonly prev?: KvJson | null;
}

/**
 * A running watch: iterate it once with `for await`; `close()` (or breaking out of the
 * loop) ends it. `lastId` is the resume token of the last event delivered.
 */
export class Watch implements AsyncIterable<WatchEvent> {
  readonly #connection: Connection;
  readonly #keyspace: string;
  readonly #target: WatchTarget;
  readonly #idleTimeoutMs: number;
  readonly #reconnectForMs: number;
  readonly #stopper = new AbortController();
  #lastId: string | null;
  #iterating = false;
  #connections = 0;

  constructor(
    connection: Connection,
    keyspace: string,
    target: WatchTarget,
    options: WatchOptions = {},
  ) {
    const hasKey = typeof (target as { key?: unknown })?.key === "string";
    const hasPrefix = typeof (target as { prefix?: unknown })?.prefix === "string";
    if (hasKey === hasPrefix)
      throw new BrigadeError("InvalidArgument", "watch takes exactly one of { key } or { prefix }");
    segment(keyspace, "a keyspace name");
    this.#connection = connection;
    this.#keyspace = keyspace;
    this.#target = target;
    this.#lastId = options.from ?? null;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? watchDefaults.idleTimeoutMs;
    this.#reconnectForMs = options.reconnectForMs ?? watchDefaults.reconnectForMs;
    const stop = () => this.close();
    for (const signal of [connection.closeSignal, options.signal]) {
      if (signal === undefined) continue;
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
    }
  }

  /** The resume token of the last event delivered (or the `from` the watch started with). */
  get lastId(): string | null {
    return this.#lastId;
  }

  /** How many times the watch has connected (1 + reconnections). */
  get connections(): number {
    return this.#connections;
  }

  get closed(): boolean {
    return this.#stopper.signal.aborted;
  }

  /** Ends the watch: a pending `next()` resolves as done. */
  close(): void {
    if (!this.closed) this.#stopper.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent, void, undefined> {
    if (this.#iterating) throw new BrigadeError("InvalidArgument", "a watch can be iterated once");
    this.#iterating = true;
    const avoid = new Set<string>();
    let failures = 0;
    let downSince = Date.now();
    let lastError: unknown = null;
    try {
      while (!this.closed) {
        const stream = new AbortController();
        const abortStream = () => stream.abort();
        this.#stopper.signal.addEventListener("abort", abortStream, { once: true });
        let idleTimer: NodeJS.Timeout | undefined;
        const resetIdle = () => {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => stream.abort(), this.#idleTimeoutMs);
        };
        let base: string | null = null;
        try {
          const attempt = this.#connection.newAttempt(
            AbortSignal.any([
              stream.signal,
              AbortSignal.timeout(this.#connection.attemptTimeoutMs),
            ]),
            avoid,
          );
          base =
            "key" in this.#target
              ? (await this.#connection.keyTarget(this.#keyspace, this.#target.key, attempt)).base
              : this.#connection.anyNode(avoid);
          const { url, headers } = this.#request(base);
          resetIdle();
          const response = await fetch(url, { headers, signal: stream.signal });
          if (!response.ok) {
            const text = await response.text();
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              // keep the text
            }
            throw serverError(response.status, body, `watch ${this.#keyspace}`);
          }
          if (response.body === null)
            throw new BrigadeError("RemoteError", `watch ${this.#keyspace}: empty answer`);
          this.#connections++;
          downSince = Date.now();
          avoid.clear();
          const parser = new SseParser();
          const decoder = new TextDecoder("utf-8");
          const reader = response.body.getReader();
          try {
            for (;;) {
              resetIdle();
              const { done, value } = await reader.read();
              if (done) break;
              for (const event of parser.push(decoder.decode(value, { stream: true }))) {
                if (event.event === "error") throw this.#streamError(event.data);
                // The server's starting point: resuming from it misses nothing.
                if (event.event === "ready" && event.id !== null) this.#lastId = event.id;
                if (event.event !== "put" && event.event !== "delete") continue;
                const parsed = this.#parse(event.data, event.id);
                if (event.id !== null) this.#lastId = event.id;
                failures = 0;
                yield parsed;
                if (this.closed) return;
              }
            }
          } finally {
            reader.releaseLock();
          }
          // The server ended the stream (e.g. it is shutting down): reconnect.
          lastError = new BrigadeError(
            "ConnectionClosed",
            `watch ${this.#keyspace}: the stream ended`,
          );
        } catch (error) {
          if (this.closed) return;
          const failure =
            stream.signal.aborted && !(error instanceof BrigadeError)
              ? new BrigadeError(
                  "DeadlineExceeded",
                  `watch ${this.#keyspace}: nothing from ${base ?? "the node"} for ${this.#idleTimeoutMs} ms`,
                )
              : error instanceof BrigadeError
                ? error
                : new ConnectionFailed(
                    base ?? "",
                    `watch ${this.#keyspace}: connection to ${base} lost: ${(error as Error)?.message}`,
                    error,
                  );
          if (!isRetriable(failure)) throw failure;
          lastError = failure;
          if (base !== null) avoid.add(base);
          if ("key" in this.#target) this.#connection.forget(this.#keyspace);
        } finally {
          clearTimeout(idleTimer);
          this.#stopper.signal.removeEventListener("abort", abortStream);
          stream.abort();
        }
        if (Date.now() - downSince > this.#reconnectForMs) {
          throw new BrigadeError(
            "Unavailable",
            `watch ${this.#keyspace}: could not reconnect for ${this.#reconnectForMs} ms${lastError instanceof Error ? `; last error: ${lastError.message}` : ""}`,
            { cause: lastError },
          );
        }
        await this.#pause(this.#connection.backoffMs(failures++));
      }
    } finally {
      this.close();
    }
  }

  #request(base: string): { url: string; headers: Record<string, string> } {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    const params: Record<string, string | undefined> =
      "key" in this.#target ? { key: this.#target.key } : { prefix: this.#target.prefix };
    // The first connection resumes with ?from=; later ones send the last event's id.
    if (this.#connections === 0 && this.#lastId !== null) params.from = this.#lastId;
    else if (this.#lastId !== null) headers["last-event-id"] = this.#lastId;
    return {
      url: `${base}/v1/watch/${segment(this.#keyspace, "a keyspace name")}${query(params)}`,
      headers,
    };
  }

  #parse(data: string, id: string | null): WatchEvent {
    let parsed: EventData;
    try {
      parsed = JSON.parse(data) as EventData;
    } catch {
      throw new BrigadeError(
        "RemoteError",
        `watch ${this.#keyspace}: malformed event ${data.slice(0, 100)}`,
      );
    }
    if (parsed.kv === undefined || (parsed.type !== "put" && parsed.type !== "delete"))
      throw new BrigadeError(
        "RemoteError",
        `watch ${this.#keyspace}: malformed event ${data.slice(0, 100)}`,
      );
    return {
      type: parsed.type,
      revision: Number(parsed.revision ?? 0),
      shard: Number(parsed.shard ?? 0),
      kv: KeyValue.fromJson(parsed.kv),
      prev: keyValueOrNull(parsed.prev),
      id,
    };
  }

  #streamError(data: string): BrigadeError {
    let body: { code?: unknown; message?: unknown } = {};
    try {
      body = JSON.parse(data) as typeof body;
    } catch {
      body = { message: data };
    }
    const code = typeof body.code === "string" ? body.code : "RemoteError";
    return serverError(0, { error: { code, message: body.message } }, `watch ${this.#keyspace}`);
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#stopper.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
