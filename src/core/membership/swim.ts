/**
 * @module The SWIM membership core (Das, Gupta & Motivala 2002) with the Lifeguard
 * refinements (Dadgar, Phillips & Currey, arXiv 1707.00788), shaped after HashiCorp
 * memberlist. A pure state machine: messages and ticks in; messages (addressed by host:port),
 * storage writes (the incarnation) and membership events out. No clock, socket or
 * randomness of its own: time is `tick(nowMs)`, randomness the injected PRNG.
 *
 * One protocol period, per member:
 *   1. probe the next member of a shuffled round-robin list with a `ping` (piggybacking
 *      updates; a suspected target also gets the suspicion itself — the buddy system);
 *   2. no `ack` within the probe timeout → ask `indirectChecks` members to `ping-req` it,
 *      each answering with a `nack` if the target stays silent (Lifeguard);
 *   3. no ack by the end of the period → suspect the target: gossip `suspect`, start a
 *      suspicion timer that shrinks as other members independently confirm it; the suspect
 *      refutes by raising its incarnation; at the timer's end it is declared `dead`.
 * Missed acks, missed nacks and refuting a suspicion of ourselves raise the local health
 * score, which stretches our own timeouts (Lifeguard local health awareness).
 * Updates spread by piggybacking on probes and by a dedicated gossip round, each sent about
 * retransmitMult·log(n) times; a periodic push-pull full-state exchange repairs the rest,
 * joins new nodes, and (sent to dead members) heals partitions.
 */
import { assert, assertNever } from "../../lib/assert.js";
import type { Prng } from "../../lib/prng.js";
import { type CoreOutput, OutputBuffer, type ProtocolCore } from "../sans-io.js";
import { Awareness } from "./awareness.js";
import { BroadcastQueue, retransmitLimit } from "./broadcast-queue.js";
import { type MembershipConfig, validateMembershipConfig } from "./config.js";
import type {
  AliveUpdate,
  DeadUpdate,
  MemberRecord,
  MemberState,
  MembershipEvent,
  MembershipEventType,
  MembershipMessage,
  MemberTags,
  MemberUpdate,
  PushPull,
  SuspectUpdate,
} from "./messages.js";
import { tagsBytes } from "./messages.js";
import { Suspicion, suspicionTimeoutMinMs } from "./suspicion.js";

/** The durable file holding this node's incarnations, so a restart starts above them. */
export const incarnationFile = "membership-incarnation";

export interface SwimOptions {
  readonly nodeId: string;
  /** Where this node receives membership messages (host:port). */
  readonly address: string;
  /** Addresses to join through; any one reachable is enough. */
  readonly seeds: readonly string[];
  readonly tags: MemberTags;
  readonly config: MembershipConfig;
  readonly prng: Prng;
  readonly nowMs: number;
  readonly recovered: ReadonlyMap<string, Uint8Array>;
  /**
   * Which peer-supplied addresses to accept (the runtime passes a host:port check; the
   * simulator's addresses are node ids). Default: a non-empty string with no whitespace.
   * Messages naming anything else are dropped and counted, so a bad address never spreads.
   */
  readonly isValidAddress?: (address: string) => boolean;
}

export type UpdateTagsError =
  | { readonly code: "MetadataTooLarge"; readonly bytes: number; readonly bytesMax: number }
  | { readonly code: "Leaving" };

export interface MembershipStats {
  probes: number;
  probesFailed: number;
  indirectProbes: number;
  acksReceived: number;
  nacksReceived: number;
  suspicionsRaised: number;
  refutations: number;
  pushPulls: number;
  /** Updates or records dropped because the member table is full. */
  membersDropped: number;
  /** Messages ignored: a ping meant for another node, an ack nobody waits for. */
  messagesIgnored: number;
}

interface Member {
  readonly id: string;
  address: string;
  incarnation: number;
  state: MemberState;
  tags: MemberTags;
  stateChangedMs: number;
}

interface ActiveProbe {
  readonly target: string;
  readonly seq: number;
  readonly directDeadlineMs: number;
  readonly endMs: number;
  indirectSent: boolean;
  nacksExpected: number;
  nacksReceived: number;
}

