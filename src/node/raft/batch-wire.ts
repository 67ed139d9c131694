/**
 * @module The frame one node sends another per processing round, carrying the Raft
 * messages of every group on it (multi-Raft batching, as CockroachDB and TiKV do):
 *
 *   { m: [[group, message], ...],            any message
 *     b: [[group, term, commit, readRound]],  heartbeats, coalesced as bare tuples
 *     r: [[group, term, readRound]] }         heartbeat answers, likewise
 *
 * With many groups per node pair, heartbeats dominate the message count; as tuples they
 * cost a few bytes each and share one frame and one syscall. Everything decoded is
 * checked by `parseRaftMessage` before a core sees it.
 */
import type { RaftMessage } from "../../core/raft/types.js";
import { parseRaftMessage } from "../../core/raft/validate.js";
import { walGroupIdMax } from "../../storage/wal-record.js";

export interface GroupMessage {
  readonly group: number;
  readonly message: RaftMessage;
}

export interface RaftBatchFrame {
  m?: [number, RaftMessage][];
  b?: [number, number, number, number][];
  r?: [number, number, number][];
}

/** Raft payload bytes per frame (the transport's frame limit is 4 MiB). */
export const batchFrameBytesMax = 2 * 1024 * 1024;

/** Frames for one destination, each under `batchFrameBytesMax` (a single larger message goes alone). */
export function encodeBatchFrames(messages: readonly GroupMessage[]): RaftBatchFrame[] {
  const frames: RaftBatchFrame[] = [];
  let frame = emptyFrame();
  let bytes = 0;
  for (const { group, message } of messages) {
    const size = approximateBytes(message);
    if (bytes > 0 && bytes + size > batchFrameBytesMax) {
      frames.push(withoutEmptyLists(frame));
      frame = emptyFrame();
      bytes = 0;
    }
    bytes += size;
    if (message.type === "heartbeat") {
      frame.b.push([group, message.term, message.commit, message.readRound ?? 0]);
    } else if (message.type === "heartbeat-response") {
      frame.r.push([group, message.term, message.readRound ?? 0]);
    } else {
      frame.m.push([group, message]);
    }
  }
  if (bytes > 0) frames.push(withoutEmptyLists(frame));
  return frames;
}

function emptyFrame(): Required<RaftBatchFrame> {
  return { m: [], b: [], r: [] };
}

function withoutEmptyLists(frame: Required<RaftBatchFrame>): RaftBatchFrame {
  return {
    ...(frame.m.length > 0 ? { m: frame.m } : {}),
    ...(frame.b.length > 0 ? { b: frame.b } : {}),
    ...(frame.r.length > 0 ? { r: frame.r } : {}),
  };
}

/**
 * Calls `deliver` for every well-formed message in a frame from `source`; returns how many
 * parts were malformed (dropped).
 */
export function decodeBatchFrame(
  payload: unknown,
  source: string,
  deliver: (group: number, message: RaftMessage) => void,
): number {
  if (typeof payload !== "object" || payload === null) return 1;
  const frame = payload as Record<string, unknown>;
  let rejected = 0;
  const each = (list: unknown, build: (tuple: unknown[]) => unknown) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) {
      rejected++;
      return;
    }
    for (const tuple of list) {
      const group = Array.isArray(tuple) ? tuple[0] : undefined;
      if (!Array.isArray(tuple) || !isGroupId(group)) {
        rejected++;
        continue;
      }
      const message = parseRaftMessage(build(tuple), source);
      if (message === null) rejected++;
      else deliver(group, message);
    }
  };
  each(frame.m, (tuple) => tuple[1]);
  each(frame.b, ([, term, commit, readRound]) => ({
    type: "heartbeat",
    from: source,
    term,
    commit,
    readRound,
  }));
  each(frame.r, ([, term, readRound]) => ({
    type: "heartbeat-response",
    from: source,
    term,
    readRound,
  }));
  return rejected;
}

function isGroupId(value: unknown): value is number {
  return (
    Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= walGroupIdMax
  );
}

function approximateBytes(message: RaftMessage): number {
  if (message.type === "append-entries") {
    let bytes = 64;
    for (const entry of message.entries) bytes += entry.data.length + 32;
    return bytes;
  }
  if (message.type === "install-snapshot") return 128 + message.data.length;
  return 48;
}
