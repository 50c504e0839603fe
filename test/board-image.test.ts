// The esp32-devkitc image (Wi-Fi, real SHT3x driver), not just the sim board's, runs in
// the simulator: it joins the sandbox's Wi-Fi, reads a simulated SHT3x on the virtual
// I2C bus and delivers over TLS to the local ThingsBoard emulator; without the chip it reports
// sensor_error and keeps going.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, bundleSource } from "../tools/build/build.ts";
import { validateBoard } from "../tools/build/boards.ts";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { createTlsFiles } from "../tools/sim/dev-ca.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { VirtualBme280, VirtualSht3x } from "../tools/sim/virtual-i2c.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";

const TOKEN = "board-image-token";
let broker: ThingsBoardEmulator;
let telemetry: string[] = [];
let devkitImage: string;
const bmeBoardDir = mkdtempSync(join(tmpdir(), "tbfw-board-"));

before(async () => {
  const tls = createTlsFiles(mkdtempSync(join(tmpdir(), "tbfw-board-ca-")));
  broker = new ThingsBoardEmulator({ devices: [{ name: "devkit", token: TOKEN }], tls, onTelemetry: (_device, payload) => telemetry.push(payload) });
  await broker.listen();
  const out = mkdtempSync(join(tmpdir(), "tbfw-board-build-"));
  await buildTestImages({
    boards: ["esp32-devkitc"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: broker.tlsPort!, tls: true, token: TOKEN, ca: tls.caCert, wifiSsid: "lab", wifiPassword: "WIFI_SECRET_PW", telemetryIntervalMs: 1000 },
    version: "0.0.0-board",
    quiet: true,
    debug: true,
  });
  devkitImage = join(out, "espruino", "esp32-devkitc.js");
  assert.deepEqual(checkSource(readFileSync(devkitImage, "utf8"), devkitImage), []);
  // The CA is returned by a function, so on a board it stays in flash until a connection needs it.
  assert.match(readFileSync(devkitImage, "utf8"), /\(\)=>"MII[A-Za-z0-9+/=]{500,}"/);
});

after(async () => {
  await broker?.close();
});

test("esp32-devkitc image: Wi-Fi, the real SHT3x driver on the virtual bus, TLS delivery", async () => {
  telemetry = [];
  const device = runDevice(devkitImage, null, { i2cDevices: { 0x44: new VirtualSht3x() } });
  try {
    await device.waitFor(() => telemetry.length >= 2, 20000, "two telemetry messages");
    assert.ok(device.serial.includes('[I][wifi] joining "lab"'));
    assert.ok(device.serial.includes("[I][wifi] connected (ip 127.0.0.1)"));
    for (const payload of telemetry) {
      const reading = JSON.parse(payload);
      const values = (Array.isArray(reading) ? reading[0] : reading).values;
      assert.ok(values.temperature > 19 && values.temperature < 25, payload);
      assert.ok(values.humidity > 38 && values.humidity < 52, payload);
    }
    assert.ok(!device.serial.join("\n").includes("WIFI_SECRET_PW"));
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
  }
});

test("esp32-devkitc image without its sensor: sensor_error in telemetry, the device keeps running", async () => {
  telemetry = [];
  const device = runDevice(devkitImage, null, { i2cDevices: {} });
  try {
    await device.waitFor(() => telemetry.length >= 3, 20000, "three telemetry messages");
    const errors = telemetry.map((p) => JSON.parse(p)).flatMap((r) => (Array.isArray(r) ? r : [r])).map((r) => r.values.sensor_error);
    for (const error of errors) assert.match(error, /^sht3x: no ACK at 0x44 \(I2C Error: no ACK from 0x44\)$/);
    assert.ok(device.serial.some((l) => l.startsWith("[E][sensor] sht3x: no ACK at 0x44")));
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
  }
});

test("a BME280 board validates, and the bundled BME280 driver reads the simulated chip in the sandbox", async () => {
  const board = validateBoard("bme-board", "boards/bme-board.json", {
    description: "BME280 test board",
    runtimes: ["espruino"],
    wifi: false,
    requiresToken: false,
    sensor: { model: "bme280", address: "0x76", sda: 21, scl: 22 },
  });
  assert.equal(board.sensor.address, 0x76);
  // The driver alone, on the virtual chip, through the bundle and the sandbox.
  const entry = `import { bme280Sensor } from ${JSON.stringify(join(ROOT, "firmware/sensors/bme280.ts"))};
    const bus = { write: (a, b) => I2C1.writeTo(a, b), read: (a, n) => I2C1.readFrom(a, n) };
    bme280Sensor({ bus, setTimeout: (f, ms) => setTimeout(f, ms) }, 0x76).sample((e, v) => console.log(JSON.stringify({ e, v })));`;
  const { image: code } = await bundleSource("espruino", entry);
  const image = join(bmeBoardDir, "bme.js");
  writeFileSync(image, code);
  const device = runDevice(image, null, { i2cDevices: { 0x76: new VirtualBme280() } });
  try {
    await device.waitFor(() => device.serial.some((l) => l.startsWith("{")), 5000, "a sample");
    const { e, v } = JSON.parse(device.serial.find((l) => l.startsWith("{"))!);
    assert.equal(e, null);
    assert.ok(Math.abs(v.temperature - 25.08) < 0.5, JSON.stringify(v));
    assert.ok(Math.abs(v.pressure - 1006.5) < 2, JSON.stringify(v));
  } finally {
    device.stop();
  }
});
