/** @module Helpers shared by the membership simulation tests: seed lists, the pass check with its replay line, medians. */
import assert from "node:assert/strict";
import type { MembershipScenarioResult } from "./scenario.js";

/** Seeds 1..count. */
export const seeds = (count: number): number[] =>
  Array.from({ length: count }, (_, index) => index + 1);

/** Fails with the one command that replays the seed. */
export function assertPassed(result: MembershipScenarioResult): void {
  const { scenario, seed } = result.options;
  assert.deepEqual(
    result.failures,
    [],
    `reproduce: npm run sim:membership -- --seed ${seed} --scenario ${scenario}`,
  );
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
