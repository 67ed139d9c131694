/**
 * @module The history checkers of `brigade verify`: pure functions from a history (events or
 * paired operations) to a `CheckResult`. Linearizability (per key, against a model), and the
 * direct checkers for sets, banks and append-only lists.
 */
export * from "./append.js";
export * from "./bank.js";
export * from "./counter.js";
export * from "./history.js";
export * from "./linearizability.js";
export * from "./models.js";
export * from "./set.js";
