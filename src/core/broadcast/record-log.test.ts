// Checks that self-checking records survive a round trip and that every torn or corrupted tail is detected and cut off at the last whole record, by exhaustively truncating and bit-flipping a small log.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BodyReader,
  BodyWriter,
  decodeRecords,
  encodeRecord,
  RECORD_HEADER_BYTES,
} from "./record-log.js";

const bodyBytesMax = 1024;
const bodies = [
  new BodyWriter()
    .u8(1)
    .string("n1/0")
    .bytes(Uint8Array.from([1, 2, 3]))
    .finish(),
  new BodyWriter().u8(2).string("n2/7").string("n2").finish(),
  new Uint8Array(0),
  new BodyWriter().u8(3).string("ünïcödé/∞").finish(),
];
const frames = bodies.map((body) => encodeRecord(body, bodyBytesMax));
const log = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
const boundaries = [0];
for (const frame of frames) {
  log.set(frame, boundaries.at(-1)!);
  boundaries.push(boundaries.at(-1)! + frame.length);
}

describe("record log", () => {
  it("decodes what it encoded", () => {
    const decoded = decodeRecords(log, bodyBytesMax);
    assert.deepEqual(decoded.bodies, bodies);
    assert.equal(decoded.validBytes, log.length);
    assert.equal(decoded.damagedBytes, 0);
  });

  it("keeps exactly the whole records of every truncated log (a torn tail at each byte)", () => {
    for (let length = 0; length <= log.length; length++) {
      const decoded = decodeRecords(log.subarray(0, length), bodyBytesMax);
      const whole = boundaries.filter((boundary) => boundary <= length).length - 1;
      assert.deepEqual(decoded.bodies, bodies.slice(0, whole), `cut at ${length}`);
      assert.equal(decoded.validBytes, boundaries[whole]);
      assert.equal(decoded.damagedBytes, length - boundaries[whole]!);
    }
  });

  it("stops at the first record with any flipped bit", () => {
    for (let offset = 0; offset < log.length; offset++) {
      for (const bit of [0x01, 0x80]) {
        const damaged = log.slice();
        damaged[offset]! ^= bit;
        const record = boundaries.findLastIndex((boundary) => boundary <= offset);
        const decoded = decodeRecords(damaged, bodyBytesMax);
        assert.deepEqual(decoded.bodies, bodies.slice(0, record), `flip at ${offset}`);
      }
    }
  });

  it("rejects a length field over the limit without reading past it", () => {
    const huge = new Uint8Array(RECORD_HEADER_BYTES + 4);
    new DataView(huge.buffer).setUint32(0, bodyBytesMax + 1, true);
    assert.deepEqual(decodeRecords(huge, bodyBytesMax), {
      bodies: [],
      validBytes: 0,
      damagedBytes: 12,
    });
    assert.throws(() => encodeRecord(new Uint8Array(bodyBytesMax + 1), bodyBytesMax), /max/);
  });

  it("BodyReader reads fields back and returns null instead of reading out of bounds", () => {
    const reader = new BodyReader(bodies[0]!);
    assert.equal(reader.u8(), 1);
    assert.equal(reader.string(), "n1/0");
    assert.deepEqual(reader.bytes(), Uint8Array.from([1, 2, 3]));
    assert.equal(reader.atEnd(), true);
    assert.equal(reader.u8(), null);
    const short = new BodyReader(Uint8Array.from([9, 0, 0, 0, 1]));
    assert.equal(short.bytes(), null);
    const badUtf8 = new BodyReader(Uint8Array.from([1, 0, 0, 0, 0xff]));
    assert.equal(badUtf8.string(), null);
  });
});
