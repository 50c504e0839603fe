// The battery board's image (the sleep feature) in the simulator: every wake reads the
// chip, connects, sends what is queued and deep-sleeps. Ten cycles, three of them with
// the broker down: every reading the chip gave arrives once the broker is back, each with
// its own time, and a wake without a network ends after awakeMaxMs with its readings in flash.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import { VirtualSensirion } from "../tools/sim/virtual-sensors.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";
import { FaultProxy } from "./helpers/fault-proxy.ts";

const TOKEN = "battery-device-token";
/** The device's sampling interval: it sleeps this long less its awake time. */
const INTERVAL_MS = 20000;
/** A wake without a network ends after this long. */
const AWAKE_MAX_MS = 4000;
/** Sleeps pass this many times faster than real time (the device's clock still moves by all of it). */
const SPEEDUP = 40;

let broker: ThingsBoardEmulator;
let proxy: FaultProxy;
const stamps: number[] = [];
let image: string;

before(async () => {
  broker = new ThingsBoardEmulator({
    devices: [{ name: "battery", token: TOKEN }],
    onTelemetry: (_device, payload) => {
      for (const reading of [JSON.parse(payload)].flat()) stamps.push(reading.ts);
    },
  });
  await broker.listen();
  proxy = new FaultProxy(broker.plainPort, true);
  await proxy.listen();
  const out = mkdtempSync(join(tmpdir(), "tbfw-battery-"));
  await buildTestImages({
    boards: ["esp32-devkitc-battery"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: proxy.port, tls: false, token: TOKEN, wifiSsid: "lab", wifiPassword: "BATTERY_WIFI_PW", telemetryIntervalMs: INTERVAL_MS },
    version: "0.0.0-battery",
    quiet: true,
    firmware: { awakeMaxMs: AWAKE_MAX_MS, backoffMinMs: 500, backoffMaxMs: 1000 },
  });
  image = join(out, "espruino", "esp32-devkitc-battery.js");
  assert.deepEqual(checkSource(readFileSync(image, "utf8"), image), []);
});

after(async () => {
  await proxy?.close();
  await broker?.close();
});

test("ten deep-sleep cycles, three without a broker: no reading lost, each sent with its own time; awake time per cycle", async () => {
  const chip = new VirtualSensirion();
  const device = runDevice(image, null, { i2cDevices: { 0x44: chip }, sleepSpeedup: SPEEDUP });
  const sleeps = device.sandbox.sleeps;
  try {
    await device.waitFor(() => sleeps.length >= 3, 60000, "three cycles");
    await proxy.refuse();
    await device.waitFor(() => sleeps.length >= 6, 60000, "three more cycles, without a broker");
    await proxy.pass();
    await device.waitFor(() => sleeps.length >= 10, 60000, "ten cycles");
    device.stop();

    // One reading per wake, taken by the chip; every one arrived, once, in time order of taking.
    assert.equal(chip.readings, 10);
    const unique = [...new Set(stamps)];
    assert.equal(unique.length, 10, "distinct readings at ThingsBoard: " + JSON.stringify(stamps));
    assert.equal(stamps.length, 10, "no duplicates");
    // Each reading carries the time it was taken: a sampling interval apart (the RTC runs on in sleep).
    const sorted = [...unique].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) assert.ok(Math.abs(sorted[i] - sorted[i - 1] - INTERVAL_MS) < 2500, "ts " + sorted.join(", "));

    // Online wakes sleep as soon as all is delivered; offline wakes at awakeMaxMs, readings in flash.
    const awake = sleeps.map((s) => Math.round(s.awakeMs));
    for (const i of [0, 1, 2, 7, 8, 9]) assert.ok(awake[i] < AWAKE_MAX_MS, "cycle " + (i + 1) + " awake " + awake[i] + " ms: " + awake.join(", "));
    for (const i of [3, 4, 5]) assert.ok(awake[i] >= AWAKE_MAX_MS && awake[i] < AWAKE_MAX_MS + 1000, "offline cycle " + (i + 1) + " awake " + awake[i] + " ms");
    for (const cycle of sleeps) assert.ok(Math.abs(cycle.sleepMs + cycle.awakeMs - INTERVAL_MS) < 1000, JSON.stringify(cycle));
    const log = device.serial.join("\n");
    assert.match(log, /\[I\]\[sleep\] awake [\d.]+ s, all delivered; sleeping [\d.]+ s/);
    assert.match(log, /\[I\]\[sleep\] awake [\d.]+ s, 1 batch\(es\) kept in flash; sleeping/);
    assert.match(log, /\[sandbox\] deep sleep [\d.]+ s after [\d.]+ s awake \(cycle 10\)/);
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
  }
});
