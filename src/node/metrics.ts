/** @module Prometheus metrics of one node (prom-client), read from the components' own counters at scrape time. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { HybridLogicalClock } from "../clocks/hlc.js";
import type { RaftStatus } from "../core/raft/raft-node.js";
import type { TcpTransport, TransportStats } from "../transport/tcp-transport.js";
import type { GossipStats, MembershipDriver } from "./membership-driver.js";
import type { RaftHost } from "./raft/raft-host.js";

const transportCounters: ReadonlyArray<[keyof TransportStats, string, string]> = [
  ["framesSent", "brigade_transport_frames_sent_total", "Frames handed to sockets"],
  ["framesReceived", "brigade_transport_frames_received_total", "Frames decoded from sockets"],
  ["bytesSent", "brigade_transport_bytes_sent_total", "Bytes handed to sockets"],
  ["bytesReceived", "brigade_transport_bytes_received_total", "Bytes read from sockets"],
  [
    "socketWrites",
    "brigade_transport_socket_writes_total",
    "Socket write calls (frames per write shows coalescing)",
  ],
  [
    "connectionsOpened",
    "brigade_transport_connections_opened_total",
    "Outbound connections that completed the handshake",
  ],
  [
    "connectionsClosed",
    "brigade_transport_connections_closed_total",
    "Open connections that closed",
  ],
  [
    "handshakeFailures",
    "brigade_transport_handshake_failures_total",
    "Handshakes refused or failed",
  ],
  [
    "framesOversize",
    "brigade_transport_frames_oversize_total",
    "Connections closed for a frame over the size limit",
  ],
  [
    "framesMalformed",
    "brigade_transport_frames_malformed_total",
    "Connections closed for an undecodable frame",
  ],
  [
    "framesTruncated",
    "brigade_transport_frames_truncated_total",
    "Connections that ended inside a frame",
  ],
  [
    "requestsTimedOut",
    "brigade_transport_requests_timed_out_total",
    "Requests that passed their deadline",
  ],
  [
    "lateResponses",
    "brigade_transport_late_responses_total",
    "Responses that arrived after their deadline and were dropped",
  ],
  [
    "queueFullRejections",
    "brigade_transport_queue_full_total",
    "Sends refused because a queue was full",
  ],
  [
    "clockOffsetRejections",
    "brigade_transport_clock_offset_rejections_total",
    "Frames refused for a clock too far ahead",
  ],
  [
    "unroutableFrames",
    "brigade_transport_unroutable_total",
    "Messages or requests with no handler",
  ],
];

export function createNodeMetrics(options: {
  transport: TcpTransport;
  clock: HybridLogicalClock;
  nodeId: string;
  membership: MembershipDriver;
  raft: RaftHost | null;
}): Registry {
  const { transport, clock } = options;
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.nodeId });
  collectDefaultMetrics({ register: registry });
  for (const [field, name, help] of transportCounters)
    mirrorCounter(registry, name, help, () => transport.stats[field]);
  mirrorCounter(
    registry,
    "brigade_fault_frames_dropped_total",
    "Frames discarded by fault injection",
    () => transport.faults.droppedFrames,
  );
  new Gauge({
    name: "brigade_transport_peers_connected",
    help: "Peers with an open outbound connection",
    registers: [registry],
    collect() {
      this.set(transport.connectedPeerIds().length);
    },
  });
  new Gauge({
    name: "brigade_transport_queued_frames",
    help: "Frames waiting to be written, across peers",
    registers: [registry],
    collect() {
      this.set(transport.queuedFrames());
    },
  });
  new Gauge({
    name: "brigade_transport_pending_requests",
    help: "Requests awaiting a response",
    registers: [registry],
    collect() {
      this.set(transport.pendingRequests());
    },
  });
  new Gauge({
    name: "brigade_hlc_wall_ms",
    help: "Wall component of this node's hybrid logical clock",
    registers: [registry],
    collect() {
      this.set(clock.peek().wallMs);
    },
  });
  const { membership } = options;
  for (const [field, name, help] of gossipCounters)
    mirrorCounter(registry, name, help, () => membership.stats[field]);
  new Gauge({
    name: "brigade_membership_members",
    help: "Members by state, as this node sees them",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
      for (const member of membership.members())
        counts[member.state] = (counts[member.state] ?? 0) + 1;
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: "brigade_membership_health_score",
    help: "Lifeguard local health score (0 = healthy; timeouts scale by score + 1)",
    registers: [registry],
    collect() {
      this.set(membership.healthScore);
    },
  });
  new Gauge({
    name: "brigade_membership_incarnation",
    help: "This node's incarnation number",
    registers: [registry],
    collect() {
      this.set(membership.incarnation);
    },
  });
  if (options.raft !== null) addRaftMetrics(registry, options.raft);
  return registry;
}

function addRaftMetrics(registry: Registry, raft: RaftHost): void {
  const roles = ["follower", "pre-candidate", "candidate", "leader"];
  /** One gauge per group and field, read at scrape time. */
  const perGroup = (name: string, help: string, value: (status: RaftStatus) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["group"],
      registers: [registry],
      collect() {
        this.reset();
        for (const group of raft.groups())
          this.set({ group: group.id }, value(group.node.status()));
      },
    });
  perGroup("brigade_raft_term", "Current Raft term", (status) => status.term);
  perGroup("brigade_raft_commit_index", "Highest committed log index known here", (s) => s.commit);
  perGroup("brigade_raft_applied_index", "Highest log index applied here", (s) => s.applied);
  perGroup("brigade_raft_snapshot_index", "Index of the latest snapshot", (s) => s.snapshotIndex);
  perGroup(
    "brigade_raft_log_entries",
    "Entries held in memory (bounded by snapshots)",
    (s) => s.lastIndex - s.firstIndex + 1,
  );
  new Gauge({
    name: "brigade_raft_role",
    help: "1 for this node's current Raft role in each group",
    labelNames: ["group", "role"],
    registers: [registry],
    collect() {
      this.reset();
      for (const group of raft.groups()) {
        const role = group.node.role;
        for (const candidate of roles)
          this.set({ group: group.id, role: candidate }, candidate === role ? 1 : 0);
      }
    },
  });
  const groupsTotal = (field: "proposals" | "snapshotsTaken" | "snapshotsInstalled") => () =>
    raft.groups().reduce((sum, group) => sum + group.stats[field], 0);
  mirrorCounter(
    registry,
    "brigade_raft_proposals_total",
    "Commands proposed on this node as leader",
    groupsTotal("proposals"),
  );
  mirrorCounter(
    registry,
    "brigade_raft_snapshots_taken_total",
    "Snapshots this node wrote",
    groupsTotal("snapshotsTaken"),
  );
  mirrorCounter(
    registry,
    "brigade_raft_snapshots_installed_total",
    "Snapshots received from a leader and installed",
    groupsTotal("snapshotsInstalled"),
  );
  mirrorCounter(
    registry,
    "brigade_raft_messages_rejected_total",
    "Raft messages from peers refused as malformed, spoofed or for an unknown group",
    () => raft.stats.messagesRejected,
  );
  mirrorCounter(
    registry,
    "brigade_raft_frames_sent_total",
    "Frames carrying Raft messages (all groups' messages to one node share a frame)",
    () => raft.stats.framesSent,
  );
  const persist = new Histogram({
    name: "brigade_raft_persist_seconds",
    help: "Time to append and fsync one round's Readies (all groups) to the write-ahead log",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });
  const batch = new Histogram({
    name: "brigade_raft_batch_entries",
    help: "Entries persisted per fsync (batching)",
    buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const groupsPerFsync = new Histogram({
    name: "brigade_raft_batch_groups",
    help: "Groups sharing one fsync",
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  raft.onPersist = (durationMs, entries, groups) => {
    persist.observe(durationMs / 1000);
    batch.observe(entries);
    groupsPerFsync.observe(groups);
  };
}

const gossipCounters: ReadonlyArray<[keyof GossipStats, string, string]> = [
  ["datagramsSent", "brigade_gossip_datagrams_sent_total", "Gossip datagrams sent"],
  ["datagramsReceived", "brigade_gossip_datagrams_received_total", "Gossip datagrams received"],
  ["bytesSent", "brigade_gossip_bytes_sent_total", "Gossip bytes sent"],
  ["bytesReceived", "brigade_gossip_bytes_received_total", "Gossip bytes received"],
  ["datagramsMalformed", "brigade_gossip_datagrams_malformed_total", "Garbage datagrams dropped"],
  ["datagramsOversize", "brigade_gossip_datagrams_oversize_total", "Oversize datagrams dropped"],
  [
    "datagramsWrongCluster",
    "brigade_gossip_datagrams_wrong_cluster_total",
    "Datagrams from another cluster dropped",
  ],
  [
    "datagramsUnauthenticated",
    "brigade_gossip_datagrams_unauthenticated_total",
    "Datagrams failing the gossip key check",
  ],
  [
    "datagramsFaulted",
    "brigade_gossip_datagrams_faulted_total",
    "Datagrams dropped by fault injection",
  ],
  [
    "clockOffsetRejections",
    "brigade_gossip_clock_offset_rejections_total",
    "Datagrams refused for a clock too far ahead",
  ],
  ["sendErrors", "brigade_gossip_send_errors_total", "Gossip messages that could not be sent"],
];

/** A Prometheus counter that reports a component's own monotonic count at scrape time. */
function mirrorCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
