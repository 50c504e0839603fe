import { test } from "node:test";
import assert from "node:assert/strict";
import { clientIdFromChip, limitWindows, paceFor, startDevice } from "../firmware/app/device.ts";
import type { DeviceConfig, SensorConfig } from "../firmware/config.ts";
import { OVERRIDE_FILE, applyOverrides } from "../firmware/config.ts";
import { telemetryJson } from "../firmware/thingsboard/telemetry.ts";
import { createLogger, logLevelNames } from "../firmware/util/log.ts";
import { registerRpc, rpcFeature } from "../firmware/thingsboard/rpc.ts";
import type { DeviceContext } from "../firmware/app/device.ts";
import { remoteConfigService } from "../firmware/app/remote-config.ts";
import { attributesFeature } from "../firmware/thingsboard/attributes.ts";
import { createSht3x } from "../firmware/sensors/sht3x.ts";
import { createSimulated } from "../firmware/sensors/simulated.ts";
import { fakePlatform } from "./helpers/fake-platform.ts";
import type { FakeSocket } from "./helpers/fake-platform.ts";

const CONFIG: DeviceConfig = {
  firmwareVersion: "0.0.0-test",
  board: "test",
  host: "127.0.0.1",
  port: 1883,
  tls: false,
  token: "DEVICE_TOKEN_123",
  clientId: "",
  wifiSsid: "lab",
  wifiPassword: "WIFI_PASSWORD_456",
  telemetryIntervalMs: 10000,
  uploadIntervalMs: 0,
  sensors: [{ model: "simulated" }],
  keepAliveS: 60,
  responseTimeoutMs: 20000,
  backoffMinMs: 2000,
  backoffMaxMs: 300000,
  queueCapacity: 5,
  batchSize: 3,
  spillBatches: 0,
  maxInflight: 1,
  statusIntervalMs: 0,
  rateLimits: "",
  dataPointLimits: "",
  maxPayloadBytes: 65536,
  watchdogMs: 0,
  awakeMaxMs: 60000,
  otaChunkBytes: 2048,
  debug: false,
};

interface SentPublish {
  topic: string;
  id: number;
  dup: boolean;
  body: string;
}

/** Every PUBLISH the device wrote, parsed (variable-length header included). */
function sentPublishes(socket: FakeSocket): SentPublish[] {
  return socket.written
    .filter((p) => (p[0] & 0xf0) === 0x30)
    .map((p) => {
      let offset = 1;
      while (p[offset] & 0x80) offset++;
      offset++;
      const topicLength = (p[offset] << 8) | p[offset + 1];
      const topic = Buffer.from(p.subarray(offset + 2, offset + 2 + topicLength)).toString();
      const qos = (p[0] >> 1) & 3;
      const idAt = offset + 2 + topicLength;
      return {
        topic,
        id: qos ? (p[idAt] << 8) | p[idAt + 1] : 0,
        dup: (p[0] & 0x08) !== 0,
        body: Buffer.from(p.subarray(idAt + (qos ? 2 : 0))).toString(),
      };
    });
}

function publishes(socket: FakeSocket): { id: number; payload: unknown; dup: boolean }[] {
  return sentPublishes(socket)
    .filter((p) => p.topic === "v1/devices/me/telemetry")
    .map((p) => ({ id: p.id, payload: JSON.parse(p.body), dup: p.dup }));
}

test("telemetry payloads: ts + values, bare values without a clock, sensor_error instead of a value", () => {
  assert.equal(telemetryJson(1700000000000, { temperature: 21.5 }), '{"ts":1700000000000,"values":{"temperature":21.5}}');
  assert.equal(telemetryJson(null, { temperature: 21.5 }), '{"temperature":21.5}');
  assert.equal(telemetryJson(5, { sensor_error: "sht3x: bad CRC" }), '{"ts":5,"values":{"sensor_error":"sht3x: bad CRC"}}');
});

test("client id comes from the chip id: letters and digits, at most 23 characters", () => {
  assert.equal(clientIdFromChip("24:0a:c4:12:34:56"), "tbfw-240ac4123456");
  const long = clientIdFromChip("00000000-addeadde-addeadde");
  assert.equal(long, "tbfw-00addeaddeaddeadde".slice(0, 23));
  assert.ok(long.length <= 23);
});

