/** @module `brigade register` and `brigade raft`: the replicated register over Raft, and its state. */
import type { Command } from "commander";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";
import { apiBase, callApi } from "./http.js";
import { apiOption } from "./options.js";

interface RegisterResult {
  ok: boolean;
  value: string | null;
  index: number;
}

function print(result: RegisterResult, json: boolean | undefined): void {
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${result.value ?? "(unset)"}\n`);
}

export function registerRegisterCommands(program: Command): void {
  const register = program
    .command("register")
    .description("the replicated register: linearizable get/set/cas/incr through Raft");
  const common = (command: Command) =>
    command
      .addOption(apiOption())
      .option(
        "--request-id <id>",
        "idempotency key: a retried command with the same id applies once",
      )
      .option("--json", "print the result (value and log index) as JSON");
  const query = (options: { requestId?: string }) =>
    options.requestId ? `?requestId=${encodeURIComponent(options.requestId)}` : "";

  common(
    register
      .command("get")
      .argument("<key>")
      .description("read a key (linearizable: confirmed by the leader with a quorum)")
      .option(
        "--serializable",
        "answer from this node's replica without asking the leader (may be stale)",
      ),
  ).action(
    async (
      key: string,
      options: { api: string; requestId?: string; json?: boolean; serializable?: boolean },
    ) => {
      const params = new URLSearchParams();
      if (options.requestId) params.set("requestId", options.requestId);
      if (options.serializable) params.set("consistency", "serializable");
      const search = params.size > 0 ? `?${params}` : "";
      print(
        (await callApi(
          apiBase(options.api),
          "GET",
          `/v1/register/${encodeURIComponent(key)}${search}`,
        )) as RegisterResult,
        options.json,
      );
    },
  );
  common(
    register.command("set").argument("<key>").argument("<value>").description("write a key"),
  ).action(
    async (
      key: string,
      value: string,
      options: { api: string; requestId?: string; json?: boolean },
    ) => {
      print(
        (await callApi(
          apiBase(options.api),
          "PUT",
          `/v1/register/${encodeURIComponent(key)}${query(options)}`,
          { value },
        )) as RegisterResult,
        options.json,
      );
    },
  );
  common(
    register
      .command("cas")
      .argument("<key>")
      .argument("<expected>")
      .argument("<value>")
      .description("write a key if it holds <expected> (use --absent for an unset key)"),
  )
    .option("--absent", "expect the key to be unset (ignore <expected>)")
    .action(
      async (
        key: string,
        expected: string,
        value: string,
        options: { api: string; requestId?: string; json?: boolean; absent?: boolean },
      ) => {
        const body = { expected: options.absent ? null : expected, value };
        print(
          (await callApi(
            apiBase(options.api),
            "POST",
            `/v1/register/${encodeURIComponent(key)}/cas${query(options)}`,
            body,
          )) as RegisterResult,
          options.json,
        );
      },
    );
  common(
    register
      .command("incr")
      .argument("<key>")
      .argument("[delta]", "integer, default 1")
      .description("add to a counter"),
  ).action(
    async (
      key: string,
      delta: string | undefined,
      options: { api: string; requestId?: string; json?: boolean },
    ) => {
      const amount = delta === undefined ? 1 : Number(delta);
      if (!Number.isSafeInteger(amount))
        throw new CliError(`delta must be an integer, got "${delta}"`, 2);
      print(
        (await callApi(
          apiBase(options.api),
          "POST",
          `/v1/register/${encodeURIComponent(key)}/incr${query(options)}`,
          { delta: amount },
        )) as RegisterResult,
        options.json,
      );
    },
  );

  const raft = program
    .command("raft")
    .description(
      "a node's Raft state for the replicated register (role, term, leader, commit, applied)",
    )
    .addOption(apiOption())
    .option("--json", "print as JSON")
    .action(async (options: { api: string; json?: boolean }) => {
      const status = (await callApi(apiBase(options.api), "GET", "/v1/raft")) as Record<
        string,
        unknown
      >;
      if (options.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else
        process.stdout.write(
          `${table(Object.entries(status).map(([key, value]) => [key, typeof value === "object" ? JSON.stringify(value) : String(value)]))}\n`,
        );
    });
  // --api and --json belong to `raft` (commander gives options to the parent command), so
  // `member` reads them from there and shows them in its help as global options.
  raft
    .command("member")
    .description(
      "change the register group's membership, one server at a time: add-learner, then promote once caught up; remove",
    )
    .argument("<change>", "add-learner | promote | remove")
    .argument("<node>", "node id, e.g. n4")
    .configureHelp({ showGlobalOptions: true })
    .action(async (change: string, node: string, _options: unknown, command: Command) => {
      const options = command.optsWithGlobals() as { api: string; json?: boolean };
      if (!["add-learner", "promote", "remove"].includes(change))
        throw new CliError(`change must be add-learner, promote or remove, got "${change}"`, 2);
      const result = (await callApi(apiBase(options.api), "POST", "/v1/raft/members", {
        type: change,
        node,
      })) as { config: { voters: string[]; learners: string[] } };
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        process.stdout.write(
          `voters: ${result.config.voters.join(",")}  learners: ${result.config.learners.join(",") || "-"}\n`,
        );
    });
}
