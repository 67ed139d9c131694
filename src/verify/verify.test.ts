// Goal: `brigade verify` is evidence, not decoration. On the real store (real processes,
// SIGKILL, SIGSTOP, transport partitions) the register, counter, set, bank and append
// workloads pass; and with a deliberately broken store (linearizable reads served by any
// replica without ReadIndex, behind a test-only switch) the same tool reports the
// violation and exits 1; and it attaches to a running `brigade up`, which it leaves running
// and healed. Method: the real CLI as a child process, then its files.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { type CheckResult, parseHistory } from "../checker/history.js";
import { LocalCluster, runCli, temporaryDirectory } from "../testkit/index.js";

const out = temporaryDirectory("brigade-verify-test-");
after(() => out.remove());

interface Results {
  readonly verdict: string;
  readonly results: CheckResult[];
}

function results(directory: string): Results {
  return JSON.parse(readFileSync(path.join(directory, "results.json"), "utf8")) as Results;
}

describe("brigade verify on real processes", () => {
  it("passes every workload on the real store under partitions, kills and pauses", async () => {
    const directory = path.join(out.path, "valid");
    const run = await runCli(
      [
        "verify",
        "--workload",
        "register,counter,set,bank,append",
        "--nemesis",
        "partition,kill,pause",
        "--duration",
        "25s",
        "--concurrency",
        "3",
        "--seed",
        "7",
        "--stagger",
        "20ms",
        "--out",
        directory,
      ],
      { timeoutMs: 240_000 },
    );
    assert.equal(run.code, 0, `verify failed:\n${run.stdout}\n${run.stderr.slice(-4000)}`);
    assert.match(run.stdout, /verdict: VALID/);
    const summary = results(directory);
    assert.equal(summary.verdict, "valid");
    const checkers = summary.results.map((result) => result.checker);
    for (const expected of [
      "register/linearizable",
      "counter/linearizable",
      "counter/counter",
      "set/set",
      "bank/bank",
      "append/append",
    ])
      assert.ok(checkers.includes(expected), `missing checker ${expected} in ${checkers}`);
    for (const result of summary.results) assert.equal(result.verdict, "valid", result.summary);

    const history = parseHistory(readFileSync(path.join(directory, "history.jsonl"), "utf8"));
    const ok = (f: string, key?: string) =>
      history.filter(
        (event) => event.type === "ok" && event.f === f && (key === undefined || event.key === key),
      ).length;
    // The run did real work, and the nemesis really acted.
    assert.ok(ok("write") + ok("cas") > 50, "too few register writes acknowledged");
    assert.ok(ok("add", "set") > 50, "too few set adds acknowledged");
    assert.ok(ok("transfer", "bank") > 10, "too few transfers acknowledged");
    const faults = history.filter((event) => event.process === "nemesis" && event.type === "info");
    assert.ok(
      faults.some((event) => event.f !== "heal"),
      "the nemesis injected no fault",
    );
    assert.ok(existsSync(path.join(directory, "report.html")));
  });

  it("reports stale reads when the store skips ReadIndex (test-only switch)", async () => {
    const directory = path.join(out.path, "broken");
    const run = await runCli(
      [
        "verify",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--duration",
        "20s",
        "--concurrency",
        "6",
        "--seed",
        "3",
        "--out",
        directory,
      ],
      { timeoutMs: 240_000, env: { BRIGADE_TEST_UNSAFE_LOCAL_READS: "1" } },
    );
    assert.equal(
      run.code,
      1,
      `verify should find the bug:\n${run.stdout}\n${run.stderr.slice(-4000)}`,
    );
    assert.match(run.stdout, /verdict: INVALID/);
    const summary = results(directory);
    const register = summary.results.find((result) => result.checker === "register/linearizable");
    assert.equal(register?.verdict, "invalid");
    const anomaly = register?.anomalies[0];
    assert.equal(anomaly?.kind, "nonlinearizable");
    assert.ok((anomaly?.events.length ?? 0) > 0, "the anomaly names no operations");

    // The recorded history alone is enough to find it again.
    const recheck = await runCli(["verify", "--check-only", directory]);
    assert.equal(recheck.code, 1, recheck.stderr);
    assert.match(recheck.stdout, /INVALID {2}register\/linearizable/);
  });

  it("attaches to a running `brigade up`, and leaves it running with no fault in force", async () => {
    const cluster = await LocalCluster.start({ nodes: 3 });
    try {
      const directory = path.join(out.path, "attached");
      const run = await runCli(
        [
          "verify",
          "--attach",
          "--dir",
          cluster.dir,
          "--workload",
          "set",
          "--nemesis",
          "kill,pause",
          "--duration",
          "12s",
          "--seed",
          "5",
          "--json",
          "--out",
          directory,
        ],
        { timeoutMs: 180_000 },
      );
      assert.equal(run.code, 0, `verify failed:\n${run.stdout}\n${run.stderr.slice(-4000)}`);
      const printed = JSON.parse(run.stdout) as Results & { files: { report: string } };
      assert.equal(printed.verdict, "valid");
      assert.equal(printed.files.report, path.join(directory, "report.html"));
      const status = await runCli(["chaos", "status", "--json", "--dir", cluster.dir]);
      assert.equal(status.code, 0, status.stderr);
      const { nodes, faults } = JSON.parse(status.stdout) as {
        nodes: { id: string; state: string; pid: number | null }[];
        faults: unknown[];
      };
      for (const node of nodes) cluster.track(node.pid);
      assert.deepEqual(faults, []);
      assert.deepEqual(
        nodes.map((node) => node.state),
        ["running", "running", "running"],
      );
    } finally {
      await cluster.stop();
    }
  });
});