test("store and forward: readings taken offline are replayed in batches with their ts, each leaving on PUBACK", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, CONFIG, [createSimulated], [remoteConfigService, rpcFeature]);
  // Boot sample, then four more while the broker is unreachable.
  for (let i = 0; i < 4; i++) platform.clock.advance(10000);
  assert.equal(device.queue.size(), 5);
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  let sent = publishes(socket);
  assert.equal(sent.length, 1, "maxInflight 1: one message at a time");
  const firstBatch = sent[0].payload as { ts: number; values: { temperature: number } }[];
  assert.equal(firstBatch.length, 3);
  assert.deepEqual(firstBatch.map((r) => r.ts), [1700000000000, 1700000010000, 1700000020000]);
  assert.equal(device.queue.size(), 5, "nothing leaves before its PUBACK");
  socket.receive([0x40, 2, sent[0].id >> 8, sent[0].id & 0xff]);
  assert.equal(device.queue.size(), 2);
  sent = publishes(socket);
  assert.equal((sent[1].payload as unknown[]).length, 2);
  // The link drops before the second PUBACK: the batch is resent with DUP after reconnecting.
  const socketsBefore = platform.sockets.length;
  socket.drop();
  platform.clock.advance(device.session.retryDelayMs);
  assert.equal(platform.sockets.length, socketsBefore + 1);
  const again = platform.sockets[platform.sockets.length - 1];
  assert.notEqual(again, socket);
  again.open();
  again.receive([0x20, 2, 0, 0]);
  const resent = publishes(again);
  assert.equal(resent[0].dup, true);
  assert.deepEqual(resent[0].payload, sent[1].payload);
  again.receive([0x40, 2, resent[0].id >> 8, resent[0].id & 0xff]);
  assert.equal(device.queue.size(), 0);
  assert.equal(device.queue.deliveredTotal, 5);
  device.stop();
});

test("after a close that looks like a rate limit the replay goes on in half-size batches, one message at a time, and back to full batches after a stable 30 s", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, queueCapacity: 50, batchSize: 8, maxInflight: 4, responseTimeoutMs: 60000, keepAliveS: 600, backoffMaxMs: 15000 };
  const device = startDevice(platform, config, [createSimulated], [remoteConfigService, rpcFeature]);
  for (let i = 0; i < 39; i++) platform.clock.advance(10000);
  assert.equal(device.queue.size(), 40);
  const ack = (socket: FakeSocket, id: number) => socket.receive([0x40, 2, id >> 8, id & 0xff]);
  const sizes = (socket: FakeSocket) => publishes(socket).map((p) => (p.payload as unknown[]).length);
  let socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  assert.deepEqual(sizes(socket), [8, 8, 8], "three full batches in flight (one slot stays free)");
  // ThingsBoard closes the session without a PUBACK: a rate limit was hit.
  socket.drop("closed by the server");
  platform.clock.advance(device.session.retryDelayMs);
  socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const resent = publishes(socket);
  assert.deepEqual(resent.map((p) => [(p.payload as unknown[]).length, p.dup]), [[8, true], [8, true], [8, true]], "what was in flight goes again as it was");
  for (const p of resent) ack(socket, p.id);
  // The rest: batches of 4, one in flight at a time.
  for (let i = 0; i < 2; i++) {
    const sent = publishes(socket);
    assert.equal(sent.length, 4 + i);
    assert.equal((sent[sent.length - 1].payload as unknown[]).length, 4);
    ack(socket, sent[sent.length - 1].id);
  }
  assert.equal(publishes(socket).length, 6, "a batch of 4 in flight, and no second one beside it");
  // 40 s later (the connection stable for 30 s): full batches and a full window again.
  platform.clock.advance(40000);
  const later = sizes(socket);
  assert.equal(later[6], 8, "the next message carries a full batch of 8: " + later.join(","));
  assert.equal(device.session.squeeze, 0);
  device.stop();
});

test("a full queue drops the oldest waiting reading and says so", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, queueCapacity: 3 }, [createSimulated], [remoteConfigService, rpcFeature]);
  for (let i = 0; i < 4; i++) platform.clock.advance(10000);
  assert.equal(device.queue.size(), 3);
  assert.equal(device.queue.droppedCount, 2);
  assert.ok(platform.logs.includes("[W][queue] full (3 readings): dropped the oldest, 2 dropped so far"));
  device.stop();
});

test("Wi-Fi: joins, retries with backoff when dropped, and never logs the password or token", () => {
  const platform = fakePlatform({ hasWifi: true });
  const device = startDevice(platform, CONFIG, [createSimulated], [remoteConfigService, rpcFeature]);
  assert.equal(platform.wifiStates.length, 1);
  assert.equal(platform.sockets.length, 0, "no MQTT before Wi-Fi is up");
  platform.wifiStates[0]("disconnected", "auth failed");
  assert.ok(platform.logs.includes("[W][wifi] disconnected (auth failed); retrying in 2.0 s"));
  platform.clock.advance(2000);
  assert.equal(platform.wifiStates.length, 2);
  platform.wifiStates[1]("disconnected", "");
  assert.ok(platform.logs.includes("[W][wifi] disconnected; retrying in 4.0 s"));
  platform.clock.advance(4000);
  platform.wifiStates[2]("connected", "ip 10.0.0.7");
  assert.ok(platform.logs.includes("[I][wifi] connected (ip 10.0.0.7)"));
  assert.equal(platform.sockets.length, 1);
  const log = platform.logs.join("\n");
  assert.ok(!log.includes("WIFI_PASSWORD_456") && !log.includes("DEVICE_TOKEN_123"));
  device.stop();
});

