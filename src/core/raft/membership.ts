/**
 * @module Cluster configurations as values (thesis ch. 4): the one-server-at-a-time change
 * rules, and the byte encoding a `config` log entry carries. Pure.
 *
 * Why one at a time: the majorities of two configurations that differ by one voter always
 * overlap, so no moment exists where two disjoint majorities could each elect a leader;
 * that is what lets a change take effect as soon as it is appended, without joint consensus.
 */
import type { NodeId } from "../sans-io.js";
import type { ClusterConfig, MembershipChange } from "./types.js";

/** Every member, voters first. */
export function membersOf(config: ClusterConfig): NodeId[] {
  return [...config.voters, ...config.learners];
}

export function quorumOf(config: ClusterConfig): number {
  return Math.floor(config.voters.length / 2) + 1;
}

/** The configuration after `change`, or why the change is not allowed. */
export function applyMembershipChange(
  config: ClusterConfig,
  change: MembershipChange,
): { ok: true; config: ClusterConfig } | { ok: false; reason: string } {
  const { node } = change;
  const isVoter = config.voters.includes(node);
  const isLearner = config.learners.includes(node);
  switch (change.type) {
    case "add-learner":
      if (isVoter || isLearner) return { ok: false, reason: `${node} is already a member` };
      return { ok: true, config: { voters: config.voters, learners: [...config.learners, node] } };
    case "promote":
      if (!isLearner) return { ok: false, reason: `${node} is not a learner` };
      return {
        ok: true,
        config: {
          voters: [...config.voters, node],
          learners: config.learners.filter((id) => id !== node),
        },
      };
    case "remove":
      if (!isVoter && !isLearner) return { ok: false, reason: `${node} is not a member` };
      if (isVoter && config.voters.length === 1)
        return { ok: false, reason: "cannot remove the last voter" };
      return {
        ok: true,
        config: {
          voters: config.voters.filter((id) => id !== node),
          learners: config.learners.filter((id) => id !== node),
        },
      };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeClusterConfig(config: ClusterConfig): Uint8Array {
  return encoder.encode(JSON.stringify({ voters: config.voters, learners: config.learners }));
}

/** The configuration in a `config` entry; null if the bytes are not one. */
export function decodeClusterConfig(data: Uint8Array): ClusterConfig | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  return isClusterConfig(value) ? { voters: value.voters, learners: value.learners } : null;
}

/**
 * A well-formed configuration: at least one voter, string ids, no duplicates, nobody both
 * voter and learner. (A joiner's empty bootstrap configuration is never encoded.)
 */
export function isClusterConfig(value: unknown): value is ClusterConfig {
  if (typeof value !== "object" || value === null) return false;
  const { voters, learners } = value as Record<string, unknown>;
  if (!Array.isArray(voters) || !Array.isArray(learners) || voters.length === 0) return false;
  const all = [...voters, ...learners];
  return (
    all.every((id) => typeof id === "string" && id.length > 0) && new Set(all).size === all.length
  );
}
