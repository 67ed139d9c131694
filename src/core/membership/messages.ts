/**
 * @module Membership messages and the updates piggybacked on them. Plain data (msgpack on
 * the wire). A message's `target` in the core's output is an ADDRESS (host:port), because a
 * joining node knows its seeds only by address; members are named by id inside messages.
 */

export type MemberState = "alive" | "suspect" | "dead" | "left";

/** Free-form node metadata: roles, zone, version, API address, services. */
export type MemberTags = Readonly<Record<string, string>>;

/** An alive claim about `id`; the owner raises `incarnation` to refute suspicion or change tags. */
export interface AliveUpdate {
  readonly kind: "alive";
  readonly id: string;
  readonly address: string;
  readonly incarnation: number;
  readonly tags: MemberTags;
}
export interface SuspectUpdate {
  readonly kind: "suspect";
  readonly id: string;
  readonly incarnation: number;
  /** Who suspects: distinct suspecters confirm a suspicion (Lifeguard). */
  readonly from: string;
}
export interface DeadUpdate {
  readonly kind: "dead";
  readonly id: string;
  readonly incarnation: number;
  readonly from: string;
  /** Set when the member announces its own graceful leave. */
  readonly left: boolean;
}
export type MemberUpdate = AliveUpdate | SuspectUpdate | DeadUpdate;

/** One row of a full-state exchange. */
export interface MemberRecord {
  readonly id: string;
  readonly address: string;
  readonly incarnation: number;
  readonly state: MemberState;
  readonly tags: MemberTags;
}

interface Envelope {
  /** Sender's node id and address (so receivers can answer and learn it). */
  readonly from: string;
  readonly fromAddress: string;
}

export interface Ping extends Envelope {
  readonly type: "ping";
  readonly seq: number;
  /** The member the sender means to probe; a different node at that address ignores it. */
  readonly target: string;
  readonly updates: readonly MemberUpdate[];
}
/** Ask the receiver to probe `target` for us (SWIM indirect probe). */
export interface PingRequest extends Envelope {
  readonly type: "ping-req";
  readonly seq: number;
  readonly target: string;
  readonly targetAddress: string;
  /** Lifeguard: send a nack if the target does not answer, so the prober can judge its own health. */
  readonly wantNack: boolean;
  readonly updates: readonly MemberUpdate[];
}
export interface Ack extends Envelope {
  readonly type: "ack";
  readonly seq: number;
  readonly updates: readonly MemberUpdate[];
}
export interface Nack extends Envelope {
  readonly type: "nack";
  readonly seq: number;
}
/** Piggyback-only packet of the dedicated gossip round. */
export interface Gossip extends Envelope {
  readonly type: "gossip";
  readonly updates: readonly MemberUpdate[];
}
/** Full-state exchange (join, periodic anti-entropy, reconnect); goes over TCP in the runtime. */
export interface PushPull extends Envelope {
  readonly type: "push-pull";
  readonly join: boolean;
  readonly response: boolean;
  readonly members: readonly MemberRecord[];
}

export type MembershipMessage = Ping | PingRequest | Ack | Nack | Gossip | PushPull;

/** Messages the runtime must send over the stream transport: everything else fits a datagram. */
export function needsStream(message: MembershipMessage): boolean {
  return message.type === "push-pull";
}

export type MembershipEventType =
  | "member-join"
  | "member-suspect"
  | "member-alive"
  | "member-dead"
  | "member-leave"
  | "member-update";

export interface MembershipEvent {
  readonly type: MembershipEventType;
  readonly member: MemberRecord;
}

const textEncoder = new TextEncoder();

/** Rough encoded size of an update, for packet budgets (exact bytes are the runtime's business). */
export function updateBytesEstimate(update: MemberUpdate): number {
  const base = 24 + update.id.length;
  if (update.kind === "alive") return base + update.address.length + tagsBytes(update.tags);
  return base + update.from.length;
}

/** Encoded size of tags as JSON, the unit of the metadata limit. */
export function tagsBytes(tags: MemberTags): number {
  return textEncoder.encode(JSON.stringify(tags)).length;
}