test("per-device overrides from flash: good keys applied, bad ones reported by name", () => {
  const problems: string[] = [];
  const result = applyOverrides(CONFIG, JSON.stringify({ token: "OTHER", port: 8883, tls: true, colour: "red", telemetryIntervalMs: 5 }), (p) => problems.push(p));
  assert.equal(result.token, "OTHER");
  assert.equal(result.port, 8883);
  assert.equal(result.tls, true);
  assert.equal(result.telemetryIntervalMs, CONFIG.telemetryIntervalMs);
  assert.deepEqual(problems, [
    OVERRIDE_FILE + ": colour: unknown key; ignored",
    OVERRIDE_FILE + ": telemetryIntervalMs: must be a whole number from 1000 to 86400000; ignored",
  ]);
  const broken: string[] = [];
  assert.equal(applyOverrides(CONFIG, "{not json", (p) => broken.push(p)), CONFIG);
  assert.deepEqual(broken, [OVERRIDE_FILE + " is not valid JSON; ignoring it"]);
});

test("upload interval apart from sampling: 6 readings taken every 10 s leave as one message every 60 s", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, uploadIntervalMs: 60000, maxInflight: 4, queueCapacity: 20 }, [createSimulated], []);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  // Connecting flushes the boot reading; from then on readings wait for the upload.
  let sent = publishes(socket);
  assert.equal(sent.length, 1);
  socket.receive([0x40, 2, sent[0].id >> 8, sent[0].id & 0xff]);
  platform.clock.advance(50000);
  assert.equal(publishes(socket).length, 1, "nothing sent between uploads");
  assert.equal(device.queue.size(), 5);
  platform.clock.advance(10000);
  sent = publishes(socket);
  assert.equal(sent.length, 2, "one message for the upload");
  const batch = sent[1].payload as { ts: number }[];
  assert.deepEqual(batch.map((r) => r.ts), [10000, 20000, 30000, 40000, 50000, 60000].map((t) => 1700000000000 + t));
  socket.receive([0x40, 2, sent[1].id >> 8, sent[1].id & 0xff]);
  socket.receive([0xd0, 0]); // the keep-alive PINGREQ went out at 60 s too
  assert.equal(device.queue.size(), 0);
  assert.equal(device.queue.deliveredTotal, 7);
  // The next upload carries only what was taken since.
  platform.clock.advance(60000);
  sent = publishes(socket);
  assert.equal(sent.length, 3);
  assert.equal((sent[2].payload as unknown[]).length, 6);
  device.stop();
});

/** An I2C bus with nothing on it: every write is NACKed, as Espruino's I2C1 reports it. */
const NACKING_BUS = {
  writeTo: () => {
    throw new Error("I2C Error: no ACK");
  },
  readFrom: () => new Uint8Array(0),
};

test("a sensor that fails is reported as sensor_error and the device keeps sampling", () => {
  const platform = fakePlatform({ bus: NACKING_BUS });
  const device = startDevice(platform, { ...CONFIG, sensors: [{ model: "sht3x", address: 0x44, sda: 21, scl: 22, bitrate: 100000 }] }, [createSht3x], [remoteConfigService, rpcFeature]);
  platform.clock.advance(10000);
  assert.equal(device.queue.size(), 2);
  assert.ok(platform.logs.includes("[E][sensor] sht3x: no ACK at 0x44 (I2C Error: no ACK)"));
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const [first] = publishes(socket);
  assert.deepEqual((first.payload as { values: unknown }[])[0].values, { sensor_error: "sht3x: no ACK at 0x44 (I2C Error: no ACK)" });
  device.stop();
});

test("several sensors: one reading with prefixed keys, a failing one beside the others' values, each switched on and off by its own setting", () => {
  // The simulated sensor, and an SHT3x (prefixed "out_") whose bus never ACKs.
  const platform = fakePlatform({ bus: NACKING_BUS });
  const sensors: SensorConfig[] = [{ model: "simulated" }, { model: "sht3x", prefix: "out_", address: 0x44, sda: 21, scl: 22, bitrate: 100000 }];
  const device = startDevice(platform, { ...CONFIG, sensors, maxInflight: 20 }, [createSimulated, createSht3x], [remoteConfigService, rpcFeature]);
  assert.deepEqual(device.context.settings, { ...device.context.defaults, simulatedEnabled: true, out_sht3xEnabled: true });
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const rpc = (id: number, body: string) => {
    socket.receive(publishPacket("v1/devices/me/rpc/request/" + id, body, id));
    platform.clock.advance(100);
    return repliesOn(socket, "v1/devices/me/rpc/response/" + id)[0].body as Record<string, unknown>;
  };
  const both = rpc(1, '{"method":"readNow"}');
  assert.deepEqual(Object.keys(both).sort(), ["humidity", "sensor_error", "temperature"]);
  assert.equal(both.sensor_error, "sht3x: no ACK at 0x44 (I2C Error: no ACK)");
  platform.clock.advance(10000);
  const [first] = publishes(socket);
  const reading = (first.payload as { values: Record<string, unknown> }[] | { values: Record<string, unknown> });
  assert.deepEqual(Object.keys((Array.isArray(reading) ? reading[0] : reading).values).sort(), ["humidity", "sensor_error", "temperature"]);
  // Off: the failing sensor is not asked, so no error; both off: no reading at all.
  rpc(2, '{"method":"setConfig","params":{"out_sht3xEnabled":false}}');
  assert.deepEqual(Object.keys(rpc(3, '{"method":"readNow"}')).sort(), ["humidity", "temperature"]);
  rpc(4, '{"method":"setConfig","params":{"simulatedEnabled":false}}');
  assert.deepEqual(rpc(5, '{"method":"readNow"}'), { error: "every sensor is switched off" });
  const queued = device.queue.size() + publishes(socket).length;
  platform.clock.advance(30000);
  assert.equal(device.queue.size() + publishes(socket).length, queued, "no reading while every sensor is off");
  device.stop();
});

