// Goal: crc32c is CRC-32C (Castagnoli) exactly, fast path and continuation included; method:
// published check values (RFC 3720 §B.4 and the CRC catalogue), then fast-check properties
// comparing the slicing-by-8 path against the bit-at-a-time definition on random byte ranges.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { crc32c, crc32cBitwise } from "./crc32c.js";

const ascii = (text: string) => new TextEncoder().encode(text);

describe("crc32c", () => {
  it('matches the standard check value: "123456789" -> 0xE3069283', () => {
    assert.equal(crc32c(ascii("123456789")), 0xe3069283);
    assert.equal(crc32cBitwise(ascii("123456789")), 0xe3069283);
  });

  it("matches the RFC 3720 §B.4 test patterns", () => {
    const cases: [string, Uint8Array, number][] = [
      ["empty", new Uint8Array(0), 0x00000000],
      ["32 bytes of zeros", new Uint8Array(32), 0x8a9136aa],
      ["32 bytes of 0xff", new Uint8Array(32).fill(0xff), 0x62a8ab43],
      ["32 incrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
      ["32 decrementing bytes", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
      ["a", ascii("a"), 0xc1d04330],
    ];
    for (const [name, bytes, expected] of cases)
      assert.equal(crc32c(bytes), expected, `${name}: got 0x${crc32c(bytes).toString(16)}`);
  });

  it("agrees with the bit-at-a-time definition on any bytes and range", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (bytes, a, b, seed) => {
          const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
          const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
          assert.equal(crc32c(bytes, seed, start, end), crc32cBitwise(bytes, seed, start, end));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("continues across a split: crc(a ++ b) = crc(b, crc(a))", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const joined = new Uint8Array(a.length + b.length);
        joined.set(a);
        joined.set(b, a.length);
        assert.equal(crc32c(b, crc32c(a)), crc32c(joined));
        assert.equal(crc32c(joined, crc32c(joined, 0, 0, a.length), a.length), crc32c(joined));
      }),
      { numRuns: 300 },
    );
  });

  it("changes when any single bit flips", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), (bytes, choice) => {
        const bit = choice % (bytes.length * 8);
        const flipped = Uint8Array.from(bytes);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        assert.notEqual(crc32c(flipped), crc32c(bytes));
      }),
      { numRuns: 300 },
    );
  });
});
