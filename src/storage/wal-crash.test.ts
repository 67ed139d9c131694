// Goal: an append acknowledged by the WAL survives the process being killed at any moment;
// method: a real child process (wal-crash-child.ts) appends from 8 concurrent appenders and
// reports each acknowledgement on stdout; the parent SIGKILLs it after a seeded-random number
// of acknowledgements, reopens the WAL, checks every acknowledged record is there with the
// sequence it was given, and that the log then takes appends and survives a second kill.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { prngFromSeed } from "../lib/prng.js";
import { temporaryDirectory, waitFor } from "../testkit/index.js";
import { WriteAheadLog } from "./wal.js";

const childScript = fileURLToPath(new URL("./wal-crash-child.js", import.meta.url));
const appenders = 8;
const runs = 4;
const seed = Number(process.env.WAL_CRASH_SEED ?? Date.now() % 1_000_000);

interface Ack {
  readonly appender: number;
  readonly counter: number;
  readonly firstSequence: number;
  readonly recordCount: number;
}

/** Runs the child until it has reported `killAfterAcks` acknowledgements, then SIGKILLs it. */
async function appendThenKill(directory: string, killAfterAcks: number): Promise<Ack[]> {
  const acks: Ack[] = [];
  let child: ChildProcess | null = null;
  try {
    child = spawn(process.execPath, [childScript, directory, String(appenders)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    let stderr = "";
    let exited = false;
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    child.on("exit", () => (exited = true));
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [kind, ...fields] = line.split(" ");
        if (kind !== "ack") continue;
        const [appender, counter, firstSequence, recordCount] = fields.map(Number);
        acks.push({
          appender: appender!,
          counter: counter!,
          firstSequence: firstSequence!,
          recordCount: recordCount!,
        });
        if (acks.length === killAfterAcks) child!.kill("SIGKILL");
      }
    });
    await waitFor(`the child to be killed (stderr: ${stderr})`, () => exited, 20_000, 5);
    assert.equal(child.signalCode, "SIGKILL", `child exited on its own: ${stderr}`);
    return acks;
  } finally {
    if (child !== null && child.exitCode === null && child.signalCode === null)
      child.kill("SIGKILL");
  }
}

/** Reads the WAL back and checks it against everything acknowledged, in every run so far. */
async function checkRecovered(directory: string, acknowledged: readonly Ack[], context: string) {
  const wal = await WriteAheadLog.open(directory);
  try {
    const bySequence = new Map<number, string>();
    let expectedSequence = 1;
    for await (const record of wal.replay()) {
      assert.equal(record.sequence, expectedSequence++, `${context}: sequences are contiguous`);
      bySequence.set(record.sequence, new TextDecoder().decode(record.payload));
    }
    for (const ack of acknowledged)
      for (let part = 0; part < ack.recordCount; part++) {
        const payload = bySequence.get(ack.firstSequence + part);
        assert.ok(
          payload?.startsWith(`${ack.appender}:${ack.counter}:${part}:`),
          `${context}: acknowledged record ${ack.appender}:${ack.counter}:${part} at sequence ` +
            `${ack.firstSequence + part} is ${payload === undefined ? "missing" : `"${payload}"`}`,
        );
      }
    return wal.nextSequence;
  } finally {
    await wal.close();
  }
}

describe("WAL durability across SIGKILL", () => {
  it(`loses no acknowledged append when killed at random points (seed ${seed}, WAL_CRASH_SEED to replay)`, async () => {
    const prng = prngFromSeed(seed);
    const directory = temporaryDirectory("brigade-wal-crash-");
    try {
      const acknowledged: Ack[] = [];
      for (let run = 0; run < runs; run++) {
        const killAfterAcks = prng.intInclusive(1, 600);
        const context = `seed ${seed}, run ${run}, kill after ${killAfterAcks} acks`;
        const acks = await appendThenKill(directory.path, killAfterAcks);
        assert.ok(acks.length >= killAfterAcks, context);
        acknowledged.push(...acks);
        const nextSequence = await checkRecovered(directory.path, acknowledged, context);
        const lastAcked = Math.max(...acks.map((ack) => ack.firstSequence + ack.recordCount - 1));
        assert.ok(nextSequence > lastAcked, context);
      }
    } finally {
      directory.remove();
    }
  });
});
