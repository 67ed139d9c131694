/**
 * @module Service discovery on top of membership: a node advertises its zone, roles,
 * version, API address, free-form tags and the services it hosts (with their health) as
 * membership tags; `find(service, { tags })` returns the healthy instances across the
 * cluster. A failing health check marks the service instance critical — gossiped like any
 * tag change — without touching the node's own liveness.
 *
 * Tag layout (flat strings, gossiped): `zone`, `roles` (comma-separated), `version`, `api`,
 * user tags under their own names, and one `service:<name>` key per service holding JSON
 * `{"port":8080,"status":"passing","tags":{...}}`.
 */

import type { MemberRecord, MemberTags } from "../core/membership/messages.js";
import { BrigadeError } from "../lib/errors.js";
import type { Logger } from "../transport/tcp-transport.js";
import type { MembershipDriver } from "./membership-driver.js";

export type HealthStatus = "passing" | "critical";

export interface HttpCheck {
  /** Polled with GET; any 2xx answer within the timeout is passing. */
  readonly http: string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}
export type FunctionCheck = () => boolean | Promise<boolean>;

export interface ServiceDefinition {
  readonly name: string;
  readonly port: number;
  readonly tags?: Readonly<Record<string, string>>;
  readonly check?: HttpCheck | FunctionCheck;
  /** Interval of a function check (HTTP checks carry their own). */
  readonly checkIntervalMs?: number;
}

export interface ServiceInstance {
  readonly service: string;
  readonly nodeId: string;
  /** The host of the node's advertised address, and the service's port. */
  readonly host: string;
  readonly port: number;
  readonly status: HealthStatus;
  readonly tags: Readonly<Record<string, string>>;
  readonly zone: string | null;
}

export interface MemberView extends MemberRecord {
  readonly zone: string | null;
  readonly roles: readonly string[];
  readonly version: string | null;
  readonly api: string | null;
  /** User tags (without the reserved keys). */
  readonly userTags: Readonly<Record<string, string>>;
  readonly services: ReadonlyArray<{
    name: string;
    port: number;
    status: HealthStatus;
    tags: Record<string, string>;
  }>;
}

export interface NodeIdentityTags {
  readonly zone: string | null;
  readonly roles: readonly string[];
  readonly version: string;
  readonly api: string;
}

/** Default health-check interval: quick enough to matter, slow enough to be cheap. */
export const checkIntervalMsDefault = 5_000;
/** Default health-check timeout. */
export const checkTimeoutMsDefault = 2_000;
const reservedKeys = new Set(["zone", "roles", "version", "api"]);
const servicePrefix = "service:";
const serviceNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

interface RegisteredService {
  readonly definition: ServiceDefinition;
  status: HealthStatus;
  timer: NodeJS.Timeout | null;
}

export class Discovery {
  private readonly services = new Map<string, RegisteredService>();
  private userTags: Record<string, string>;

  constructor(
    private readonly membership: MembershipDriver,
    private readonly identity: NodeIdentityTags,
    userTags: Readonly<Record<string, string>>,
    private readonly logger: Logger,
  ) {
    this.userTags = validateUserTags(userTags);
  }

  /** The tags this node advertises now (what `membership` is started with). */
  tags(): MemberTags {
    const tags: Record<string, string> = {
      ...this.userTags,
      version: this.identity.version,
      api: this.identity.api,
    };
    if (this.identity.zone) tags.zone = this.identity.zone;
    if (this.identity.roles.length > 0) tags.roles = this.identity.roles.join(",");
    for (const [name, service] of this.services) {
      tags[`${servicePrefix}${name}`] = JSON.stringify({
        port: service.definition.port,
        status: service.status,
        tags: service.definition.tags ?? {},
      });
    }
    return tags;
  }

  /** Replaces the user tags; MetadataTooLarge (and nothing changes) past the limit. */
  setUserTags(tags: Readonly<Record<string, string>>): void {
    const previous = this.userTags;
    this.userTags = validateUserTags(tags);
    this.publish(() => (this.userTags = previous));
  }

  /** Advertises a service; with a check, it starts `critical` until the first check passes. */
  register(definition: ServiceDefinition): void {
    if (!serviceNamePattern.test(definition.name)) {
      throw new BrigadeError(
        "InvalidArgument",
        `invalid service name "${definition.name}": 1-63 letters, digits, '.', '_' or '-'`,
      );
    }
    if (!Number.isInteger(definition.port) || definition.port < 1 || definition.port > 65535) {
      throw new BrigadeError(
        "InvalidArgument",
        `service ${definition.name}: port must be 1..65535, got ${definition.port}`,
      );
    }
    const previous = this.services.get(definition.name);
    const service: RegisteredService = {
      definition,
      status: definition.check ? "critical" : "passing",
      timer: null,
    };
    this.services.set(definition.name, service);
    // Publish before retiring the old registration, so a refusal leaves it fully in place.
    this.publish(() => {
      if (previous === undefined) this.services.delete(definition.name);
      else this.services.set(definition.name, previous);
    });
    if (previous?.timer) clearInterval(previous.timer);
    if (definition.check) this.startChecks(service);
  }

