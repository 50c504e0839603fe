import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, MqttSession, sessionStateName } from "../firmware/mqtt/session.ts";
import type { SessionOptions } from "../firmware/mqtt/session.ts";
import { createLogger } from "../firmware/util/log.ts";
import { fakePlatform } from "./helpers/fake-platform.ts";
import { parsedByMqttPacket } from "./helpers/parse-packet.ts";
import type mqttPacket from "mqtt-packet";
import type { FakePlatform, FakeSocket } from "./helpers/fake-platform.ts";

const OPTIONS: SessionOptions = {
  host: "tb.example",
  port: 8883,
  tls: true,
  clientId: "tbfw-test",
  token: "SECRET_TOKEN",
  keepAliveS: 60,
  responseTimeoutMs: 20000,
  backoffMinMs: 2000,
  backoffMaxMs: 300000,
  maxInflight: 3,
};

const CONNACK_OK = [0x20, 2, 0, 0];
const half = () => 0.5;

function setup(options: Partial<SessionOptions> = {}) {
  const platform = fakePlatform();
  const messages: [string, string][] = [];
  const events = { connected: 0, disconnected: [] as string[] };
  const session = new MqttSession(
    platform,
    { ...OPTIONS, ...options },
    {
      onConnected: () => events.connected++,
      onDisconnected: (reason) => events.disconnected.push(reason),
      onMessage: (topic, payload) => messages.push([topic, Buffer.from(payload).toString()]),
    },
    createLogger((line) => platform.log(line), { logLevel: "debug" }),
    half
  );
  return { platform, session, messages, events };
}

function connect(platform: FakePlatform, session: MqttSession): FakeSocket {
  if (sessionStateName(session) === "idle") session.start();
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive(CONNACK_OK);
  assert.equal(sessionStateName(session) === "connected", true);
  return socket;
}

function packetIdOf(publish: Uint8Array): number {
  const topicLength = (publish[2] << 8) | publish[3];
  return (publish[4 + topicLength] << 8) | publish[5 + topicLength];
}

test("connects with the token as username and reports connected", () => {
  const { platform, session, events } = setup();
  session.start();
  const socket = platform.sockets[0];
  const { host, port, tls } = socket.options;
  assert.deepEqual({ host, port, tls }, { host: "tb.example", port: 8883, tls: true });
  socket.open();
  assert.equal(socket.written[0][0], 0x10);
  assert.ok(Buffer.from(socket.written[0]).includes(Buffer.from("SECRET_TOKEN")));
  socket.receive(CONNACK_OK);
  assert.equal(events.connected, 1);
  assert.ok(platform.logs.includes("[I][mqtt] connected to tb.example:8883 (tls)"));
  assert.ok(!platform.logs.join("\n").includes("SECRET_TOKEN"), "the token never reaches the log");
});

test("a QoS 1 message leaves only on its PUBACK", () => {
  const { platform, session } = setup();
  const socket = connect(platform, session);
  let acked = 0;
  assert.equal(session.publish("v1/devices/me/telemetry", new Uint8Array([0x7b, 0x7d]), 1, () => acked++), true);
  const publish = socket.written[socket.written.length - 1];
  assert.equal(publish[0], 0x32);
  const id = packetIdOf(publish);
  socket.receive([0x40, 2, 0, (id + 1) & 0xff]);
  assert.equal(acked, 0);
  assert.equal(session.inflight.length, 1);
  assert.ok(platform.logs.some((l) => l.startsWith("[W][mqtt] PUBACK for unknown packet id")));
  socket.receive([0x40, 2, id >> 8, id & 0xff]);
  assert.equal(acked, 1);
  assert.equal(session.inflight.length, 0);
});

test("maxInflight bounds what the session accepts", () => {
  const { platform, session } = setup({ maxInflight: 2 });
  connect(platform, session);
  assert.equal(session.publish("t", new Uint8Array(1), 1, null), true);
  assert.equal(session.publish("t", new Uint8Array(1), 1, null), true);
  assert.equal(session.canPublish(), false);
  assert.equal(session.publish("t", new Uint8Array(1), 1, null), false);
});

