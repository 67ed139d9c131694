/** @module Where benchmarks put their figures: `bench-results/<name>.json`, with the date and the machine. */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** The facts about this machine every result file records. */
export function machineInfo(): { cpus: number; model: string; node: string } {
  return { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "", node: process.version };
}

/**
 * Writes `{date, machine, ...results}` (pretty-printed) to `bench-results/<name>.json` and
 * returns the path relative to the repository. `machine` adds to `machineInfo()`.
 */
export function writeBenchResults(
  name: string,
  results: Record<string, unknown>,
  machine: Record<string, unknown> = {},
): string {
  const directory = path.join(repoRoot, "bench-results");
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, `${name}.json`);
  const document = {
    date: new Date().toISOString(),
    machine: { ...machineInfo(), ...machine },
    ...results,
  };
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  return path.relative(repoRoot, file);
}
