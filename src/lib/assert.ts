/**
 * @module Assertions of invariants. A failed assertion is a programmer error: it is never
 * caught by protocol code; the process exits and recovers from durable state.
 */

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: boolean, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertNever(value: never): never {
  throw new AssertionError(`unexpected variant: ${JSON.stringify(value)}`);
}
