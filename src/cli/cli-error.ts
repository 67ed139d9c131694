/** @module An error a CLI command reports as one line on stderr, with its exit code (2 = bad usage or config, 1 = failure). */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}
