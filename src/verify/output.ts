/**
 * @module A run's files: `history.jsonl` (one event per line), `results.json` (settings,
 * verdicts and anomalies, without the history) and `report.html` (see `report.ts`).
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { formatEvent, type HistoryEvent } from "../checker/history.js";
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
  writeHistory(files.history, run.history);
  const { history: _history, ...summary } = run;
  writeFileSync(files.results, `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(files.report, renderReport(run));
  return files;
}

/** Written in chunks: a long run's history is larger than the biggest string V8 can build. */
function writeHistory(file: string, history: readonly HistoryEvent[]): void {
  const fd = openSync(file, "w");
  try {
    let chunk: string[] = [];
    let chunkLength = 0;
    for (const event of history) {
      const line = `${formatEvent(event)}\n`;
      chunk.push(line);
      chunkLength += line.length;
      if (chunkLength >= 4 * 1024 * 1024) {
        writeSync(fd, chunk.join(""));
        chunk = [];
        chunkLength = 0;
      }
    }
    if (chunk.length > 0) writeSync(fd, chunk.join(""));
  } finally {
    closeSync(fd);
  }
}
