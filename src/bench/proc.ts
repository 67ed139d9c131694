/**
 * @module Readers of /proc for benchmarks: a process's CPU time, RSS and its split, run-queue
 * waits, and CPU meters for processes and the whole machine (Linux only; null when a
 * process is gone).
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const clockTicksPerSecond = 100;

/** User + system CPU time of a process so far, in ms (null when it is gone). */
export function cpuMs(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; fields after it are space-separated.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / clockTicksPerSecond;
  } catch {
    return null;
  }
}

/** VmRSS of a process in MiB (null when it is gone). */
export function rssMiB(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export interface ProcMemory {
  readonly rssMiB: number;
  /** Anonymous memory: the JavaScript heap, native allocations, buffers. */
  readonly anonMiB: number;
  /** File-backed pages mapped in: LMDB's memory map (the data itself), code. */
  readonly fileMiB: number;
  readonly shmemMiB: number;
}

/** VmRSS and its split (RssAnon, RssFile, RssShmem) from /proc/<pid>/status. */
export function procMemory(pid: number | null): ProcMemory | null {
  if (pid === null) return null;
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => {
      const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(text);
      return match ? Number(match[1]) / 1024 : 0;
    };
    return {
      rssMiB: field("VmRSS"),
      anonMiB: field("RssAnon"),
      fileMiB: field("RssFile"),
      shmemMiB: field("RssShmem"),
    };
  } catch {
    return null;
  }
}

/**
 * Time the threads of a process spent runnable but waiting for a CPU, in ms so far (the
 * second field of /proc/<pid>/task/<tid>/schedstat, summed over threads; null when gone).
 */
export function runQueueWaitMs(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    let total = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const fields = readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ");
        total += Number(fields[1]) / 1e6;
      } catch {
        // the thread ended
      }
    }
    return total;
  } catch {
    return null;
  }
}

export interface ProcessUse {
  /** CPU time over the interval, % of one core. */
  readonly cpuPct: number | null;
  /** Run-queue wait of all its threads over the interval, % of the interval. */
  readonly waitPct: number | null;
}

/** CPU use of several processes over an interval: start(), then stop(). */
export class CpuMeter {
  private before: { cpu: number | null; wait: number | null }[] = [];
  private startedAt = 0;

  constructor(private readonly pids: readonly (number | null)[]) {}

  start(): void {
    this.before = this.pids.map((pid) => ({ cpu: cpuMs(pid), wait: runQueueWaitMs(pid) }));
    this.startedAt = performance.now();
  }

  /** Per process over the interval (nulls for a process that is gone). */
  stop(): ProcessUse[] {
    const elapsed = performance.now() - this.startedAt;
    const percent = (now: number | null, before: number | null | undefined) =>
      now === null || before === null || before === undefined || elapsed <= 0
        ? null
        : ((now - before) / elapsed) * 100;
    return this.pids.map((pid, i) => ({
      cpuPct: percent(cpuMs(pid), this.before[i]?.cpu),
      waitPct: percent(runQueueWaitMs(pid), this.before[i]?.wait),
    }));
  }
}

/** Busy and total CPU time of the whole machine so far (jiffies, all cores), from /proc/stat. */
function machineJiffies(): { busy: number; total: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** The whole machine's CPU use over an interval, in % of one core (2 cores: up to 200%). */
export class MachineMeter {
  private before: { busy: number; total: number } | null = null;

  constructor(private readonly cores = os.cpus().length) {}

  start(): void {
    this.before = machineJiffies();
  }

  stop(): number | null {
    const now = machineJiffies();
    const before = this.before;
    if (now === null || before === null || now.total <= before.total) return null;
    return ((now.busy - before.busy) / (now.total - before.total)) * 100 * this.cores;
  }
}
