// Goal: the WAL record format round-trips and every kind of damage is detected, at the byte
// positions the format doc promises; method: a pinned golden encoding, fast-check round trips,
// and single-byte corruptions of encoded records fed to decodeRecordAt, scanSegment and
// findValidRecordAfter.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { crc32c } from "./crc32c.js";
import {
  decodeRecordAt,
  encodedRecordBytes,
  encodeRecord,
  findValidRecordAfter,
  scanSegment,
  type WalRecordInput,
  walRecordHeaderBytes,
  walRecordTypes,
} from "./wal-record.js";

const recordBytesMax = 4096;

const recordArbitrary: fc.Arbitrary<WalRecordInput> = fc
  .record({
    type: fc.constantFrom(...walRecordTypes),
    groupId: fc.integer({ min: 0, max: 0xffff_ffff }),
    payload: fc.uint8Array({ maxLength: 300 }),
  })
  .map((record) => ({ ...record })); // fc.record builds null-prototype objects; deepEqual minds

function encodeAll(records: readonly WalRecordInput[]): { bytes: Uint8Array; offsets: number[] } {
  const total = records.reduce((sum, record) => sum + encodedRecordBytes(record.payload.length), 0);
  const bytes = new Uint8Array(total);
  const offsets: number[] = [];
  let offset = 0;
  for (const record of records) {
    offsets.push(offset);
    offset = encodeRecord(record, bytes, offset);
  }
  return { bytes, offsets };
}

describe("WAL record format", () => {
  it("encodes the documented layout (golden bytes)", () => {
    const { bytes } = encodeAll([
      { type: "hard-state", groupId: 0x01020304, payload: Uint8Array.from([0xaa, 0xbb]) },
    ]);
    // length = 5 + 2 = 7; crc32c over [07 00 00 00] ++ [02 04 03 02 01 aa bb].
    assert.deepEqual(
      Buffer.from(bytes).toString("hex"),
      `07000000${Buffer.from(bytes.subarray(4, 8)).toString("hex")}0204030201aabb`,
    );
    assert.equal(bytes.length, walRecordHeaderBytes + 2);
    const decoded = decodeRecordAt(bytes, 0, bytes.length, recordBytesMax);
    assert.ok(decoded.ok);
    assert.equal(decoded.record.type, "hard-state");
    assert.equal(decoded.record.groupId, 0x01020304);
  });

  it("round-trips any sequence of records", () => {
    fc.assert(
      fc.property(fc.array(recordArbitrary, { maxLength: 20 }), (records) => {
        const { bytes, offsets } = encodeAll(records);
        const seen: WalRecordInput[] = [];
        const scan = scanSegment(bytes, recordBytesMax, (record, offset) => {
          assert.equal(offset, offsets[seen.length]);
          seen.push({
            type: record.type,
            groupId: record.groupId,
            payload: bytes.slice(record.payloadStart, record.payloadEnd),
          });
        });
        assert.equal(scan.damage, null);
        assert.equal(scan.validBytes, bytes.length);
        assert.equal(scan.recordCount, records.length);
        assert.deepEqual(seen, records);
        assert.deepEqual(scan.groupIds, new Set(records.map((record) => record.groupId)));
      }),
      { numRuns: 200 },
    );
  });

  it("detects any single flipped byte in a record, at that record's offset", () => {
    fc.assert(
      fc.property(
        fc.array(recordArbitrary, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (records, position, xor) => {
          const { bytes, offsets } = encodeAll(records);
          const at = position % bytes.length;
          bytes[at]! ^= xor;
          const damaged = offsets.findLastIndex((offset) => offset <= at);
          const scan = scanSegment(bytes, recordBytesMax);
          assert.equal(scan.recordCount, damaged);
          assert.equal(scan.validBytes, offsets[damaged]);
          assert.equal(scan.damage?.offsetBytes, offsets[damaged]);
          // The records after the damaged one are intact, and the forward search finds the
          // next one, which is how recovery tells corruption in the middle from a torn tail.
          const next = offsets[damaged + 1];
          const found = findValidRecordAfter(bytes, offsets[damaged]!, recordBytesMax);
          if (next === undefined) assert.equal(found, null);
          else assert.ok(found !== null && found <= next, `found ${found}, next at ${next}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects lengths out of range, truncated records, unknown types and zero fill", () => {
    const { bytes } = encodeAll([{ type: "entries", groupId: 1, payload: new Uint8Array(10) }]);
    const withLength = (copy: Uint8Array, length: number) => {
      new DataView(copy.buffer).setUint32(0, length, true);
      return copy;
    };
    const withType = (copy: Uint8Array, type: number) => {
      copy[8] = type;
      return copy;
    };
    const withValidChecksum = (copy: Uint8Array) => {
      const checksum = crc32c(copy, crc32c(copy, 0, 0, 4), 8, copy.length);
      new DataView(copy.buffer).setUint32(4, checksum, true);
      return copy;
    };
    const cases: [string, (copy: Uint8Array) => Uint8Array, RegExp][] = [
      ["too short for a prefix", (copy) => copy.subarray(0, 7), /too few for a record prefix/],
      ["cut inside the body", (copy) => copy.subarray(0, 20), /past the end/],
      ["length below 5", (copy) => withLength(copy, 4), /below the 5-byte/],
      ["length above max", (copy) => withLength(copy, 5000), /exceeds recordBytesMax/],
      ["zero fill", () => new Uint8Array(64), /length 0 is below/],
      ["type byte changed", (copy) => withType(copy, 2), /checksum mismatch/],
      [
        "unknown type, valid checksum",
        (copy) => withValidChecksum(withType(copy, 9)),
        /unknown record type 9/,
      ],
    ];
    for (const [name, damage, reason] of cases) {
      const damaged = damage(Uint8Array.from(bytes));
      const result = decodeRecordAt(damaged, 0, damaged.length, recordBytesMax);
      assert.ok(!result.ok, name);
      assert.match(result.reason, reason, name);
    }
  });

  it("finds nothing valid in a zero-filled or cut-off tail", () => {
    const { bytes } = encodeAll([
      { type: "entries", groupId: 3, payload: new Uint8Array(40).fill(7) },
    ]);
    const zeros = new Uint8Array(1000);
    assert.equal(findValidRecordAfter(zeros, 0, recordBytesMax), null);
    assert.equal(
      findValidRecordAfter(bytes.subarray(0, bytes.length - 1), 0, recordBytesMax),
      null,
    );
  });
});
