/** @module `brigade members`, `brigade services` and `brigade tags`: membership and discovery as one node sees them. */
import type { Command } from "commander";
import type { MemberView, ServiceInstance } from "../node/discovery.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { apiBase, callApi } from "./http.js";
import { apiOption } from "./options.js";

export function registerMembersCommands(program: Command): void {
  program
    .command("members")
    .description(
      "list the cluster's members as a node sees them (id, address, state, incarnation, zone, tags)",
    )
    .addOption(apiOption())
    .option("--json", "print as JSON")
    .action(async (options: { api: string; json?: boolean }) => {
      const members = (await callApi(apiBase(options.api), "GET", "/v1/members")) as MemberView[];
      if (options.json) {
        process.stdout.write(`${JSON.stringify(members, null, 2)}\n`);
        return;
      }
      const rows = members.map((member) => [
        member.id,
        member.address,
        member.state,
        String(member.incarnation),
        member.zone ?? "-",
        [
          ...member.roles.map((role) => `role=${role}`),
          ...Object.entries(member.userTags).map(([key, value]) => `${key}=${value}`),
          ...member.services.map(
            (service) => `svc=${service.name}:${service.port}(${service.status})`,
          ),
        ].join(" "),
      ]);
      process.stdout.write(
        `${table([["ID", "ADDRESS", "STATE", "INC", "ZONE", "TAGS"], ...rows])}\n`,
      );
    });

  program
    .command("services")
    .description("find the healthy instances of a service across the cluster")
    .argument("<name>", "service name")
    .addOption(apiOption())
    .option("--tag <key=value...>", "only instances with these service or node tags")
    .option("--all", "include instances whose health check fails")
    .option("--json", "print as JSON")
    .action(
      async (
        name: string,
        options: { api: string; tag?: string[]; all?: boolean; json?: boolean },
      ) => {
        const query = new URLSearchParams();
        for (const tag of options.tag ?? []) query.append("tag", tag);
        if (options.all) query.set("includeCritical", "true");
        const instances = (await callApi(
          apiBase(options.api),
          "GET",
          `/v1/services/${encodeURIComponent(name)}?${query}`,
        )) as ServiceInstance[];
        if (options.json) {
          process.stdout.write(`${JSON.stringify(instances, null, 2)}\n`);
          return;
        }
        if (instances.length === 0) {
          process.stdout.write(`no ${options.all ? "" : "healthy "}instances of ${name}\n`);
          process.exitCode = 1;
          return;
        }
        const rows = instances.map((instance) => [
          instance.nodeId,
          `${instance.host}:${instance.port}`,
          instance.status,
          instance.zone ?? "-",
          Object.entries(instance.tags)
            .map(([key, value]) => `${key}=${value}`)
            .join(" "),
        ]);
        process.stdout.write(
          `${table([["NODE", "ADDRESS", "STATUS", "ZONE", "TAGS"], ...rows])}\n`,
        );
      },
    );

  program
    .command("tags")
    .description("replace a node's user tags at runtime (gossiped to the cluster)")
    .argument("<key=value...>", "tags")
    .addOption(apiOption())
    .action(async (pairs: string[], options: { api: string }) => {
      const tags: Record<string, string> = {};
      for (const pair of pairs) {
        const index = pair.indexOf("=");
        if (index <= 0) throw new CliError(`expected key=value, got "${pair}"`, 2);
        tags[pair.slice(0, index)] = pair.slice(index + 1);
      }
      await callApi(apiBase(options.api), "PUT", "/v1/tags", tags);
      process.stdout.write(`${JSON.stringify(tags)}\n`);
    });
}
