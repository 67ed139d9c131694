/**
 * @module The store's HTTP calls the workloads make, and how an answer becomes an outcome:
 * a 2xx is ok; an answer that proves nothing changed is fail; anything else on a write is
 * info (it may have happened). A read changes nothing, so a read that got no answer is a
 * fail: the checkers ignore it either way.
 */
import { randomUUID } from "node:crypto";
import { errorText, isDefiniteFailure, type NodeAnswer, type NodeClient } from "../node-client.js";
import type { OpOutcome } from "../workload.js";

interface KvJson {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

export interface KvRead {
  readonly value: string | null;
  /** 0 for a missing key (it compares as revision 0). */
  readonly modRevision: number;
}

const keyPath = (keyspace: string, key: string) =>
  `/v1/kv/${encodeURIComponent(keyspace)}/${encodeURIComponent(key)}`;

/** A linearizable GET; null when the read got no usable answer. */
export async function getKey(
  client: NodeClient,
  keyspace: string,
  key: string,
): Promise<{ read: KvRead } | { failed: NodeAnswer }> {
  const answer = await client.request("GET", keyPath(keyspace, key));
  if (answer.status === 404 && notFoundKey(answer))
    return { read: { value: null, modRevision: 0 } };
  if (answer.status !== 200) return { failed: answer };
  const kv = (answer.body as { kv: KvJson }).kv;
  return { read: { value: kv.value, modRevision: kv.modRevision } };
}

/** A 404 for the key, not for the keyspace (which would be a setup problem, not an empty key). */
function notFoundKey(answer: NodeAnswer): boolean {
  const message = (answer.body as { error?: { message?: string } } | null)?.error?.message ?? "";
  return message.startsWith("no key ");
}

export interface PutCondition {
  readonly ifValue?: string;
  readonly ifAbsent?: boolean;
  readonly ifModRevision?: number;
}

/** A PUT of a UTF-8 value with at most one condition; every attempt gets its own request id. */
export function putKey(
  client: NodeClient,
  keyspace: string,
  key: string,
  value: string,
  condition: PutCondition = {},
): Promise<NodeAnswer> {
  return client.request("PUT", keyPath(keyspace, key), {
    value,
    requestId: randomUUID(),
    ...condition,
  });
}

export interface TxnBody {
  readonly compare: readonly object[];
  readonly success: readonly object[];
  readonly failure?: readonly object[];
}

export function txn(client: NodeClient, keyspace: string, body: TxnBody): Promise<NodeAnswer> {
  return client.request("POST", `/v1/txn/${encodeURIComponent(keyspace)}`, {
    ...body,
    requestId: randomUUID(),
  });
}

/** A scan of every key under `prefix`, page by page; null when a page failed. */
export async function scanPrefix(
  client: NodeClient,
  keyspace: string,
  prefix: string,
): Promise<{ items: KvJson[] } | { failed: NodeAnswer }> {
  const items: KvJson[] = [];
  let after: string | null = null;
  for (;;) {
    const query = new URLSearchParams({ prefix, limit: "10000" });
    if (after !== null) query.set("after", after);
    const answer = await client.request(
      "GET",
      `/v1/kv/${encodeURIComponent(keyspace)}?${query.toString()}`,
    );
    if (answer.status !== 200) return { failed: answer };
    const page = answer.body as { items: KvJson[]; more: boolean; next?: string };
    items.push(...page.items);
    if (!page.more || page.next === undefined) return { items };
    after = page.next;
  }
}

/** The outcome of a write whose answer is `answer`. */
export function writeOutcome(answer: NodeAnswer, value: unknown): OpOutcome {
  if (answer.status >= 200 && answer.status < 300) return { type: "ok", value };
  return {
    type: isDefiniteFailure(answer) ? "fail" : "info",
    value,
    error: errorText(answer),
  };
}

/** The outcome of a read that got no usable answer. */
export function readFailure(answer: NodeAnswer): OpOutcome {
  return { type: "fail", value: null, error: errorText(answer) };
}

export function isCompareFailed(answer: NodeAnswer): boolean {
  return answer.status === 409;
}
