// Goal: the frame decoder returns exactly the frames written, however the byte stream is cut,
// and refuses oversize and empty frames before buffering them. Method: table cases plus a
// fast-check property over random frames and random chunk boundaries.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeFrameHeader, FrameDecoder, FrameError } from "./frame.js";

function frame(body: Uint8Array): Buffer {
  return Buffer.concat([encodeFrameHeader(body.length), body]);
}

describe("FrameDecoder", () => {
  it("decodes a frame delivered one byte at a time", () => {
    const decoder = new FrameDecoder(1024);
    const bytes = frame(Buffer.from("hello"));
    const frames: Buffer[] = [];
    for (const byte of bytes) frames.push(...decoder.push(Buffer.from([byte])));
    assert.deepEqual(frames.map(String), ["hello"]);
    assert.equal(decoder.pendingBytes, 0);
  });

  it("decodes many frames coalesced into one chunk", () => {
    const decoder = new FrameDecoder(1024);
    const chunk = Buffer.concat(["a", "bb", "ccc"].map((text) => frame(Buffer.from(text))));
    assert.deepEqual(decoder.push(chunk).map(String), ["a", "bb", "ccc"]);
  });

  it("keeps a truncated frame pending instead of returning it", () => {
    const decoder = new FrameDecoder(1024);
    const bytes = frame(Buffer.from("truncated"));
    assert.deepEqual(decoder.push(bytes.subarray(0, 7)), []);
    assert.equal(decoder.pendingBytes, 7);
  });

  it("rejects an oversize frame as soon as its header arrives", () => {
    const decoder = new FrameDecoder(16);
    assert.throws(
      () => decoder.push(encodeFrameHeader(17)),
      (error: unknown) => error instanceof FrameError && error.code === "FrameTooLarge",
    );
  });

  it("rejects an empty frame", () => {
    const decoder = new FrameDecoder(16);
    assert.throws(
      () => decoder.push(encodeFrameHeader(0)),
      (error: unknown) => error instanceof FrameError && error.code === "FrameEmpty",
    );
  });

  it("accepts a frame of exactly the limit", () => {
    const decoder = new FrameDecoder(16);
    assert.equal(decoder.push(frame(Buffer.alloc(16, 1))).length, 1);
  });

  it("returns the written frames for any split of the stream (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map(frame));
          const decoder = new FrameDecoder(300);
          const decoded: Buffer[] = [];
          let offset = 0;
          let cut = 0;
          while (offset < stream.length) {
            const size = cuts[cut++ % cuts.length] as number;
            decoded.push(...decoder.push(stream.subarray(offset, offset + size)));
            offset += size;
          }
          assert.deepEqual(
            decoded.map((body) => Buffer.from(body).toString("hex")),
            bodies.map((body) => Buffer.from(body).toString("hex")),
          );
          assert.equal(decoder.pendingBytes, 0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
