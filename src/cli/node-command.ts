/** @module `brigade node`: run one node process in the foreground. */
import { type Command, Option } from "commander";
import {
  environmentVariable,
  kebab,
  nodeSettings,
  type RawSettings,
  resolveNodeConfig,
  settingsFromEnvironment,
  settingsFromFile,
} from "../node/config.js";
import { BrigadeNode } from "../node/node.js";

export function registerNodeCommand(program: Command): void {
  const command = program
    .command("node")
    .description("run one Brigade node in the foreground (Ctrl-C or SIGTERM stops it)")
    .option(
      "--config <file>",
      "JSON config file (keys as below, camelCase); precedence: flags > BRIGADE_* env > file > defaults",
    );
  for (const setting of nodeSettings) {
    const variable = environmentVariable(setting.key);
    command.addOption(
      new Option(
        `--${kebab(setting.key)} <value>`,
        `${setting.description} [env ${variable}] (default: ${setting.defaultText})`,
      ),
    );
  }
  command.action(async (flags: Record<string, string | undefined>) => {
    const configFile = flags.config ?? process.env.BRIGADE_CONFIG;
    const fromFlags: RawSettings = {};
    for (const { key } of nodeSettings) if (flags[key] !== undefined) fromFlags[key] = flags[key];
    const config = resolveNodeConfig(
      configFile ? settingsFromFile(configFile) : {},
      settingsFromEnvironment(process.env),
      fromFlags,
    );
    const node = new BrigadeNode(config);
    await node.start();
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (reason: string) => {
        if (stopping) return;
        stopping = true;
        node.logger.info({ reason }, "node stopping");
        node.stop().then(resolve, (error: unknown) => {
          node.logger.error({ err: error }, "error while stopping");
          resolve();
        });
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      // Started by `brigade up`: never outlive the supervisor.
      if (process.send !== undefined) process.once("disconnect", () => stop("supervisor gone"));
    });
    node.logger.info({}, "node stopped");
    node.logger.flush();
    // Handles left by peers' sockets must not keep a stopped node alive.
    setImmediate(() => process.exit(0));
  });
}
