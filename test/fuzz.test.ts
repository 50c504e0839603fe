// Seeded, reproducible fuzzing of what the device reads from the network: 100,000 random
// and mutated server packets (valid ones written by mqtt-packet, then bytes flipped, cut,
// repeated, inserted and length fields changed) go to the decoder in random splits and to a
// connected session. Nothing but the decoder's own named errors may come out of the
// decoder, nothing at all out of the session; the decoder keeps no more than one packet's
// worth of bytes, and every input is consumed in bounded steps. FUZZ_SEED=n replays a run.

import { test } from "node:test";
import assert from "node:assert/strict";
import mqttPacket from "mqtt-packet";
import { PacketStream } from "./helpers/packet-stream.ts";
import { MqttSession, sessionStateName } from "../firmware/mqtt/session.ts";
import { createLogger } from "../firmware/util/log.ts";
// The firmware's xorshift32: the same inputs on every machine for a seed.
import { seededRandom as seeded } from "../firmware/util/random.ts";
import { fakePlatform } from "./helpers/fake-platform.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const INPUTS = 100000;
const MAX_PACKET = 4096;
/** Every error the decoder may throw names the problem in one of these ways. */
const DECODER_ERRORS = /^(remaining length over 4 bytes|packet of \d+ B over the \d+ B limit|PUBLISH with QoS \d|PUBLISH topic past the end|PUBLISH topic not UTF-8|PUBLISH with packet id 0|unexpected packet type \d+|packet type \d+: bad flags or length \d+|CONNACK flags \d+|SUBACK code \d+|second CONNACK|packet type \d+ before CONNACK)$/;

function validPackets(): Buffer[] {
  const packets: mqttPacket.Packet[] = [
    { cmd: "connack", returnCode: 0, sessionPresent: false },
    { cmd: "connack", returnCode: 5, sessionPresent: false },
    { cmd: "puback", messageId: 1 },
    { cmd: "puback", messageId: 65535 },
    { cmd: "suback", messageId: 7, granted: [1, 0, 128] },
    { cmd: "unsuback", messageId: 9, granted: [] },
    { cmd: "pingresp" },
    { cmd: "publish", topic: "v2/r/req/12", payload: Buffer.from('{"method":"getStatus","params":{}}'), qos: 1, messageId: 3, dup: false, retain: false },
    { cmd: "publish", topic: "v1/devices/me/attributes", payload: Buffer.from('{"samplingIntervalMs":5000}'), qos: 0, dup: false, retain: false },
    { cmd: "publish", topic: "v2/a/res/1", payload: Buffer.from('{"shared":{"logLevel":"debug","ü":"✓"}}'), qos: 1, messageId: 400, dup: true, retain: false },
    { cmd: "publish", topic: "t", payload: Buffer.alloc(300, 65), qos: 0, dup: false, retain: false },
  ];
  return packets.map((p) => mqttPacket.generate(p));
}

