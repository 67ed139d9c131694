/**
 * @module Child processes of the benchmark orchestrator: spawn a Node script, talk to it
 * with the line protocol of `child-protocol.ts` (or just keep the tail of its output), and
 * stop it by its pid: politely first, then SIGKILL. Every live child is also killed
 * synchronously when the orchestrator exits, whatever the reason.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { ChildMessage, ReadyMessage } from "./child-protocol.js";

const tailChars = 8_000;
const live = new Set<BenchChild>();

process.on("exit", () => {
  for (const child of live) child.killNow();
});

interface Waiter {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

export class BenchChild {
  readonly process: ChildProcess;
  /** Resolves with the child's ready message (protocol children only). */
  readonly ready: Promise<ReadyMessage>;
  readonly exited: Promise<void>;
  private output = "";
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private exitedWith: string | null = null;

  constructor(
    readonly name: string,
    args: readonly string[],
    private readonly protocol: boolean,
  ) {
    this.process = spawn(process.execPath, args, {
      stdio: [protocol ? "pipe" : "ignore", "pipe", "pipe"],
    });
    live.add(this);
    let readyResolve: (message: ReadyMessage) => void = () => {};
    let readyReject: (error: Error) => void = () => {};
    this.ready = new Promise<ReadyMessage>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    this.ready.catch(() => {}); // non-protocol children never become ready; don't warn
    const stdout = this.process.stdout;
    const stderr = this.process.stderr;
    if (stdout === null || stderr === null) throw new Error(`${name}: no pipes`);
    stderr.setEncoding("utf8");
    stderr.on("data", (text: string) => this.keep(text));
    if (protocol) {
      createInterface({ input: stdout }).on("line", (line) => {
        let message: ChildMessage;
        try {
          message = JSON.parse(line) as ChildMessage;
        } catch {
          this.keep(`${line}\n`);
          return;
        }
        if (message.type === "ready") readyResolve(message);
        else if (message.type === "reply") {
          const waiter = this.waiters.get(message.id);
          this.waiters.delete(message.id);
          if (waiter === undefined) return;
          if (message.ok) waiter.resolve(message.result);
          else waiter.reject(new Error(`${name}: ${message.error ?? "command failed"}`));
        }
      });
    } else {
      stdout.setEncoding("utf8");
      stdout.on("data", (text: string) => this.keep(text));
    }
    this.exited = new Promise<void>((resolve) => {
      const onGone = (how: string) => {
        if (this.exitedWith !== null) return;
        this.exitedWith = how;
        live.delete(this);
        const error = new Error(`${name} ${how}${this.describeOutput()}`);
        readyReject(error);
        for (const waiter of this.waiters.values()) waiter.reject(error);
        this.waiters.clear();
        resolve();
      };
      this.process.once("exit", (code, signal) =>
        onGone(signal === null ? `exited with code ${code}` : `was killed by ${signal}`),
      );
      this.process.once("error", (error) => onGone(`failed to start: ${error.message}`));
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** The last lines the child wrote (stderr, and stdout that is not protocol). */
  describeOutput(): string {
    const text = this.output.trim();
    return text === "" ? "" : `; its last output:\n${text}`;
  }

  /** Sends a command and resolves with the child's result. */
  command(cmd: string, params: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<unknown> {
    if (this.exitedWith !== null)
      return Promise.reject(new Error(`${this.name} ${this.exitedWith}`));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`${this.name}: no answer to "${cmd}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.process.stdin?.write(`${JSON.stringify({ id, cmd, ...params })}\n`);
    });
  }

  /** Stops the child: closes its stdin (protocol children exit on that) or sends SIGTERM, then SIGKILL. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.exitedWith !== null) return;
    if (this.protocol) this.process.stdin?.end();
    else this.signal("SIGTERM");
    if (await this.exitsWithin(graceMs)) return;
    this.signal("SIGTERM");
    if (await this.exitsWithin(1_000)) return;
    this.signal("SIGKILL");
    await this.exitsWithin(1_000);
  }

  /** Synchronous last resort, for the orchestrator's own exit. */
  killNow(): void {
    if (this.exitedWith === null) this.signal("SIGKILL");
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.process.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([this.exited.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  private keep(text: string): void {
    this.output = (this.output + text).slice(-tailChars);
  }
}
