/**
 * @module FNV-1a hashes (Fowler–Noll–Vo, variant 1a) over bytes: a 32-bit one for record
 * checksums and an incremental 64-bit one for trace digests. Pure and dependency-free.
 *
 * Not cryptographic: FNV detects accidental damage (a torn write, a changed trace line), not
 * an adversary. Reference vectors (pinned in `fnv1a.test.ts`) are from the FNV authors'
 * page, http://www.isthe.com/chongo/tech/comp/fnv/.
 */

/** FNV-1a 32-bit offset basis; pass a previous result as `hash` to continue a running hash. */
export const FNV1A32_OFFSET_BASIS = 0x811c9dc5;
const FNV1A32_PRIME = 0x01000193;

/**
 * FNV-1a 32-bit over `bytes[start..end)`, continuing from `hash` (the offset basis by default),
 * so a checksum can cover a header and a body without copying them together.
 */
export function fnv1a32(
  bytes: Uint8Array,
  hash = FNV1A32_OFFSET_BASIS,
  start = 0,
  end = bytes.length,
): number {
  let state = hash >>> 0;
  for (let index = start; index < end; index++) {
    state ^= bytes[index]!;
    state = Math.imul(state, FNV1A32_PRIME);
  }
  return state >>> 0;
}

/**
 * Incremental FNV-1a 64-bit, kept as two uint32 halves so it needs no BigInt (the 64-bit prime
 * is 2^40 + 0x1b3, so multiplying is `hash * 0x1b3 + (hash << 40)`).
 *
 * Example:
 *   const digest = new Fnv1a64().updateText("hello\n").hex(); // 16 hex digits
 */
export class Fnv1a64 {
  #high = 0xcbf29ce4;
  #low = 0x84222325;
  readonly #encoder = new TextEncoder();

  update(bytes: Uint8Array): this {
    let high = this.#high;
    let low = this.#low;
    for (let index = 0; index < bytes.length; index++) {
      low = (low ^ bytes[index]!) >>> 0;
      const lowProduct = low * 0x1b3; // < 2^41: exact in a double
      const carry = Math.floor(lowProduct / 0x1_0000_0000);
      high = (Math.imul(high, 0x1b3) + carry + (low << 8)) >>> 0;
      low = lowProduct >>> 0;
    }
    this.#high = high;
    this.#low = low;
    return this;
  }

  /** Hashes the UTF-8 encoding of `text`. */
  updateText(text: string): this {
    return this.update(this.#encoder.encode(text));
  }

  /** The current value as 16 lowercase hex digits. */
  hex(): string {
    return this.#high.toString(16).padStart(8, "0") + this.#low.toString(16).padStart(8, "0");
  }
}
