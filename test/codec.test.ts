import { test } from "node:test";
import assert from "node:assert/strict";
import {
  PacketDecoder,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePuback,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  remainingLengthSize,
  writeRemainingLength,
} from "../firmware/mqtt/codec.ts";
import { utf8Decode, utf8Encode } from "../firmware/util/utf8.ts";

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const bytes = (u8: Uint8Array) => [...u8];

function decodeAll(chunks: number[][], max = 1 << 20) {
  const decoder = new PacketDecoder(max);
  const packets = [];
  for (const chunk of chunks) {
    decoder.push(new Uint8Array(chunk));
    for (let p = decoder.next(); p !== null; p = decoder.next()) packets.push(p);
  }
  return { packets, pending: decoder.pending() };
}

test("remaining length: the specification's examples (2.2.3)", () => {
  const examples: [number, number[]][] = [
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]],
    [2097151, [0xff, 0xff, 0x7f]],
    [2097152, [0x80, 0x80, 0x80, 0x01]],
    [268435455, [0xff, 0xff, 0xff, 0x7f]],
  ];
  for (const [length, encoded] of examples) {
    const target = new Uint8Array(4);
    const end = writeRemainingLength(target, 0, length);
    assert.deepEqual([...target.subarray(0, end)], encoded, "encode " + length);
    assert.equal(remainingLengthSize(length), encoded.length);
    // The decoder reads the same field back: it waits for the body (or rejects it as too large).
    const decoder = new PacketDecoder(300000000);
    decoder.push(new Uint8Array([0x30, ...encoded]));
    if (length === 0) assert.throws(() => decoder.next(), /PUBLISH too short/);
    else assert.equal(decoder.next(), null, "incomplete packet of " + length);
  }
  assert.throws(() => remainingLengthSize(268435456), /too large/);
});

test("CONNECT: token as username, no password, clean session, keep-alive", () => {
  const packet = encodeConnect({ clientId: "tbfw-1", username: "TOKEN", password: null, keepAliveS: 60, cleanSession: true });
  assert.deepEqual(bytes(packet), [
    0x10, 25, 0x00, 0x04, ...ascii("MQTT"), 0x04, 0x82, 0x00, 0x3c, 0x00, 0x06, ...ascii("tbfw-1"), 0x00, 0x05, ...ascii("TOKEN"),
  ]);
  const withPassword = encodeConnect({ clientId: "c", username: "u", password: "pw", keepAliveS: 300, cleanSession: false });
  assert.deepEqual(bytes(withPassword), [0x10, 20, 0, 4, ...ascii("MQTT"), 4, 0xc0, 0x01, 0x2c, 0, 1, ...ascii("c"), 0, 1, ...ascii("u"), 0, 2, ...ascii("pw")]);
  assert.throws(() => encodeConnect({ clientId: "c", username: null, password: "p", keepAliveS: 1, cleanSession: true }), /needs a username/);
});

test("PUBLISH QoS 0, QoS 1 and QoS 1 with DUP", () => {
  const payload = new Uint8Array(ascii("hi"));
  assert.deepEqual(bytes(encodePublish("a/b", payload, 0, 0, false, false)), [0x30, 7, 0, 3, ...ascii("a/b"), ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("a/b", payload, 1, 10, false, false)), [0x32, 9, 0, 3, ...ascii("a/b"), 0, 10, ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("a/b", payload, 1, 10, true, false)), [0x3a, 9, 0, 3, ...ascii("a/b"), 0, 10, ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("t", new Uint8Array(0), 0, 0, false, true)), [0x31, 3, 0, 1, ...ascii("t")]);
  assert.throws(() => encodePublish("t", payload, 2, 1, false, false), /QoS 0 and 1/);
  assert.throws(() => encodePublish("t", payload, 1, 0, false, false), /packet id 0/);
  assert.throws(() => encodePublish("", payload, 0, 0, false, false), /empty topic/);
});

test("a 200-byte PUBLISH uses a two-byte remaining length", () => {
  const packet = encodePublish("v1/devices/me/telemetry", new Uint8Array(200), 1, 1, false, false);
  const remaining = 2 + 23 + 2 + 200;
  assert.deepEqual(bytes(packet.subarray(0, 3)), [0x32, (remaining % 128) | 0x80, Math.floor(remaining / 128)]);
  assert.equal(packet.length, 3 + remaining);
});

test("PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT", () => {
  assert.deepEqual(bytes(encodePuback(0x1234)), [0x40, 2, 0x12, 0x34]);
  const filter = "v1/devices/me/rpc/request/+";
  assert.deepEqual(bytes(encodeSubscribe(1, [filter], [1])), [0x82, 32, 0, 1, 0, 27, ...ascii(filter), 1]);
  assert.deepEqual(bytes(encodeSubscribe(7, ["a", "b/#"], [0, 1])), [0x82, 12, 0, 7, 0, 1, ...ascii("a"), 0, 0, 3, ...ascii("b/#"), 1]);
  assert.deepEqual(bytes(encodeUnsubscribe(2, ["a"])), [0xa2, 5, 0, 2, 0, 1, ...ascii("a")]);
  assert.deepEqual(bytes(encodePingreq()), [0xc0, 0]);
  assert.deepEqual(bytes(encodeDisconnect()), [0xe0, 0]);
});

