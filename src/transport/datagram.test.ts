// Goal: gossip datagrams are accepted only from the same cluster and, when a gossip key is
// set, only with a valid MAC; garbage and oversize input become typed DatagramErrors.
// Method: encode/decode round trips and hand-made bad datagrams.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Datagram,
  DatagramError,
  datagramBytesMax,
  decodeDatagram,
  encodeDatagram,
} from "./datagram.js";

const datagram: Datagram = {
  clusterId: "c1",
  senderId: "n1",
  hlc: { wallMs: 1_700_000_000_000, logical: 2 },
  payload: { type: "ping", seq: 1 },
};
const key = Buffer.alloc(32, 7);
const otherKey = Buffer.alloc(32, 8);

function code(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof DatagramError) return error.code;
    throw error;
  }
  return "accepted";
}

describe("gossip datagrams", () => {
  it("round-trip without and with a gossip key", () => {
    assert.deepEqual(
      decodeDatagram(encodeDatagram(datagram, null), { clusterId: "c1", key: null }),
      datagram,
    );
    assert.deepEqual(
      decodeDatagram(encodeDatagram(datagram, key), { clusterId: "c1", key }),
      datagram,
    );
  });

  it("refuses another cluster", () => {
    assert.equal(
      code(() => decodeDatagram(encodeDatagram(datagram, null), { clusterId: "c2", key: null })),
      "WrongCluster",
    );
  });

  it("refuses a wrong key, a missing MAC, a tampered body and an unexpected MAC", () => {
    assert.equal(
      code(() => decodeDatagram(encodeDatagram(datagram, otherKey), { clusterId: "c1", key })),
      "Unauthenticated",
    );
    assert.equal(
      code(() => decodeDatagram(encodeDatagram(datagram, null), { clusterId: "c1", key })),
      "Unauthenticated",
    );
    const tampered = encodeDatagram(datagram, key);
    tampered[10] = (tampered[10] as number) ^ 0xff;
    assert.equal(
      code(() => decodeDatagram(tampered, { clusterId: "c1", key })),
      "Unauthenticated",
    );
    assert.equal(
      code(() => decodeDatagram(encodeDatagram(datagram, key), { clusterId: "c1", key: null })),
      "Unauthenticated",
    );
  });

  it("refuses garbage and oversize datagrams", () => {
    assert.equal(
      code(() => decodeDatagram(Buffer.from("hello there"), { clusterId: "c1", key: null })),
      "Malformed",
    );
    assert.equal(
      code(() =>
        decodeDatagram(Buffer.from([0x42, 0x47, 1, 0, 0xc1]), { clusterId: "c1", key: null }),
      ),
      "Malformed",
    );
    assert.equal(
      code(() =>
        decodeDatagram(Buffer.alloc(datagramBytesMax + 1), { clusterId: "c1", key: null }),
      ),
      "Oversize",
    );
    assert.equal(
      code(() => encodeDatagram({ ...datagram, payload: Buffer.alloc(datagramBytesMax) }, null)),
      "Oversize",
    );
  });
});
