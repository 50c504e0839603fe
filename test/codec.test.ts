import { test } from "node:test";
import assert from "node:assert/strict";
import mqttPacket from "mqtt-packet";
import { encodeConnect, encodePublish, encodeSubscribe } from "../firmware/mqtt/codec.ts";
import { PacketStream } from "./helpers/packet-stream.ts";
import { utf8Decode, utf8Encode } from "../firmware/util/utf8.ts";
import { parsedByMqttPacket } from "./helpers/parse-packet.ts";

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const bytes = (u8: Uint8Array) => [...u8];

function decodeAll(chunks: number[][], max = 1 << 20) {
  const decoder = new PacketStream(max);
  const packets = [];
  for (const chunk of chunks) {
    decoder.push(new Uint8Array(chunk));
    for (let p = decoder.next(); p !== null; p = decoder.next()) packets.push(p);
  }
  return { packets, pending: decoder.pending() };
}

/** A server packet written by mqtt-packet, for the firmware's decoder. */
const fromServer = (packet: Record<string, unknown>) => [...mqttPacket.generate(packet as unknown as mqttPacket.Packet)];

test("remaining length: the specification's examples (2.2.3), both ways", () => {
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
    // The decoder reads the field and waits for the body (or rejects it as too large).
    const decoder = new PacketStream(300000000);
    decoder.push(new Uint8Array([0x30, ...encoded]));
    if (length === 0) assert.throws(() => decoder.next(), /PUBLISH topic past the end/);
    else assert.equal(decoder.next(), null, "incomplete packet of " + length);
  }
  // The encoder writes it: a PUBLISH whose body is exactly that long (up to 2 MB here).
  for (const [length, encoded] of examples.filter(([l]) => l >= 4 && l <= 2097152)) {
    const packet = encodePublish("t", new Uint8Array(length - 3), 0, 0, false);
    assert.deepEqual(bytes(packet.subarray(1, 1 + encoded.length)), encoded, "encode " + length);
    assert.equal(packet.length, 1 + encoded.length + length);
  }
});

test("CONNECT: token as username, no password, clean session, keep-alive; mqtt-packet reads it back", () => {
  const packet = encodeConnect("tbfw-1", "TOKEN", 60);
  assert.deepEqual(bytes(packet), [
    0x10, 25, 0x00, 0x04, ...ascii("MQTT"), 0x04, 0x82, 0x00, 0x3c, 0x00, 0x06, ...ascii("tbfw-1"), 0x00, 0x05, ...ascii("TOKEN"),
  ]);
  const parsed = parsedByMqttPacket(encodeConnect("tbfw-ü", "töken", 300)) as mqttPacket.IConnectPacket;
  assert.equal(parsed.clientId, "tbfw-ü");
  assert.equal(parsed.username, "töken");
  assert.equal(parsed.password, undefined);
  assert.equal(parsed.keepalive, 300);
  assert.equal(parsed.clean, true);
  assert.equal(parsed.protocolVersion, 4);
  // Without a user name: flags clean session only.
  assert.deepEqual(bytes(encodeConnect("c", null, 1)), [0x10, 13, 0, 4, ...ascii("MQTT"), 4, 0x02, 0, 1, 0, 1, ...ascii("c")]);
  assert.equal((parsedByMqttPacket(encodeConnect("c", null, 1)) as mqttPacket.IConnectPacket).username, undefined);
});

test("PUBLISH QoS 0, QoS 1 and QoS 1 with DUP; mqtt-packet reads them back", () => {
  const payload = new Uint8Array(ascii("hi"));
  assert.deepEqual(bytes(encodePublish("a/b", payload, 0, 0, false)), [0x30, 7, 0, 3, ...ascii("a/b"), ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("a/b", payload, 1, 10, false)), [0x32, 9, 0, 3, ...ascii("a/b"), 0, 10, ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("a/b", payload, 1, 10, true)), [0x3a, 9, 0, 3, ...ascii("a/b"), 0, 10, ...ascii("hi")]);
  assert.deepEqual(bytes(encodePublish("t", new Uint8Array(0), 0, 0, true)), [0x30, 3, 0, 1, ...ascii("t")], "no DUP at QoS 0");
  for (const size of [0, 1, 100, 200, 16384, 70000]) {
    const body = new Uint8Array(size).map((_, i) => i * 7);
    const parsed = parsedByMqttPacket(encodePublish("v1/devices/me/telemetry/é", body, 1, 65535, true)) as mqttPacket.IPublishPacket;
    assert.equal(parsed.topic, "v1/devices/me/telemetry/é");
    assert.equal(parsed.messageId, 65535);
    assert.equal(parsed.qos, 1);
    assert.equal(parsed.dup, true);
    assert.equal(parsed.retain, false);
    assert.deepEqual([...(parsed.payload as Buffer)], [...body], "payload of " + size);
  }
});

test("SUBSCRIBE as the specification and mqtt-packet have it, QoS 1 for every filter (PUBACK, PINGREQ, DISCONNECT: test/session.test.ts)", () => {
  const filter = "v1/devices/me/rpc/request/+";
  assert.deepEqual(bytes(encodeSubscribe(1, [filter])), [0x82, 32, 0, 1, 0, 27, ...ascii(filter), 1]);
  assert.deepEqual(bytes(encodeSubscribe(7, ["a", "b/#"])), [0x82, 12, 0, 7, 0, 1, ...ascii("a"), 1, 0, 3, ...ascii("b/#"), 1]);
  const parsed = parsedByMqttPacket(encodeSubscribe(9, ["v1/devices/me/attributes", "v2/fw/response/+/chunk/+"])) as mqttPacket.ISubscribePacket;
  assert.equal(parsed.messageId, 9);
  assert.deepEqual(parsed.subscriptions.map((s) => [s.topic, s.qos]), [["v1/devices/me/attributes", 1], ["v2/fw/response/+/chunk/+", 1]]);
});

