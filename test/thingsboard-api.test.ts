// The ThingsBoard device API, end to end: the built `sim` image runs in the Espruino
// sandbox against the local ThingsBoard emulator over real sockets. Attributes, remote
// configuration (and its persistence over a reboot), server-side RPC (also across a
// reconnect), getCurrentTime without SNTP, and a replay after an outage that obeys small
// getSessionLimits without one rate-limit close.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import type { EmulatorOptions, JsonValue } from "../tools/sim/emulator.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";
import { freePort } from "./helpers/mosquitto.ts";
import type { DeviceRun } from "./helpers/device-run.ts";

const TOKEN = "api-test-token";
const DEVICE = "api-device";
/** The default image (v2 short topics) and one built with TB_TOPICS=v1. */
let image: string;
let imageV1: string;
let provisioningImage: string;
const PROVISION_KEY = "test-provision-key";
const PROVISION_SECRET = "TEST_PROVISION_SECRET";

before(async () => {
  const out = mkdtempSync(join(tmpdir(), "tbfw-api-build-"));
  // Host and port come per test from tb-config.json in the device's flash.
  await buildTestImages({
    boards: ["sim"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: 1, tls: false, token: TOKEN, telemetryIntervalMs: 1000 },
    version: "0.0.0-api",
    quiet: true,
    debug: true,
  });
  image = join(out, "espruino", "sim.js");
  assert.deepEqual(checkSource(readFileSync(image, "utf8"), image), []);
  const v1Out = mkdtempSync(join(tmpdir(), "tbfw-api-build-"));
  await buildTestImages({
    boards: ["sim"],
    outDir: v1Out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: 1, tls: false, token: TOKEN, telemetryIntervalMs: 1000, topics: "v1" },
    version: "0.0.0-api",
    quiet: true,
    debug: true,
  });
  imageV1 = join(v1Out, "espruino", "sim.js");
  // One image for many devices: a provisioning key and secret, no token.
  const provisioningOut = mkdtempSync(join(tmpdir(), "tbfw-api-build-"));
  await buildTestImages({
    boards: ["sim"],
    outDir: provisioningOut,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: 1, tls: false, token: "", provisionKey: PROVISION_KEY, provisionSecret: PROVISION_SECRET, telemetryIntervalMs: 1000 },
    version: "0.0.0-api",
    quiet: true,
    debug: true,
  });
  provisioningImage = join(provisioningOut, "espruino", "sim.js");
});

const running: { emulator: ThingsBoardEmulator; device: DeviceRun | null }[] = [];
after(async () => {
  for (const r of running) {
    r.device?.stop();
    await r.emulator.close();
  }
});

async function start(options: Partial<EmulatorOptions> = {}, sandbox: { clockUnset?: boolean } = {}, deviceImage = image) {
  const events: string[] = [];
  const emulator = new ThingsBoardEmulator({ devices: [{ name: DEVICE, token: TOKEN }], onEvent: (line) => events.push(line), ...options });
  await emulator.listen();
  const device = runDevice(deviceImage, { port: emulator.plainPort }, sandbox);
  running.push({ emulator, device });
  return { emulator, device, events };
}

/** The device has connected, sent its attributes and taken its configuration. */
function connected(run: { emulator: ThingsBoardEmulator; device: DeviceRun }): Promise<void> {
  return run.device.waitFor(() => "config_error" in run.emulator.device(DEVICE).client, 15000, "the first connect");
}

/** The device's next config_error report. */
function nextConfigError(emulator: ThingsBoardEmulator, timeoutMs: number): Promise<JsonValue | null> {
  return emulator.waitForPublish(DEVICE, (_t, body) => typeof body === "object" && body !== null && "config_error" in body, timeoutMs);
}

function stop(entry: { emulator: ThingsBoardEmulator; device: DeviceRun }): Promise<void> {
  entry.device.stop();
  return entry.emulator.close();
}

