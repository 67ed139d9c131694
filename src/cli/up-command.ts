/**
 * @module `brigade up`: a local cluster of N node processes under one supervisor, with a
 * control API (and stdin commands) to kill, pause, resume and restart nodes, and to inject
 * the chaos faults of `brigade chaos` (routes under /chaos, listed in docs/chaos.md).
 */
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import Fastify, { type FastifyInstance } from "fastify";
import { BrigadeError } from "../lib/errors.js";
import { sendError } from "../node/http-errors.js";
import { type ChaosControl, SupervisorChaos } from "../supervisor/chaos.js";
import { Supervisor, supervisorNodesMax, writeSupervisorFile } from "../supervisor/supervisor.js";
import type { LinkFault } from "../transport/faults.js";
import { parseChaosLine } from "./chaos-command.js";
import { CliError } from "./cli-error.js";
import { table } from "./format.js";

interface UpOptions {
  nodes: string;
  dir: string;
  clusterId: string;
  logLevel: string;
  control: string;
  quiet?: boolean;
}

const actions = ["kill", "pause", "resume", "restart", "stop"] as const;
type Action = (typeof actions)[number];

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description(
      "start a local cluster of node processes on loopback and supervise it (Ctrl-C stops all)",
    )
    .option("--nodes <n>", `number of nodes (1..${supervisorNodesMax})`, "3")
    .option("--dir <path>", "data directories and supervisor.json go here", ".brigade")
    .option("--cluster-id <id>", "cluster id", "brigade-local")
    .option("--log-level <level>", "nodes' log level", "info")
    .option(
      "--control <host:port>",
      "supervisor control API address (port 0: any free port)",
      "127.0.0.1:0",
    )
    .option("--quiet", "do not stream the nodes' logs")
    .action(async (options: UpOptions) => {
      const nodes = Number(options.nodes);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > supervisorNodesMax) {
        throw new CliError(
          `--nodes must be an integer in 1..${supervisorNodesMax}, got "${options.nodes}"`,
          2,
        );
      }
      const [controlHost, controlPortText] = options.control.split(/:(?=\d+$)/);
      const controlPort = Number(controlPortText);
      if (
        !controlHost ||
        !Number.isInteger(controlPort) ||
        controlPort < 0 ||
        controlPort > 65535
      ) {
        throw new CliError(
          `malformed --control address "${options.control}": expected host:port`,
          2,
        );
      }
      const print = (line: string) => process.stdout.write(`${line}\n`);
      const dir = path.resolve(options.dir);
      const running = runningSupervisor(dir);
      if (running !== null) {
        throw new CliError(
          `another \`brigade up\` (pid ${running}) is using ${dir}; stop it or pass --dir`,
          2,
        );
      }
      const supervisor = new Supervisor({
        nodes,
        dir,
        clusterId: options.clusterId,
        logLevel: options.logLevel,
        // Quiet still shows what a person watching the cluster wants: lifecycle and membership changes.
        output: (line, important) => {
          if (important || !options.quiet) print(line);
        },
      });

      const control = Fastify({ logger: false });
      control.get("/nodes", async () => supervisor.list());
      control.post<{ Params: { id: string; action: string } }>(
        "/nodes/:id/:action",
        async (request, reply) => {
          const action = request.params.action as Action;
          if (!actions.includes(action)) {
            return reply.code(404).send({
              error: {
                code: "InvalidArgument",
                message: `unknown action "${action}" (use ${actions.join(", ")})`,
              },
            });
          }
          try {
            return await perform(supervisor, action, request.params.id);
          } catch (error) {
            if (error instanceof BrigadeError)
              return reply.code(400).send({ error: { code: error.code, message: error.message } });
            throw error;
          }
        },
      );
      control.post("/nodes", async (_request, reply) => {
        try {
          return await supervisor.add();
        } catch (error) {
          if (error instanceof BrigadeError)
            return reply.code(400).send({ error: { code: error.code, message: error.message } });
          throw error;
        }
      });
      control.post<{ Body: { from: string; to: string; rule: Partial<LinkFault> } }>(
        "/faults",
        async (request, reply) => {
          const { from, to, rule } = request.body ?? {};
          try {
            await supervisor.fault(String(from), String(to), rule ?? {});
            return { from, to, rule };
          } catch (error) {
            if (error instanceof BrigadeError)
              return reply.code(400).send({ error: { code: error.code, message: error.message } });
            throw error;
          }
        },
      );
      control.delete("/faults", async () => {
        await supervisor.heal();
        return { healed: "all" };
      });
      const chaos = new SupervisorChaos(supervisor);
      registerChaosRoutes(control, chaos);
      let controlUrl = "";
      const publish = () => {
        if (controlUrl === "") return;
        writeSupervisorFile(dir, {
          pid: process.pid,
          control: controlUrl,
          clusterId: options.clusterId,
          nodes: supervisor.list(),
        });
      };
      supervisor.setChangeListener(publish);

      let shuttingDown: Promise<void> | null = null;
      const shutdown = (signal: string) => {
        shuttingDown ??= (async () => {
          print(`brigade: ${signal}: stopping ${nodes} node(s)`);
          await supervisor.shutdown();
          await control.close();
          rmSync(path.join(dir, "supervisor.json"), { force: true });
          print("brigade: all nodes stopped");
        })();
        return shuttingDown;
      };
      const stopped = new Promise<void>((resolve) => {
        process.once("SIGINT", () => shutdown("SIGINT").then(resolve));
        process.once("SIGTERM", () => shutdown("SIGTERM").then(resolve));
      });

      try {
        await control.listen({ host: controlHost, port: controlPort });
      } catch (error) {
        throw new CliError(
          `cannot listen on control address ${options.control}: ${(error as NodeJS.ErrnoException).code}`,
          2,
        );
      }
      const address = control.server.address();
      controlUrl = `http://${controlHost}:${typeof address === "object" && address ? address.port : controlPort}`;
      try {
        await supervisor.start();
      } catch (error) {
        await shutdown("start failed");
        throw new CliError((error as Error).message, 1);
      }
      publish();
      const rows = supervisor
        .list()
        .map((node) => [
          node.id,
          `peer ${node.listen}`,
          `api http://${node.api}`,
          `pid ${node.pid}`,
          node.dataDir,
        ]);
      print(`brigade: ${nodes} node(s) up in cluster "${options.clusterId}"\n${table(rows)}`);
      print(
        `brigade: control ${controlUrl}  (brigade local kill|pause|resume|restart|stop <node>, brigade local partition|heal, or type commands here; Ctrl-C stops all)`,
      );

      if (process.stdin.isTTY || process.env.BRIGADE_UP_STDIN === "1") {
        const input = createInterface({ input: process.stdin });
        input.on("line", (line) => {
          const [verb, id] = line.trim().split(/\s+/);
          if (!verb) return;
          if (verb === "list" || verb === "status") {
            print(
              table(
                supervisor
                  .list()
                  .map((node) => [
                    node.id,
                    node.state,
                    `pid ${node.pid ?? "-"}`,
                    node.lastExit ?? "",
                  ]),
              ),
            );
            const faults = supervisor.faults();
            if (faults.length > 0)
              print(
                `faults in force:\n${table(faults.map((fault) => [fault.kind, fault.detail]))}`,
              );
            return;
          }
          let chaosAction: ReturnType<typeof parseChaosLine> = null;
          try {
            chaosAction = parseChaosLine(line);
          } catch (error) {
            print(`brigade: ${(error as Error).message}`);
            return;
          }
          if (chaosAction !== null) {
            chaosAction(chaos).then(
              (done) => print(`brigade: ${done}`),
              (error: Error) => print(`brigade: ${error.message}`),
            );
            return;
          }
          const fault = parseFaultCommand(line);
          if (fault !== null) {
            const done =
              fault === "heal"
                ? supervisor.heal()
                : supervisor.fault(fault.from, fault.to, fault.rule);
            done.catch((error: Error) => print(`brigade: ${error.message}`));
            return;
          }
          if (!actions.includes(verb as Action) || !id) {
            print(
              `commands: list | ${actions.join(" | ")} <node> | ${faultCommandsHelp} | ${chaosCommandsHelp}`,
            );
            return;
          }
          perform(supervisor, verb as Action, id).catch((error: Error) =>
            print(`brigade: ${error.message}`),
          );
        });
        stopped.then(() => input.close());
      }
      await stopped;
    });
}

