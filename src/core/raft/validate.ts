/**
 * @module Checks a Raft message that arrived from the network before the core sees it:
 * peers' bad input (a wrong type, a string where a term belongs, entries that are not
 * contiguous, a sender posing as another voter) is dropped and counted by the driver, never
 * thrown out of a socket handler or into the core's assertions. Pure.
 */
import { decodeClusterConfig, isClusterConfig } from "./membership.js";
import type { RaftMessage } from "./types.js";

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isOptionalCount = (value: unknown) => value === undefined || isCount(value);
const isBoolean = (value: unknown): value is boolean => typeof value === "boolean";

/** The message if it is well formed and really from `source`; null otherwise. */
export function parseRaftMessage(payload: unknown, source: string): RaftMessage | null {
  if (typeof payload !== "object" || payload === null) return null;
  const message = payload as Record<string, unknown>;
  if (message.from !== source || !isCount(message.term)) return null;
  switch (message.type) {
    case "request-vote":
      return isBoolean(message.preVote) &&
        isCount(message.lastLogIndex) &&
        isCount(message.lastLogTerm) &&
        (message.transfer === undefined || isBoolean(message.transfer))
        ? (payload as RaftMessage)
        : null;
    case "request-vote-response":
      return isBoolean(message.preVote) && isCount(message.voteTerm) && isBoolean(message.granted)
        ? (payload as RaftMessage)
        : null;
    case "append-entries":
      return isCount(message.prevLogIndex) &&
        isCount(message.prevLogTerm) &&
        isCount(message.leaderCommit) &&
        areContiguousEntries(
          message.entries,
          message.prevLogIndex,
          message.prevLogTerm,
          message.term,
        )
        ? (payload as RaftMessage)
        : null;
    case "append-entries-response":
      return isBoolean(message.success) &&
        isCount(message.matchIndex) &&
        isCount(message.rejectedIndex) &&
        isCount(message.hintIndex) &&
        isCount(message.hintTerm)
        ? (payload as RaftMessage)
        : null;
    case "heartbeat":
      return isCount(message.commit) && isOptionalCount(message.readRound)
        ? (payload as RaftMessage)
        : null;
    case "heartbeat-response":
      return isOptionalCount(message.readRound) ? (payload as RaftMessage) : null;
    case "timeout-now":
      return payload as RaftMessage;
    case "install-snapshot":
      return isSnapshotMetadata(message.metadata, message.term) &&
        isCount(message.totalBytes) &&
        isCount(message.offset) &&
        message.data instanceof Uint8Array &&
        message.offset + message.data.length <= message.totalBytes
        ? (payload as RaftMessage)
        : null;
    case "install-snapshot-response":
      return isCount(message.index) && isCount(message.received) ? (payload as RaftMessage) : null;
    default:
      return null;
  }
}

/** Entries follow `prevLogIndex` one by one, with terms that never decrease and never pass the leader's. */
function areContiguousEntries(
  entries: unknown,
  prevLogIndex: number,
  prevLogTerm: number,
  leaderTerm: number,
): boolean {
  if (!Array.isArray(entries)) return false;
  let index = prevLogIndex;
  let term = prevLogTerm;
  for (const entry of entries as Array<Record<string, unknown>>) {
    if (typeof entry !== "object" || entry === null) return false;
    if (
      entry.index !== index + 1 ||
      !isCount(entry.term) ||
      entry.term < term ||
      entry.term > leaderTerm
    )
      return false;
    if (!(entry.data instanceof Uint8Array)) return false;
    if (entry.kind === "config") {
      if (decodeClusterConfig(entry.data) === null) return false;
    } else if (entry.kind !== "command" && entry.kind !== "noop") return false;
    index = entry.index as number;
    term = entry.term;
  }
  return true;
}

function isSnapshotMetadata(value: unknown, leaderTerm: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  const metadata = value as Record<string, unknown>;
  return (
    isCount(metadata.index) &&
    metadata.index > 0 &&
    isCount(metadata.term) &&
    metadata.term <= leaderTerm &&
    isClusterConfig(metadata.config)
  );
}