test("decodes CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP as written by mqtt-packet", () => {
  const packet = (type: number, fields: Record<string, unknown>) => ({ type, code: 0, id: 0, topic: "", payload: null, qos: 0, ...fields });
  const { packets } = decodeAll([
    fromServer({ cmd: "connack", returnCode: 0, sessionPresent: false }),
    fromServer({ cmd: "connack", returnCode: 5, sessionPresent: true }),
    fromServer({ cmd: "publish", topic: "x/yz", payload: Buffer.from("ok"), qos: 1, messageId: 0x0102, dup: false, retain: false }),
    fromServer({ cmd: "publish", topic: "t", payload: Buffer.from("pq"), qos: 0, dup: false, retain: false }),
    fromServer({ cmd: "puback", messageId: 0x1234 }),
    fromServer({ cmd: "suback", messageId: 9, granted: [1, 0x80] }),
    fromServer({ cmd: "suback", messageId: 10, granted: [0, 1] }),
    fromServer({ cmd: "unsuback", messageId: 3 }),
    fromServer({ cmd: "pingresp" }),
  ]);
  assert.deepEqual(packets, [
    packet(2, { code: 0 }),
    packet(2, { code: 5, id: 0x0105 }),
    packet(3, { topic: "x/yz", payload: new Uint8Array(ascii("ok")), qos: 1, id: 0x0102 }),
    packet(3, { topic: "t", payload: new Uint8Array(ascii("pq")) }),
    packet(4, { id: 0x1234 }),
    packet(9, { id: 9, code: 0x80 }),
    packet(9, { id: 10 }),
    packet(11, { id: 3 }),
    packet(13, {}),
  ]);
});

test("streaming: one byte at a time, and several packets in one read", () => {
  const stream = [0x20, 2, 0, 0, 0x40, 2, 0, 1, 0x32, 8, 0, 2, ...ascii("ab"), 0, 5, ...ascii("zz"), 0xd0, 0];
  const byByte = decodeAll(stream.map((b) => [b]));
  const whole = decodeAll([stream]);
  assert.equal(byByte.packets.length, 4);
  assert.deepEqual(byByte.packets, whole.packets);
  assert.equal(whole.pending, 0);
  // A large payload split at awkward places.
  const big = bytes(encodePublish("t", new Uint8Array(5000).fill(7), 0, 0, false));
  const pieces = [big.slice(0, 1), big.slice(1, 2), big.slice(2, 3000), big.slice(3000)];
  const result = decodeAll([[0xd0, 0], ...pieces, [0xd0, 0]]);
  assert.equal(result.packets.length, 3);
  assert.equal((result.packets[1] as { payload: Uint8Array }).payload.length, 5000);
  // The payload is a copy: reusing the decoder does not change it.
  const decoder = new PacketStream(1000);
  decoder.push(new Uint8Array([0x30, 4, 0, 1, 0x74, 0x41]));
  const first = decoder.next() as { payload: Uint8Array };
  decoder.push(new Uint8Array([0x30, 4, 0, 1, 0x74, 0x42]));
  decoder.next();
  assert.deepEqual([...first.payload], [0x41]);
});

test("malformed packets throw an error naming the problem", () => {
  const cases: [number[], RegExp][] = [
    [[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f], /remaining length over 4 bytes/],
    [[0x20, 3, 0, 0, 0], /packet type 2: bad flags or length 3/],
    [[0x21, 2, 0, 0], /packet type 2: bad flags/],
    [[0x20, 2, 2, 0], /CONNACK flags 2/],
    [[0x34, 5, 0, 1, 0x74, 0, 1], /QoS 2/],
    [[0x32, 3, 0, 1, 0x74], /topic past the end/],
    [[0x30, 4, 0, 9, 0x74, 0x74], /topic past the end/],
    [[0x30, 3, 0, 1, 0xff], /topic not UTF-8/],
    [[0x32, 5, 0, 1, 0x74, 0, 0], /packet id 0/],
    [[0x90, 3, 0, 1, 3], /SUBACK code 3/],
    [[0x90, 2, 0, 1], /packet type 9: bad flags or length 2/],
    [[0xd0, 1, 0], /packet type 13: bad flags or length 1/],
    [[0x10, 0], /unexpected packet type 1/],
    [[0x82, 0], /unexpected packet type 8/],
    [[0x50, 2, 0, 1], /unexpected packet type 5/],
  ];
  for (const [input, expected] of cases) {
    const decoder = new PacketStream(1000);
    decoder.push(new Uint8Array(input));
    assert.throws(() => decoder.next(), expected, JSON.stringify(input));
  }
  const small = new PacketStream(100);
  small.push(new Uint8Array([0x30, 0x80, 0x01]));
  assert.throws(() => small.next(), /packet of 131 B over the 100 B limit/);
});

test("UTF-8 round trip without TextEncoder", () => {
  for (const text of ["", "abc", "température", "温度", "😀 ok"]) {
    const encoded = utf8Encode(text);
    assert.deepEqual([...encoded], [...Buffer.from(text, "utf8")], text);
    assert.equal(utf8Decode(encoded, 0, encoded.length), text);
  }
  assert.equal(utf8Decode(new Uint8Array([0xc3]), 0, 1), null);
});
