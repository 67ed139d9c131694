/** @module Options shared by several commands. */
import { Option } from "commander";
import { CliError } from "./cli-error.js";

/** The --api option of commands that talk to a node. */
export function apiOption(): Option {
  return new Option("--api <host:port>", "the node's API address")
    .env("BRIGADE_API")
    .default("127.0.0.1:8001");
}

const unitsMs: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const durationPattern = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)$/;

/**
 * "10s", "200ms", "1.5s", "2m", "1h" → milliseconds; a bare "0" is 0. A bare number is
 * refused: "10" could mean seconds or milliseconds, and guessing wrong is a silent 1000×.
 */
export function parseDuration(text: string, what = "duration"): number {
  if (text.trim() === "0") return 0;
  const match = durationPattern.exec(text.trim());
  if (match === null)
    throw new CliError(`malformed ${what} "${text}": use e.g. 200ms, 1.5s, 2m`, 2);
  return Number(match[1]) * (unitsMs[match[2] as string] as number);
}