test("client attributes after connect; shared attributes configure the device, bad values are reported in config_error, deleted keys fall back, and the configuration survives a reboot", async () => {
  const run = await start();
  const { emulator, device } = run;
  try {
    const client = () => emulator.device(DEVICE).client;
    await device.waitFor(() => "current_fw_version" in client() && "config_error" in client(), 15000, "client attributes");
    assert.deepEqual(
      Object.keys(client()).sort(),
      ["board", "chip_id", "config_error", "current_fw_title", "current_fw_version", "free_memory", "ip", "rssi", "runtime", "runtime_version"]
    );
    assert.equal(client().current_fw_title, "tb-firmware");
    assert.equal(client().current_fw_version, "0.0.0-api");
    assert.equal(client().board, "sim");
    assert.equal(client().runtime, "espruino");
    assert.equal(client().config_error, "");

    // A valid change applies at once and is confirmed with an empty config_error.
    let answer = nextConfigError(emulator, 5000);
    emulator.setShared(DEVICE, { samplingIntervalMs: 3000, logLevel: "info" });
    assert.deepEqual(await answer, { config_error: "" });
    const linesBefore = device.serial.length;
    const before = emulator.device(DEVICE).telemetry.length;
    await new Promise((r) => setTimeout(r, 6500));
    const taken = emulator.device(DEVICE).telemetry.length - before;
    assert.ok(taken >= 1 && taken <= 3, taken + " readings in 6.5 s at a 3 s interval");
    assert.ok(!device.serial.slice(linesBefore).some((l) => l.startsWith("[D]")), "logLevel info: no debug lines any more");

    // Invalid: wrong type and out of range. Nothing changes; config_error names key and reason.
    answer = nextConfigError(emulator, 5000);
    emulator.setShared(DEVICE, { uploadIntervalMs: "soon", batchSize: 500 });
    const said = (await answer) as { config_error: string };
    assert.match(said.config_error, /uploadIntervalMs: must be a whole number from 0 to 86400000, got "soon"; ignored/);
    assert.match(said.config_error, /batchSize: must be a whole number from 1 to 50, got 500; ignored/);
    const config = (await emulator.rpc(DEVICE, "getConfig", {})) as Record<string, JsonValue>;
    assert.equal(config.samplingIntervalMs, 3000);
    assert.equal(config.uploadIntervalMs, 0);
    assert.equal(config.batchSize, 10);

    // A reboot (power cycle): the device boots with the value from its flash.
    const reportAfterReboot = nextConfigError(emulator, 10000);
    device.sandbox.reboot();
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][boot]")).length === 2, 5000, "the reboot");
    assert.ok(device.serial.some((l) => l.includes('[I][config] now {"samplingIntervalMs":3000')), "the stored configuration is applied at boot");
    const afterReboot = (await emulator.rpc(DEVICE, "getConfig", {})) as Record<string, JsonValue>;
    assert.equal(afterReboot.samplingIntervalMs, 3000);

    // The server still holds the bad values: after the reboot they are reported again.
    assert.match(String(((await reportAfterReboot) as { config_error: string }).config_error), /^uploadIntervalMs: /);

    // Deleted: back to the board default.
    answer = nextConfigError(emulator, 5000);
    emulator.deleteShared(DEVICE, ["samplingIntervalMs"]);
    assert.deepEqual(await answer, { config_error: "" });
    assert.equal(((await emulator.rpc(DEVICE, "getConfig", {})) as Record<string, JsonValue>).samplingIntervalMs, 1000);
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    await stop(run);
  }
});

test("a change made while the device was offline is picked up by the attribute request after it connects", async () => {
  const run = await start();
  const { emulator, device } = run;
  try {
    await connected(run);
    emulator.disconnect(DEVICE);
    emulator.setShared(DEVICE, { samplingIntervalMs: 2000 });
    await device.waitFor(() => device.serial.some((l) => l.includes('[I][config] now {"samplingIntervalMs":2000')), 15000, "the change after the reconnect");
  } finally {
    await stop(run);
  }
});

