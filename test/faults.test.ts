// The faults real links and ThingsBoard produce, made by a proxy (test/helpers/fault-proxy.ts)
// between the built esp32-devkitc image in the simulator and a real mosquitto. Every reading
// the virtual SHT3x served (counted outside the firmware) must reach an independent
// subscriber: after de-duplication by ts as many distinct readings as the chip served, no
// gap of two sampling intervals in the ts sequence,
// reconnect attempts stay within what the backoff allows, and nothing is thrown.
//
// Scaled for CI: sampling every second, keep-alive 3 s, answers awaited 3 s, backoff
// 0.5 s to 3 s (the defaults are 60 s, 20 s and 2 s to 300 s; the README says what they mean).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { createTlsFiles } from "../tools/sim/dev-ca.ts";
import { VirtualSensirion } from "../tools/sim/virtual-sensors.ts";
import { FaultProxy } from "./helpers/fault-proxy.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import type { Mosquitto } from "./helpers/mosquitto.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";
import type { DeviceRun } from "./helpers/device-run.ts";

const TOKEN = "FAULT_SUITE_TOKEN";
const WIFI_PASSWORD = "FAULT_SUITE_WIFI_PW";
const SAMPLING_MS = 1000;
const TIMING = { keepAliveS: 3, responseTimeoutMs: 3000, backoffMinMs: 500, backoffMaxMs: 3000 };

let broker: Mosquitto;
let subscriber: mqtt.MqttClient;
let image: string;
/** The same board with room for 10 readings in RAM and 2 batches of 5 in flash: for overflow. */
let smallImage: string;
/** Distinct reading times seen by the subscriber, and every reading it got, duplicates included. */
const received = new Set<number>();
let readingsWithDuplicates = 0;

before(async () => {
  const tls = createTlsFiles(mkdtempSync(join(tmpdir(), "tbfw-faults-ca-")));
  broker = await startMosquitto({ tls });
  /** The esp32-devkitc image at the scaled timing, with `firmware` settings on top. */
  const build = async (firmware: object): Promise<string> => {
    const out = mkdtempSync(join(tmpdir(), "tbfw-faults-build-"));
    await buildTestImages({
      boards: ["esp32-devkitc"],
      outDir: out,
      settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: broker.plainPort, tls: false, token: TOKEN, ca: tls.caCert, wifiSsid: "lab", wifiPassword: WIFI_PASSWORD, telemetryIntervalMs: SAMPLING_MS },
      version: "0.0.0-faults",
      quiet: true,
      firmware: { ...TIMING, ...firmware },
    });
    return join(out, "espruino", "esp32-devkitc.js");
  };
  image = await build({});
  smallImage = await build({ queueCapacity: 10, batchSize: 5, spillBatches: 2 });
  subscriber = await mqtt.connectAsync({ host: "127.0.0.1", port: broker.plainPort, reconnectPeriod: 0 });
  subscriber.on("message", (topic, payload) => {
    if (topic !== "v2/t") {
      if (topic.startsWith("v2/r/res/")) rpcReplies.set(topic.slice(9), JSON.parse(payload.toString()));
      return;
    }
    const body = JSON.parse(payload.toString()) as { ts: number } | { ts: number }[];
    for (const reading of Array.isArray(body) ? body : [body]) received.add(reading.ts);
    readingsWithDuplicates += Array.isArray(body) ? body.length : 1;
  });
  await subscriber.subscribeAsync(["v2/t", "v2/r/res/+"], { qos: 1 });
});

const rpcReplies = new Map<string, unknown>();
let rpcId = 0;

/** A server-side RPC through mosquitto, as ThingsBoard would send it. */
async function rpc(method: string): Promise<{ [key: string]: unknown }> {
  const id = String(++rpcId);
  await subscriber.publishAsync("v2/r/req/" + id, JSON.stringify({ method, params: {} }), { qos: 1 });
  const end = Date.now() + 5000;
  while (!rpcReplies.has(id)) {
    if (Date.now() > end) throw new Error("no reply to " + method);
    await sleep(20);
  }
  return rpcReplies.get(id) as { [key: string]: unknown };
}

