/**
 * @module The gossip datagram format (UDP on the node's peer port): a 4-byte header — magic
 * "BG", format version, flags — then a msgpack list [clusterId, senderId, hlcWall,
 * hlcLogical, payload], then, when the cluster has a gossip key, a 16-byte truncated
 * HMAC-SHA256 of everything before it. Decoding never throws past `DatagramError`, whose code
 * says which counter to bump.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Packr } from "msgpackr";
import type { HlcTimestamp } from "../clocks/hlc.js";

const magic0 = 0x42; // "B"
const magic1 = 0x47; // "G"
export const datagramVersion = 1;
const flagAuthenticated = 0x01;
const headerBytes = 4;
const macBytes = 16;

/**
 * Largest datagram sent or accepted. Membership keeps packets under ~1.4 KB by its
 * piggyback budget (an Ethernet MTU); 8 KiB leaves room for a push-pull-free burst while
 * staying far below UDP's 64 KiB and the kernel's default socket buffers.
 */
export const datagramBytesMax = 8 * 1024;

export type DatagramErrorCode = "Oversize" | "Malformed" | "WrongCluster" | "Unauthenticated";

export class DatagramError extends Error {
  override readonly name = "DatagramError";
  constructor(
    readonly code: DatagramErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Datagram {
  readonly clusterId: string;
  readonly senderId: string;
  readonly hlc: HlcTimestamp;
  readonly payload: unknown;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

function mac(key: Buffer, bytes: Buffer): Buffer {
  return createHmac("sha256", key).update(bytes).digest().subarray(0, macBytes);
}

export function encodeDatagram(datagram: Datagram, key: Buffer | null): Buffer {
  const body = packr.pack([
    datagram.clusterId,
    datagram.senderId,
    datagram.hlc.wallMs,
    datagram.hlc.logical,
    datagram.payload,
  ]);
  const header = Buffer.from([magic0, magic1, datagramVersion, key ? flagAuthenticated : 0]);
  const unsigned = Buffer.concat([header, body]);
  const bytes = key ? Buffer.concat([unsigned, mac(key, unsigned)]) : unsigned;
  if (bytes.length > datagramBytesMax) {
    throw new DatagramError(
      "Oversize",
      `datagram of ${bytes.length} bytes exceeds ${datagramBytesMax}`,
    );
  }
  return bytes;
}

/** Decodes and checks one datagram for `clusterId` (and `key`, when the cluster has one). */
export function decodeDatagram(
  bytes: Buffer,
  options: { clusterId: string; key: Buffer | null },
): Datagram {
  if (bytes.length > datagramBytesMax)
    throw new DatagramError("Oversize", `datagram of ${bytes.length} bytes`);
  if (bytes.length < headerBytes || bytes[0] !== magic0 || bytes[1] !== magic1) {
    throw new DatagramError("Malformed", "not a Brigade datagram");
  }
  if (bytes[2] !== datagramVersion)
    throw new DatagramError("Malformed", `datagram format version ${bytes[2]}`);
  const authenticated = ((bytes[3] as number) & flagAuthenticated) !== 0;
  let body = bytes.subarray(headerBytes);
  if (options.key !== null) {
    if (!authenticated || bytes.length < headerBytes + macBytes + 1)
      throw new DatagramError("Unauthenticated", "datagram without a MAC");
    const signed = bytes.subarray(0, bytes.length - macBytes);
    const expected = mac(options.key, signed);
    if (!timingSafeEqual(expected, bytes.subarray(bytes.length - macBytes)))
      throw new DatagramError("Unauthenticated", "bad MAC");
    body = signed.subarray(headerBytes);
  } else if (authenticated) {
    throw new DatagramError("Unauthenticated", "signed datagram but this node has no gossip key");
  }
  let fields: unknown;
  try {
    fields = packr.unpack(body);
  } catch (error) {
    throw new DatagramError("Malformed", `undecodable datagram: ${(error as Error).message}`);
  }
  if (!Array.isArray(fields) || fields.length !== 5)
    throw new DatagramError("Malformed", "datagram body is not a 5-element list");
  const [clusterId, senderId, wallMs, logical, payload] = fields as unknown[];
  if (typeof clusterId !== "string" || typeof senderId !== "string" || senderId === "")
    throw new DatagramError("Malformed", "bad datagram identity");
  if (
    !Number.isSafeInteger(wallMs) ||
    !Number.isSafeInteger(logical) ||
    (wallMs as number) < 0 ||
    (logical as number) < 0
  ) {
    throw new DatagramError("Malformed", "bad datagram timestamp");
  }
  if (clusterId !== options.clusterId)
    throw new DatagramError("WrongCluster", `datagram from cluster "${clusterId}"`);
  return {
    clusterId,
    senderId,
    hlc: { wallMs: wallMs as number, logical: logical as number },
    payload,
  };
}
