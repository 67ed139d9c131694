/**
 * @module The command line shared by the simulation runners (`broadcast/run.ts`,
 * `membership/run.ts`, `raft/run.ts`), built on commander.
 *
 * Common options: --seeds N (default 20, or the runner's own) and --first S (default 1), or
 * --seed S for one seed; --verbose; --keep-going (for runners that support it); --defect NAME
 * (default none, from the runner's list). Each runner adds its own options. Bad usage prints
 * commander's one-line error on stderr and exits 2; --help prints the help and exits 0.
 */
import process from "node:process";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** An argument parser for an integer option, at least `min`. */
export function integer(min = Number.MIN_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new InvalidArgumentError("It must be an integer.");
    if (value < min) throw new InvalidArgumentError(`It must be at least ${min}.`);
    return value;
  };
}

export interface RunnerCliConfig<Defect extends string> {
  /** The npm script that runs the runner, e.g. `sim:raft` (names it in usage and help). */
  readonly name: string;
  readonly description: string;
  /** The --defect choices; `none` is the default. */
  readonly defects: readonly ("none" | Defect)[];
  /** The default of --seeds; 20 unless given. */
  readonly defaultSeeds?: number;
  /** Whether the runner offers --keep-going. */
  readonly keepGoing?: boolean;
  /** The runner's own options; their values come back under commander's camelCase names. */
  readonly options?: readonly Option[];
}

export interface RunnerCliOptions<Defect extends string> {
  /** The seeds to run: [--seed] alone, or --seeds many from --first on. */
  readonly seeds: readonly number[];
  readonly verbose: boolean;
  readonly keepGoing: boolean;
  readonly defect: "none" | Defect;
}

/**
 * Parses the runner's command line (`argv` as in `process.argv`). `Extra` describes the values
 * of `config.options` (as commander's `opts<T>()` does). Exits the process on --help (0) and on
 * bad usage (2).
 */
export function parseRunnerCli<Defect extends string, Extra extends object = Record<never, never>>(
  config: RunnerCliConfig<Defect>,
  argv: readonly string[] = process.argv,
): RunnerCliOptions<Defect> & Extra {
  const command = new Command(config.name)
    .description(config.description)
    .addOption(
      new Option("--seeds <n>", "how many seeds to run")
        .argParser(integer())
        .default(config.defaultSeeds ?? 20),
    )
    .addOption(new Option("--first <s>", "the first seed").argParser(integer()).default(1))
    .addOption(
      new Option("--seed <s>", "run this one seed (overrides --seeds)").argParser(integer()),
    )
    .option("--verbose", "print each run's full trace", false);
  if (config.keepGoing) {
    command.option("--keep-going", "finish every run instead of stopping at a failure", false);
  }
  command.addOption(
    new Option("--defect <name>", "run a deliberately broken variant")
      .choices(config.defects)
      .default("none"),
  );
  for (const option of config.options ?? []) command.addOption(option);
  command.exitOverride();
  try {
    command.parse(argv);
  } catch (error) {
    // Commander has already printed its one-line message (or the help text).
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
    throw error;
  }
  const {
    seeds: count,
    first,
    seed,
    verbose,
    keepGoing = false,
    defect,
    ...extra
  } = command.opts<{
    seeds: number;
    first: number;
    seed?: number;
    verbose: boolean;
    keepGoing?: boolean;
    defect: "none" | Defect;
  }>();
  const seeds = seed !== undefined ? [seed] : Array.from({ length: count }, (_, i) => first + i);
  return { ...(extra as Extra), seeds, verbose, keepGoing, defect };
}