test("sensors that answer within sample() (errors, Moddable's synchronous drivers) are taken in a loop, not nested: the stack stays flat", () => {
  const platform = fakePlatform();
  let depth = 0;
  let deepest = 0;
  const count = 40;
  // Half answer at once with a value, half throw: every one inside its own sample() call.
  const factories = Array.from({ length: count }, (_, i) => () => ({
    model: "sync",
    sample: (done: (error: string | null, values: { [key: string]: number } | null) => void) => {
      depth++;
      deepest = Math.max(deepest, depth);
      try {
        if (i % 2) throw new Error("bus stuck");
        done(null, { value: i });
      } finally {
        depth--;
      }
    },
  }));
  const sensors: SensorConfig[] = Array.from({ length: count }, (_, i) => ({ model: "simulated", prefix: "s" + i + "_" }));
  const device = startDevice(platform, { ...CONFIG, sensors }, factories, [remoteConfigService, rpcFeature]);
  let reading: Record<string, unknown> | null = null;
  device.context.sampleNow((r) => (reading = r));
  assert.ok(reading, "answered at once");
  const got = reading as unknown as Record<string, unknown>;
  assert.equal(deepest, 1, "one sample() call at a time");
  assert.equal(got.s0_value, 0);
  assert.equal(got.s38_value, 38);
  assert.equal(String(got.sensor_error).split("; ").length, count / 2);
  assert.match(String(got.sensor_error), /^sync: bus stuck; sync: bus stuck/);
  device.stop();
});

test("a reading asked for while a pass over the sensors runs (readNow during a conversion) shares that pass: no sensor is asked twice at once", () => {
  const writes: number[] = [];
  const platform = fakePlatform({
    bus: {
      writeTo: (address) => {
        writes.push(address);
      },
      // 25 C, 50 %RH with their CRCs (the SHT3x datasheet's CRC-8).
      readFrom: () => new Uint8Array([0x66, 0x66, 0x93, 0x80, 0x00, 0xa2]),
    },
  });
  const device = startDevice(platform, { ...CONFIG, sensors: [{ model: "sht3x", address: 0x44, sda: 21, scl: 22, bitrate: 100000 }] }, [createSht3x], []);
  // The boot sample is converting now (16 ms); two more askers join it.
  const got: unknown[] = [];
  device.context.sampleNow((reading) => got.push(reading));
  device.context.sampleNow((reading) => got.push(reading));
  platform.clock.advance(20);
  assert.deepEqual(writes, [0x44], "one measurement started");
  assert.deepEqual(got.slice(), [{ temperature: 25, humidity: 50 }, { temperature: 25, humidity: 50 }]);
  // The next ask starts a pass of its own.
  device.context.sampleNow((reading) => got.push(reading));
  platform.clock.advance(20);
  assert.equal(writes.length, 2);
  assert.equal(got.length, 3);
  device.stop();
});

function publishPacket(topic: string, payload: string, packetId: number): number[] {
  const t = Buffer.from(topic);
  const p = Buffer.from(payload);
  const remaining = 2 + t.length + 2 + p.length;
  return [0x32, remaining, t.length >> 8, t.length & 0xff, ...t, packetId >> 8, packetId & 0xff, ...p];
}

function repliesOn(socket: FakeSocket, prefix: string): { topic: string; body: unknown }[] {
  return sentPublishes(socket)
    .filter((r) => r.topic.startsWith(prefix))
    .map((r) => ({ topic: r.topic, body: JSON.parse(r.body) }));
}

test("server-side RPC: subscribed on every connect, answered on the response topic, bad requests get an error", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, maxInflight: 4 }, [createSimulated], [remoteConfigService, rpcFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const subscribe = socket.written.find((p) => p[0] === 0x82)!;
  assert.ok(Buffer.from(subscribe).includes(Buffer.from("v1/devices/me/rpc/request/+")));
  assert.equal(subscribe[subscribe.length - 1], 1, "QoS 1 subscription");
  socket.receive([0x90, 3, subscribe[2], subscribe[3], 1]);

  socket.receive(publishPacket("v1/devices/me/rpc/request/41", '{"method":"getStatus","params":{}}', 7));
  assert.ok(socket.written.some((p) => p.length === 4 && p[0] === 0x40 && p[3] === 7), "the request is PUBACKed");
  socket.receive(publishPacket("v1/devices/me/rpc/request/42", "not json", 8));
  socket.receive(publishPacket("v1/devices/me/rpc/request/43", '{"method":"format"}', 9));
  const replies = repliesOn(socket, "v1/devices/me/rpc/response/");
  assert.deepEqual(replies.map((r) => r.topic), ["v1/devices/me/rpc/response/41", "v1/devices/me/rpc/response/42", "v1/devices/me/rpc/response/43"]);
  assert.deepEqual(replies[0].body, { uptime_s: 0, queued: 1, in_flash: 0, delivered: 0, dropped: 0, firmware: "0.0.0-test", board: "test", runtime: "test", clock_set: true });
  assert.deepEqual(replies[1].body, { error: 'bad request: expected {"method": string, "params": any}' });
  assert.deepEqual(replies[2].body, { error: "unknown method: format" });
  assert.ok(platform.logs.includes("[W][rpc] format 43: unknown method: format"), platform.logs.join("\n"));
  assert.ok(platform.logs.includes('[W][rpc] request 42: bad request: expected {"method": string, "params": any}'), platform.logs.join("\n"));

  // After a reconnect the subscription is sent again.
  socket.drop();
  platform.clock.advance(device.session.retryDelayMs);
  const again = platform.sockets[platform.sockets.length - 1];
  again.open();
  again.receive([0x20, 2, 0, 0]);
  assert.ok(again.written.some((p) => p[0] === 0x82 && Buffer.from(p).includes(Buffer.from("v1/devices/me/rpc/request/+"))));
  device.stop();
});