function perform(supervisor: Supervisor, action: Action, id: string) {
  switch (action) {
    case "kill":
      return supervisor.kill(id);
    case "pause":
      return Promise.resolve(supervisor.pause(id));
    case "resume":
      return Promise.resolve(supervisor.resume(id));
    case "restart":
      return supervisor.restart(id);
    case "stop":
      return supervisor.stop(id);
  }
}

const chaosCommandsHelp =
  "pause <node> --for <duration> | partition <a,b / c,...> | isolate <node> | delay <a> <b> <duration> [--jitter <duration>] | loss <a> <b> <rate> | skew <node> <+/-offset>";

/** Reads a required string field of a control request's JSON body. */
function field(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  if (typeof value !== "string" || value === "")
    throw new BrigadeError("InvalidArgument", `the request body needs "${name}" (a string)`);
  return value;
}

function numberField(body: unknown, name: string, optional: true): number | undefined;
function numberField(body: unknown, name: string): number;
function numberField(body: unknown, name: string, optional = false): number | undefined {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  if (value === undefined && optional) return undefined;
  if (typeof value !== "number")
    throw new BrigadeError("InvalidArgument", `the request body needs "${name}" (a number)`);
  return value;
}

/**
 * The chaos routes of the control API: `POST /chaos/<verb>` with a JSON body, answering with
 * the status after the change; `GET /chaos/status`. Errors are `{error: {code, message}}`
 * with the node API's status codes (InvalidArgument → 400).
 */
