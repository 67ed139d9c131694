/** @module Turns a node's pino JSON log line into one readable line for the supervisor's terminal. */

const levelNames: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const skippedKeys = new Set(["level", "time", "pid", "hostname", "node", "msg", "v"]);

export function formatLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time =
    typeof record.time === "number" ? new Date(record.time).toISOString().slice(11, 23) : "";
  const level = (levelNames[Number(record.level)] ?? String(record.level)).padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !skippedKeys.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  return `${time} ${level} ${String(record.msg ?? "")}${fields ? ` ${fields}` : ""}`;
}

/** Warnings, errors, membership changes, and any line that is not a structured log record. */
export function isImportantLogLine(line: string): boolean {
  if (!line.startsWith("{")) return true;
  try {
    const record = JSON.parse(line) as { level?: number; msg?: string };
    return Number(record.level) >= 40 || String(record.msg ?? "").startsWith("membership:");
  } catch {
    return true;
  }
}