test("after a reconnect: resubscribes, then resends unacknowledged publishes with DUP and the same id", () => {
  const { platform, session, events } = setup();
  session.subscribe("v1/devices/me/rpc/request/+");
  const first = connect(platform, session);
  assert.deepEqual(first.packetTypes(), [0x10, 0x82]);
  first.receive([0x90, 3, 0, 1, 1]);
  let acked = 0;
  session.publish("v1/devices/me/telemetry", new Uint8Array([1]), 1, () => acked++);
  const id = packetIdOf(first.written[2]);
  first.drop("connection reset by peer");
  assert.deepEqual(events.disconnected, ["connection reset by peer"]);
  assert.equal(sessionStateName(session), "waiting");
  // Published while offline: kept, sent first time without DUP.
  session.publish("v1/devices/me/telemetry", new Uint8Array([2]), 1, () => acked++);
  assert.equal(platform.sockets.length, 1, "no reconnect before the backoff delay");
  platform.clock.advance(session.retryDelayMs);
  assert.equal(platform.sockets.length, 2);
  const second = connect(platform, session);
  assert.deepEqual(second.packetTypes(), [0x10, 0x82, 0x3a, 0x32]);
  assert.equal(packetIdOf(second.written[2]), id);
  assert.ok(platform.logs.includes("[I][mqtt] resending 1 unacknowledged message(s) with DUP"));
  second.receive([0x90, 3, 0, 3, 1]);
  second.receive([0x40, 2, id >> 8, id & 0xff]);
  second.receive([0x40, 2, 0, packetIdOf(second.written[3])]);
  assert.equal(acked, 2);
  assert.equal(session.inflight.length, 0);
});

test("keep-alive: PINGREQ after the keep-alive period, link closed when PINGRESP never comes", () => {
  const { platform, session } = setup({ keepAliveS: 30, responseTimeoutMs: 10000 });
  const socket = connect(platform, session);
  platform.clock.advance(29999);
  assert.deepEqual(socket.packetTypes(), [0x10]);
  platform.clock.advance(1);
  assert.deepEqual(socket.packetTypes(), [0x10, 0xc0]);
  assert.deepEqual([...socket.written[1]], [0xc0, 0]);
  assert.equal(parsedByMqttPacket(socket.written[1]).cmd, "pingreq");
  socket.receive([0xd0, 0]);
  platform.clock.advance(30000);
  assert.deepEqual(socket.packetTypes(), [0x10, 0xc0, 0xc0]);
  assert.equal(sessionStateName(session) === "connected", true);
  platform.clock.advance(10000);
  assert.equal(socket.closed, true);
  assert.equal(sessionStateName(session), "waiting");
  assert.ok(platform.logs.some((l) => l.startsWith("[W][mqtt] disconnected: link dead: no PINGRESP within 10.0 s; retrying in")));
});

test("a missing PUBACK on a dead link is detected too", () => {
  const { platform, session } = setup({ responseTimeoutMs: 15000 });
  const socket = connect(platform, session);
  session.publish("t", new Uint8Array(1), 1, null);
  platform.clock.advance(15000);
  assert.equal(socket.closed, true);
  assert.ok(platform.logs.some((l) => l.includes("link dead: no PUBACK within 15.0 s")));
  assert.equal(session.inflight.length, 1, "the message is kept for the next connection");
});

test("no CONNACK in time closes the attempt and backs off", () => {
  const { platform, session } = setup({ responseTimeoutMs: 5000 });
  session.start();
  platform.sockets[0].open();
  platform.clock.advance(5000);
  assert.equal(platform.sockets[0].closed, true);
  assert.ok(platform.logs.some((l) => l.startsWith("[W][mqtt] connection failed: link dead: no CONNACK within 5.0 s; retrying in")));
});

test("backoff schedule: doubles from the minimum, capped, jitter between half and full", () => {
  const zero = () => 0;
  const almostOne = () => 0.999999;
  const lows = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12].map((n) => backoffDelay(n, 2000, 300000, zero));
  assert.deepEqual(lows, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000]);
  const highs = [0, 1, 2, 8, 20].map((n) => backoffDelay(n, 2000, 300000, almostOne));
  assert.deepEqual(highs, [1999, 3999, 7999, 299999, 299999]);
});