/** A ping we send on behalf of a member's ping-req. */
interface ForwardedProbe {
  readonly requesterAddress: string;
  readonly requesterSeq: number;
  readonly nackAtMs: number;
  readonly expiresMs: number;
  readonly wantNack: boolean;
  nacked: boolean;
}

/** Ping-reqs we relay at once at most; more are dropped (each costs a timer and a ping). */
const forwardedProbesMax = 1_024;
/** Reaping scans run this often. */
const reapScanIntervalMs = 1_000;

export class Swim implements ProtocolCore<MembershipMessage, MembershipEvent> {
  readonly nodeId: string;
  readonly address: string;
  readonly config: MembershipConfig;
  readonly stats: MembershipStats = {
    probes: 0,
    probesFailed: 0,
    indirectProbes: 0,
    acksReceived: 0,
    nacksReceived: 0,
    suspicionsRaised: 0,
    refutations: 0,
    pushPulls: 0,
    membersDropped: 0,
    messagesIgnored: 0,
  };
  private readonly prng: Prng;
  private readonly isValidAddress: (address: string) => boolean;
  private readonly seeds: readonly string[];
  private readonly output = new OutputBuffer<MembershipMessage, MembershipEvent>();
  private readonly members = new Map<string, Member>();
  private readonly self: Member;
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly broadcasts: BroadcastQueue;
  private readonly awareness: Awareness;
  private readonly forwarded = new Map<number, ForwardedProbe>();
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private probe: ActiveProbe | null = null;
  private nextSeq = 1;
  private nowMs: number;
  private leaving = false;
  private nextProbeMs: number;
  private nextGossipMs: number;
  private nextPushPullMs: number;
  private nextJoinMs: number;
  private nextReconnectMs: number;
  private nextReapMs: number;

  constructor(options: SwimOptions) {
    this.config = validateMembershipConfig(options.config);
    this.nodeId = options.nodeId;
    this.address = options.address;
    this.seeds = options.seeds.filter((seed) => seed !== options.address);
    this.prng = options.prng;
    this.isValidAddress =
      options.isValidAddress ??
      ((address) => address.length > 0 && address.length <= 262 && !/\s/.test(address));
    this.nowMs = options.nowMs;
    this.broadcasts = new BroadcastQueue(this.config.broadcastQueueMax, options.nodeId);
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier);
    assert(
      tagsBytes(options.tags) <= this.config.metadataBytesMax,
      "initial tags exceed metadataBytesMax",
    );

    // Start above every incarnation this node used before, so its claims win over stale ones.
    const incarnation = lastIncarnation(options.recovered.get(incarnationFile)) + 1;
    this.self = {
      id: options.nodeId,
      address: options.address,
      incarnation,
      state: "alive",
      tags: options.tags,
      stateChangedMs: this.nowMs,
    };
    this.members.set(this.self.id, this.self);
    this.persistIncarnation();
    this.emit("member-join", this.self);
    this.broadcasts.enqueue(this.aliveUpdate(this.self));