test("RPC methods of the application: registerRpc from a feature adds a method and replaces a built-in; the other built-ins and unknown methods answer as before", () => {
  const platform = fakePlatform();
  const calls: unknown[] = [];
  const myFeature = (context: DeviceContext) => {
    registerRpc(context, "setLed", (params, reply) => {
      calls.push(params);
      reply({ led: (params as { on: boolean }).on });
    });
    registerRpc(context, "ping", (_params, reply, method) => reply({ mine: method }));
    registerRpc(context, "broken", () => {
      throw new Error("no LED on this board");
    });
  };
  // Registered before the rpc feature starts: the order of features does not matter.
  const device = startDevice(platform, { ...CONFIG, maxInflight: 8 }, [createSimulated], [myFeature, remoteConfigService, rpcFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  socket.receive(publishPacket("v1/devices/me/rpc/request/1", '{"method":"setLed","params":{"on":true}}', 1));
  socket.receive(publishPacket("v1/devices/me/rpc/request/2", '{"method":"ping"}', 2));
  socket.receive(publishPacket("v1/devices/me/rpc/request/3", '{"method":"getConfig"}', 3));
  socket.receive(publishPacket("v1/devices/me/rpc/request/4", '{"method":"toString"}', 4));
  socket.receive(publishPacket("v1/devices/me/rpc/request/5", '{"method":"broken"}', 5));
  const replies = repliesOn(socket, "v1/devices/me/rpc/response/");
  assert.deepEqual(calls, [{ on: true }]);
  assert.deepEqual(replies.map((r) => r.topic.substring(27)), ["1", "2", "3", "4", "5"]);
  assert.deepEqual(replies[0].body, { led: true });
  assert.deepEqual(replies[1].body, { mine: "ping" }, "a registered method replaces the built-in of that name");
  assert.equal((replies[2].body as { samplingIntervalMs: number }).samplingIntervalMs, 10000, "the other built-ins still answer");
  assert.deepEqual(replies[3].body, { error: "unknown method: toString" });
  assert.deepEqual(replies[4].body, { error: "broken failed: no LED on this board" });
  device.stop();
});

/** PUBACKs every telemetry message as it comes until the queue is empty; returns the ts values delivered, in order. */
function deliverAll(socket: FakeSocket, limit = 50): number[] {
  const delivered: number[] = [];
  let acked = 0;
  for (let round = 0; round < limit; round++) {
    const sent = publishes(socket);
    if (sent.length === acked) break;
    const message = sent[acked++];
    const body = message.payload as { ts: number } | { ts: number }[];
    for (const reading of Array.isArray(body) ? body : [body]) delivered.push(reading.ts);
    socket.receive([0x40, 2, message.id >> 8, message.id & 0xff]);
  }
  return delivered;
}

test("offline, every full batch goes to flash at once; online they come back oldest first, each reading delivered once", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, queueCapacity: 6, batchSize: 2, spillBatches: 10, maxInflight: 1 };
  const device = startDevice(platform, config, [createSimulated], [remoteConfigService, rpcFeature]);
  for (let i = 0; i < 9; i++) platform.clock.advance(10000);
  // Ten readings, five batches of two in flash, nothing left only in RAM.
  assert.equal(device.queue.size(), 0);
  assert.equal(device.queue.spilledBatches, 5);
  assert.equal(device.queue.droppedCount, 0);
  assert.deepEqual(Object.keys(platform.storage).sort(), ["tbq-0", "tbq-1", "tbq-2", "tbq-3", "tbq-4", "tbq-index"]);
  assert.ok(platform.logs.includes("[I][queue] offline: moved 2 reading(s) to flash (1 batch(es) there)"));
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const delivered = deliverAll(socket);
  const all = Array.from({ length: 10 }, (_, i) => 1700000000000 + i * 10000);
  assert.deepEqual(delivered, all, "every reading delivered exactly once, in order");
  assert.equal(device.queue.spilledBatches, 0);
  assert.deepEqual(Object.keys(platform.storage), ["tbq-index"]);
  assert.equal(device.queue.deliveredTotal, 10);
  device.stop();
});

