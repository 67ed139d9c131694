/**
 * @module The data directory's identity and lock. A directory belongs to one node id of one
 * cluster, recorded on first start; starting with another id or cluster id is refused, never
 * overwritten. A lock file holding the owner's pid keeps two live processes off one directory.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { BrigadeError } from "../lib/errors.js";

const identityFile = "brigade-node.json";
const lockFile = "LOCK";
const formatVersion = 1;

export interface DataDirIdentity {
  readonly formatVersion: number;
  readonly nodeId: string;
  readonly clusterId: string;
  readonly createdAt: string;
}

/** Opens (creating if new) and locks the directory; returns a release function. */
export function openDataDir(
  dataDir: string,
  nodeId: string,
  clusterId: string,
): { identity: DataDirIdentity; release: () => void } {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new BrigadeError(
      "InvalidConfig",
      `cannot create data directory ${dataDir}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
  // Lock first: two processes starting at once must not both write an identity.
  const release = lock(dataDir);
  try {
    return { identity: readOrCreateIdentity(dataDir, nodeId, clusterId), release };
  } catch (error) {
    release();
    throw error;
  }
}

function readOrCreateIdentity(dataDir: string, nodeId: string, clusterId: string): DataDirIdentity {
  const file = path.join(dataDir, identityFile);
  let existing: DataDirIdentity | null = null;
  try {
    existing = JSON.parse(readFileSync(file, "utf8")) as DataDirIdentity;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new BrigadeError(
        "DataDirMismatch",
        `data directory ${dataDir} has an unreadable ${identityFile}: ${(error as Error).message}`,
      );
    }
  }
  if (existing !== null) {
    if (existing.nodeId !== nodeId || existing.clusterId !== clusterId) {
      throw new BrigadeError(
        "DataDirMismatch",
        `data directory ${dataDir} belongs to node "${existing.nodeId}" of cluster "${existing.clusterId}", ` +
          `not node "${nodeId}" of cluster "${clusterId}"; refusing to start (pick another --data)`,
      );
    }
    return existing;
  }
  const identity: DataDirIdentity = {
    formatVersion,
    nodeId,
    clusterId,
    createdAt: new Date().toISOString(),
  };
  // Write-then-rename so a crash never leaves a half-written identity.
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(identity, null, 2)}\n`);
  const descriptor = openSync(temporary, "r");
  fsyncSync(descriptor);
  closeSync(descriptor);
  renameSync(temporary, file);
  const directory = openSync(dataDir, "r");
  fsyncSync(directory);
  closeSync(directory);
  return identity;
}

function lock(dataDir: string): () => void {
  const file = path.join(dataDir, lockFile);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new BrigadeError(
          "DataDirMismatch",
          `data directory ${dataDir} is in use by process ${owner}`,
        );
      }
      rmSync(file, { force: true }); // stale: its owner died without cleaning up
    }
  }
  throw new BrigadeError("DataDirMismatch", `cannot lock data directory ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
