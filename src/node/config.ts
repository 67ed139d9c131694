/**
 * @module A node's settings: each with a default and the reason for it, read from flags,
 * `BRIGADE_*` environment variables and an optional JSON config file, in that precedence.
 * Parsed from `unknown` at the edge and validated once; the rest of the node sees a frozen,
 * valid `NodeConfig`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  type MembershipConfig,
  type MembershipProfile,
  membershipProfiles,
  validateMembershipConfig,
} from "../core/membership/config.js";
import { type HostPort, parseHostPort } from "../lib/address.js";
import { BrigadeError } from "../lib/errors.js";
import { type TransportConfig, transportDefaults } from "../transport/config.js";
import type { ServiceDefinition } from "./discovery.js";

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

export interface NodeConfig {
  readonly id: string;
  readonly clusterId: string;
  readonly listen: HostPort;
  readonly advertise: string | null;
  readonly api: HostPort;
  readonly join: readonly string[];
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly maxClockOffsetMs: number;
  readonly transport: TransportConfig;
  readonly membershipProfile: MembershipProfile;
  readonly membership: MembershipConfig;
  readonly zone: string | null;
  readonly roles: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly services: readonly ServiceDefinition[];
  /** Shared secret authenticating gossip datagrams, or null. */
  readonly gossipKey: Buffer | null;
  /** Node ids of the replicated register's Raft group; empty = this node runs no Raft. */
  readonly raftVoters: readonly string[];
  readonly raftTickMs: number;
  readonly raftSnapshotEntries: number;
  /** How long a node must be dead before its shard replicas are re-created on other nodes. */
  readonly placementDeadDelayMs: number;
}

interface SettingSpec {
  /** camelCase key in the config file; the flag is its kebab-case form, the variable BRIGADE_ + SNAKE_CASE. */
  readonly key: string;
  readonly defaultText: string;
  readonly description: string;
}

/** Every setting, its default and why: the source of `brigade node --help` and the README table. */
export const nodeSettings: readonly SettingSpec[] = [
  {
    key: "id",
    defaultText: "n1",
    description: "node id, unique in the cluster; stored in the data directory on first start",
  },
  {
    key: "clusterId",
    defaultText: "brigade-local",
    description: "cluster id; peers presenting another one are refused",
  },
  {
    key: "listen",
    defaultText: "127.0.0.1:7001",
    description: "peer address (node-to-node TCP); port 0 picks a free port",
  },
  {
    key: "advertise",
    defaultText: "the listen address",
    description: "address other nodes dial to reach this one",
  },
  {
    key: "api",
    defaultText: "127.0.0.1:8001",
    description: "HTTP API address (health, status, metrics, faults)",
  },
  {
    key: "join",
    defaultText: "none",
    description: "comma-separated peer addresses to dial; any reachable one is enough",
  },
  {
    key: "data",
    defaultText: "./data/<id>",
    description: "data directory, owned by one node id and cluster id",
  },
  { key: "logLevel", defaultText: "info", description: `log level: ${logLevels.join(", ")}` },
  {
    key: "maxClockOffsetMs",
    defaultText: "500",
    description: "largest clock offset accepted from a peer's hybrid logical clock",
  },
  {
    key: "requestTimeoutMs",
    defaultText: String(transportDefaults.requestTimeoutMs),
    description: "default deadline of a node-to-node request",
  },
  {
    key: "frameBytesMax",
    defaultText: String(transportDefaults.frameBytesMax),
    description: "largest node-to-node message, in bytes",
  },
  {
    key: "sendQueueFramesMax",
    defaultText: String(transportDefaults.sendQueueFramesMax),
    description: "messages queued per peer before sends fail with QueueFull",
  },
  {
    key: "sendQueueBytesMax",
    defaultText: String(transportDefaults.sendQueueBytesMax),
    description: "bytes queued per peer before sends fail with QueueFull",
  },
  {
    key: "idleTimeoutMs",
    defaultText: String(transportDefaults.idleTimeoutMs),
    description: "a connection silent this long is closed and redialed",
  },
  {
    key: "membershipProfile",
    defaultText: "lan",
    description: "gossip timing profile: lan, local (one machine) or wan (memberlist's profiles)",
  },
  {
    key: "probeIntervalMs",
    defaultText: "profile (lan 1000)",
    description: "time between failure-detector probes",
  },
  {
    key: "probeTimeoutMs",
    defaultText: "profile (lan 500)",
    description: "a probe unanswered this long goes indirect",
  },
  {
    key: "suspicionMult",
    defaultText: "profile (lan 4)",
    description: "suspicion lasts suspicionMult*log10(n)*probe interval (up to 6x that)",
  },
  {
    key: "reapAfterMs",
    defaultText: "900000",
    description: "dead and left members are forgotten after this long",
  },
  { key: "zone", defaultText: "none", description: "zone tag advertised to the cluster" },
  {
    key: "roles",
    defaultText: "none",
    description: "comma-separated roles advertised to the cluster",
  },
  {
    key: "tags",
    defaultText: "none",
    description: "comma-separated key=value tags advertised to the cluster",
  },
  {
    key: "services",
    defaultText: "none",
    description: "comma-separated name:port services hosted here (health checks: config file)",
  },
  {
    key: "raftVoters",
    defaultText: "none",
    description:
      "comma-separated founding voters of the replicated register's Raft group; a node not listed joins as a non-member until a leader adds it",
  },
  {
    key: "raftTickMs",
    defaultText: "100",
    description: "Raft tick; election timeout is 10-20 ticks, heartbeats every tick",
  },
  {
    key: "raftSnapshotEntries",
    defaultText: "10000",
    description: "applied entries between Raft snapshots (each lets the log and WAL behind it go)",
  },
  {
    key: "placementDeadDelayMs",
    defaultText: "60000",
    description: "how long a node must be dead before its shard replicas are re-created elsewhere",
  },
  {
    key: "gossipKey",
    defaultText: "none",
    description: "base64 key (16, 24 or 32 bytes) that authenticates gossip datagrams",
  },
];

