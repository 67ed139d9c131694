/**
 * @module Membership (SWIM + Lifeguard) settings, in named profiles like memberlist's, each
 * default with its reason. Times are milliseconds of the driver's monotonic clock.
 */
import { BrigadeError } from "../../lib/errors.js";

export interface MembershipConfig {
  /** Time between probes of one member. Lower detects failures sooner and costs bandwidth. */
  readonly probeIntervalMs: number;
  /** A direct probe with no ack after this long falls back to indirect probes. Should exceed the p99 RTT. */
  readonly probeTimeoutMs: number;
  /** Members asked to probe indirectly when a direct probe fails (SWIM's k). */
  readonly indirectChecks: number;
  /** Each update is piggybacked about retransmitMult * ceil(log10(n + 1)) times (memberlist util.go retransmitLimit). */
  readonly retransmitMult: number;
  /** Minimum suspicion = suspicionMult * max(1, log10(n)) * probeInterval (memberlist suspicionTimeout). */
  readonly suspicionMult: number;
  /** Maximum suspicion = suspicionMaxTimeoutMult * minimum; confirmations shrink it toward the minimum (Lifeguard §4.2). */
  readonly suspicionMaxTimeoutMult: number;
  /** Interval of the dedicated gossip round that spreads pending updates faster than probes alone. */
  readonly gossipIntervalMs: number;
  /** Members sent each gossip round. */
  readonly gossipNodes: number;
  /** Dead members still receive gossip this long, so a wrongly declared node learns it and refutes. */
  readonly gossipToTheDeadMs: number;
  /** Full state exchange with one random member this often (repairs what gossip missed, speeds joins). */
  readonly pushPullIntervalMs: number;
  /** While no other member is known, the seeds are retried this often. */
  readonly joinRetryIntervalMs: number;
  /** A random dead (not left) member is sent a push-pull this often, so partitions heal (Serf's reconnect). */
  readonly reconnectIntervalMs: number;
  /** Dead and left members are forgotten after this long. */
  readonly reapAfterMs: number;
  /** Lifeguard local health: timeouts are multiplied by (score + 1), score < awarenessMaxMultiplier. */
  readonly awarenessMaxMultiplier: number;
  /** Updates piggybacked on one probe packet (keeps a UDP datagram under the MTU). */
  readonly piggybackUpdatesMax: number;
  /** Estimated bytes of piggybacked updates on one packet; 1400 is memberlist's UDPBufferSize minus headers. */
  readonly piggybackBytesMax: number;
  /** Pending updates kept for dissemination; the oldest (most retransmitted) are dropped beyond it. */
  readonly broadcastQueueMax: number;
  /** Largest node metadata (tags), JSON-encoded: memberlist's MetaMaxSize, so an alive update fits one datagram beside others. */
  readonly metadataBytesMax: number;
  /** Members tracked at most; updates about more are dropped and counted. */
  readonly membersMax: number;
}

const lan: MembershipConfig = Object.freeze({
  probeIntervalMs: 1_000, // memberlist DefaultLANConfig
  probeTimeoutMs: 500,
  indirectChecks: 3,
  // memberlist uses 4; at 64 nodes and 5% loss that let about 1 run in 20 lose every copy of
  // a refutation somewhere (e^-8 per member), and a false death followed. 6 made it 0 in 100
  // for under 2% more messages (docs/membership.md).
  retransmitMult: 6,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  joinRetryIntervalMs: 1_000,
  reconnectIntervalMs: 10_000,
  reapAfterMs: 15 * 60_000,
  awarenessMaxMultiplier: 8,
  piggybackUpdatesMax: 16,
  piggybackBytesMax: 1_200,
  broadcastQueueMax: 4_096,
  metadataBytesMax: 512,
  membersMax: 10_000,
});

export const membershipProfiles = {
  lan,
  /** Loopback and one-machine clusters: RTTs are tiny, so probes can time out sooner (memberlist DefaultLocalConfig). */
  local: Object.freeze({
    ...lan,
    probeTimeoutMs: 200,
    suspicionMult: 3,
    gossipIntervalMs: 100,
    pushPullIntervalMs: 15_000,
  }),
  /** Across data centres (memberlist DefaultWANConfig). */
  wan: Object.freeze({
    ...lan,
    probeIntervalMs: 5_000,
    probeTimeoutMs: 3_000,
    suspicionMult: 6,
    gossipIntervalMs: 500,
    gossipNodes: 4,
    pushPullIntervalMs: 60_000,
  }),
} as const satisfies Record<string, MembershipConfig>;

export type MembershipProfile = keyof typeof membershipProfiles;

export function validateMembershipConfig(config: MembershipConfig): MembershipConfig {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value < 0)
      problems.push(`${key} must be a non-negative integer, got ${value}`);
  }
  if (config.probeTimeoutMs >= config.probeIntervalMs)
    problems.push("probeTimeoutMs must be below probeIntervalMs");
  if (config.suspicionMult < 1) problems.push("suspicionMult must be at least 1");
  if (config.suspicionMaxTimeoutMult < 1)
    problems.push("suspicionMaxTimeoutMult must be at least 1");
  if (config.awarenessMaxMultiplier < 1) problems.push("awarenessMaxMultiplier must be at least 1");
  if (config.probeIntervalMs < 1 || config.gossipIntervalMs < 1 || config.pushPullIntervalMs < 1)
    problems.push("intervals must be positive");
  // An update larger than the piggyback budget could never be sent.
  if (config.metadataBytesMax + 256 > config.piggybackBytesMax)
    problems.push("metadataBytesMax + 256 must not exceed piggybackBytesMax");
  if (problems.length > 0)
    throw new BrigadeError("InvalidConfig", `membership config: ${problems.join("; ")}`);
  return Object.freeze({ ...config });
}