    // Random phases, so a cluster started at once does not probe in lockstep.
    const { probeIntervalMs, gossipIntervalMs, pushPullIntervalMs, reconnectIntervalMs } =
      this.config;
    this.nextProbeMs = this.nowMs + this.prng.int(probeIntervalMs);
    this.nextGossipMs = this.nowMs + this.prng.int(gossipIntervalMs);
    this.nextPushPullMs = this.nowMs + pushPullIntervalMs + this.prng.int(pushPullIntervalMs);
    this.nextReconnectMs = this.nowMs + reconnectIntervalMs + this.prng.int(reconnectIntervalMs);
    this.nextJoinMs = this.nowMs;
    this.nextReapMs = this.nowMs + reapScanIntervalMs;
  }

  // ---- queries ----------------------------------------------------------------------------

  /** Every known member, this node included, sorted by id. */
  memberList(): MemberRecord[] {
    return [...this.members.values()]
      .map(toRecord)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  member(id: string): MemberRecord | null {
    const member = this.members.get(id);
    return member === undefined ? null : toRecord(member);
  }

  get incarnation(): number {
    return this.self.incarnation;
  }

  /** Lifeguard's local health score: 0 is healthy. */
  get healthScore(): number {
    return this.awareness.healthScore;
  }

  get pendingBroadcasts(): number {
    return this.broadcasts.size;
  }

  get isLeaving(): boolean {
    return this.leaving;
  }

  // ---- inputs -----------------------------------------------------------------------------

  /** Replaces this node's tags (gossiped with a raised incarnation). */
  updateTags(tags: MemberTags): UpdateTagsError | null {
    // A raised incarnation would override our own "left" and bring us back.
    if (this.leaving) return { code: "Leaving" };
    const bytes = tagsBytes(tags);
    if (bytes > this.config.metadataBytesMax)
      return { code: "MetadataTooLarge", bytes, bytesMax: this.config.metadataBytesMax };
    this.self.tags = tags;
    this.self.incarnation++;
    this.persistIncarnation();
    this.broadcasts.enqueue(this.aliveUpdate(this.self));
    this.emit("member-update", this.self);
    return null;
  }

  /**
   * Announces a graceful leave: members will mark this node `left`, not `dead`. The driver
   * should keep running the core until `pendingBroadcasts` is 0 (or a deadline) and then stop.
   */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.probe = null;
    const update: DeadUpdate = {
      kind: "dead",
      id: this.self.id,
      incarnation: this.self.incarnation,
      from: this.self.id,
      left: true,
    };
    this.self.state = "left";
    this.self.stateChangedMs = this.nowMs;
    this.broadcasts.enqueue(update);
    this.emit("member-leave", this.self);
    this.gossipRound();
  }

  tick(nowMs: number): void {
    assert(nowMs >= this.nowMs, "time went backwards");
    this.nowMs = nowMs;
    this.tickProbe();
    this.tickForwarded();
    this.tickSuspicions();
    if (nowMs >= this.nextGossipMs) {
      this.nextGossipMs = nowMs + this.config.gossipIntervalMs;
      this.gossipRound();
    }
    if (this.leaving) return;
    if (nowMs >= this.nextJoinMs) {
      this.nextJoinMs = nowMs + this.config.joinRetryIntervalMs;
      if (this.seeds.length > 0 && this.aliveOthers().length === 0) {
        for (const seed of this.seeds) this.sendPushPull(seed, { join: true, response: false });
      }
    }
    if (nowMs >= this.nextPushPullMs) {
      this.nextPushPullMs = nowMs + this.pushPullIntervalMs();
      const partner = this.randomMembers(1, (member) => member.state === "alive")[0];
      if (partner !== undefined)
        this.sendPushPull(partner.address, { join: false, response: false });
    }
    if (nowMs >= this.nextReconnectMs) {
      this.nextReconnectMs = nowMs + this.config.reconnectIntervalMs;
      const dead = this.randomMembers(1, (member) => member.state === "dead")[0];
      if (dead !== undefined) this.sendPushPull(dead.address, { join: false, response: false });
    }
    if (nowMs >= this.nextReapMs) {
      this.nextReapMs = nowMs + reapScanIntervalMs;
      this.reap();
    }
  }

  receive(source: string, message: MembershipMessage): void {
    if (!isWellFormed(message, this.isValidAddress)) {
      this.stats.messagesIgnored++;
      return;
    }
    if (message.type !== "push-pull" && message.type !== "nack") this.applyUpdates(message.updates);
    switch (message.type) {
      case "ping":
        return this.onPing(message.target, message.seq, message.fromAddress);
      case "ping-req":
        return this.onPingRequest(message);
      case "ack":
        return this.onAck(message.seq);
      case "nack":
        return this.onNack(message.seq);
      case "gossip":
        return;
      case "push-pull":
        return this.onPushPull(message, source);
      default:
        return assertNever(message);
    }
  }

  takeOutput(): CoreOutput<MembershipMessage, MembershipEvent> {
    return this.output.take();
  }

  /** Cheap internal consistency checks; the simulator calls this after every step. */
  checkInvariants(): void {
    assert(this.members.get(this.nodeId) === this.self, "self missing from the member table");
    assert(
      this.leaving ? this.self.state === "left" : this.self.state === "alive",
      `self is ${this.self.state}`,
    );
    assert(this.members.size <= this.config.membersMax + 1, "member table over its limit");
    for (const id of this.suspicions.keys())
      assert(this.members.get(id)?.state === "suspect", `suspicion timer for non-suspect ${id}`);
    for (const member of this.members.values()) {
      if (member.state === "suspect")
        assert(this.suspicions.has(member.id), `suspect ${member.id} without a timer`);
    }
    assert(
      this.healthScore >= 0 && this.healthScore < this.config.awarenessMaxMultiplier,
      "health score out of range",
    );
  }

  // ---- probing ----------------------------------------------------------------------------

  private tickProbe(): void {
    const probe = this.probe;
    if (probe !== null) {
      if (!probe.indirectSent && this.nowMs >= probe.directDeadlineMs)
        this.sendIndirectProbes(probe);
      if (this.nowMs >= probe.endMs) this.probeFailed(probe);
    }
    if (this.probe === null && !this.leaving && this.nowMs >= this.nextProbeMs) {
      this.nextProbeMs = this.nowMs + this.awareness.scale(this.config.probeIntervalMs);
      this.startProbe();
    }
  }

  private startProbe(): void {
    const target = this.nextProbeTarget();
    if (target === null) return;
    const seq = this.nextSeq++;
    const probeTimeoutMs = this.awareness.scale(this.config.probeTimeoutMs);
    this.probe = {
      target: target.id,
      seq,
      directDeadlineMs: this.nowMs + probeTimeoutMs,
      endMs: this.nowMs + this.awareness.scale(this.config.probeIntervalMs),
      indirectSent: false,
      nacksExpected: 0,
      nacksReceived: 0,
    };
    this.stats.probes++;
    // Buddy system (Lifeguard §4.3): tell a suspect directly, so it can refute at once.
    const buddy: MemberUpdate[] = [];
    if (target.state === "suspect")
      buddy.push({
        kind: "suspect",
        id: target.id,
        incarnation: target.incarnation,
        from: this.nodeId,
      });
    const updates = [...buddy, ...this.piggyback(buddy.length)];
    this.output.send(target.address, {
      type: "ping",
      from: this.nodeId,
      fromAddress: this.address,
      seq,
      target: target.id,
      updates,
    });
  }

  /** Round-robin over a shuffled list, reshuffled each pass (SWIM §4.3's time-bounded completeness). */
  private nextProbeTarget(): Member | null {
    for (let pass = 0; pass < 2; pass++) {
      while (this.probeIndex < this.probeOrder.length) {
        const member = this.members.get(this.probeOrder[this.probeIndex++] as string);
        if (
          member !== undefined &&
          member !== this.self &&
          (member.state === "alive" || member.state === "suspect")
        )
          return member;
      }
      this.probeOrder = this.prng.shuffle(
        [...this.members.keys()].filter((id) => id !== this.nodeId),
      );
      this.probeIndex = 0;
    }
    return null;
  }

  private sendIndirectProbes(probe: ActiveProbe): void {
    probe.indirectSent = true;
    const target = this.members.get(probe.target);
    if (target === undefined) return;
    const helpers = this.randomMembers(
      this.config.indirectChecks,
      (member) => member.state === "alive" && member.id !== probe.target,
    );
    probe.nacksExpected = helpers.length;
    this.stats.indirectProbes += helpers.length;
    for (const helper of helpers) {
      this.output.send(helper.address, {
        type: "ping-req",
        from: this.nodeId,
        fromAddress: this.address,
        seq: probe.seq,
        target: target.id,
        targetAddress: target.address,
        wantNack: true,
        updates: this.piggyback(0),
      });
    }
  }

  private probeFailed(probe: ActiveProbe): void {
    this.probe = null;
    this.stats.probesFailed++;
    // Lifeguard: helpers that did not even nack suggest the problem is on our side.
    const missedNacks = probe.nacksExpected > 0 ? probe.nacksExpected - probe.nacksReceived : 1;
    this.awareness.apply(missedNacks);
    const target = this.members.get(probe.target);
    if (target === undefined || (target.state !== "alive" && target.state !== "suspect")) return;
    this.onSuspect({
      kind: "suspect",
      id: target.id,
      incarnation: target.incarnation,
      from: this.nodeId,
    });
  }

  private onPing(target: string, seq: number, replyTo: string): void {
    if (target !== this.nodeId) {
      this.stats.messagesIgnored++;
      return;
    }
    this.output.send(replyTo, {
      type: "ack",
      from: this.nodeId,
      fromAddress: this.address,
      seq,
      updates: this.piggyback(0),
    });
  }

  private onPingRequest(message: Extract<MembershipMessage, { type: "ping-req" }>): void {
    if (this.forwarded.size >= forwardedProbesMax) {
      this.stats.messagesIgnored++;
      return;
    }
    const seq = this.nextSeq++;
    this.forwarded.set(seq, {
      requesterAddress: message.fromAddress,
      requesterSeq: message.seq,
      // Nack before the requester's period ends: the requester asked at probeTimeout and
      // judges at probeInterval, so the nack must come within what is left of that window.
      nackAtMs:
        this.nowMs +
        Math.floor(
          0.8 *
            Math.min(
              this.config.probeTimeoutMs,
              this.config.probeIntervalMs - this.config.probeTimeoutMs,
            ),
        ),
      expiresMs: this.nowMs + this.config.probeIntervalMs,
      wantNack: message.wantNack,
      nacked: false,
    });
    this.output.send(message.targetAddress, {
      type: "ping",
      from: this.nodeId,
      fromAddress: this.address,
      seq,
      target: message.target,
      updates: this.piggyback(0),
    });
  }

  private onAck(seq: number): void {
    const probe = this.probe;
    if (probe !== null && probe.seq === seq) {
      this.stats.acksReceived++;
      this.probe = null;
      this.awareness.apply(-1);
      return;
    }
    const forwarded = this.forwarded.get(seq);
    if (forwarded !== undefined) {
      this.forwarded.delete(seq);
      this.output.send(forwarded.requesterAddress, {
        type: "ack",
        from: this.nodeId,
        fromAddress: this.address,
        seq: forwarded.requesterSeq,
        updates: this.piggyback(0),
      });
      return;
    }
    this.stats.messagesIgnored++; // late: the probe already ended
  }

  private onNack(seq: number): void {
    if (this.probe !== null && this.probe.seq === seq) {
      this.probe.nacksReceived++;
      this.stats.nacksReceived++;
    }
  }

  private tickForwarded(): void {
    for (const [seq, forwarded] of this.forwarded) {
      if (forwarded.wantNack && !forwarded.nacked && this.nowMs >= forwarded.nackAtMs) {
        forwarded.nacked = true;
        this.output.send(forwarded.requesterAddress, {
          type: "nack",
          from: this.nodeId,
          fromAddress: this.address,
          seq: forwarded.requesterSeq,
        });
      }
      if (this.nowMs >= forwarded.expiresMs) this.forwarded.delete(seq);
    }
  }

  // ---- state changes (memberlist state.go: aliveNode, suspectNode, deadNode) --------------

  private applyUpdates(updates: readonly MemberUpdate[]): void {
    for (const update of updates) {
      switch (update.kind) {
        case "alive":
          this.onAlive(update);
          break;
        case "suspect":
          this.onSuspect(update);
          break;
        case "dead":
          this.onDead(update);
          break;
        default:
          assertNever(update);
      }
    }
  }

  private onAlive(update: AliveUpdate): void {
    if (update.id === this.nodeId) {
      // Someone holds a claim about us at least as new as ours that is not ours: out-vote it.
      const same =
        update.incarnation === this.self.incarnation &&
        update.address === this.address &&
        sameTags(update.tags, this.self.tags);
      if (!this.leaving && update.incarnation >= this.self.incarnation && !same)
        this.refute(update.incarnation);
      return;
    }
    if (tagsBytes(update.tags) > this.config.metadataBytesMax) {
      this.stats.messagesIgnored++;
      return;
    }
    const member = this.members.get(update.id);
    if (member === undefined) {
      if (this.members.size > this.config.membersMax) {
        this.stats.membersDropped++;
        return;
      }
      const added: Member = {
        id: update.id,
        address: update.address,
        incarnation: update.incarnation,
        state: "alive",
        tags: update.tags,
        stateChangedMs: this.nowMs,
      };
      this.members.set(added.id, added);
      // Insert at a random place in the probe order so a join does not wait a whole round.
      this.probeOrder.splice(
        this.probeIndex + this.prng.int(this.probeOrder.length - this.probeIndex + 1),
        0,
        added.id,
      );
      this.broadcasts.enqueue(update);
      this.emit("member-join", added);
      return;
    }
    if (update.incarnation <= member.incarnation) return;
    const previous = member.state;
    const tagsChanged = !sameTags(member.tags, update.tags) || member.address !== update.address;
    member.incarnation = update.incarnation;
    member.address = update.address;
    member.tags = update.tags;
    this.suspicions.delete(member.id);
    if (previous !== "alive") {
      member.state = "alive";
      member.stateChangedMs = this.nowMs;
    }
    this.broadcasts.enqueue(update);
    if (previous === "dead" || previous === "left") this.emit("member-join", member);
    else if (previous === "suspect") this.emit("member-alive", member);
    else if (tagsChanged) this.emit("member-update", member);
  }

  private onSuspect(update: SuspectUpdate): void {
    if (update.id === this.nodeId) {
      this.answerAccusation(update.incarnation);
      return;
    }
    const member = this.members.get(update.id);
    if (member === undefined || update.incarnation < member.incarnation) return;
    if (member.state === "dead" || member.state === "left") return;
    if (member.state === "suspect") {
      member.incarnation = update.incarnation;
      // An independent confirmation shortens the timer; pass it on so others learn it too.
      if (this.suspicions.get(member.id)?.confirm(update.from)) this.broadcasts.enqueue(update);
      return;
    }
    member.state = "suspect";
    member.incarnation = update.incarnation;
    member.stateChangedMs = this.nowMs;
    const memberCount = this.countMembers(
      (candidate) => candidate.state === "alive" || candidate.state === "suspect",
    );
    const minMs = suspicionTimeoutMinMs(
      this.config.suspicionMult,
      memberCount,
      this.config.probeIntervalMs,
    );
    // memberlist state.go: expect suspicionMult - 2 confirmations, none in a tiny cluster.
    const expected =
      memberCount - 2 < this.config.suspicionMult - 2 ? 0 : this.config.suspicionMult - 2;
    this.suspicions.set(
      member.id,
      new Suspicion(
        this.nowMs,
        update.from,
        minMs,
        minMs * this.config.suspicionMaxTimeoutMult,
        expected,
      ),
    );
    if (update.from === this.nodeId) this.stats.suspicionsRaised++;
    this.broadcasts.enqueue(update);
    this.emit("member-suspect", member);
  }

  private onDead(update: DeadUpdate): void {
    if (update.id === this.nodeId) {
      this.answerAccusation(update.incarnation);
      return;
    }
    const member = this.members.get(update.id);
    if (member === undefined || update.incarnation < member.incarnation) return;
    if (member.state === "dead" || member.state === "left") return;
    const leftGracefully = update.left && update.from === update.id;
    member.state = leftGracefully ? "left" : "dead";
    member.incarnation = update.incarnation;
    member.stateChangedMs = this.nowMs;
    this.suspicions.delete(member.id);
    if (this.probe?.target === member.id) this.probe = null;
    this.broadcasts.enqueue(update);
    this.emit(leftGracefully ? "member-leave" : "member-dead", member);
  }

  /** Someone says we are suspect or dead. */
  private answerAccusation(incarnation: number): void {
    if (this.leaving) return;
    if (incarnation >= this.self.incarnation) this.refute(incarnation);
    // A stale accusation means its sender missed our refutation: announce it again, or that
    // member's suspicion runs out and it declares us dead (seen in simulation).
    else this.broadcasts.enqueue(this.aliveUpdate(this.self));
  }

  private refute(seenIncarnation: number): void {
    this.self.incarnation = Math.max(this.self.incarnation, seenIncarnation) + 1;
    this.persistIncarnation();
    this.stats.refutations++;
    // Being suspected is a sign we may be the slow one (Lifeguard).
    this.awareness.apply(1);
    this.broadcasts.enqueue(this.aliveUpdate(this.self));
  }

  private tickSuspicions(): void {
    for (const [id, suspicion] of this.suspicions) {
      if (this.nowMs < suspicion.deadlineMs()) continue;
      const member = this.members.get(id) as Member;
      this.onDead({
        kind: "dead",
        id,
        incarnation: member.incarnation,
        from: this.nodeId,
        left: false,
      });
    }
  }

  private reap(): void {
    for (const member of [...this.members.values()]) {
      if (member === this.self || (member.state !== "dead" && member.state !== "left")) continue;
      if (this.nowMs - member.stateChangedMs >= this.config.reapAfterMs)
        this.members.delete(member.id);
    }
  }

  // ---- dissemination ----------------------------------------------------------------------

  private piggyback(alreadyIncluded: number): MemberUpdate[] {
    return this.broadcasts.take({
      countMax: this.config.piggybackUpdatesMax - alreadyIncluded,
      bytesMax: this.config.piggybackBytesMax,
      limit: retransmitLimit(this.config.retransmitMult, this.members.size),
    });
  }

  private gossipRound(): void {
    if (this.broadcasts.size === 0) return;
    // memberlist gossips to the dead (so a wrongly declared node can refute), not to the left.
    const recentlyDead = (member: Member) =>
      member.state === "dead" && this.nowMs - member.stateChangedMs < this.config.gossipToTheDeadMs;
    const targets = this.randomMembers(
      this.config.gossipNodes,
      (member) => member.state === "alive" || member.state === "suspect" || recentlyDead(member),
    );
    for (const target of targets) {
      const updates = this.piggyback(0);
      if (updates.length === 0) return;
      this.output.send(target.address, {
        type: "gossip",
        from: this.nodeId,
        fromAddress: this.address,
        updates,
      });
    }
  }

  /** memberlist util.go pushPullScale: above 32 members the interval grows with log2(n). */
  private pushPullIntervalMs(): number {
    const count = this.members.size;
    const multiplier = count <= 32 ? 1 : Math.ceil(Math.log2(count) - Math.log2(32)) + 1;
    return this.config.pushPullIntervalMs * multiplier;
  }

  private sendPushPull(address: string, kind: { join: boolean; response: boolean }): void {
    this.stats.pushPulls++;
    this.output.send(address, {
      type: "push-pull",
      from: this.nodeId,
      fromAddress: this.address,
      join: kind.join,
      response: kind.response,
      members: [...this.members.values()].map(toRecord),
    });
  }

  private onPushPull(message: PushPull, _source: string): void {
    if (!message.response && !this.leaving)
      this.sendPushPull(message.fromAddress, { join: false, response: true });
    // memberlist state.go mergeState: a remote "dead" only makes us suspect, so the member can still refute.
    for (const record of message.members) {
      switch (record.state) {
        case "alive":
          this.onAlive({
            kind: "alive",
            id: record.id,
            address: record.address,
            incarnation: record.incarnation,
            tags: record.tags,
          });
          break;
        case "suspect":
        case "dead":
          this.onSuspect({
            kind: "suspect",
            id: record.id,
            incarnation: record.incarnation,
            from: message.from,
          });
          break;
        case "left":
          this.onDead({
            kind: "dead",
            id: record.id,
            incarnation: record.incarnation,
            from: record.id,
            left: true,
          });
          break;
        default:
          assertNever(record.state);
      }
    }
  }

  // ---- helpers ----------------------------------------------------------------------------

  private aliveOthers(): Member[] {
    return [...this.members.values()].filter(
      (member) => member !== this.self && member.state === "alive",
    );
  }

  private countMembers(predicate: (member: Member) => boolean): number {
    let count = 0;
    for (const member of this.members.values()) if (predicate(member)) count++;
    return count;
  }

  /** Up to `count` distinct random members other than ourselves that satisfy `predicate`. */
  private randomMembers(count: number, predicate: (member: Member) => boolean): Member[] {
    const candidates = [...this.members.values()].filter(
      (member) => member !== this.self && predicate(member),
    );
    if (candidates.length <= count) return this.prng.shuffle(candidates);
    const chosen: Member[] = [];
    for (let index = 0; index < count; index++) {
      const pick = index + this.prng.int(candidates.length - index);
      [candidates[index], candidates[pick]] = [
        candidates[pick] as Member,
        candidates[index] as Member,
      ];
      chosen.push(candidates[index] as Member);
    }
    return chosen;
  }

  private aliveUpdate(member: Member): AliveUpdate {
    return {
      kind: "alive",
      id: member.id,
      address: member.address,
      incarnation: member.incarnation,
      tags: member.tags,
    };
  }

  private emit(type: MembershipEventType, member: Member): void {
    this.output.emit({ type, member: toRecord(member) });
  }

  private persistIncarnation(): void {
    // Not synced: a lost record only means refuting once more after a restart.
    this.output.write(
      incarnationFile,
      new TextEncoder().encode(`${this.self.incarnation}\n`),
      false,
    );
  }
}