  deregister(name: string, publish = true): void {
    const service = this.services.get(name);
    if (service === undefined) return;
    if (service.timer) clearInterval(service.timer);
    this.services.delete(name);
    if (publish) this.publish(() => {});
  }

  /** Healthy instances of `service` on alive members, optionally filtered by service or node tags. */
  find(
    service: string,
    options: { tags?: Readonly<Record<string, string>>; includeCritical?: boolean } = {},
  ): ServiceInstance[] {
    const instances: ServiceInstance[] = [];
    for (const member of this.members()) {
      if (member.state !== "alive") continue;
      for (const offered of member.services) {
        if (offered.name !== service) continue;
        if (offered.status !== "passing" && !options.includeCritical) continue;
        const matches = Object.entries(options.tags ?? {}).every(
          ([key, value]) => offered.tags[key] === value || member.userTags[key] === value,
        );
        if (!matches) continue;
        instances.push({
          service,
          nodeId: member.id,
          host: member.address.slice(0, member.address.lastIndexOf(":")).replace(/^\[|\]$/g, ""),
          port: offered.port,
          status: offered.status,
          tags: offered.tags,
          zone: member.zone,
        });
      }
    }
    return instances;
  }

  members(): MemberView[] {
    return this.membership.members().map(viewOf);
  }

  stop(): void {
    for (const service of this.services.values()) if (service.timer) clearInterval(service.timer);
  }

  private publish(undo: () => void): void {
    try {
      this.membership.updateTags(this.tags());
    } catch (error) {
      undo();
      throw error;
    }
  }

  private startChecks(service: RegisteredService): void {
    const check = service.definition.check as HttpCheck | FunctionCheck;
    const intervalMs =
      typeof check === "function"
        ? (service.definition.checkIntervalMs ?? checkIntervalMsDefault)
        : (check.intervalMs ?? checkIntervalMsDefault);
    let running = false;
    const run = async () => {
      if (running) return;
      running = true;
      const passing = await runCheck(check).catch(() => false);
      running = false;
      const status: HealthStatus = passing ? "passing" : "critical";
      if (this.services.get(service.definition.name) !== service || status === service.status)
        return;
      service.status = status;
      this.logger.info(
        { service: service.definition.name, status },
        `service ${service.definition.name} is ${status}`,
      );
      try {
        this.publish(() => {});
      } catch (error) {
        this.logger.warn({ err: error }, "could not publish service health");
      }
    };
    void run();
    service.timer = setInterval(run, intervalMs);
    service.timer.unref();
  }
}

async function runCheck(check: HttpCheck | FunctionCheck): Promise<boolean> {
  if (typeof check === "function") return Boolean(await check());
  const response = await fetch(check.http, {
    signal: AbortSignal.timeout(check.timeoutMs ?? checkTimeoutMsDefault),
  });
  await response.arrayBuffer();
  return response.ok;
}

function validateUserTags(tags: Readonly<Record<string, string>>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags)) {
    if (reservedKeys.has(key) || key.startsWith(servicePrefix)) {
      throw new BrigadeError(
        "InvalidArgument",
        `tag "${key}" is reserved (zone, roles, version, api, service:*)`,
      );
    }
    if (typeof value !== "string")
      throw new BrigadeError("InvalidArgument", `tag "${key}" must have a string value`);
    result[key] = value;
  }
  return result;
}

export function viewOf(member: MemberRecord): MemberView {
  const userTags: Record<string, string> = {};
  const services: Array<{
    name: string;
    port: number;
    status: HealthStatus;
    tags: Record<string, string>;
  }> = [];
  for (const [key, value] of Object.entries(member.tags)) {
    if (key.startsWith(servicePrefix)) {
      try {
        const parsed = JSON.parse(value) as {
          port: number;
          status: HealthStatus;
          tags: Record<string, string>;
        };
        services.push({
          name: key.slice(servicePrefix.length),
          port: parsed.port,
          status: parsed.status === "passing" ? "passing" : "critical",
          tags: parsed.tags ?? {},
        });
      } catch {
        // a malformed service tag from a peer is not ours to crash on
      }
    } else if (!reservedKeys.has(key)) {
      userTags[key] = value;
    }
  }
  return {
    ...member,
    zone: member.tags.zone ?? null,
    roles: member.tags.roles ? member.tags.roles.split(",") : [],
    version: member.tags.version ?? null,
    api: member.tags.api ?? null,
    userTags,
    services,
  };
}