test("before a planned restart or deep sleep, readings in flight go to flash too; a PUBACK that comes after does not upset the counts", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, queueCapacity: 6, batchSize: 2, spillBatches: 10, maxInflight: 1, responseTimeoutMs: 1e9 };
  const device = startDevice(platform, config, [createSimulated], []);
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  platform.clock.advance(10000);
  // Two readings: one in flight without its PUBACK, one waiting behind it.
  const [inFlight] = publishes(socket);
  assert.equal(device.queue.size(), 2);
  device.queue.persist();
  assert.equal(device.queue.size(), 0);
  assert.equal(device.queue.spilledBatches, 2);
  // A restart now: both come back from flash (the one in flight is sent again: at least once).
  const next = fakePlatform();
  next.storage = { ...platform.storage };
  const restarted = startDevice(next, config, [createSimulated], []);
  assert.equal(restarted.queue.spilledBatches, 2);
  restarted.stop();
  // No restart, and the PUBACK comes after all: not taken off twice, and not counted as
  // delivered yet: the pump brings both batches back from flash, so that reading goes out
  // again and counts when that copy is acknowledged.
  socket.receive([0x40, 2, inFlight.id >> 8, inFlight.id & 0xff]);
  assert.equal(device.queue.deliveredTotal, 0);
  assert.equal(device.queue.spilledBatches, 0);
  assert.equal(device.queue.size(), 2);
  device.stop();
});

test("online with the window blocked (no PUBACK), RAM full moves the oldest batch to flash", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, queueCapacity: 6, batchSize: 2, spillBatches: 10, maxInflight: 1, responseTimeoutMs: 1e9 };
  const device = startDevice(platform, config, [createSimulated], []);
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  // The first reading goes out and is never acknowledged: the rest wait in RAM.
  for (let i = 0; i < 8; i++) platform.clock.advance(10000);
  assert.ok(platform.logs.includes("[I][queue] RAM full: moved 2 reading(s) to flash (1 batch(es) there)"), platform.logs.join("\n"));
  assert.ok(device.queue.size() <= 6);
  assert.equal(device.queue.droppedCount, 0);
  device.stop();
});

test("RPC reboot: the readings waiting in RAM (uploads held for the upload interval) go to flash before the restart", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, uploadIntervalMs: 600000, queueCapacity: 100, spillBatches: 10, maxInflight: 4, responseTimeoutMs: 1e9, keepAliveS: 100000 };
  const device = startDevice(platform, config, [createSimulated], [remoteConfigService, rpcFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const subscribe = socket.written.find((p) => p[0] === 0x82)!;
  socket.receive([0x90, 3, subscribe[2], subscribe[3], 1]);
  for (let i = 0; i < 6; i++) platform.clock.advance(10000);
  const held = device.queue.size() - 1;
  assert.ok(held >= 3, held + " readings held in RAM for the next upload");
  socket.receive(publishPacket("v1/devices/me/rpc/request/5", '{"method":"reboot","params":{}}', 11));
  const reply = sentPublishes(socket).find((p) => p.topic === "v1/devices/me/rpc/response/5")!;
  socket.receive([0x40, 2, reply.id >> 8, reply.id & 0xff]);
  assert.equal(platform.restarts, 1);
  // Nothing left in RAM: the boot reading in flight (never acknowledged here) is in flash
  // too, and an upload's worth is one batch: all of the held ones in one flash file.
  assert.equal(device.queue.size(), 0);
  assert.equal(device.queue.spilledBatches, 2);
  assert.ok(platform.logs.includes("[I][queue] restarting: moved " + held + " reading(s) to flash (2 batch(es) there)"), platform.logs.join("\n"));
  assert.equal(JSON.parse(platform.storage["tbq-0"]).length, 1);
  assert.equal(JSON.parse(platform.storage["tbq-1"]).length, held);
  device.stop();
});

test("readings in flash survive a restart", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, queueCapacity: 4, batchSize: 2, spillBatches: 10 };
  const before = startDevice(platform, config, [createSimulated], [remoteConfigService, rpcFeature]);
  // Six readings offline: three full batches, each in flash as soon as it is full.
  for (let i = 0; i < 5; i++) platform.clock.advance(10000);
  assert.equal(before.queue.spilledBatches, 3);
  assert.equal(before.queue.size(), 0);
  before.stop();
  platform.clock.advance(1);
  // Power cycle: RAM is gone, flash stays.
  const after = startDevice(platform, config, [createSimulated], [remoteConfigService, rpcFeature]);
  assert.ok(platform.logs.includes("[I][queue] 3 batch(es) in flash from before the restart"));
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const delivered = deliverAll(socket);
  // The six from before the restart and the one taken at boot, each once (RAM of 4 leaves no
  // room to bring flash back before the boot reading goes).
  const all = Array.from({ length: 6 }, (_, i) => 1700000000000 + i * 10000);
  assert.deepEqual([...delivered].sort(), [...all, 1700000050001], "every reading taken before the restart came back from flash");
  assert.deepEqual(delivered.filter((t) => t !== 1700000050001), all, "in order");
  assert.equal(after.queue.spilledBatches, 0);
  after.stop();
});

