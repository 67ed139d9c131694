/**
 * @module The cluster a verify run works on: one it starts itself (a `Supervisor` in this
 * process, nodes logging to a file) or a running `brigade up` it attaches to. Either way the
 * run gets the nodes' API addresses and a `ChaosControl` for the nemesis.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { ControlApiChaos, SupervisorChaos } from "../supervisor/chaos.js";
import { Supervisor } from "../supervisor/supervisor.js";
import type { ClusterUnderTest } from "./runner.js";

export interface VerifyCluster extends ClusterUnderTest {
  /** Stops the nodes verify started; leaves an attached cluster running. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly nodes: number;
  /** Data directories go here. */
  readonly dir: string;
  /** The nodes' logs go here. */
  readonly logFile: string;
  /** Extra node flags. */
  readonly nodeArgs?: readonly string[];
}

export async function startVerifyCluster(options: StartOptions): Promise<VerifyCluster> {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: "a" });
  const supervisor = new Supervisor({
    nodes: options.nodes,
    dir: options.dir,
    clusterId: "brigade-verify",
    logLevel: "info",
    output: (line) => log.write(`${line}\n`),
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
  });
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.shutdown();
    log.end();
    throw error;
  }
  return {
    chaos: new SupervisorChaos(supervisor),
    apis: new Map(supervisor.list().map((node) => [node.id, node.api])),
    close: async () => {
      await supervisor.shutdown();
      await new Promise((resolve) => log.end(resolve));
    },
  };
}

export async function attachVerifyCluster(dir: string): Promise<VerifyCluster> {
  const chaos = ControlApiChaos.fromDir(dir);
  // Nodes someone stopped before the run are not part of it (and the final heal leaves them).
  const nodes = (await chaos.nodes()).filter((node) => node.state === "running");
  if (nodes.length === 0) throw new Error(`no running node in the \`brigade up\` of ${dir}`);
  return {
    chaos,
    apis: new Map(nodes.map((node) => [node.id, node.api])),
    close: async () => {},
  };
}
