/** @module Entry point of the `brigade` executable (see `program.ts`). */
import { run } from "./program.js";

await run(process.argv);