test("server-side RPC: getStatus, getConfig, setConfig, readNow, ping, errors, and reboot replies first then restarts", async () => {
  const run = await start();
  const { emulator, device } = run;
  try {
    await connected(run);
    const status = (await emulator.rpc(DEVICE, "getStatus", {})) as Record<string, JsonValue>;
    assert.deepEqual(Object.keys(status).sort(), ["board", "clock_set", "delivered", "dropped", "firmware", "in_flash", "queued", "runtime", "uptime_s"]);
    assert.equal(status.firmware, "0.0.0-api");
    assert.equal(status.clock_set, true);
    assert.deepEqual(await emulator.rpc(DEVICE, "ping", {}), { pong: true });
    const reading = (await emulator.rpc(DEVICE, "readNow", {})) as Record<string, number>;
    assert.deepEqual(Object.keys(reading).sort(), ["humidity", "temperature"]);
    const set = (await emulator.rpc(DEVICE, "setConfig", { batchSize: 5, colour: "red" })) as { error: string; config: Record<string, JsonValue> };
    assert.equal(set.config.batchSize, 5);
    assert.match(set.error, /colour: not a setting of this device/);
    assert.deepEqual(await emulator.rpc(DEVICE, "format", {}), { error: "unknown method: format" });

    await emulator.rpc(DEVICE, "reboot", {}).then((reply) => assert.deepEqual(reply, { rebooting: true }));
    await device.waitFor(() => device.sandbox.reboots() === 1, 5000, "the restart");
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][mqtt] connected")).length === 2, 10000, "the reconnect after the reboot");
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    await stop(run);
  }
});

test("an RPC that arrives while the device is reconnecting is answered after the reconnect", async () => {
  const run = await start();
  const { emulator, device } = run;
  try {
    await connected(run);
    emulator.disconnect(DEVICE);
    const reply = emulator.rpc(DEVICE, "getStatus", {}, 20000);
    assert.equal(emulator.listDevices()[0].online, false, "sent while the device is offline");
    const status = (await reply) as Record<string, JsonValue>;
    assert.equal(status.board, "sim");
    assert.ok(device.serial.filter((l) => l.startsWith("[I][mqtt] connected")).length >= 2);
  } finally {
    await stop(run);
  }
});

test("no SNTP: the clock is set from getCurrentTime, and readings taken before carry corrected times, never 1970", async () => {
  const run = await start({}, { clockUnset: true });
  const { emulator, device } = run;
  try {
    await device.waitFor(() => emulator.device(DEVICE).telemetry.length >= 4, 20000, "4 readings");
    assert.ok(device.serial.some((l) => l.startsWith("[I][clock] set from ThingsBoard to ")), device.serial.join("\n"));
    const points = emulator.device(DEVICE).telemetry;
    for (const point of points) assert.ok(Math.abs(point.ts - Date.now()) < 30000, "ts " + point.ts + " is now, not 1970");
    // They went with the device's own ts, one second apart, not the server's arrival time.
    const stamps = points.map((p) => p.ts);
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] - stamps[i - 1] >= 900 && stamps[i] - stamps[i - 1] <= 1100, "spacing " + stamps.join(", "));
    const published = device.sent.filter((p) => p.cmd === "publish" && p.topic === "v2/t");
    assert.ok(published.length >= 2);
    assert.ok(published.every((p) => p.cmd === "publish" && /"ts":1[6-9]\d{11}/.test(p.payload.toString())), "every telemetry message carries a ts");
  } finally {
    await stop(run);
  }
});

/**
 * The device runs with the server down for `outageMs` (a backlog builds up), then the
 * emulator starts on the port it has been trying.
 */
async function afterOutage(options: Partial<EmulatorOptions>, outageMs: number) {
  const port = await freePort();
  const events: string[] = [];
  const emulator = new ThingsBoardEmulator({ devices: [{ name: DEVICE, token: TOKEN }], plainPort: port, onEvent: (line) => events.push(line), ...options });
  const device = runDevice(image, { port });
  running.push({ emulator, device });
  await device.waitFor(() => device.serial.filter((l) => l.includes("connection failed")).length >= 1, 10000, "the device to find the server down");
  await new Promise((r) => setTimeout(r, outageMs));
  await emulator.listen();
  return { emulator, device, events };
}