function registerChaosRoutes(control: FastifyInstance, chaos: ChaosControl): void {
  control.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof BrigadeError) return sendError(reply, error);
    const status = error.statusCode ?? 500;
    return reply.code(status).send({
      error: {
        code: status < 500 ? "InvalidArgument" : "Internal",
        message: error.message,
        retriable: false,
      },
    });
  });
  control.get("/chaos/status", async () => chaos.status());
  const verbs: Record<string, (body: unknown) => Promise<void>> = {
    kill: (body) => chaos.kill(field(body, "node")),
    restart: (body) => chaos.restart(field(body, "node")),
    pause: (body) => chaos.pause(field(body, "node"), numberField(body, "forMs", true)),
    resume: (body) => chaos.resume(field(body, "node")),
    isolate: (body) => chaos.isolate(field(body, "node")),
    skew: (body) => chaos.skew(field(body, "node"), numberField(body, "offsetMs")),
    partition: (body) => {
      const groups = (body as { groups?: unknown } | null)?.groups;
      if (
        !Array.isArray(groups) ||
        !groups.every(
          (group) => Array.isArray(group) && group.every((id) => typeof id === "string"),
        )
      )
        throw new BrigadeError(
          "InvalidArgument",
          'the request body needs "groups": arrays of node ids, e.g. [["n1"],["n2","n3"]]',
        );
      return chaos.partition(groups as string[][]);
    },
    link: (body) => {
      const rule = (body as { rule?: unknown } | null)?.rule;
      if (typeof rule !== "object" || rule === null || Array.isArray(rule))
        throw new BrigadeError("InvalidArgument", 'the request body needs "rule" (an object)');
      return chaos.link(field(body, "a"), field(body, "b"), rule as Partial<LinkFault>);
    },
    heal: () => chaos.heal(),
  };
  control.post<{ Params: { verb: string } }>("/chaos/:verb", async (request) => {
    const perform = Object.hasOwn(verbs, request.params.verb)
      ? verbs[request.params.verb]
      : undefined;
    if (perform === undefined)
      throw new BrigadeError(
        "NotFound",
        `unknown chaos operation "${request.params.verb}" (use ${Object.keys(verbs).join(", ")})`,
      );
    await perform(request.body);
    return chaos.status();
  });
}

export const faultCommandsHelp =
  "partition <a> <b> | drop <a> <b> <rate> | delay <a> <b> <ms> [jitter-ms] | duplicate <a> <b> <rate> | heal";

/** Parses a fault command typed at the `brigade up` prompt; null when the line is not one. */
export function parseFaultCommand(
  line: string,
): { from: string; to: string; rule: Partial<LinkFault> } | "heal" | null {
  const [verb, from, to, first, second] = line.trim().split(/\s+/);
  if (verb === "heal") return "heal";
  if (!from || !to) return null;
  const number = (text: string | undefined) =>
    text === undefined
      ? Number.NaN
      : Number(text.replace(/%$/, "")) / (text.endsWith("%") ? 100 : 1);
  switch (verb) {
    case "partition":
      return { from, to, rule: { partitioned: true } };
    case "drop":
      return { from, to, rule: { dropRate: number(first) } };
    case "duplicate":
      return { from, to, rule: { duplicateRate: number(first) } };
    case "delay":
      return {
        from,
        to,
        rule: { delayMs: number(first), jitterMs: second === undefined ? 0 : number(second) },
      };
    default:
      return null;
  }
}

function runningSupervisor(dir: string): number | null {
  try {
    const { pid } = JSON.parse(readFileSync(path.join(dir, "supervisor.json"), "utf8")) as {
      pid: number;
    };
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}