test("a full flash queue drops its oldest batch and counts the readings", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, queueCapacity: 2, batchSize: 1, spillBatches: 2 }, [createSimulated], [remoteConfigService, rpcFeature]);
  // Six readings offline, each its own batch: flash keeps the last two.
  for (let i = 0; i < 5; i++) platform.clock.advance(10000);
  assert.equal(device.queue.spilledBatches, 2);
  assert.equal(device.queue.droppedCount, 4);
  assert.ok(platform.logs.includes("[W][queue] flash queue full (2 batches): dropped the oldest batch, 4 reading(s) lost so far"));
  device.stop();
});

test("a damaged flash batch is skipped and each reading it held is counted as lost, not the batch as one", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, queueCapacity: 10, batchSize: 3, spillBatches: 5 }, [createSimulated], [remoteConfigService, rpcFeature]);
  // Nine readings offline: three batches of three in flash, none in RAM yet.
  for (let i = 0; i < 8; i++) platform.clock.advance(10000);
  assert.equal(device.queue.spilledBatches, 3);
  // The middle batch cut short (power lost mid-write), the first one gone.
  platform.storage["tbq-1"] = platform.storage["tbq-1"].slice(0, -12);
  delete platform.storage["tbq-0"];
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  for (let i = 0; i < 6; i++) {
    const sent = publishes(socket);
    if (sent.length === 0) break;
    const last = sent[sent.length - 1];
    socket.receive([0x40, 2, last.id >> 8, last.id & 0xff]);
  }
  assert.equal(device.queue.droppedCount, 4, "3 readings of the damaged batch, 1 for the missing file (its count is unknown)");
  assert.equal(device.queue.deliveredTotal, 3, "the intact batch");
  assert.ok(platform.logs.some((l) => l.startsWith("[E][queue] flash batch tbq-1 unreadable (")));
  device.stop();
});

test("the publish pace keeps every window of ThingsBoard's rate limits, for messages and data points", () => {
  for (const [messages, points] of [["20:1,600:60", ""], ["5:1,100:60", "40:1,1000:60"], ["200:1,6000:60,100:1,3000:60", "500:1,15000:60"], ["1:1", "3:1"]]) {
    const [rate, burst, perMessage] = paceFor(messages, points);
    assert.ok(rate > 0 && burst >= 1 && perMessage >= 1, messages + ": " + [rate, burst, perMessage]);
    // A token bucket sends at most floor(burst + rate * T) messages in any window of T seconds.
    for (const [count, seconds] of limitWindows(messages)) assert.ok(Math.floor(burst + rate * seconds) <= count, messages + ": window " + count + ":" + seconds);
    for (const [count, seconds] of limitWindows(points)) assert.ok(perMessage * Math.floor(burst + rate * seconds) <= count, points + ": window " + count + ":" + seconds);
  }
  assert.deepEqual(paceFor("", ""), [0, 1e9, 1e9], "no limits: no pace");
  assert.deepEqual(limitWindows("20:1,600:60"), [[20, 1], [600, 60]]);
});