test("after an outage the backlog is replayed under small getSessionLimits (5 messages/s, 1 KB payload) without a rate-limit close", async () => {
  const { emulator, device, events } = await afterOutage({ limits: { maxPayloadSize: 1024, rateLimits: { messages: "5:1,100:60", telemetryMessages: "5:1,100:60", telemetryDataPoints: "40:1,1000:60" } } }, 12000);
  try {
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[I][limits] payload <= 1024 B")), 30000, "the session limits");
    await device.waitFor(() => emulator.device(DEVICE).telemetry.length >= 12 && (device.serial.filter((l) => /delivered \d+ reading\(s\), 0 waiting/.test(l)).length > 0), 40000, "the backlog");
    assert.deepEqual(events.filter((e) => e.includes("rate limit") || e.includes("maxPayloadSize")), [], "no rate-limit or payload close");
    const published = device.sent.filter((p) => p.cmd === "publish");
    for (const p of published) if (p.cmd === "publish") assert.ok(p.payload.length <= 1024, "a " + p.payload.length + " B payload");
    // No second of the replay carried more than 5 messages.
    const connects = device.serial.filter((l) => l.startsWith("[I][mqtt] connected"));
    assert.equal(connects.length, 1, "one session, never closed by the server");
    const stamps = emulator.device(DEVICE).telemetry.map((p) => p.ts);
    assert.ok(stamps.length >= 12);
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] > stamps[i - 1], "every reading once, in order");
  } finally {
    device.stop();
    await emulator.close();
  }
});

test("a server stricter than the device knows (no getSessionLimits answer, 60 data points per 5 s): rate-limit closes shrink the batches, and every reading of the backlog arrives once", async () => {
  // A backlog of some 40 readings (2 data points each) while the server is down.
  const { emulator, device, events } = await afterOutage({ answerSessionLimits: false, limits: { rateLimits: { telemetryDataPoints: "60:5" } } }, 30000);
  try {
    await device.waitFor(() => events.some((e) => e.includes("rate limit telemetryDataPoints")), 30000, "a rate-limit close");
    await device.waitFor(() => device.serial.some((l) => /delivered \d+ reading\(s\), 0 waiting/.test(l)) && device.serial.filter((l) => l.startsWith("[I][mqtt] connected")).length >= 2, 90000, "the backlog delivered");
    assert.ok(device.serial.some((l) => l === "[W][mqtt] no PUBACK before the close: rate limit? slowing down"), device.serial.join("\n"));
    // After the first close (the rejected message sent again with DUP), no new message carries more than half a batch (5 readings).
    const telemetry = device.sent.filter((p) => p.cmd === "publish" && (p.topic === "v2/t" || p.topic === "v1/devices/me/telemetry"));
    const sizes = telemetry.map((p) => (p.cmd === "publish" ? JSON.parse(p.payload.toString()) : null)).map((b) => (Array.isArray(b) ? b.length : 1));
    const firstResend = telemetry.findIndex((p) => p.cmd === "publish" && p.dup);
    assert.ok(firstResend > 0 && sizes.slice(0, firstResend).includes(10), "full batches first: " + sizes.join(","));
    const after = telemetry.slice(firstResend).filter((p) => p.cmd === "publish" && !p.dup).map((p) => sizes[telemetry.indexOf(p)]);
    assert.ok(after.length > 0 && after.every((n) => n <= 5), "then at most 5 readings a message: " + sizes.join(","));
    // Every reading once, one a second, none missing (the rejected message was not stored and went again).
    const stamps = emulator.device(DEVICE).telemetry.map((p) => p.ts);
    assert.ok(stamps.length >= 40, stamps.length + " readings");
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] - stamps[i - 1] > 500 && stamps[i] - stamps[i - 1] < 1500, "one reading a second, none lost or twice: " + stamps.map((t) => t - stamps[0]).join(","));
  } finally {
    device.stop();
    await emulator.close();
  }
});

test("the emulator behaves like ThingsBoard's MQTT transport: CONNACK 5, SUBACK 0x80 for other filters, no PUBACK and a close past maxPayloadSize", async () => {
  const emulator = new ThingsBoardEmulator({ devices: [{ name: DEVICE, token: TOKEN }], limits: { maxPayloadSize: 100 } });
  await emulator.listen();
  running.push({ emulator, device: null });
  const url = "mqtt://127.0.0.1:" + emulator.plainPort;
  await assert.rejects(mqtt.connectAsync(url, { username: "wrong", reconnectPeriod: 0 }), /Not authorized/);
  const client = await mqtt.connectAsync(url, { username: TOKEN, reconnectPeriod: 0 });
  // mqtt.js fails a subscription with any refused filter; the SUBACK is in the error.
  const refused = (await client.subscribeAsync(["v1/devices/me/rpc/request/+", "#"], { qos: 1 }).catch((e) => e)) as { packet?: { granted: number[] } };
  assert.deepEqual(refused.packet?.granted, [1, 128]);
  const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
  await assert.rejects(Promise.race([client.publishAsync("v1/devices/me/telemetry", "x".repeat(200), { qos: 1 }), closed.then(() => Promise.reject(new Error("closed")))]), /closed/);
  client.end(true);
});

