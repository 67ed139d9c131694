// Goal: keep the architecture honest — every import points down the layer picture in
// ARCHITECTURE.md, and pure code (lib, clocks, core) touches no clock, randomness, timer or
// OS module. Method: scan the TypeScript sources' import lines and text.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { repositoryRoot } from "../testkit/index.js";

const sourceRoot = path.join(repositoryRoot, "src");

/** Lower rank = lower layer. A module may import from its own folder or a lower rank. */
const layerRank: Record<string, number> = {
  lib: 0,
  clocks: 1,
  checker: 1,
  core: 2,
  transport: 2,
  storage: 2,
  sim: 3,
  node: 4,
  client: 5,
  supervisor: 5,
  testkit: 6,
  verify: 6,
  cli: 7,
  bench: 7,
  architecture: 7,
};
const pureLayers = new Set(["lib", "clocks", "checker", "core"]);
const impureCalls = [
  /\bDate\.now\b/,
  /\bnew Date\(/,
  /\bMath\.random\b/,
  /\bperformance\.now\b/,
  /\bsetTimeout\b/,
  /\bsetInterval\b/,
  /\bsetImmediate\b/,
  /\bcrypto\.randomUUID\b/,
];

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [full] : [];
  });
}

function layerOf(file: string): string {
  return path.relative(sourceRoot, file).split(path.sep)[0] as string;
}

describe("architecture", () => {
  const files = sourceFiles(sourceRoot).filter((file) => path.dirname(file) !== sourceRoot);

  it("knows the layer of every source folder", () => {
    for (const file of files)
      assert.ok(
        layerOf(file) in layerRank,
        `${path.relative(repositoryRoot, file)} is in a folder with no layer`,
      );
  });

  it("imports only point down the layers", () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const match of readFileSync(file, "utf8").matchAll(
        /^\s*(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']/gm,
      )) {
        const target = layerOf(path.resolve(path.dirname(file), match[1] as string));
        if (target !== from && (layerRank[target] ?? 99) >= (layerRank[from] ?? 0)) {
          violations.push(
            `${path.relative(sourceRoot, file)} (${from}) imports ${match[1]} (${target})`,
          );
        }
      }
    }
    assert.deepEqual(violations, []);
  });

  it("pure layers use no clock, randomness, timer or node: module", () => {
    const violations: string[] = [];
    for (const file of files.filter((candidate) => pureLayers.has(layerOf(candidate)))) {
      const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      for (const pattern of impureCalls)
        if (pattern.test(text))
          violations.push(`${path.relative(sourceRoot, file)}: ${pattern.source}`);
      if (/from\s+["']node:/.test(text))
        violations.push(`${path.relative(sourceRoot, file)}: imports a node: module`);
    }
    assert.deepEqual(violations, []);
  });
});
