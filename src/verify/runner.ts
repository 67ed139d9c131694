/**
 * @module One verify run, top to bottom:
 *   1. create each workload's keyspace and wait until every shard answers;
 *   2. run the setup operations;
 *   3. run `concurrency` clients per workload for the duration, each bound to one node, while
 *      the nemesis breaks things;
 *   4. heal everything, wait for the cluster to recover, run the final reads;
 *   5. check each workload's part of the history.
 * Every operation is recorded as an invoke and a completion, Jepsen-style (see
 * `checker/history.ts`); a client whose operation ended indeterminate continues as a new
 * process.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { type CheckResult, combineVerdicts, type HistoryEvent } from "../checker/history.js";
import { type Prng, prngFromSeed } from "../lib/prng.js";
import type { ChaosControl } from "../supervisor/chaos.js";
import { Nemesis, type NemesisKind } from "./nemesis.js";
import { errorText, NodeClient } from "./node-client.js";
import type { VerifyRun } from "./run-types.js";
import type { CheckBudget, OpRequest, WorkerMemory, Workload } from "./workload.js";

export interface ClusterUnderTest {
  readonly chaos: ChaosControl;
  /** Node id → "host:port" of its HTTP API. */
  readonly apis: ReadonlyMap<string, string>;
}

export interface RunOptions {
  readonly cluster: ClusterUnderTest;
  readonly workloads: readonly Workload[];
  readonly nemeses: readonly NemesisKind[];
  readonly seed: number;
  readonly durationMs: number;
  readonly concurrency: number;
  /** One operation's timeout, ms. */
  readonly timeoutMs: number;
  /** Longest wait for the cluster to answer after the heal, ms. */
  readonly recoveryMs: number;
  /** Shards of each workload's keyspace. */
  readonly shards: number;
  readonly replicas: number;
  /** Mean pause between a client's operations, ms (uniform in [0, 2 × mean]). */
  readonly staggerMs: number;
  readonly stepsPerKey: number;
  /** The whole check gives up (unknown) after this long, ms. */
  readonly checkTimeoutMs: number;
  readonly log: (line: string) => void;
}