function toRecord(member: Member): MemberRecord {
  return {
    id: member.id,
    address: member.address,
    incarnation: member.incarnation,
    state: member.state,
    tags: member.tags,
  };
}

function sameTags(a: MemberTags, b: MemberTags): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => a[key] === b[key]);
}

/** The largest complete incarnation line in the file (a torn last line is ignored). */
function lastIncarnation(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  let highest = 0;
  const lines = new TextDecoder().decode(bytes).split("\n");
  lines.pop(); // the part after the last newline is incomplete or empty
  for (const line of lines) {
    const value = Number(line);
    if (Number.isSafeInteger(value) && value > highest) highest = value;
  }
  return highest;
}

/** Member ids follow the node-id rule of the config: 1-64 letters, digits, '.', '_' or '-'. */
const memberIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
function isMemberId(value: unknown): value is string {
  return typeof value === "string" && memberIdPattern.test(value);
}

/** Structural check of a decoded message: peers' bad input is dropped, never thrown. */
function isWellFormed(
  message: MembershipMessage,
  isAddress: (address: string) => boolean,
): boolean {
  if (typeof message !== "object" || message === null) return false;
  const envelope = message as { from?: unknown; fromAddress?: unknown; type?: unknown };
  if (
    !isMemberId(envelope.from) ||
    typeof envelope.fromAddress !== "string" ||
    !isAddress(envelope.fromAddress)
  )
    return false;
  const updateOk = (update: MemberUpdate) => isWellFormedUpdate(update, isAddress);
  switch (message.type) {
    case "ping":
    case "ack":
    case "gossip":
    case "ping-req":
      if (!Array.isArray(message.updates) || !message.updates.every(updateOk)) return false;
      if (message.type === "ping-req") {
        return (
          isMemberId(message.target) &&
          typeof message.targetAddress === "string" &&
          isAddress(message.targetAddress) &&
          Number.isSafeInteger(message.seq)
        );
      }
      return message.type === "gossip" || Number.isSafeInteger(message.seq);
    case "nack":
      return Number.isSafeInteger(message.seq);
    case "push-pull":
      return (
        Array.isArray(message.members) &&
        message.members.every((record) => isWellFormedRecord(record, isAddress))
      );
    default:
      return false;
  }
}

function isWellFormedUpdate(
  update: MemberUpdate,
  isAddress: (address: string) => boolean,
): boolean {
  if (
    typeof update !== "object" ||
    update === null ||
    !isMemberId(update.id) ||
    !Number.isSafeInteger(update.incarnation)
  )
    return false;
  if (update.kind === "alive")
    return typeof update.address === "string" && isAddress(update.address) && isTags(update.tags);
  if (update.kind === "suspect") return isMemberId(update.from);
  if (update.kind === "dead") return isMemberId(update.from) && typeof update.left === "boolean";
  return false;
}

function isWellFormedRecord(
  record: MemberRecord,
  isAddress: (address: string) => boolean,
): boolean {
  return (
    typeof record === "object" &&
    record !== null &&
    isMemberId(record.id) &&
    typeof record.address === "string" &&
    isAddress(record.address) &&
    Number.isSafeInteger(record.incarnation) &&
    ["alive", "suspect", "dead", "left"].includes(record.state) &&
    isTags(record.tags)
  );
}

function isTags(tags: unknown): tags is MemberTags {
  return (
    typeof tags === "object" &&
    tags !== null &&
    !Array.isArray(tags) &&
    Object.values(tags).every((value) => typeof value === "string")
  );
}
