// Checks the replay guarantee (one seed, one trace, byte for byte; another seed, another trace) by running whole faulty broadcast simulations twice and comparing their trace bytes and digests, and scans the compiled simulator and cores for wall-clock and global-randomness calls.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Fnv1a64 } from "../lib/fnv1a.js";
import { runBroadcastScenario } from "./broadcast/scenario.js";

function traceBytes(seed: number): { bytes: Buffer; digest: string; crashes: number } {
  const result = runBroadcastScenario(seed);
  const text = `${result.trace.join("\n")}\n`;
  return {
    bytes: Buffer.from(text, "utf8"),
    digest: result.digest,
    crashes: result.summary.crashes,
  };
}

describe("determinism", () => {
  it("the same seed gives the same trace, byte for byte, and the same digest", () => {
    let crashes = 0;
    for (const seed of [2, 3, 8731]) {
      const first = traceBytes(seed);
      const second = traceBytes(seed);
      assert.ok(first.bytes.length > 10_000, "a real run, not an empty one");
      assert.equal(Buffer.compare(first.bytes, second.bytes), 0, `seed ${seed} trace differs`);
      assert.equal(first.digest, second.digest);
      assert.equal(first.digest, new Fnv1a64().update(first.bytes).hex());
      crashes += first.crashes;
    }
    assert.ok(crashes > 0, "the compared runs include crashes and restarts");
  });

  it("a run does not depend on runs before it in the same process (no hidden global state)", () => {
    const alone = traceBytes(5).digest;
    for (const seed of [6, 7, 8]) runBroadcastScenario(seed, { keepTrace: false });
    assert.equal(traceBytes(5).digest, alone);
    assert.equal(
      runBroadcastScenario(5, { keepTrace: false }).digest,
      alone,
      "keepTrace does not change the digest",
    );
  });

  it("different seeds give different traces", () => {
    const digests = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) digests.add(traceBytes(seed).digest);
    assert.equal(digests.size, 20);
    assert.notEqual(Buffer.compare(traceBytes(1).bytes, traceBytes(2).bytes), 0);
  });

  it("sim/ and core/ never read a wall clock, real timers or global randomness", () => {
    const dist = fileURLToPath(new URL("..", import.meta.url));
    const forbidden =
      /\bDate\.now\b|\bnew Date\b|\bMath\.random\b|\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bperformance\.now\b|\bhrtime\b|\bqueueMicrotask\b/;
    const offenders: string[] = [];
    let scanned = 0;
    for (const folder of ["sim", "core"]) {
      for (const entry of readdirSync(join(dist, folder), { recursive: true, encoding: "utf8" })) {
        if (!entry.endsWith(".js") || entry.endsWith(".test.js")) continue;
        scanned++;
        // Comments may name the forbidden calls (to forbid them); code may not.
        const text = readFileSync(join(dist, folder, entry), "utf8")
          .replace(/\/\*[\s\S]*?\*\//g, "")
          .replace(/(^|[^:])\/\/.*$/gm, "$1");
        if (forbidden.test(text)) offenders.push(`${folder}/${entry}`);
      }
    }
    assert.ok(scanned >= 8, `scanned ${scanned} files`);
    assert.deepEqual(offenders, []);
  });
});