const TOPIC_SETS = {
  v1: { attributes: "v1/devices/me/attributes", attrRequest: "v1/devices/me/attributes/request/", attrResponse: "v1/devices/me/attributes/response/", rpcRequest: "v1/devices/me/rpc/request/", rpcResponse: "v1/devices/me/rpc/response/", telemetry: "v1/devices/me/telemetry" },
  v2: { attributes: "v2/a", attrRequest: "v2/a/req/", attrResponse: "v2/a/res/", rpcRequest: "v2/r/req/", rpcResponse: "v2/r/res/", telemetry: "v2/t" },
};

for (const version of ["v1", "v2"] as const) {
  test("shared attributes and RPC against mosquitto on " + version + " topics, with an independent client playing the server", async () => {
    const topics = TOPIC_SETS[version];
    const { startMosquitto } = await import("./helpers/mosquitto.ts");
    const mosquitto = await startMosquitto({});
    const server = await mqtt.connectAsync("mqtt://127.0.0.1:" + mosquitto.plainPort, { clientId: "plays-thingsboard", reconnectPeriod: 0 });
    const device = runDevice(version === "v1" ? imageV1 : image, { port: mosquitto.plainPort });
    try {
      const replies = new Map<string, unknown>();
      let telemetry = 0;
      server.on("message", (topic, payload) => {
        if (topic === topics.telemetry) telemetry++;
        else if (topic.startsWith(topics.attrRequest)) {
          // The attribute request: answer with one shared value.
          server.publish(topics.attrResponse + topic.slice(topics.attrRequest.length), JSON.stringify({ shared: { samplingIntervalMs: 4000 } }), { qos: 1 });
        } else if (topic.startsWith(topics.rpcResponse)) replies.set(topic, JSON.parse(payload.toString()));
      });
      await server.subscribeAsync([topics.attrRequest + "+", topics.rpcResponse + "+", topics.telemetry], { qos: 1 });
      await device.waitFor(() => device.serial.some((l) => l.includes('[I][config] now {"samplingIntervalMs":4000')), 15000, "the attribute response applied");
      server.publish(topics.attributes, JSON.stringify({ batchSize: 7 }), { qos: 1 });
      await device.waitFor(() => device.serial.some((l) => l.includes('"batchSize":7')), 10000, "the pushed update applied");
      server.publish(topics.rpcRequest + "900", JSON.stringify({ method: "getConfig", params: {} }), { qos: 1 });
      await device.waitFor(() => replies.has(topics.rpcResponse + "900"), 10000, "the RPC reply");
      const config = replies.get(topics.rpcResponse + "900") as Record<string, JsonValue>;
      assert.equal(config.samplingIntervalMs, 4000);
      assert.equal(config.batchSize, 7);
      await device.waitFor(() => telemetry >= 1, 10000, "telemetry on " + topics.telemetry);
      const other = version === "v1" ? TOPIC_SETS.v2 : TOPIC_SETS.v1;
      assert.ok(!device.sent.some((p) => p.cmd === "publish" && Object.values(other).some((t) => p.topic.startsWith(t))), "no topic of the other set");
    } finally {
      device.stop();
      await server.endAsync();
      await mosquitto.stop();
    }
  });
}

test("v1 topics against the emulator: attributes, configuration, RPC and telemetry", async () => {
  const run = await start({}, {}, imageV1);
  const { emulator, device } = run;
  try {
    await device.waitFor(() => "current_fw_version" in emulator.device(DEVICE).client && "config_error" in emulator.device(DEVICE).client, 15000, "client attributes");
    const answer = emulator.waitForPublish(DEVICE, (topic, body) => topic === "v1/devices/me/attributes" && typeof body === "object" && body !== null && "config_error" in body, 5000);
    emulator.setShared(DEVICE, { batchSize: 0 });
    assert.deepEqual(await answer, { config_error: "batchSize: must be a whole number from 1 to 50, got 0; ignored" });
    assert.deepEqual(await emulator.rpc(DEVICE, "ping", {}), { pong: true });
    await device.waitFor(() => emulator.device(DEVICE).telemetry.length >= 2, 10000, "telemetry");
    assert.ok(device.sent.some((p) => p.cmd === "subscribe" && p.subscriptions.some((s) => s.topic === "v1/devices/me/rpc/request/+")));
    assert.ok(!device.sent.some((p) => p.cmd === "publish" && p.topic.startsWith("v2/")));
  } finally {
    await stop(run);
  }
});

