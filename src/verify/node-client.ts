/**
 * @module The client a verify worker uses: plain HTTP to ONE node, one attempt per
 * operation, a hard timeout — as a Jepsen client talks to its own node. Retrying inside an
 * operation would hide exactly what the test looks for, and whether a failure is definite
 * (nothing happened) or indeterminate (it may have happened) must stay visible.
 */
import http from "node:http";

/** What one request ended with. `status` 0: no HTTP answer (timeout, connection refused or reset). */
export interface NodeAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Set when there was no HTTP answer: "timeout", "ECONNREFUSED", ... */
  readonly transportError?: string;
}

/**
 * Answers that prove the request changed nothing: a refusal (400, 404, 409, 410, 412, 413)
 * or `503` with code `Unavailable` or `QueueFull`, which the store sends only when the
 * command was never proposed or can no longer commit (docs/kv.md, "Errors and outcomes").
 * So is a refused connection. Everything else — 504, `ConnectionClosed`, a timeout, a reset — may have been applied (or
 * may still be), so a write ending that way is indeterminate.
 */
export function isDefiniteFailure(answer: NodeAnswer): boolean {
  // Refused before a byte was sent: the node never saw the request.
  if (answer.transportError === "ECONNREFUSED") return true;
  if ([400, 404, 409, 410, 412, 413].includes(answer.status)) return true;
  const code = (answer.body as { error?: { code?: string } } | null)?.error?.code;
  return answer.status === 503 && (code === "Unavailable" || code === "QueueFull");
}

export function errorText(answer: NodeAnswer): string {
  if (answer.transportError !== undefined) return answer.transportError;
  const error = (answer.body as { error?: { code?: string; message?: string } } | null)?.error;
  return error?.code ? `${answer.status} ${error.code}` : `HTTP ${answer.status}`;
}

export class NodeClient {
  // No socket cap: a request queued inside the agent would spend its timeout unsent.
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #host: string;
  readonly #port: number;

  /** `api` is "host:port". */
  constructor(
    readonly node: string,
    api: string,
    readonly timeoutMs: number,
  ) {
    const at = api.lastIndexOf(":");
    this.#host = api.slice(0, at);
    this.#port = Number(api.slice(at + 1));
  }

  request(method: string, path: string, body?: unknown): Promise<NodeAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve) => {
      let settled = false;
      const finish = (answer: NodeAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer);
      };
      const request = http.request(
        {
          host: this.#host,
          port: this.#port,
          method,
          path,
          agent: this.#agent,
          headers:
            payload === undefined
              ? {}
              : { "content-type": "application/json", "content-length": payload.length },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = text === "" ? null : JSON.parse(text);
            } catch {
              // Not JSON: keep the text.
            }
            finish({ status: response.statusCode ?? 0, body: parsed });
          });
          response.on("error", (error) =>
            finish({ status: 0, body: null, transportError: code(error) }),
          );
        },
      );
      // The timer covers the whole exchange; destroying the request frees the socket.
      const timer = setTimeout(() => {
        finish({ status: 0, body: null, transportError: "timeout" });
        request.destroy();
      }, this.timeoutMs);
      request.on("error", (error) =>
        finish({ status: 0, body: null, transportError: code(error) }),
      );
      request.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function code(error: Error): string {
  return (error as NodeJS.ErrnoException).code ?? error.message;
}