after(async () => {
  await subscriber?.endAsync();
  await broker?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connection attempts the device logged so far. */
const attempts = (device: DeviceRun) => device.serial.filter((l) => l.startsWith("[I][mqtt] connecting to")).length;

/**
 * The most attempts the backoff allows in `ms`: delays double from the minimum to the cap,
 * each at least half its ceiling (jitter), plus the attempt that starts the window.
 */
function attemptBound(ms: number): number {
  let count = 1;
  let ceiling = TIMING.backoffMinMs;
  for (let elapsed = 0; elapsed < ms; count++) {
    elapsed += ceiling / 2;
    ceiling = Math.min(ceiling * 2, TIMING.backoffMaxMs);
  }
  return count;
}

/** The device streaming through a new proxy: started, its first readings at the subscriber. */
async function streaming(imagePath: string, tls: boolean): Promise<{ proxy: FaultProxy; chip: VirtualSensirion; device: DeviceRun }> {
  received.clear();
  readingsWithDuplicates = 0;
  const proxy = new FaultProxy(tls ? broker.tlsPort! : broker.plainPort, !tls);
  await proxy.listen();
  const chip = new VirtualSensirion();
  const device = runDevice(imagePath, { port: proxy.port, tls }, { i2cDevices: { 0x44: chip } });
  try {
    await device.waitFor(() => received.size >= 3, 20000, "the first readings at the subscriber");
  } catch (e) {
    device.stop();
    await proxy.close();
    throw e;
  }
  return { proxy, chip, device };
}

/**
 * Runs the device through the proxy, applies `fault` once delivery is under way, then
 * checks that every reading the chip served arrived.
 */
async function scenario(tls: boolean, fault: (proxy: FaultProxy, device: DeviceRun) => Promise<number>): Promise<{ proxy: FaultProxy; device: DeviceRun }> {
  const { proxy, chip, device } = await streaming(image, tls);
  try {
    const attemptsBefore = attempts(device);
    const faultMs = await fault(proxy, device);
    const faultAttempts = attempts(device) - attemptsBefore;
    assert.ok(faultAttempts <= attemptBound(faultMs), faultAttempts + " connection attempts in " + faultMs + " ms: more than the backoff allows (" + attemptBound(faultMs) + ")");
    // Every reading taken, through the fault and the replay after it.
    // Online, a reading arrives within milliseconds of being taken: wait for a moment when
    // the subscriber has as many distinct readings as the chip served.
    let served = 0;
    let times: number[] = [];
    await device.waitFor(
      () => {
        served = chip.readings;
        times = [...received].sort((a, b) => a - b);
        return times.length >= served;
      },
      60000,
      "every reading taken at the subscriber"
    );
    assert.equal(times.length, served, "distinct readings received = readings the chip served");
    // A lost reading leaves a gap of two intervals; a late timer less than one more.
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i] - times[i - 1] < SAMPLING_MS * 1.9, "a reading is missing between ts " + times[i - 1] + " and " + times[i]);
    }
    assert.deepEqual(device.sandbox.uncaught, []);
    // device.stop() fails the test if the token or the Wi-Fi password reached the console.
    return { proxy, device };
  } finally {
    device.stop();
    await proxy.close();
  }
}

test("a: the broker down for 20 s mid-stream: refused connections, backoff, every reading delivered after", async () => {
  const { device } = await scenario(false, async (proxy, device) => {
    await proxy.refuse();
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[W][mqtt] disconnected:")), 10000, "the disconnect");
    await sleep(20000);
    await proxy.pass();
    return 20000;
  });
  assert.ok(device.serial.some((l) => l.includes("connection failed")), "the refused attempts are logged");
});

test("b: a black hole for 20 s (no FIN, no RST): the missing PUBACK is noticed within the response timeout", async () => {
  const { device } = await scenario(false, async (proxy, device) => {
    const start = Date.now();
    proxy.blackhole();
    await device.waitFor(() => device.serial.some((l) => l.startsWith("[W][mqtt] disconnected: link dead")), 15000, "the dead link noticed");
    // Next reading within a second, then the response timeout: never much later.
    assert.ok(Date.now() - start < SAMPLING_MS + TIMING.responseTimeoutMs + 2000, "dead link noticed after " + (Date.now() - start) + " ms");
    await sleep(20000 - (Date.now() - start));
    await proxy.pass();
    return 20000;
  });
  assert.ok(device.serial.some((l) => l.includes("no CONNACK")), "attempts into the black hole time out waiting for the CONNACK");
});

test("c: the connection closed on every 5th PUBLISH for 20 s, as ThingsBoard does past a rate limit", async () => {
  const { proxy } = await scenario(false, async (proxy) => {
    proxy.closeOnNthPublish(5);
    await sleep(20000);
    proxy.closeOnNthPublish(0);
    return 20000;
  });
  assert.ok(proxy.droppedPublishes >= 2, "the proxy dropped " + proxy.droppedPublishes + " PUBLISH packets");
});

