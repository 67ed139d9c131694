// Pins FNV-1a 32 and 64 to the reference vectors published by the FNV authors, and checks that hashing in pieces equals hashing at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FNV1A32_OFFSET_BASIS, Fnv1a64, fnv1a32 } from "./fnv1a.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("fnv1a", () => {
  it("fnv1a32 matches the reference vectors", () => {
    assert.equal(fnv1a32(bytes("")), 0x811c9dc5);
    assert.equal(fnv1a32(bytes("a")), 0xe40c292c);
    assert.equal(fnv1a32(bytes("foobar")), 0xbf9cf968);
  });

  it("fnv1a32 continues a running hash and honours a range", () => {
    const whole = fnv1a32(bytes("foobar"));
    assert.equal(fnv1a32(bytes("bar"), fnv1a32(bytes("foo"))), whole);
    assert.equal(fnv1a32(bytes("xxfoobarxx"), FNV1A32_OFFSET_BASIS, 2, 8), whole);
  });

  it("Fnv1a64 matches the reference vectors", () => {
    assert.equal(new Fnv1a64().hex(), "cbf29ce484222325");
    assert.equal(new Fnv1a64().updateText("a").hex(), "af63dc4c8601ec8c");
    assert.equal(new Fnv1a64().updateText("foobar").hex(), "85944171f73967e8");
  });

  it("Fnv1a64 is incremental: pieces hash like the concatenation", () => {
    const text = "00000010 n1 send n1>n2 arrive@12 Data n1/0 3B\n".repeat(20);
    const whole = new Fnv1a64().updateText(text).hex();
    const pieces = new Fnv1a64();
    for (let start = 0; start < text.length; start += 7)
      pieces.updateText(text.slice(start, start + 7));
    assert.equal(pieces.hex(), whole);
    assert.notEqual(new Fnv1a64().updateText(`${text}x`).hex(), whole);
  });
});