export async function runVerify(options: RunOptions): Promise<VerifyRun> {
  const startedAt = new Date();
  const origin = performance.now();
  const history: HistoryEvent[] = [];
  const record = (event: Omit<HistoryEvent, "index" | "time">) => {
    history.push({ ...event, index: history.length, time: round(performance.now() - origin) });
  };
  const random = prngFromSeed(options.seed);
  const nodes = [...options.cluster.apis.keys()];
  const clients = new Map(
    nodes.map((node) => [
      node,
      new NodeClient(node, options.cluster.apis.get(node) as string, options.timeoutMs),
    ]),
  );
  let nextProcess = 0;
  const newProcess = () => nextProcess++;

  /** Runs one operation as `process` and records it; returns the outcome type. */
  const perform = async (
    process: number,
    workload: Workload,
    client: NodeClient,
    op: OpRequest,
    memory: WorkerMemory,
  ) => {
    record({ type: "invoke", process, f: op.f, key: op.key, value: op.value, node: client.node });
    let outcome: Awaited<ReturnType<Workload["apply"]>>;
    try {
      outcome = await workload.apply(client, op, memory);
    } catch (error) {
      // A bug in the client code, or an answer it could not parse: the effect is unknown.
      outcome = { type: "info", value: op.value, error: (error as Error).message };
    }
    record({
      type: outcome.type,
      process,
      f: op.f,
      key: op.key,
      value: outcome.value,
      node: client.node,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    });
    return outcome.type;
  };

  /** Repeats `op` (each attempt recorded) until ok or the deadline; true when it succeeded. */
  const performUntilOk = async (workload: Workload, op: OpRequest, deadline: number) => {
    let process = newProcess();
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const client = clients.get(nodes[attempt % nodes.length] as string) as NodeClient;
      const type = await perform(process, workload, client, op, new Map());
      if (type === "ok") return true;
      if (type === "info") process = newProcess();
      await sleep(Math.min(1_000, 100 * 2 ** attempt));
    }
    return false;
  };

  // 1–2. Keyspaces, readiness, setup.
  const anyClient = clients.get(nodes[0] as string) as NodeClient;
  const setupDeadline = performance.now() + 120_000;
  for (const workload of options.workloads) {
    await createKeyspace(anyClient, workload.keyspace, options, setupDeadline);
    await waitServing([...clients.values()], workload.keyspace, setupDeadline);
    for (const op of workload.setup())
      if (!(await performUntilOk(workload, op, setupDeadline)))
        throw new Error(`${workload.name}: setup operation ${op.f} did not succeed in time`);
  }
  options.log(
    `verify: ${options.workloads.map((w) => w.name).join(", ")} ready; running ${options.durationMs / 1000}s with nemesis ${options.nemeses.join(",") || "none"}`,
  );

  // 3. Clients and nemesis.
  const clientsEnd = performance.now() + options.durationMs;
  const nemesis =
    options.nemeses.length === 0
      ? null
      : new Nemesis({
          chaos: options.cluster.chaos,
          nodes,
          kinds: options.nemeses,
          random: random.fork(),
          record,
          log: options.log,
        });
  const nemesisDone = nemesis?.run() ?? Promise.resolve();
  const workers: Promise<void>[] = [];
  for (const workload of options.workloads) {
    for (let w = 0; w < options.concurrency; w++) {
      const client = clients.get(nodes[w % nodes.length] as string) as NodeClient;
      workers.push(worker(workload, client, random.fork()));
    }
  }
  async function worker(workload: Workload, client: NodeClient, workerRandom: Prng) {
    let process = newProcess();
    const memory: WorkerMemory = new Map();
    while (performance.now() < clientsEnd) {
      const op = workload.next(workerRandom, memory);
      if ((await perform(process, workload, client, op, memory)) === "info") process = newProcess();
      if (options.staggerMs > 0)
        await sleep(workerRandom.int(Math.round(2 * options.staggerMs) + 1));
    }
  }
  // Whatever happens to the clients, the nemesis stops and the cluster is healed: an
  // attached cluster must not be left broken.
  const clientsDone = await Promise.allSettled(workers);
  nemesis?.stop();
  await nemesisDone;

  // 4. Heal, recover, final reads.
  options.log("verify: clients done; healing and waiting for recovery");
  let healFailure: string | null = null;
  if (nemesis !== null) {
    try {
      await nemesis.healAll();
    } catch (error) {
      healFailure = (error as Error).message;
      options.log(`verify: heal incomplete: ${healFailure}`);
    }
  }
  const clientFailure = clientsDone.find((outcome) => outcome.status === "rejected");
  if (clientFailure !== undefined) {
    for (const client of clients.values()) client.close();
    throw clientFailure.reason;
  }
  const recoveryDeadline = performance.now() + options.recoveryMs;
  let recovered = healFailure === null;
  for (const workload of options.workloads) {
    try {
      await waitServing([...clients.values()], workload.keyspace, recoveryDeadline);
    } catch {
      recovered = false;
    }
    for (const op of workload.finalReads())
      if (!(await performUntilOk(workload, op, recoveryDeadline))) recovered = false;
  }
  for (const client of clients.values()) client.close();

  // 5. Check.
  options.log(`verify: checking ${history.length} events`);
  const checkStart = performance.now();
  const checkDeadline = checkStart + options.checkTimeoutMs;
  const budget = {
    stepsPerKey: options.stepsPerKey,
    shouldStop: () => performance.now() > checkDeadline,
  };
  const results = checkWorkloads(options.workloads, history, budget);
  if (!recovered) {
    results.push({
      checker: "recovery",
      verdict: "unknown",
      summary:
        healFailure === null
          ? `the cluster did not answer every final read within ${options.recoveryMs / 1000}s of the heal`
          : `the heal failed (${healFailure}), so the final reads may not see a healed cluster`,
      anomalies: [],
      stats: {},
    });
  }
  return {
    settings: {
      workloads: options.workloads.map((workload) => workload.name),
      nemeses: [...options.nemeses],
      seed: options.seed,
      durationMs: options.durationMs,
      concurrency: options.concurrency,
      nodes,
      timeoutMs: options.timeoutMs,
    },
    startedAt: startedAt.toISOString(),
    history,
    results,
    verdict: combineVerdicts(results.map((result) => result.verdict)),
    checkMs: round(performance.now() - checkStart),
  };
}

/** Each workload's checkers on its part of the history (the events on its keys). */
export function checkWorkloads(
  workloads: readonly Workload[],
  history: readonly HistoryEvent[],
  budget: CheckBudget,
): CheckResult[] {
  const results: CheckResult[] = [];
  for (const workload of workloads) {
    const events = history.filter(
      (event) =>
        event.process !== "nemesis" && event.key !== undefined && workload.ownsKey(event.key),
    );
    for (const result of workload.check(events, budget))
      results.push({ ...result, checker: `${workload.name}/${result.checker}` });
  }
  return results;
}

async function createKeyspace(
  client: NodeClient,
  name: string,
  options: RunOptions,
  deadline: number,
): Promise<void> {
  let last = "";
  while (performance.now() < deadline) {
    const answer = await client.request("POST", "/v1/keyspaces", {
      name,
      shards: options.shards,
      replicas: options.replicas,
    });
    if (answer.status === 201 || answer.status === 409) return;
    if (answer.status === 400) throw new Error(`creating keyspace ${name}: ${errorText(answer)}`);
    last = errorText(answer);
    await sleep(250);
  }
  throw new Error(`creating keyspace ${name} did not succeed in time (last: ${last})`);
}

/** Waits until a linearizable scan of the keyspace (every shard has a leader) works via every node. */
async function waitServing(clients: NodeClient[], keyspace: string, deadline: number) {
  for (const client of clients) {
    let last = "";
    for (;;) {
      const answer = await client.request("GET", `/v1/kv/${encodeURIComponent(keyspace)}?limit=1`);
      if (answer.status === 200) break;
      last = errorText(answer);
      if (performance.now() > deadline)
        throw new Error(`keyspace ${keyspace} not serving via ${client.node} (last: ${last})`);
      await sleep(200);
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
