/** @module Small HTTP helpers for CLI commands that talk to a node's (or the supervisor's) API. */
import { CliError } from "./cli-error.js";

/** Sends a request; returns the parsed JSON body, or throws CliError(1) naming the problem. */
export async function callApi(
  baseUrl: string,
  method: string,
  pathname: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<unknown> {
  const url = `${baseUrl.replace(/\/$/, "")}${pathname}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new CliError(`cannot reach ${url}: ${cause}`, 1);
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } })?.error;
    throw new CliError(
      `${method} ${url} failed (${response.status}${error?.code ? ` ${error.code}` : ""}): ${error?.message ?? text}`,
      1,
    );
  }
  return parsed;
}

export function apiBase(address: string): string {
  return address.startsWith("http://") || address.startsWith("https://")
    ? address
    : `http://${address}`;
}