test("attribute messages that are not JSON are logged and change nothing (a garbled answer does not reset the settings)", () => {
  const platform = fakePlatform();
  platform.storage["tb-shared.json"] = '{"batchSize":2}';
  startDevice(platform, { ...CONFIG, maxInflight: 4 }, [createSimulated], [remoteConfigService, attributesFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const request = sentPublishes(socket).find((p) => p.topic.startsWith("v1/devices/me/attributes/request/"))!;
  const id = request.topic.split("/").pop();
  const subscribe = socket.written.find((p) => p[0] === 0x82)!;
  socket.receive([0x90, 4, subscribe[2], subscribe[3], 1, 1]);
  for (const sent of sentPublishes(socket)) socket.receive([0x40, 2, sent.id >> 8, sent.id & 0xff]);
  const before = platform.logs.length;
  socket.receive(publishPacket("v1/devices/me/attributes/response/" + id, '{"shared":{"batchSi', 5));
  socket.receive(publishPacket("v1/devices/me/attributes", "batchSize=7", 6));
  assert.equal(platform.logs.filter((l) => l === "[W][config] attributes not JSON: ignored").length, 2, platform.logs.join("\n"));
  assert.ok(!platform.logs.slice(before).some((l) => l.startsWith("[I][config] now")), "nothing changed");
  assert.equal(platform.storage["tb-shared.json"], '{"batchSize":2}');
  assert.equal(socket.closed, false, "the session goes on");
});

test("attribute request: only the answer with the latest id is taken; no answer is logged after the response timeout", () => {
  const platform = fakePlatform();
  startDevice(platform, { ...CONFIG, maxInflight: 4 }, [createSimulated], [remoteConfigService, attributesFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const request = sentPublishes(socket).find((p) => p.topic.startsWith("v1/devices/me/attributes/request/"))!;
  assert.deepEqual(JSON.parse(request.body), { sharedKeys: "samplingIntervalMs,uploadIntervalMs,batchSize,logLevel,statusIntervalMs,simulatedEnabled" });
  const id = request.topic.split("/").pop();
  // Keep the link alive: SUBACK and PUBACK what the device sent.
  const subscribe = socket.written.find((p) => p[0] === 0x82)!;
  socket.receive([0x90, 4, subscribe[2], subscribe[3], 1, 1]);
  for (const sent of sentPublishes(socket)) socket.receive([0x40, 2, sent.id >> 8, sent.id & 0xff]);
  socket.receive(publishPacket("v1/devices/me/attributes/response/999", '{"shared":{"batchSize":2}}', 5));
  assert.ok(!platform.logs.some((l) => l.startsWith("[I][config] now")), "a stale answer changes nothing");
  platform.clock.advance(CONFIG.responseTimeoutMs);
  assert.ok(platform.logs.includes("[W][config] no answer to attribute request " + id + " within 20000 ms: settings from flash kept"), platform.logs.join("\n"));
  socket.receive(publishPacket("v1/devices/me/attributes/response/" + id, '{"shared":{"batchSize":2}}', 6));
  assert.ok(platform.logs.some((l) => l.startsWith('[I][config] now {"samplingIntervalMs":10000,"uploadIntervalMs":0,"batchSize":2')));
  assert.equal(JSON.parse(platform.storage["tb-shared.json"]).batchSize, 2, "kept in flash");
});

test("telemetry waiting behind attributes and RPC replies in the in-flight window goes out when their PUBACKs arrive, not at the next sample", () => {
  const platform = fakePlatform();
  startDevice(platform, { ...CONFIG, maxInflight: 3, telemetryIntervalMs: 60000 }, [createSimulated], [remoteConfigService, attributesFeature]);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  // Client attributes and the attribute request fill the window: the reading waits.
  assert.equal(publishes(socket).length, 0);
  const subscribe = socket.written.find((p) => p[0] === 0x82)!;
  socket.receive([0x90, 4, subscribe[2], subscribe[3], 1, 1]);
  for (const sent of sentPublishes(socket)) socket.receive([0x40, 2, sent.id >> 8, sent.id & 0xff]);
  assert.equal(publishes(socket).length, 1, "the reading left on the PUBACKs, long before the next sample");
});

test("watchdog: no connection accepted for watchdogMs: RAM to flash, the reason kept, a restart, and the reason reported after it", () => {
  const platform = fakePlatform();
  const config = { ...CONFIG, watchdogMs: 180000, spillBatches: 10 };
  // The server accepts the first connection, then answers nothing more: the watchdog,
  // checking every minute, sees progress at 1 min, none at 2, 3 and 4 min.
  const device = startDevice(platform, config, [createSimulated], [remoteConfigService, attributesFeature]);
  const first = platform.sockets[0];
  first.open();
  first.receive([0x20, 2, 0, 0]);
  platform.clock.advance(3 * 60000);
  assert.equal(platform.restarts, 0, "two minutes without progress: not yet");
  platform.clock.advance(60000);
  assert.equal(platform.restarts, 1);
  assert.ok(platform.logs.some((l) => l.startsWith("[E][boot] watchdog: no delivery and no connection for 3 min; restarting")), platform.logs.join("\n"));
  assert.equal(platform.storage["tb-restart.txt"], "watchdog: no delivery and no connection for 3 min");
  assert.ok(device.queue.spilledBatches > 0, "the readings taken while stalled are in flash");
  device.stop();
  // After the restart: logged, reported as a client attribute, the file gone.
  const after = startDevice(platform, config, [createSimulated], [remoteConfigService, attributesFeature]);
  assert.ok(platform.logs.includes("[W][boot] restarted: watchdog: no delivery and no connection for 3 min"));
  assert.equal(platform.storage["tb-restart.txt"], undefined);
  const socket = platform.sockets[platform.sockets.length - 1];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  const attributes = sentPublishes(socket).find((p) => p.topic === "v1/devices/me/attributes")!;
  assert.equal(JSON.parse(attributes.body).last_restart_reason, "watchdog: no delivery and no connection for 3 min");
  after.stop();
});

test("watchdog: deliveries are progress, so a device that keeps delivering never restarts", () => {
  const platform = fakePlatform();
  const device = startDevice(platform, { ...CONFIG, watchdogMs: 120000, responseTimeoutMs: 1e9, keepAliveS: 100000 }, [createSimulated], []);
  const socket = platform.sockets[0];
  socket.open();
  socket.receive([0x20, 2, 0, 0]);
  for (let minute = 0; minute < 10; minute++) {
    platform.clock.advance(60000);
    deliverAll(socket);
  }
  assert.equal(platform.restarts, 0);
  device.stop();
});

test("the logger writes the levels up to logLevel, which it reads on every line; every level name is a setting value", () => {
  const lines: string[] = [];
  const levels = { logLevel: "warn" };
  const log = createLogger((line) => lines.push(line), levels);
  const all = () => {
    lines.length = 0;
    log("E", "t", "e");
    log("W", "t", "w");
    log("I", "t", "i");
    log("D", "t", "d");
    return lines.map((l) => l.charAt(1)).join("");
  };
  assert.equal(all(), "EW");
  const expected: { [name: string]: string } = { error: "E", warn: "EW", info: "EWI", debug: "EWID" };
  assert.deepEqual(logLevelNames(), Object.keys(expected));
  for (const name of logLevelNames()) {
    levels.logLevel = name;
    assert.equal(all(), expected[name], name);
  }
  assert.equal(lines[0], "[E][t] e");
});
