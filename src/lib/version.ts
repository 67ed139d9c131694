/** @module The Brigade release, reported by `brigade --version`, node status and membership tags. */
export const version = "0.1.0";
