/** @module Options shared by several commands. */
import { Option } from "commander";

/** The --api option of commands that talk to a node. */
export function apiOption(): Option {
  return new Option("--api <host:port>", "the node's API address")
    .env("BRIGADE_API")
    .default("127.0.0.1:8001");
}