test("decodes CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP from the server", () => {
  const { packets } = decodeAll([
    [0x20, 2, 0, 0],
    [0x20, 2, 1, 5],
    [0x32, 10, 0, 4, ...ascii("x/yz"), 0x01, 0x02, ...ascii("ok")],
    [0x30, 5, 0, 1, ...ascii("t"), ...ascii("pq")],
    [0x40, 2, 0x12, 0x34],
    [0x90, 4, 0, 9, 1, 0x80],
    [0xb0, 2, 0, 3],
    [0xd0, 0],
  ]);
  assert.deepEqual(packets, [
    { type: 2, sessionPresent: false, returnCode: 0 },
    { type: 2, sessionPresent: true, returnCode: 5 },
    { type: 3, topic: "x/yz", payload: new Uint8Array(ascii("ok")), qos: 1, dup: false, retain: false, packetId: 0x0102 },
    { type: 3, topic: "t", payload: new Uint8Array(ascii("pq")), qos: 0, dup: false, retain: false, packetId: 0 },
    { type: 4, packetId: 0x1234 },
    { type: 9, packetId: 9, granted: [1, 0x80] },
    { type: 11, packetId: 3 },
    { type: 13 },
  ]);
});

test("streaming: one byte at a time, and several packets in one read", () => {
  const stream = [0x20, 2, 0, 0, 0x40, 2, 0, 1, 0x32, 8, 0, 2, ...ascii("ab"), 0, 5, ...ascii("zz"), 0xd0, 0];
  const byByte = decodeAll(stream.map((b) => [b]));
  const whole = decodeAll([stream]);
  assert.equal(byByte.packets.length, 4);
  assert.deepEqual(byByte.packets, whole.packets);
  assert.equal(whole.pending, 0);
  // A large payload split at awkward places (buffer growth and compaction).
  const big = bytes(encodePublish("t", new Uint8Array(5000).fill(7), 0, 0, false, false));
  const pieces = [big.slice(0, 1), big.slice(1, 2), big.slice(2, 3000), big.slice(3000)];
  const result = decodeAll([[0xd0, 0], ...pieces, [0xd0, 0]]);
  assert.equal(result.packets.length, 3);
  assert.equal((result.packets[1] as { payload: Uint8Array }).payload.length, 5000);
  // The payload is a copy: reusing the decoder does not change it.
  const decoder = new PacketDecoder(1000);
  decoder.push(new Uint8Array([0x30, 4, 0, 1, 0x74, 0x41]));
  const first = decoder.next() as { payload: Uint8Array };
  decoder.push(new Uint8Array([0x30, 4, 0, 1, 0x74, 0x42]));
  decoder.next();
  assert.deepEqual([...first.payload], [0x41]);
});

test("malformed packets throw an error naming the problem", () => {
  const cases: [number[], RegExp][] = [
    [[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f], /longer than 4 bytes/],
    [[0x20, 3, 0, 0, 0], /CONNACK with remaining length 3/],
    [[0x21, 2, 0, 0], /CONNACK with reserved flags/],
    [[0x20, 2, 2, 0], /reserved acknowledge flags/],
    [[0x34, 5, 0, 1, 0x74, 0, 1], /QoS 2/],
    [[0x32, 3, 0, 1, 0x74], /runs past the packet end/],
    [[0x30, 4, 0, 9, 0x74, 0x74], /runs past the packet end/],
    [[0x30, 3, 0, 1, 0xff], /not valid UTF-8/],
    [[0x32, 5, 0, 1, 0x74, 0, 0], /packet id 0/],
    [[0x90, 3, 0, 1, 3], /invalid return code 3/],
    [[0xd0, 1, 0], /PINGRESP with remaining length 1/],
    [[0x10, 0], /unexpected packet type 1/],
    [[0x82, 0], /unexpected packet type 8/],
    [[0x50, 2, 0, 1], /unexpected packet type 5/],
  ];
  for (const [input, expected] of cases) {
    const decoder = new PacketDecoder(1000);
    decoder.push(new Uint8Array(input));
    assert.throws(() => decoder.next(), expected, JSON.stringify(input));
  }
  const small = new PacketDecoder(100);
  small.push(new Uint8Array([0x30, 0x80, 0x01]));
  assert.throws(() => small.next(), /131 bytes exceeds the 100-byte limit/);
});

test("UTF-8 round trip without TextEncoder", () => {
  for (const text of ["", "abc", "température", "温度", "😀 ok"]) {
    const encoded = utf8Encode(text);
    assert.deepEqual([...encoded], [...Buffer.from(text, "utf8")], text);
    assert.equal(utf8Decode(encoded, 0, encoded.length), text);
  }
  assert.equal(utf8Decode(new Uint8Array([0xc3]), 0, 1), null);
});
