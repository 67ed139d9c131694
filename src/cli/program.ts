/**
 * @module The `brigade` command line (the entry point is `main.ts`). Every command prints one clear line on stderr and
 * exits 2 for bad usage or config, 1 for a failure at run time, 0 on success; data-producing
 * commands take `--json`.
 */
import { Command, CommanderError } from "commander";
import { BrigadeError } from "../lib/errors.js";
import { version } from "../lib/version.js";
import { registerChaosCommands } from "./chaos-command.js";
import { CliError } from "./cli-error.js";
import { registerFaultCommands } from "./fault-command.js";
import { registerKeyspaceCommands } from "./keyspace-command.js";
import { registerKvCommands } from "./kv-command.js";
import { registerLeaseCommands } from "./lease-command.js";
import { registerLocalCommands } from "./local-command.js";
import { registerMembersCommands } from "./members-command.js";
import { registerNodeCommand } from "./node-command.js";
import { registerPlacementCommands } from "./placement-command.js";
import { registerRegisterCommands } from "./register-command.js";
import { registerStatusCommands } from "./status-command.js";
import { registerUpCommand } from "./up-command.js";
import { registerVerifyCommand } from "./verify-command.js";

export function buildProgram(): Command {
  const program = new Command("brigade")
    .description("Brigade: a distributed systems platform for TypeScript on Node.js")
    .version(version)
    .showSuggestionAfterError()
    .configureHelp({ sortSubcommands: false })
    .exitOverride();
  registerNodeCommand(program);
  registerUpCommand(program);
  registerStatusCommands(program);
  registerMembersCommands(program);
  registerRegisterCommands(program);
  registerKeyspaceCommands(program);
  registerKvCommands(program);
  registerLeaseCommands(program);
  registerPlacementCommands(program);
  registerFaultCommands(program);
  registerLocalCommands(program);
  registerChaosCommands(program);
  registerVerifyCommand(program);
  // Every subcommand reports usage errors through the same exit path.
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Parses `argv` and runs the command; sets the process exit code. */
export async function run(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  }
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its one-line message (or the help / version text).
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof CliError) {
    process.stderr.write(`brigade: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof BrigadeError) {
    process.stderr.write(`brigade: ${error.message}\n`);
    const usage = ["InvalidConfig", "InvalidArgument", "PortInUse", "DataDirMismatch"].includes(
      error.code,
    );
    return usage ? 2 : 1;
  }
  process.stderr.write(`brigade: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 1;
}