export type RawSettings = Partial<Record<string, unknown>>;

/** The environment variable of a setting: clusterId → BRIGADE_CLUSTER_ID. */
export function environmentVariable(key: string): string {
  return `BRIGADE_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** Reads BRIGADE_* variables for the known settings, e.g. BRIGADE_CLUSTER_ID, BRIGADE_LOG_LEVEL. */
export function settingsFromEnvironment(environment: NodeJS.ProcessEnv): RawSettings {
  const settings: RawSettings = {};
  for (const { key } of nodeSettings) {
    const value = environment[environmentVariable(key)];
    if (value !== undefined && value !== "") settings[key] = value;
  }
  return settings;
}

/** Reads a JSON config file; any problem is one clear InvalidConfig line naming the file. */
export function settingsFromFile(file: string): RawSettings {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new BrigadeError(
      "InvalidConfig",
      `cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BrigadeError(
      "InvalidConfig",
      `config file ${file} is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new BrigadeError("InvalidConfig", `config file ${file} must hold a JSON object`);
  }
  const known = new Set(nodeSettings.map((setting) => setting.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new BrigadeError(
        "InvalidConfig",
        `config file ${file}: unknown setting "${key}" (known: ${[...known].join(", ")})`,
      );
    }
  }
  return parsed as RawSettings;
}

/** Merges layers (later wins) and validates. */
export function resolveNodeConfig(...layers: RawSettings[]): NodeConfig {
  const merged: RawSettings = Object.assign({}, ...layers.map((layer) => withoutUndefined(layer)));
  const id = text(merged, "id", "n1");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) {
    throw new BrigadeError(
      "InvalidConfig",
      `invalid node id "${id}": use 1-64 letters, digits, '.', '_' or '-'`,
    );
  }
  const clusterId = text(merged, "clusterId", "brigade-local");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(clusterId)) {
    throw new BrigadeError(
      "InvalidConfig",
      `invalid cluster id "${clusterId}": use 1-64 letters, digits, '.', '_' or '-'`,
    );
  }
  const listen = address(merged, "listen", "127.0.0.1:7001", true);
  const advertiseText = merged.advertise === undefined ? null : text(merged, "advertise", "");
  if (advertiseText !== null) parseAddressSetting("advertise", advertiseText, false);
  const api = address(merged, "api", "127.0.0.1:8001", true);
  const joinValue = merged.join;
  const join = (
    Array.isArray(joinValue) ? joinValue.map(String) : String(joinValue ?? "").split(",")
  )
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const entry of join) parseAddressSetting("join", entry, false);
  const dataDir = path.resolve(text(merged, "data", path.join("data", id)));
  const logLevel = text(merged, "logLevel", "info") as LogLevel;
  if (!logLevels.includes(logLevel)) {
    throw new BrigadeError(
      "InvalidConfig",
      `invalid log level "${logLevel}": use one of ${logLevels.join(", ")}`,
    );
  }
  const transport: TransportConfig = Object.freeze({
    ...transportDefaults,
    requestTimeoutMs: integer(
      merged,
      "requestTimeoutMs",
      transportDefaults.requestTimeoutMs,
      1,
      3_600_000,
    ),
    frameBytesMax: integer(
      merged,
      "frameBytesMax",
      transportDefaults.frameBytesMax,
      1024,
      256 * 1024 * 1024,
    ),
    sendQueueFramesMax: integer(
      merged,
      "sendQueueFramesMax",
      transportDefaults.sendQueueFramesMax,
      1,
      10_000_000,
    ),
    sendQueueBytesMax: integer(
      merged,
      "sendQueueBytesMax",
      transportDefaults.sendQueueBytesMax,
      1024,
      4 * 1024 ** 3,
    ),
    idleTimeoutMs: integer(
      merged,
      "idleTimeoutMs",
      transportDefaults.idleTimeoutMs,
      100,
      3_600_000,
    ),
  });
  if (transport.idleTimeoutMs <= transport.pingIntervalMs) {
    throw new BrigadeError(
      "InvalidConfig",
      `idleTimeoutMs (${transport.idleTimeoutMs}) must exceed the ping interval (${transport.pingIntervalMs} ms)`,
    );
  }
  const profile = text(merged, "membershipProfile", "lan") as MembershipProfile;
  if (!(profile in membershipProfiles)) {
    throw new BrigadeError(
      "InvalidConfig",
      `invalid membership profile "${profile}": use lan, local or wan`,
    );
  }
  const base = membershipProfiles[profile];
  let membership: MembershipConfig;
  try {
    membership = validateMembershipConfig({
      ...base,
      probeIntervalMs: integer(merged, "probeIntervalMs", base.probeIntervalMs, 10, 600_000),
      probeTimeoutMs: integer(merged, "probeTimeoutMs", base.probeTimeoutMs, 5, 600_000),
      suspicionMult: integer(merged, "suspicionMult", base.suspicionMult, 1, 100),
      reapAfterMs: integer(merged, "reapAfterMs", base.reapAfterMs, 1_000, 30 * 24 * 3_600_000),
    });
  } catch (error) {
    throw new BrigadeError("InvalidConfig", (error as Error).message);
  }
  return Object.freeze({
    id,
    clusterId,
    listen,
    advertise: advertiseText,
    api,
    join: Object.freeze(join),
    dataDir,
    logLevel,
    maxClockOffsetMs: integer(merged, "maxClockOffsetMs", 500, 1, 3_600_000),
    transport,
    membershipProfile: profile,
    membership,
    zone: merged.zone === undefined ? null : text(merged, "zone", ""),
    roles: list(merged, "roles"),
    tags: keyValues(merged, "tags"),
    services: services(merged),
    gossipKey: gossipKey(merged),
    raftVoters: raftVoters(merged),
    raftTickMs: integer(merged, "raftTickMs", 100, 5, 10_000),
    raftSnapshotEntries: integer(merged, "raftSnapshotEntries", 10_000, 1, 100_000_000),
    placementDeadDelayMs: integer(merged, "placementDeadDelayMs", 60_000, 0, 86_400_000),
  });
}

function list(settings: RawSettings, key: string): string[] {
  const value = settings[key];
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value.map(String) : String(value).split(",");
  return items.map((item) => item.trim()).filter((item) => item !== "");
}

function keyValues(settings: RawSettings, key: string): Record<string, string> {
  const value = settings[key];
  if (value === undefined) return {};
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([name, entry]) => [name, String(entry)]));
  }
  const result: Record<string, string> = {};
  for (const pair of list(settings, key)) {
    const index = pair.indexOf("=");
    if (index <= 0)
      throw new BrigadeError("InvalidConfig", `setting ${key}: expected key=value, got "${pair}"`);
    result[pair.slice(0, index)] = pair.slice(index + 1);
  }
  return result;
}

function services(settings: RawSettings): ServiceDefinition[] {
  const value = settings.services;
  if (value === undefined) return [];
  if (Array.isArray(value) && value.every((entry) => typeof entry === "object" && entry !== null)) {
    return value.map((entry) => {
      const definition = entry as {
        name?: unknown;
        port?: unknown;
        tags?: unknown;
        check?: unknown;
      };
      if (typeof definition.name !== "string" || !Number.isInteger(definition.port)) {
        throw new BrigadeError(
          "InvalidConfig",
          `setting services: each service needs a name and an integer port, got ${JSON.stringify(entry)}`,
        );
      }
      const check = definition.check as
        | { http?: unknown; intervalMs?: unknown; timeoutMs?: unknown }
        | undefined;
      if (check !== undefined && typeof check.http !== "string") {
        throw new BrigadeError(
          "InvalidConfig",
          `service ${definition.name}: check must be {"http": "<url>", "intervalMs"?, "timeoutMs"?}`,
        );
      }
      return {
        name: definition.name,
        port: definition.port as number,
        ...(typeof definition.tags === "object" && definition.tags !== null
          ? { tags: definition.tags as Record<string, string> }
          : {}),
        ...(check === undefined
          ? {}
          : {
              check: {
                http: check.http as string,
                ...(Number.isInteger(check.intervalMs)
                  ? { intervalMs: check.intervalMs as number }
                  : {}),
                ...(Number.isInteger(check.timeoutMs)
                  ? { timeoutMs: check.timeoutMs as number }
                  : {}),
              },
            }),
      };
    });
  }
  return list(settings, "services").map((entry) => {
    const [name, portText] = entry.split(":");
    const port = Number(portText);
    if (!name || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new BrigadeError(
        "InvalidConfig",
        `setting services: expected name:port, got "${entry}"`,
      );
    }
    return { name, port };
  });
}

function gossipKey(settings: RawSettings): Buffer | null {
  if (settings.gossipKey === undefined) return null;
  const key = Buffer.from(text(settings, "gossipKey", ""), "base64");
  if (![16, 24, 32].includes(key.length)) {
    throw new BrigadeError(
      "InvalidConfig",
      `gossip key must be 16, 24 or 32 bytes in base64, got ${key.length} bytes`,
    );
  }
  return key;
}

function withoutUndefined(layer: RawSettings): RawSettings {
  return Object.fromEntries(Object.entries(layer).filter(([, value]) => value !== undefined));
}

function text(settings: RawSettings, key: string, fallback: string): string {
  const value = settings[key];
  if (value === undefined) return fallback;
  if (typeof value !== "string" && typeof value !== "number") {
    throw new BrigadeError(
      "InvalidConfig",
      `setting ${key} must be a string, got ${JSON.stringify(value)}`,
    );
  }
  return String(value);
}

function integer(
  settings: RawSettings,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = settings[key];
  if (value === undefined) return fallback;
  const number = typeof value === "number" ? value : Number(String(value).trim());
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new BrigadeError(
      "InvalidConfig",
      `setting ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

function address(
  settings: RawSettings,
  key: string,
  fallback: string,
  allowZero: boolean,
): HostPort {
  return parseAddressSetting(key, text(settings, key, fallback), allowZero);
}

function parseAddressSetting(key: string, value: string, allowZero: boolean): HostPort {
  try {
    return parseHostPort(value, { allowZero });
  } catch (error) {
    throw new BrigadeError("InvalidConfig", `--${kebab(key)}: ${(error as Error).message}`);
  }
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

function raftVoters(settings: RawSettings): string[] {
  const voters = list(settings, "raftVoters");
  if (new Set(voters).size !== voters.length)
    throw new BrigadeError("InvalidConfig", "--raft-voters lists a node twice");
  return voters;
}