test("CONNACK 5 (bad token): one clear error line with the retry time, growing delays, never a hot loop", () => {
  const { platform, session } = setup();
  session.start();
  const delays: number[] = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    const socket = platform.sockets[platform.sockets.length - 1];
    socket.open();
    socket.receive([0x20, 2, 0, 5]);
    assert.equal(socket.closed, true);
    delays.push(session.retryDelayMs);
    const before = platform.sockets.length;
    platform.clock.advance(session.retryDelayMs - 1);
    assert.equal(platform.sockets.length, before, "no new attempt before the announced time");
    platform.clock.advance(1);
    assert.equal(platform.sockets.length, before + 1);
  }
  assert.deepEqual(delays, [1500, 3000, 6000, 12000, 24000, 48000]);
  const errors = platform.logs.filter((l) => l.startsWith("[E][mqtt]"));
  assert.equal(errors.length, 6);
  assert.equal(errors[0], "[E][mqtt] connection refused: not authorized (CONNACK 5): wrong or unknown access token; retrying in 1.5 s");
});

test("network failures retry within backoffMaxMs; a server that refused is given up to 20 times longer", () => {
  const network = setup({ backoffMinMs: 2000, backoffMaxMs: 8000 });
  network.session.start();
  const networkDelays: number[] = [];
  for (let i = 0; i < 8; i++) {
    network.platform.sockets[network.platform.sockets.length - 1].drop();
    networkDelays.push(network.session.retryDelayMs);
    network.platform.clock.advance(network.session.retryDelayMs);
  }
  // Jitter 0.5 here: three quarters of the ceiling, which stops at 8 s.
  assert.deepEqual(networkDelays, [1500, 3000, 6000, 6000, 6000, 6000, 6000, 6000]);
  const refused = setup({ backoffMinMs: 2000, backoffMaxMs: 8000 });
  refused.session.start();
  const refusedDelays: number[] = [];
  for (let i = 0; i < 8; i++) {
    const socket = refused.platform.sockets[refused.platform.sockets.length - 1];
    socket.open();
    socket.receive([0x20, 2, 0, 3]); // server unavailable, or its connect rate limit
    refusedDelays.push(refused.session.retryDelayMs);
    refused.platform.clock.advance(refused.session.retryDelayMs);
  }
  assert.deepEqual(refusedDelays, [1500, 3000, 6000, 12000, 24000, 48000, 96000, 120000]);
});

test("a connection that stays up resets the backoff", () => {
  const { platform, session } = setup();
  session.start();
  for (let i = 0; i < 3; i++) {
    platform.sockets[platform.sockets.length - 1].drop();
    platform.clock.advance(session.retryDelayMs);
  }
  assert.equal(session.retryDelayMs, 6000);
  const socket = connect(platform, session);
  platform.clock.advance(30000);
  socket.drop();
  assert.equal(session.retryDelayMs, 1500);
});

