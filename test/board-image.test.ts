// The esp32-devkitc image (Wi-Fi, real SHT3x driver), not just the sim board's, runs in
// the simulator: it joins the sandbox's Wi-Fi, reads a simulated SHT3x on the virtual
// I2C bus and delivers over TLS to the local ThingsBoard emulator; without the chip it reports
// sensor_error and keeps going.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { caFileFor, loadCa } from "../tools/build/ca.ts";
import { validateBoard } from "../tools/build/boards.ts";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { createTlsFiles } from "../tools/sim/dev-ca.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { VirtualSensirion, virtualSensors } from "../tools/sim/virtual-sensors.ts";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";

const TOKEN = "board-image-token";
let broker: ThingsBoardEmulator;
let telemetry: string[] = [];
let devkitImage: string;
const MULTI_TOKEN = "multi-sensor-token";
let multiTelemetry: string[] = [];
const multiBoardDir = mkdtempSync(join(tmpdir(), "tbfw-board-"));

before(async () => {
  const tls = createTlsFiles(mkdtempSync(join(tmpdir(), "tbfw-board-ca-")));
  broker = new ThingsBoardEmulator({
    devices: [{ name: "devkit", token: TOKEN }, { name: "multi", token: MULTI_TOKEN }],
    tls,
    onTelemetry: (device, payload) => (device === "multi" ? multiTelemetry : telemetry).push(payload),
  });
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
  // The CA is not in the image but beside it, for Storage: the TLS link below verifies against it.
  assert.doesNotMatch(readFileSync(devkitImage, "utf8"), /MII[A-Za-z0-9+/=]{500,}/);
  assert.ok(readFileSync(caFileFor(devkitImage)).equals(loadCa(tls.caCert).der));
});

after(async () => {
  await broker?.close();
});

test("esp32-devkitc image: Wi-Fi, the real SHT3x driver on the virtual bus, TLS delivery", async () => {
  telemetry = [];
  const device = runDevice(devkitImage, null, { i2cDevices: { 0x44: new VirtualSensirion() } });
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

test("a board with six sensors (SHT4x, BMP280, two DS18B20s, NTC, the chip's own): one reading with prefixed keys; a lost probe and a switched-off sensor", async () => {
  // A board file outside boards/ (Espruino only: Moddable has no chip temperature), built like any other.
  const boardFile = join(multiBoardDir, "esp32-lab.json");
  const sensors = [
    { model: "sht4x", address: "0x44", sda: 21, scl: 22 },
    { model: "bmp280", prefix: "baro_", address: "0x76", sda: 21, scl: 22 },
    { model: "ds18b20", prefix: "probe_", pin: 4 },
    { model: "ntc", prefix: "ntc_", pin: 34, beta: 3950, ohms: 10000, seriesOhms: 10000 },
    { model: "internal", prefix: "chip_" },
  ];
  writeFileSync(boardFile, JSON.stringify({ description: "lab bench", runtimes: ["espruino"], wifi: true, requiresToken: true, sensors }));
  const board = validateBoard("esp32-lab", boardFile, JSON.parse(readFileSync(boardFile, "utf8")));
  const out = mkdtempSync(join(tmpdir(), "tbfw-multi-build-"));
  await buildTestImages({
    boards: [boardFile],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: broker.plainPort, tls: false, token: MULTI_TOKEN, wifiSsid: "lab", wifiPassword: "WIFI_SECRET_PW", telemetryIntervalMs: 1000 },
    version: "0.0.0-multi",
    quiet: true,
    debug: true,
  });
  const image = join(out, "espruino", "esp32-lab.js");
  assert.deepEqual(checkSource(readFileSync(image, "utf8"), image), []);
  const chips = virtualSensors(board.sensors);
  const probes = chips.oneWireBuses[4].devices;
  const serials = probes.map((probe) => probe.rom.substring(2, 14));
  multiTelemetry = [];
  const device = runDevice(image, null, chips);
  const readings = () => multiTelemetry.flatMap((p) => [JSON.parse(p)].flat()).map((r) => r.values as Record<string, number | string>);
  try {
    await device.waitFor(() => readings().length >= 2, 20000, "two readings");
    const first = readings()[0];
    assert.deepEqual(Object.keys(first).sort(), ["baro_pressure", "baro_temperature", "chip_temperature", "humidity", "ntc_temperature", ...serials.map((s) => "probe_temperature_" + s), "temperature"].sort(), JSON.stringify(first));
    assert.ok(Math.abs((first.temperature as number) - 22) < 2 && Math.abs((first.humidity as number) - 45) < 6, JSON.stringify(first));
    assert.ok(Math.abs((first.baro_temperature as number) - 25.08) < 0.5 && Math.abs((first.baro_pressure as number) - 1006.5) < 2, JSON.stringify(first));
    assert.ok(Math.abs((first["probe_temperature_" + serials[0]] as number) - 18) < 1 && Math.abs((first["probe_temperature_" + serials[1]] as number) - 60) < 1, JSON.stringify(first));
    assert.equal(first.ntc_temperature, 23);
    assert.ok(Math.abs((first.chip_temperature as number) - 45) < 2, JSON.stringify(first));

    // A probe comes loose: the rest still report, beside a sensor_error naming it.
    probes[1].absent = true;
    const seen = readings().length;
    await device.waitFor(() => readings().slice(seen).some((r) => "sensor_error" in r), 10000, "a reading with sensor_error");
    const partial = readings().slice(seen).find((r) => "sensor_error" in r)!;
    assert.equal(partial.sensor_error, "ds18b20: " + probes[1].rom + ": bad CRC on GPIO4");
    assert.ok("probe_temperature_" + serials[0] in partial && "baro_pressure" in partial && !("probe_temperature_" + serials[1] in partial), JSON.stringify(partial));
    assert.ok(device.serial.includes("[E][sensor] ds18b20: " + probes[1].rom + ": bad CRC on GPIO4"));

    // Switched off from ThingsBoard: no probe read, no error about it.
    broker.setShared("multi", { probe_ds18b20Enabled: false });
    await device.waitFor(() => readings().slice(-2).every((r) => !("sensor_error" in r) && !("probe_temperature_" + serials[0] in r)), 15000, "readings without the probes");
    assert.ok("temperature" in readings().at(-1)! && "ntc_temperature" in readings().at(-1)!);
    const conversions = probes[0].conversions;
    const count = readings().length;
    await device.waitFor(() => readings().length >= count + 2, 10000, "two more readings");
    assert.equal(probes[0].conversions, conversions, "a switched-off sensor is not read");
    assert.deepEqual(device.sandbox.uncaught, []);
  } finally {
    device.stop();
  }
});
