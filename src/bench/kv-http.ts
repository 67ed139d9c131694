/**
 * @module The HTTP machinery `bench:kv` drives both stores with, so Brigade and etcd are
 * measured through exactly the same client code: keep-alive `node:http` (an `Agent` with
 * `keepAlive`, no socket limit) or keep-alive `fetch` (undici), chosen by `--http`. A
 * request resolves with the status and the body text; only a failed connection or the
 * per-request deadline rejects.
 */
import http from "node:http";

export type HttpMachinery = "agent" | "fetch";

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** `127.0.0.1:port` or `http://127.0.0.1:port` → host and port. */
export interface Origin {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`. */
  readonly base: string;
}

export function originOf(address: string): Origin {
  const hostPort = address.replace(/^http:\/\//, "").replace(/\/$/, "");
  const at = hostPort.lastIndexOf(":");
  const host = hostPort.slice(0, at);
  const port = Number(hostPort.slice(at + 1));
  if (host === "" || !Number.isInteger(port)) throw new Error(`not host:port: ${address}`);
  return { host, port, base: `http://${host}:${port}` };
}

export interface HttpClient {
  request(
    origin: Origin,
    method: string,
    path: string,
    contentType: string | null,
    body: Buffer | string | null,
  ): Promise<HttpAnswer>;
  close(): void;
}

const requestTimeoutMs = 15_000;

export function httpClient(machinery: HttpMachinery): HttpClient {
  return machinery === "agent" ? agentClient() : fetchClient();
}

function agentClient(): HttpClient {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: Number.POSITIVE_INFINITY,
    maxFreeSockets: 2048,
    scheduling: "lifo",
  });
  return {
    request(origin, method, path, contentType, body) {
      return new Promise<HttpAnswer>((resolve, reject) => {
        const headers: Record<string, string | number> = {};
        if (contentType !== null) headers["content-type"] = contentType;
        if (body !== null)
          headers["content-length"] =
            typeof body === "string" ? Buffer.byteLength(body) : body.length;
        const request = http.request(
          { host: origin.host, port: origin.port, method, path, headers, agent },
          (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () =>
              resolve({
                status: response.statusCode ?? 0,
                text: (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8"),
              }),
            );
            response.on("error", reject);
          },
        );
        request.setTimeout(requestTimeoutMs, () =>
          request.destroy(new Error(`no answer within ${requestTimeoutMs} ms`)),
        );
        request.on("error", reject);
        request.end(body ?? undefined);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

function fetchClient(): HttpClient {
  return {
    async request(origin, method, path, contentType, body) {
      const response = await fetch(`${origin.base}${path}`, {
        method,
        ...(contentType === null ? {} : { headers: { "content-type": contentType } }),
        ...(body === null ? {} : { body }),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      return { status: response.status, text: await response.text() };
    },
    close() {},
  };
}
