// End to end: the built `sim` image, run in the Espruino sandbox, against real brokers
// over real sockets: mosquitto (plain and TLS, CA generated here), an independent
// mqtt.js subscriber, a server signed by another CA, and a wrong token.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import type { Packet, IPublishPacket } from "mqtt-packet";
import { DEFAULT_SETTINGS, FIRMWARE_DEFAULTS } from "../tools/build/config.ts";
import { createTlsFiles } from "../tools/sim/dev-ca.ts";
import type { TlsFiles } from "../tools/sim/dev-ca.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import type { Mosquitto } from "./helpers/mosquitto.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";

const TOKEN = "e2e-device-token";
// The images use ThingsBoard's v2 short topics by default (TB_TOPICS).
const TELEMETRY = "v2/t";
let tls: TlsFiles;
let mosquitto: Mosquitto;
let imageTrustingTestCa: string;
let imageTrustingIsrg: string;

async function buildSim(ca: string, port: number): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), "tbfw-e2e-build-"));
  await buildTestImages({
    boards: ["sim"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port, tls: true, token: TOKEN, ca, telemetryIntervalMs: 1000 },
    version: "0.0.0-e2e",
    quiet: true,
    debug: true,
  });
  const image = join(out, "espruino", "sim.js");
  assert.deepEqual(checkSource(readFileSync(image, "utf8"), image), [], "the tested image passes the Espruino check");
  return image;
}

/** The device's telemetry publishes (it also sends attributes and RPCs). */
function publishesOf(sent: Packet[]): IPublishPacket[] {
  return sent.filter((p): p is IPublishPacket => p.cmd === "publish" && p.topic === TELEMETRY);
}

before(async () => {
  tls = createTlsFiles(mkdtempSync(join(tmpdir(), "tbfw-e2e-ca-")), "tb-firmware e2e test CA");
  mosquitto = await startMosquitto({ tls });
  imageTrustingTestCa = await buildSim(tls.caCert, mosquitto.tlsPort!);
  imageTrustingIsrg = await buildSim("certs/ca-root.pem", mosquitto.tlsPort!);
});

after(async () => {
  await mosquitto?.stop();
});

async function roundTrip(overrides: object | null, expectTls: boolean): Promise<void> {
  const subscriber = await mqtt.connectAsync({ host: "127.0.0.1", port: mosquitto.plainPort, clientId: "e2e-subscriber", reconnectPeriod: 0 });
  const received: string[] = [];
  subscriber.on("message", (topic, payload) => {
    if (topic === TELEMETRY) received.push(payload.toString());
  });
  await subscriber.subscribeAsync(TELEMETRY, { qos: 1 });
  const device = runDevice(imageTrustingTestCa, overrides);
  try {
    const delivered = () => device.serial.filter((l) => l.startsWith("[D][queue] delivered")).length;
    await device.waitFor(() => delivered() >= 3, 20000, "3 PUBACKed telemetry messages");
    await device.waitFor(() => received.length >= publishesOf(device.sent).length, 5000, "the subscriber to catch up");
    const connectLine = "[I][mqtt] connected to 127.0.0.1:" + (expectTls ? mosquitto.tlsPort + " (tls)" : mosquitto.plainPort + " (plain)");
    assert.ok(device.serial.includes(connectLine), connectLine + " in:\n" + device.serial.join("\n"));
    const connect = device.sent.find((p) => p.cmd === "connect") as { username?: string; clientId: string; clean: boolean; keepalive: number };
    assert.equal(connect.username, TOKEN);
    assert.equal(connect.clean, true);
    assert.equal(connect.keepalive, FIRMWARE_DEFAULTS.keepAliveS);
    assert.match(connect.clientId, /^tbfw-[0-9A-Za-z]+$/);
    const published = publishesOf(device.sent);
    assert.ok(published.length >= 3, published.length + " telemetry publishes on " + TELEMETRY);
    for (const p of published) {
      assert.equal(p.topic, TELEMETRY);
      assert.equal(p.qos, 1);
    }
    assert.deepEqual(received, published.map((p) => p.payload.toString()), "the subscriber got exactly what the device published");
    for (const reading of received.flatMap((payload) => [JSON.parse(payload)].flat())) {
      assert.equal(typeof reading.ts, "number");
      assert.ok(Math.abs(reading.ts - Date.now()) < 60000, "ts is the current time in ms");
      assert.deepEqual(Object.keys(reading.values).sort(), ["humidity", "temperature"]);
    }
    assert.deepEqual(device.sandbox.uncaught, []);
    assert.ok(!device.serial.join("\n").includes(TOKEN), "the token never appears on the console");
  } finally {
    device.stop();
    await subscriber.endAsync();
  }
}