test("provisioning: a board with only a key registers itself, keeps its token over a reboot, provisions again after tbForgetToken(), and never logs secrets", async () => {
  const emulator = new ThingsBoardEmulator({ provisionKeys: [{ key: PROVISION_KEY, secret: PROVISION_SECRET }], provisionCloseMs: 1000 });
  await emulator.listen();
  const device = runDevice(provisioningImage, { port: emulator.plainPort });
  running.push({ emulator, device });
  const name = "sim-5ccf7f00-sim0-0001";
  try {
    await device.waitFor(() => emulator.listDevices().some((d) => d.name === name && d.online) && "config_error" in emulator.device(name).client, 15000, "the provisioned device online");
    const token = emulator.device(name).token;
    assert.ok(device.serial.includes("[I][provision] provisioned as " + name));
    const connect = device.sent.filter((p) => p.cmd === "connect");
    assert.deepEqual(connect.map((p) => p.cmd === "connect" && p.username), ["provision", token]);

    device.sandbox.reboot();
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][mqtt] connected")).length === 3, 10000, "the reconnect after the reboot");
    assert.equal(device.serial.filter((l) => l.startsWith("[I][provision] asking")).length, 1, "the stored token is used: no second provisioning");

    // The console command: forget the token, and the next boot provisions again (a new name is refused: it exists).
    device.sandbox.typeLine("tbForgetToken()");
    assert.ok(device.serial.includes("[W][provision] stored token forgotten: the next boot provisions again"));
    device.sandbox.reboot();
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][provision] asking")).length === 2, 10000, "provisioning again");
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[E][provision] refused: FAILURE")), 10000, "the refusal of an existing name");
    const console = device.serial.join("\n");
    assert.ok(!console.includes(PROVISION_SECRET) && !console.includes(token), "neither the secret nor the token on the console");
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
    await emulator.close();
  }
});

test("provisioning refused (NOT_FOUND): one clear error line and a long wait, no retry loop", async () => {
  const emulator = new ThingsBoardEmulator({});
  await emulator.listen();
  const device = runDevice(provisioningImage, { port: emulator.plainPort });
  running.push({ emulator, device });
  try {
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[E][provision]")), 15000, "the refusal");
    await new Promise((r) => setTimeout(r, 3000));
    const refusals = device.serial.filter((l) => l.startsWith("[E][provision]"));
    assert.deepEqual(refusals, ["[E][provision] refused: NOT_FOUND (Provision data was not found!); check the provisioning key and secret; next try in 10 min"]);
    assert.equal(device.sent.filter((p) => p.cmd === "connect").length, 1, "no reconnect loop");
  } finally {
    device.stop();
    await emulator.close();
  }
});

test("claiming: the claim RPC and the tbClaim() console command reach ThingsBoard", async () => {
  const run = await start();
  const { emulator, device } = run;
  try {
    await connected(run);
    assert.deepEqual(await emulator.rpc(DEVICE, "claim", { secretKey: "abc", durationMs: 60000 }), { claiming: true });
    await device.waitFor(() => emulator.device(DEVICE).claim !== null, 5000, "the claim");
    assert.equal(emulator.device(DEVICE).claim!.secretKey, "abc");
    emulator.device(DEVICE).claim = null;
    device.sandbox.typeLine('tbClaim("xyz", 120000)');
    await device.waitFor(() => emulator.device(DEVICE).claim !== null, 5000, "the claim from the console");
    assert.equal(emulator.device(DEVICE).claim!.secretKey, "xyz");
    assert.ok(Math.abs(emulator.device(DEVICE).claim!.expiresAt - Date.now() - 120000) < 5000);
  } finally {
    await stop(run);
  }
});