test("rate-limit aware: a close by the server while a message written on the link has no PUBACK halves the in-flight window, backs off, and the window grows back a step per keep-alive period once stable for 30 s", () => {
  const { platform, session } = setup({ maxInflight: 8, backoffMaxMs: 15000, keepAliveS: 20 });
  const payload = new Uint8Array([0x7b, 0x7d]);
  /** How many messages the queue may hand over before canPublish says no. */
  const room = () => {
    let n = 0;
    while (session.canPublish() && n < 20) {
      session.publish("v1/devices/me/telemetry", payload, 1, null);
      n++;
    }
    return n;
  };
  let socket = connect(platform, session);
  assert.equal(room(), 7, "one slot of 8 stays free for RPC replies and attributes");
  // Acknowledge them all: a close with nothing unacknowledged is a plain network failure.
  for (const p of socket.written.filter((b) => b[0] === 0x32)) socket.receive([0x40, 2, packetIdOf(p) >> 8, packetIdOf(p) & 0xff]);
  socket.drop("connection reset");
  assert.equal(session.squeeze, 0);
  // Each close right after an unacknowledged publish: one more halving, up to 4 (then a window of 1).
  const windows: number[] = [];
  for (let close = 0; close < 5; close++) {
    platform.clock.advance(session.retryDelayMs);
    socket = connect(platform, session);
    for (const p of socket.written.filter((b) => b[0] === 0x32 || b[0] === 0x3a)) socket.receive([0x40, 2, packetIdOf(p) >> 8, packetIdOf(p) & 0xff]);
    windows.push(room());
    socket.drop("closed by the server");
    assert.ok(session.retryDelayMs >= 1000, "backs off, never a hot loop");
  }
  assert.deepEqual(windows, [7, 3, 1, 1, 1]);
  assert.equal(session.squeeze, 4);
  assert.equal(platform.logs.filter((l) => l.includes("no PUBACK before the close: rate limit? slowing down")).length, 4);
  // Stable again: a step back after 30 s, then one every keep-alive period (20 s here).
  platform.clock.advance(session.retryDelayMs);
  socket = connect(platform, session);
  for (const p of socket.written.filter((b) => b[0] === 0x32 || b[0] === 0x3a)) socket.receive([0x40, 2, packetIdOf(p) >> 8, packetIdOf(p) & 0xff]);
  const grown: number[] = [];
  for (const ms of [29000, 1000, 19000, 1000, 20000, 20000]) {
    platform.clock.advance(ms);
    socket.receive([0xd0, 0]); // PINGRESP to the keep-alive's PINGREQ
    grown.push(session.squeeze);
  }
  assert.deepEqual(grown, [4, 3, 3, 2, 1, 0]);
  assert.equal(room(), 7);
  // A link that dies silently (our own timeout: no PINGRESP) is not a rate limit.
  platform.clock.advance(45000);
  assert.equal(socket.closed, true);
  assert.equal(session.squeeze, 0);
});

test("a packet over the largest the session takes is refused with a logged reason, and the session connects again", () => {
  const { platform, session } = setup();
  const socket = connect(platform, session);
  // A PUBLISH announcing 100,000 bytes: refused from its header, before the bytes arrive.
  assert.doesNotThrow(() => socket.receive([0x30, 0xa0, 0x8d, 0x06]));
  assert.equal(socket.closed, true);
  assert.ok(platform.logs.some((l) => /^\[E\]\[mqtt\] malformed packet from server: packet of 100004 B over the 66560 B limit; retrying in /.test(l)), platform.logs.join("\n"));
  const sockets = platform.sockets.length;
  platform.clock.advance(session.retryDelayMs);
  assert.equal(platform.sockets.length, sockets + 1, "a new connection");
});

test("a malformed packet closes the connection with a logged reason and does not throw", () => {
  const { platform, session } = setup();
  const socket = connect(platform, session);
  assert.doesNotThrow(() => socket.receive([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]));
  assert.equal(socket.closed, true);
  assert.ok(platform.logs.some((l) => l.startsWith("[E][mqtt] malformed packet from server: remaining length over 4 bytes; retrying in")));
});

test("packets split across reads, and several in one read, are framed by the session", () => {
  const { platform, session, messages, events } = setup();
  session.start();
  const socket = platform.sockets[0];
  socket.open();
  // CONNACK one byte at a time.
  for (const byte of CONNACK_OK) socket.receive([byte]);
  assert.equal(events.connected, 1);
  let acked = 0;
  session.publish("v1/devices/me/telemetry", new Uint8Array([0x7b, 0x7d]), 1, () => acked++);
  const id = packetIdOf(socket.written[socket.written.length - 1]);
  const big = "x".repeat(3000);
  const publish = [0x30, 0x80 + ((5 + big.length) & 127), (5 + big.length) >> 7, 0, 3, ...[..."a/b"].map((c) => c.charCodeAt(0)), ...[...big].map((c) => c.charCodeAt(0))];
  // PUBACK, a 3 KB PUBLISH and PINGRESP back to back, cut at awkward places: inside the
  // PUBACK, inside the PUBLISH's remaining length, in its payload, at a packet's end.
  const stream = [0x40, 2, id >> 8, id & 0xff, ...publish, 0xd0, 0];
  for (const [from, to] of [[0, 3], [3, 6], [6, 1000], [1000, 3009], [3009, stream.length]]) socket.receive(stream.slice(from, to));
  assert.equal(acked, 1);
  assert.deepEqual(messages, [["a/b", big]]);
  // And all three in one read.
  session.publish("v1/devices/me/telemetry", new Uint8Array([0x7b, 0x7d]), 1, () => acked++);
  const next = packetIdOf(socket.written[socket.written.length - 1]);
  socket.receive([0x40, 2, next >> 8, next & 0xff, ...publish, 0xd0, 0]);
  assert.equal(acked, 2);
  assert.equal(messages.length, 2);
  assert.equal(sessionStateName(session), "connected");
  assert.ok(!platform.logs.some((l) => l.startsWith("[W]") || l.startsWith("[E]")), platform.logs.join("\n"));
});

