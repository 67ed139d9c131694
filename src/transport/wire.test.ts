// Goal: every frame kind survives encode → decode, and malformed bodies become WireError
// (never a crash further in). Method: round trips and hand-made bad bodies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pack } from "msgpackr";
import {
  decodeFrameBody,
  encodeFrame,
  encodeFrameBody,
  type Frame,
  FrameKind,
  WireError,
} from "./wire.js";

const hlc = { wallMs: 1_700_000_000_000, logical: 3 };

describe("wire codec", () => {
  it("carries byte payloads raw and everything else as msgpack", () => {
    const raw = decodeFrameBody(
      encodeFrameBody({
        kind: FrameKind.Request,
        correlationId: 9,
        topic: "t",
        payload: new Uint8Array([1, 2, 3]),
        timeoutMs: 5,
        hlc,
      }),
    );
    assert.deepEqual([...(raw as { payload: Uint8Array }).payload], [1, 2, 3]);
    const structured = decodeFrameBody(
      encodeFrameBody({
        kind: FrameKind.Message,
        topic: "t",
        payload: { nested: [1, { a: "b" }] },
        hlc,
      }),
    );
    assert.deepEqual((structured as { payload: unknown }).payload, { nested: [1, { a: "b" }] });
  });

  it("frames are one buffer: a 4-byte length, then the body", () => {
    const framed = encodeFrame({ kind: FrameKind.Response, correlationId: 3, payload: "ok", hlc });
    assert.equal(framed.readUInt32BE(0), framed.length - 4);
    assert.deepEqual(decodeFrameBody(framed, 4, framed.length), {
      kind: FrameKind.Response,
      correlationId: 3,
      payload: "ok",
      hlc,
    });
  });

  const frames: Frame[] = [
    {
      kind: FrameKind.Hello,
      version: 1,
      clusterId: "c",
      nodeId: "n1",
      advertise: "127.0.0.1:7001",
      hlc,
    },
    { kind: FrameKind.Welcome, version: 1, clusterId: "c", nodeId: "n2", hlc },
    { kind: FrameKind.Reject, reason: "no" },
    { kind: FrameKind.Message, topic: "t", payload: { a: [1, "x", null] }, hlc },
    {
      kind: FrameKind.Request,
      correlationId: 7,
      topic: "t",
      payload: Buffer.from("bytes"),
      timeoutMs: 100,
      hlc,
    },
    { kind: FrameKind.Response, correlationId: 7, payload: 42, hlc },
    {
      kind: FrameKind.ErrorResponse,
      correlationId: 7,
      code: "QueueFull",
      message: "full",
      retriable: true,
      hlc,
    },
    { kind: FrameKind.Ping, hlc },
  ];
  for (const frame of frames) {
    it(`round-trips frame kind ${frame.kind}`, () => {
      const decoded = decodeFrameBody(encodeFrameBody(frame));
      assert.deepEqual(JSON.parse(JSON.stringify(decoded)), JSON.parse(JSON.stringify(frame)));
    });
  }

  const bad: Array<[string, Buffer]> = [
    ["random bytes", Buffer.from([0xc1, 0xff, 0x00, 0x13])],
    ["not a list", pack({ kind: 3 })],
    ["empty list", pack([])],
    ["unknown kind", pack([99, "x"])],
    ["topic of the wrong type", pack([FrameKind.Message, 5, null, 1, 0])],
    ["negative correlation id", pack([FrameKind.Response, -1, null, 1, 0])],
    ["missing hlc", pack([FrameKind.Ping])],
    ["a truncated binary request header", Buffer.from([0x02, 0, 0, 0, 1])],
    [
      "a binary response with an unknown payload encoding",
      Buffer.concat([
        encodeFrameBody({ kind: FrameKind.Response, correlationId: 1, payload: 1, hlc }).subarray(
          0,
          17,
        ),
        Buffer.from([9, 1]),
      ]),
    ],
    [
      "a binary message whose topic runs past the end",
      Buffer.concat([Buffer.from([0x01]), Buffer.alloc(12), Buffer.from([200, 0x61])]),
    ],
    [
      "a binary message with no payload",
      Buffer.concat([Buffer.from([0x01]), Buffer.alloc(12), Buffer.from([1, 0x61, 0])]),
    ],
  ];
  for (const [name, body] of bad) {
    it(`rejects ${name} with WireError`, () => {
      assert.throws(() => decodeFrameBody(body), WireError);
    });
  }
});
