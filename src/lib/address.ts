/** @module Parsing `host:port` addresses given on the command line or in config. */
import { BrigadeError } from "./errors.js";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[ipv6]:port`, or `:port` (all interfaces). Port 0 means "any free
 * port" and is allowed only where `allowZero` is set (listening, never dialing).
 */
export function parseHostPort(text: string, options: { allowZero?: boolean } = {}): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  const host = match ? (match[1] ?? match[2] ?? "") : "";
  const minimumPort = options.allowZero ? 0 : 1;
  if (!match || !Number.isInteger(port) || port < minimumPort || port > 65535) {
    throw new BrigadeError(
      "InvalidArgument",
      `malformed address "${text}": expected host:port with a port in ${minimumPort}..65535`,
    );
  }
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/** True for an address one can send to: host:port with a host and a port in 1..65535. */
export function isDialableAddress(address: string): boolean {
  if (address.startsWith(":")) return false; // "all interfaces" is not somewhere to send to
  try {
    parseHostPort(address);
    return true;
  } catch {
    return false;
  }
}

export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