test("incoming QoS 1 PUBLISH is acknowledged and delivered; a throwing handler is contained", () => {
  const platform = fakePlatform();
  const session = new MqttSession(
    platform,
    OPTIONS,
    {
      onConnected: () => undefined,
      onDisconnected: () => undefined,
      onMessage: () => {
        throw new Error("handler bug");
      },
    },
    createLogger((line) => platform.log(line), { logLevel: "info" }),
    half
  );
  const socket = connect(platform, session);
  socket.receive([0x32, 7, 0, 1, 0x74, 0x01, 0x02, 0x68, 0x69]);
  assert.deepEqual([...socket.written[1]], [0x40, 2, 1, 2]);
  const puback = parsedByMqttPacket(socket.written[1]) as mqttPacket.IPubackPacket;
  assert.deepEqual([puback.cmd, puback.messageId], ["puback", 0x0102]);
  assert.ok(platform.logs.includes("[E][mqtt] t handler failed: handler bug"));
  assert.equal(sessionStateName(session) === "connected", true);
});

test("stop sends DISCONNECT and does not reconnect", () => {
  const { platform, session } = setup();
  const socket = connect(platform, session);
  session.stop();
  assert.deepEqual(socket.packetTypes(), [0x10, 0xe0]);
  assert.deepEqual([...socket.written[1]], [0xe0, 0]);
  assert.equal(parsedByMqttPacket(socket.written[1]).cmd, "disconnect");
  assert.equal(socket.closed, true);
  platform.clock.advance(600000);
  assert.equal(platform.sockets.length, 1);
});

test("random bytes from the server never throw out of the session", () => {
  const random = seededRandomForTest(20261128);
  for (let round = 0; round < 300; round++) {
    const { platform, session } = setup();
    const socket = connect(platform, session);
    const length = 1 + Math.floor(random() * 40);
    const bytes: number[] = [];
    for (let i = 0; i < length; i++) bytes.push(Math.floor(random() * 256));
    assert.doesNotThrow(() => socket.receive(bytes), JSON.stringify(bytes));
    assert.ok(["connected", "waiting"].includes(sessionStateName(session)));
    if (socket.closed) assert.ok(platform.logs.some((l) => l.startsWith("[E][mqtt] malformed packet from server:") || l.includes("link dead")), platform.logs.join("\n"));
  }
});

function seededRandomForTest(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

test("a connect that throws at once (Espruino: 'Unable to create socket') backs off and retries", () => {
  const { platform, session } = setup();
  const realConnect = platform.connect;
  let refusals = 0;
  platform.connect = (options, handlers) => {
    if (refusals < 2) {
      refusals++;
      throw new Error("Unable to create socket");
    }
    return realConnect(options, handlers);
  };
  session.start();
  assert.equal(sessionStateName(session), "waiting");
  assert.ok(platform.logs.includes("[W][mqtt] connection failed: cannot open socket: Unable to create socket; retrying in 1.5 s"));
  platform.clock.advance(1500);
  assert.ok(platform.logs.includes("[W][mqtt] connection failed: cannot open socket: Unable to create socket; retrying in 3.0 s"));
  platform.clock.advance(3000);
  connect(platform, session);
  assert.equal(sessionStateName(session) === "connected", true);
});