function fuzzInput(random: () => number, valid: Buffer[]): Buffer {
  const pick = () => valid[Math.floor(random() * valid.length)];
  const kind = Math.floor(random() * 6);
  if (kind === 0) {
    // Random bytes.
    const bytes = Buffer.alloc(1 + Math.floor(random() * 64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  }
  const bytes = Buffer.from(pick());
  if (kind === 1) {
    // Flipped bits.
    for (let n = 1 + Math.floor(random() * 4); n > 0; n--) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
    return bytes;
  }
  if (kind === 2) return bytes.subarray(0, Math.floor(random() * bytes.length)); // cut short
  if (kind === 3) {
    // A changed remaining length, up to the 4-byte maximum and past it.
    const out = Buffer.from(bytes);
    out[1] = Math.floor(random() * 256);
    return random() < 0.3 ? Buffer.concat([out.subarray(0, 2), Buffer.from([0xff, 0xff, 0xff, 0x7f]), out.subarray(2)]) : out;
  }
  if (kind === 4) {
    // Bytes inserted somewhere.
    const at = Math.floor(random() * bytes.length);
    const extra = Buffer.alloc(1 + Math.floor(random() * 8));
    for (let i = 0; i < extra.length; i++) extra[i] = Math.floor(random() * 256);
    return Buffer.concat([bytes.subarray(0, at), extra, bytes.subarray(at)]);
  }
  // Several packets, valid and not, back to back.
  return Buffer.concat([pick(), bytes.subarray(0, Math.floor(random() * bytes.length)), pick()]);
}

test("the decoder: 100,000 random and mutated packets in random splits give packets or its own named errors, in bounded memory", () => {
  const random = seeded(SEED);
  const valid = validPackets();
  let decoder = new PacketStream(MAX_PACKET);
  let decoded = 0;
  let errors = 0;
  for (let n = 0; n < INPUTS; n++) {
    const input = fuzzInput(random, valid);
    try {
      for (let at = 0; at < input.length; ) {
        const size = 1 + Math.floor(random() * input.length);
        decoder.push(new Uint8Array(input.subarray(at, at + size)));
        at += size;
        // Each push yields at most as many packets as it has bytes (a packet is at least 2).
        for (let steps = 0; decoder.next() !== null; steps++) {
          decoded++;
          assert.ok(steps < input.length, "the decoder keeps returning packets: seed " + SEED + ", input " + n);
        }
      }
    } catch (e) {
      const message = (e as Error).message;
      assert.match(message, DECODER_ERRORS, "input " + n + " (seed " + SEED + "): " + input.toString("hex"));
      errors++;
      // The stream cannot be framed any more: the session closes the connection, here a new decoder.
      decoder = new PacketStream(MAX_PACKET);
    }
    // Never more than one unfinished packet is kept.
    assert.ok(decoder.pending() <= MAX_PACKET, "the decoder holds " + decoder.pending() + " B");
  }
  assert.ok(decoded > INPUTS / 10 && errors > INPUTS / 10, decoded + " packets decoded, " + errors + " errors: the inputs must exercise both");
});

test("the session: 100,000 random and mutated packets in random splits on a connected session never throw out of it", () => {
  const random = seeded(SEED + 1);
  const valid = validPackets();
  const platform = fakePlatform();
  const events = { messages: 0 };
  const session = new MqttSession(
    platform,
    { host: "tb.example", port: 1883, tls: false, clientId: "tbfw-fuzz", token: "FUZZ_TOKEN", keepAliveS: 60, responseTimeoutMs: 20000, backoffMinMs: 1000, backoffMaxMs: 2000, maxInflight: 4 },
    { onConnected: () => undefined, onDisconnected: () => undefined, onMessage: () => events.messages++ },
    createLogger((line) => platform.log(line), { logLevel: "info" }),
    () => 0.5
  );
  session.subscribe("v2/r/req/+");
  session.start();
  let closes = 0;
  for (let n = 0; n < INPUTS; n++) {
    let socket = platform.sockets[platform.sockets.length - 1];
    if (socket.closed) {
      closes++;
      // Reconnect: the backoff runs out, then the server accepts again.
      platform.clock.advance(session.retryDelayMs);
      socket = platform.sockets[platform.sockets.length - 1];
    }
    if (sessionStateName(session) !== "connected") {
      socket.open();
      socket.receive([0x20, 2, 0, 0]);
    }
    // Something to acknowledge, so PUBACKs find (or miss) a message.
    if (session.canPublish()) session.publish("v2/t", new Uint8Array([123, 125]), 1, null);
    const input = fuzzInput(random, valid);
    // In reads of random sizes: the session frames packets across reads itself.
    assert.doesNotThrow(() => {
      for (let at = 0; at < input.length; ) {
        const size = 1 + Math.floor(random() * input.length);
        socket.receive([...input.subarray(at, at + size)]);
        at += size;
      }
    }, "input " + n + " (seed " + SEED + "): " + input.toString("hex"));
    assert.ok(["connected", "waiting"].includes(sessionStateName(session)), sessionStateName(session));
    // Messages wait for their PUBACK, never beyond the window.
    assert.ok(session.inflight.length <= 4);
  }
  assert.ok(closes > INPUTS / 25 && events.messages > 0, closes + " closes, " + events.messages + " messages delivered: the inputs must exercise both");
  assert.ok(!platform.logs.join("\n").includes("FUZZ_TOKEN"), "the token is never logged");
});