test("d: PUBACKs withheld for 20 s: resent with DUP until confirmed, duplicates only", async () => {
  const { proxy, device } = await scenario(false, async (proxy) => {
    proxy.dropPubacks(true);
    await sleep(20000);
    proxy.dropPubacks(false);
    return 20000;
  });
  assert.ok(proxy.droppedPubacks >= 2, "the proxy dropped " + proxy.droppedPubacks + " PUBACKs");
  assert.ok(device.sent.some((p) => p.cmd === "publish" && p.dup), "unconfirmed messages went again with DUP");
  assert.ok(readingsWithDuplicates > received.size, "the resent readings reached the subscriber twice: " + readingsWithDuplicates + " for " + received.size + " distinct");
});

test("e: segments delayed 50 ms and split into 3-byte pieces both ways: framing holds, nothing lost", async () => {
  await scenario(false, async (proxy) => {
    proxy.shape(50, 3);
    await sleep(8000);
    proxy.shape(0, 0);
    return 8000;
  });
});

test("g: over TLS, the broker down for 15 s and then a black hole for 15 s", async () => {
  const { device } = await scenario(true, async (proxy, device) => {
    await proxy.refuse();
    await sleep(15000);
    await proxy.pass();
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][mqtt] connected to")).length >= 2, 15000, "the reconnect over TLS");
    proxy.blackhole();
    await sleep(15000);
    await proxy.pass();
    return 30000 + 5000;
  });
  assert.ok(device.serial.some((l) => l.includes("(tls)")), "the link was TLS");
});

test("f: RAM and flash full during a 30 s outage: the oldest readings dropped, and exactly those counted", async () => {
  const { proxy, chip, device } = await streaming(smallImage, false);
  try {
    await proxy.refuse();
    // 30 readings offline: each full batch of 5 goes to flash, which keeps 2; the rest must go.
    await sleep(30000);
    await proxy.pass();
    let served = 0;
    let dropped = 0;
    const end = Date.now() + 60000;
    for (;;) {
      served = chip.readings;
      dropped = (await rpc("getStatus")).dropped as number;
      // Every reading served is either at the subscriber or counted as dropped (the one in flight aside: ask again).
      if (received.size + dropped === served) break;
      if (Date.now() > end) assert.fail("served " + served + ", received " + received.size + ", dropped " + dropped + "; console:\n" + device.serial.join("\n"));
      await sleep(200);
    }
    assert.ok(dropped >= 10 && dropped <= 25, dropped + " dropped: about what did not fit");
    assert.ok(device.serial.some((l) => l.includes("dropped the oldest batch") || l.includes("dropped the oldest,")), "the drops are logged");
    assert.ok(device.serial.some((l) => l.includes("offline: moved 5 reading(s) to flash")), "full batches went to flash");
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
    await proxy.close();
  }
});

for (const tls of [false, true]) test("restart while offline (a power cut)" + (tls ? ", over TLS" : "") + ": flash batches come back after the reboot; at most one unfinished batch is lost", async () => {
  const { proxy, chip, device } = await streaming(image, tls);
  try {
    const beforeOutage = received.size;
    await proxy.refuse();
    // About 25 readings offline: two full batches of 10 in flash, the rest in RAM.
    await sleep(25000);
    device.sandbox.reboot();
    await device.waitFor(() => device.serial.filter((l) => l.startsWith("[I][boot]")).length === 2, 5000, "the reboot");
    assert.ok(device.serial.some((l) => /\[I\]\[queue\] [1-9]\d* batch\(es\) in flash from before the restart/.test(l)), "flash batches found at boot");
    await proxy.pass();
    // Caught up: the newest reading at the subscriber is the last one taken.
    let lost = -1;
    await device.waitFor(
      () => {
        const times = [...received].sort((a, b) => a - b);
        const caughtUp = times.length > 0 && Date.now() - times[times.length - 1] < SAMPLING_MS / 2;
        if (caughtUp) lost = chip.readings - received.size;
        return caughtUp && received.size >= beforeOutage + 20;
      },
      60000,
      "the readings from before the restart and the new ones at the subscriber"
    );
    // Lost: only what waited in RAM for its batch to fill, fewer than one batch (10).
    assert.ok(lost >= 0 && lost <= 9, lost + " readings lost over the restart");
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
    await proxy.close();
  }
});
