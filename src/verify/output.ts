/**
 * @module A run's files: `history.jsonl` (one event per line), `results.json` (settings,
 * verdicts and anomalies, without the history) and `report.html` (see `report.ts`).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { formatEvent } from "../checker/history.js";
import { renderReport } from "./report.js";
import type { VerifyRun } from "./run-types.js";

export interface RunFiles {
  readonly history: string;
  readonly results: string;
  readonly report: string;
}

export function writeRunFiles(directory: string, run: VerifyRun): RunFiles {
  mkdirSync(directory, { recursive: true });
  const files: RunFiles = {
    history: path.join(directory, "history.jsonl"),
    results: path.join(directory, "results.json"),
    report: path.join(directory, "report.html"),
  };
  writeFileSync(files.history, run.history.map((event) => `${formatEvent(event)}\n`).join(""));
  const { history: _history, ...summary } = run;
  writeFileSync(files.results, `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(files.report, renderReport(run));
  return files;
}