test("plain MQTT: telemetry reaches mosquitto and an independent subscriber, QoS 1", async () => {
  await roundTrip({ port: mosquitto.plainPort, tls: false }, false);
});

test("MQTT over TLS: verified against the embedded CA, telemetry delivered", async () => {
  await roundTrip(null, true);
});

test("a server certificate signed by another CA is refused", async () => {
  const device = runDevice(imageTrustingIsrg, null);
  try {
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[W][mqtt] connection failed:")), 15000, "the TLS refusal");
    const line = device.serial.find((l) => l.startsWith("[W][mqtt] connection failed:"))!;
    assert.match(line, /certificate|verify/i);
    assert.match(line, /retrying in \d+\.\d s$/);
    assert.equal(device.sent.length, 0, "no MQTT packet crossed the untrusted link");
    assert.ok(!device.serial.some((l) => l.startsWith("[I][mqtt] connected")));
  } finally {
    device.stop();
  }
});

test("a wrong token gets CONNACK 5 from the ThingsBoard emulator and the device backs off", async () => {
  const events: string[] = [];
  const broker = new ThingsBoardEmulator({ devices: [{ name: "other", token: "the-right-token" }], onEvent: (line) => events.push(line) });
  await broker.listen();
  const device = runDevice(imageTrustingTestCa, { port: broker.plainPort, tls: false });
  try {
    const refusals = () => device.serial.filter((l) => l.startsWith("[E][mqtt] connection refused: not authorized (CONNACK 5)"));
    await device.waitFor(() => refusals().length >= 2, 15000, "two refusals");
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const attempts = device.serial.filter((l) => l.startsWith("[I][mqtt] connecting to")).length;
    assert.ok(attempts <= 4, attempts + " connection attempts: backoff, not a hot loop");
    const delays = refusals().map((l) => Number(/retrying in (\d+\.\d) s$/.exec(l)![1]));
    assert.ok(delays[1] > delays[0], "delays grow: " + delays.join(", "));
    assert.ok(Date.now() - started >= 3000);
    assert.ok(events.some((e) => e.includes("unknown access token (CONNACK 5)")));
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
    await broker.close();
  }
});

test("broker restart: the device reconnects, resubscribes and delivers the readings taken while offline", async () => {
  const own = await startMosquitto();
  const device = runDevice(imageTrustingTestCa, { port: own.plainPort, tls: false });
  try {
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[D][queue] delivered")), 15000, "a first delivery");
    await own.stop();
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[W][mqtt] disconnected:")), 15000, "the disconnect");
    await new Promise((r) => setTimeout(r, 2500));
    const restarted = await startMosquitto({ plainPort: own.plainPort });
    const subscriber = await mqtt.connectAsync({ host: "127.0.0.1", port: own.plainPort, reconnectPeriod: 0 });
    try {
      const received: string[] = [];
      subscriber.on("message", (_t, payload) => received.push(payload.toString()));
      await subscriber.subscribeAsync(TELEMETRY, { qos: 1 });
      await device.waitFor(() => received.some((p) => p.startsWith("[")), 30000, "the offline backlog as one batch");
      const batch = JSON.parse(received.find((p) => p.startsWith("["))!) as { ts: number }[];
      assert.ok(batch.length >= 2);
      for (let i = 1; i < batch.length; i++) assert.ok(batch[i].ts > batch[i - 1].ts, "readings keep their own ts, in order");
      // The device subscribed again after reconnecting: a server-side RPC gets its answer.
      const replies: string[] = [];
      subscriber.on("message", (topic, payload) => {
        if (topic === "v2/r/res/77") replies.push(payload.toString());
      });
      await subscriber.subscribeAsync("v2/r/res/+", { qos: 1 });
      await subscriber.publishAsync("v2/r/req/77", JSON.stringify({ method: "getStatus", params: {} }), { qos: 1 });
      await device.waitFor(() => replies.length > 0, 10000, "the RPC reply");
      const status = JSON.parse(replies[0]);
      assert.equal(status.runtime, "espruino");
      assert.equal(status.board, "sim");
      assert.ok(status.delivered >= batch.length + 1);
      assert.deepEqual(device.sandbox.uncaught, []);
    } finally {
      await subscriber.endAsync();
      await restarted.stop();
    }
  } finally {
    device.stop();
  }
});
