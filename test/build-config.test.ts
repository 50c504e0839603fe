import { test } from "node:test";
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, esp32AdcPinProblem, esp32I2cPinProblem, featureFactories, loadBoards, validateBoard } from "../tools/build/boards.ts";
import { loadCa, pemToDer } from "../tools/build/ca.ts";
import { CA_FILE } from "../firmware/platform/types.ts";
import { DEFAULT_SETTINGS, deviceConfigFor, resolveSettings } from "../tools/build/config.ts";
import { ROOT, buildImages } from "../tools/build/build.ts";

const GOOD = {
  description: "test board",
  runtimes: ["espruino"],
  wifi: true,
  requiresToken: true,
  sensor: { model: "sht3x", address: 68, sda: 21, scl: 22 },
};

function boardError(change: (b: Record<string, any>) => void): string {
  const board = structuredClone(GOOD) as Record<string, any>;
  change(board);
  try {
    validateBoard("test-board", "boards/test-board.json", board);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return (e as Error).message;
  }
  return assert.fail("expected a ConfigError");
}

test("the committed boards validate", () => {
  const boards = loadBoards(join(ROOT, "boards"));
  assert.deepEqual(boards.map((b) => b.name), ["esp32-c3-devkitm", "esp32-devkitc", "esp32-devkitc-battery", "esp32-devkitc-multi", "esp32-devkitc-telemetry", "esp32-s3-devkitc", "sim"]);
  assert.deepEqual(boards.map((b) => b.chip), ["esp32c3", "esp32", "esp32", "esp32", "esp32", "esp32s3", "esp32"]);
  assert.deepEqual(boards[2].features, ["attributes", "clock", "limits", "sleep"]);
  assert.ok(!boards[1].features.includes("sleep"), "deep sleep only where a board asks for it");
  boards.shift();
  boards.splice(1, 1);
  assert.deepEqual(boards[0].sensors, [{ model: "sht3x", address: 0x44, sda: 21, scl: 22, bitrate: 100000 }]);
  assert.deepEqual(boards[1].sensors, [
    { model: "sht4x", address: 0x44, sda: 21, scl: 22, bitrate: 100000 },
    { model: "bmp280", prefix: "baro_", address: 0x76, sda: 21, scl: 22, bitrate: 100000 },
    { model: "ds18b20", prefix: "probe_", pin: 4 },
    { model: "ntc", prefix: "ntc_", pin: 34, beta: 3950, ohms: 10000, seriesOhms: 10000 },
  ]);
});

test("features: each service a feature needs runs once, before the first feature that needs it", () => {
  const names = (features: string[]) => featureFactories(features).map(([, factory]) => factory);
  assert.deepEqual(names(["attributes", "rpc", "clock", "limits", "provision", "ota"]), [
    "remoteConfigService", "attributesFeature", "rpcFeature", "clientRpcService", "clockFeature", "limitsFeature", "provisionCommands", "provisionFeature", "otaFeature",
  ]);
  assert.deepEqual(names(["limits", "rpc"]), ["clientRpcService", "limitsFeature", "remoteConfigService", "rpcFeature"]);
  assert.deepEqual(names(["sleep"]), ["sleepFeature"]);
  assert.deepEqual(names([]), []);
});

test("every board has a page (docs/boards/<name>.md) with its wiring: each sensor's pins, build and flash commands, and its console", () => {
  for (const board of loadBoards(join(ROOT, "boards"))) {
    const file = join(ROOT, "docs", "boards", board.name + ".md");
    assert.ok(existsSync(file), board.name + " has no page: add " + file);
    const page = readFileSync(file, "utf8");
    assert.ok(page.includes("boards/" + board.name + ".json"), board.name + ": the page links its board file");
    for (const sensor of board.sensors) {
      assert.ok(page.includes("`" + sensor.model + "`"), board.name + ": the page names " + sensor.model);
      for (const pin of [sensor.sda, sensor.scl, sensor.pin]) if (pin !== undefined) assert.ok(page.includes("GPIO" + pin), board.name + ": the page wires GPIO" + pin);
    }
    if (board.name !== "sim") assert.match(page, new RegExp("--board " + board.name + "\\b"), board.name + ": build or flash command");
    assert.match(page, /## Console, from boot to the first PUBACK\n[\s\S]*\[I\]\[boot\] tb-firmware/);
  }
});

test("board errors name the file and the key", () => {
  assert.equal(boardError((b) => (b.sensor.sda = 34)), 'boards/test-board.json: "sensor.sda": bad pin 34: GPIO34 is input-only and cannot drive I2C');
  assert.equal(boardError((b) => (b.sensor.scl = 7)), 'boards/test-board.json: "sensor.scl": bad pin 7: GPIO7 is wired to the SPI flash');
  assert.equal(boardError((b) => (b.sensor.scl = 21)), 'boards/test-board.json: "sensor.scl": SDA and SCL must be different pins');
  assert.equal(boardError((b) => (b.sensor.model = "dht22")), 'boards/test-board.json: "sensor.model": unknown sensor "dht22" (supported: sht3x, sht4x, bme280, bmp280, ds18b20, ntc, internal, simulated)');
  assert.equal(boardError((b) => delete b.wifi), 'boards/test-board.json: "wifi": missing');
  assert.equal(boardError((b) => delete b.sensor.sda), 'boards/test-board.json: "sensor.sda": missing');
  assert.equal(boardError((b) => (b.sensor.address = "0x76")), 'boards/test-board.json: "sensor.address": sht3x answers at 0x44 or 0x45, not 0x76');
  assert.equal(boardError((b) => (b.runtimes = ["nodemcu"])), 'boards/test-board.json: "runtimes": unknown runtime "nodemcu" (expected espruino or moddable)');
  assert.equal(boardError((b) => (b.pins = {})), 'boards/test-board.json: "pins": unknown key (expected one of description, chip, runtimes, wifi, requiresToken, sensors, sensor, features)');
  assert.equal(boardError((b) => (b.features = ["dashboard"])), 'boards/test-board.json: "features": unknown feature "dashboard" (known: attributes, rpc, clock, limits, provision, ota, sleep)');
  assert.equal(boardError((b) => ((b.features = ["sleep"]), (b.runtimes = ["espruino", "moddable"]))), 'boards/test-board.json: "features": "sleep" (deep sleep between readings) is for Espruino boards: list only "espruino" in "runtimes"');
  assert.equal(boardError((b) => (b.features = "rpc")), 'boards/test-board.json: "features": must be an array of feature names (attributes, rpc, clock, limits, provision, ota, sleep), [] for telemetry only');
  assert.equal(esp32I2cPinProblem(25), null);
  assert.equal(esp32AdcPinProblem(36), null);
  assert.match(esp32AdcPinProblem(4)!, /ADC2 cannot be read while Wi-Fi is on/);
  assert.match(esp32I2cPinProblem(1)!, /serial console/);
  assert.match(esp32I2cPinProblem(24)!, /does not exist/);
});

test("chips: pins checked per ESP32 family member; Espruino images only for the ESP32", () => {
  const file = 'boards/test-board.json: ';
  const c3 = (change: (b: Record<string, any>) => void) => boardError((b) => {
    b.chip = "esp32c3";
    b.runtimes = ["moddable"];
    b.sensor.sda = 4;
    b.sensor.scl = 5;
    change(b);
  });
  assert.equal(c3((b) => (b.sensor.sda = 13)), file + '"sensor.sda": bad pin 13: GPIO13 is wired to the SPI flash');
  assert.equal(c3((b) => (b.sensor.scl = 19)), file + '"sensor.scl": bad pin 19: GPIO19 is the USB port (D- / D+)');
  assert.equal(c3((b) => (b.sensor.scl = 22)), file + '"sensor.scl": bad pin 22: ESP32-C3 has GPIO 0-21');
  assert.equal(c3((b) => (b.runtimes = ["espruino", "moddable"])), file + '"runtimes": the Espruino images are made for the ESP32 only: list only "moddable" for an ESP32-C3');
  assert.equal(c3((b) => (b.chip = "esp32c6")), file + '"chip": unknown chip "esp32c6" (expected esp32, esp32c3, esp32s3)');
  const s3 = (change: (b: Record<string, any>) => void) => boardError((b) => {
    b.chip = "esp32s3";
    b.runtimes = ["moddable"];
    change(b);
  });
  assert.equal(s3((b) => (b.sensor.sda = 35)), file + '"sensor.sda": bad pin 35: GPIO35 is taken by octal flash or PSRAM on most ESP32-S3 modules');
  assert.equal(s3((b) => (b.sensor.sda = 24)), file + '"sensor.sda": bad pin 24: GPIO24 does not exist on the ESP32-S3');
  assert.equal(s3((b) => (b.sensor = { model: "ntc", pin: 34, beta: 3950, ohms: 10000, seriesOhms: 10000 })), file + '"sensor.pin": bad pin 34: GPIO34 is not on ADC1 (GPIO1-10), and ADC2 cannot be read while Wi-Fi is on');
  // The ESP32's input-only 34-39 are ordinary pins on the S3.
  const { sensor: _single, ...rest } = GOOD;
  const s3Board = validateBoard("s3", "boards/s3.json", { ...rest, chip: "esp32s3", runtimes: ["moddable"], sensors: [{ model: "ds18b20", pin: 38 }, { model: "ntc", prefix: "ntc_", pin: 7, beta: 3950, ohms: 10000, seriesOhms: 10000 }] });
  assert.equal(s3Board.chip, "esp32s3");
});

test("several sensors: each checked for its bus, and together for one I2C bus, distinct addresses, pins and keys", () => {
  const error = (sensors: unknown[], runtimes = ["espruino"]) => boardError((b) => {
    delete b.sensor;
    b.sensors = sensors;
    b.runtimes = runtimes;
  });
  const sht4x = { model: "sht4x", address: "0x44", sda: 21, scl: 22 };
  const bmp280 = { model: "bmp280", address: "0x76", sda: 21, scl: 22 };
  const file = 'boards/test-board.json: ';
  assert.equal(error([sht4x, bmp280]), file + '"sensors[1]": its key "temperature" is also sensors[0]\'s (sht4x): give one of them a "prefix" such as "outdoor_"');
  assert.equal(error([sht4x, { ...bmp280, prefix: "baro_", sda: 25 }]), file + '"sensors[1].sda": every I2C sensor shares one bus: use SDA 21 and SCL 22 as sensors[0] does');
  assert.equal(error([sht4x, { ...sht4x, prefix: "b_" }]), file + '"sensors[1].address": 0x44 is already sensors[0]\'s (sht4x) address');
  assert.equal(error([sht4x, { model: "ds18b20", pin: 21 }]), file + '"sensors[1]": GPIO21 is already used by sensors[0] (sht4x)');
  assert.equal(error([{ model: "ds18b20", pin: 35 }]), file + '"sensors[0].pin": bad pin 35: GPIO35 is input-only and cannot drive OneWire');
  assert.equal(error([{ model: "ds18b20", pin: 4, address: 12 }]), file + '"sensors[0].address": a ds18b20 has no address (its keys: model, prefix, pin)');
  assert.equal(error([{ model: "ntc", pin: 4, beta: 3950, ohms: 10000, seriesOhms: 10000 }]), file + '"sensors[0].pin": bad pin 4: GPIO4 is not on ADC1 (GPIO32-39), and ADC2 cannot be read while Wi-Fi is on');
  assert.equal(error([{ model: "ntc", pin: 34, beta: 3950, seriesOhms: 10000 }]), file + '"sensors[0].ohms": missing');
  assert.equal(error([{ model: "ntc", pin: 34, beta: 39500, ohms: 10000, seriesOhms: 10000 }]), file + '"sensors[0].beta": must be a number from 1000 to 10000');
  assert.equal(error([{ model: "sht3x", prefix: "2nd", address: 68, sda: 21, scl: 22 }]), file + '"sensors[0].prefix": must be letters, digits and _, starting with a letter, at most 16 characters (e.g. "outdoor_")');
  assert.equal(error([{ model: "internal" }], ["espruino", "moddable"]), file + '"sensors[0].model": Moddable has no API for the ESP32\'s temperature sensor: list only "espruino" in "runtimes", or drop this sensor');
  assert.equal(error([]), file + '"sensors": must be a list of 1 to 8 sensors');
  assert.equal(error([{ model: "simulated" }, { model: "internal", prefix: "chip_" }]), file + '"sensors": the simulated sensor stands alone');
  assert.equal(boardError((b) => (b.sensors = [])), file + '"sensors": missing: list the board\'s sensors, e.g. [{"model": "sht3x", "address": "0x44", "sda": 21, "scl": 22}] (not both "sensor" and "sensors")');
  // Together they pass: one bus, prefixes where kinds repeat.
  const { sensor: _single, ...rest } = GOOD;
  const board = validateBoard("test-board", "boards/test-board.json", { ...rest, sensors: [sht4x, { ...bmp280, prefix: "baro_" }, { model: "internal", prefix: "chip_" }] });
  assert.deepEqual(board.sensors.map((s) => s.model), ["sht4x", "bmp280", "internal"]);
});

test("settings: environment over device.local.json over defaults, with named errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "tbfw-config-"));
  const local = join(dir, "device.local.json");
  writeFileSync(local, JSON.stringify({ host: "tb.local", port: 1883, tls: false, token: "FROM_FILE" }));
  const settings = resolveSettings({ TB_TOKEN: "FROM_ENV", TELEMETRY_INTERVAL_MS: "15000" }, local);
  assert.deepEqual(settings, { ...DEFAULT_SETTINGS, host: "tb.local", port: 1883, tls: false, token: "FROM_ENV", telemetryIntervalMs: 15000 });
  assert.deepEqual(resolveSettings({}, join(dir, "absent.json")), DEFAULT_SETTINGS);
  assert.equal(DEFAULT_SETTINGS.host, "mqtt.thingsboard.cloud");
  assert.equal(DEFAULT_SETTINGS.port, 8883);
  assert.equal(DEFAULT_SETTINGS.tls, true);
  assert.equal(DEFAULT_SETTINGS.telemetryIntervalMs, 60000);
  assert.throws(() => resolveSettings({ TB_PORT: "http" }, null), { message: 'TB_PORT: must be a port number 1-65535, got "http"' });
  assert.throws(() => resolveSettings({ TB_TLS: "yes" }, null), { message: 'TB_TLS: must be 1 (TLS on) or 0 (plain MQTT), got "yes"' });
  assert.throws(() => resolveSettings({ TELEMETRY_INTERVAL_MS: "10" }, null), /TELEMETRY_INTERVAL_MS: must be whole milliseconds/);
  assert.equal(resolveSettings({ TELEMETRY_INTERVAL_MS: "10000", UPLOAD_INTERVAL_MS: "300000" }, null).uploadIntervalMs, 300000);
  assert.throws(() => resolveSettings({ TELEMETRY_INTERVAL_MS: "10000", UPLOAD_INTERVAL_MS: "5000" }, null), /UPLOAD_INTERVAL_MS \/ uploadIntervalMs \(5000\) is shorter than the sampling interval/);
  assert.throws(() => resolveSettings({ UPLOAD_INTERVAL_MS: "500" }, null), /UPLOAD_INTERVAL_MS: must be 0 \(send each reading\)/);
  // A malformed token is rejected without echoing it.
  assert.throws(() => resolveSettings({ TB_TOKEN: "abc def" }, null), { message: "TB_TOKEN: must not contain spaces, quotes or backslashes (check the copied access token)" });
  writeFileSync(local, JSON.stringify({ tokn: "x" }));
  assert.throws(() => resolveSettings({}, local), /device\.local\.json: unknown key "tokn"/);
  writeFileSync(local, "{");
  assert.throws(() => resolveSettings({}, local), /device\.local\.json: not valid JSON/);
});

test("a real board without a token fails with instructions; the sim board does not need one", () => {
  const boards = loadBoards(join(ROOT, "boards"));
  const devkit = boards.find((b) => b.name === "esp32-devkitc")!;
  const sim = boards.find((b) => b.name === "sim")!;
  assert.throws(() => deviceConfigFor(devkit, { ...DEFAULT_SETTINGS, wifiSsid: "x" }, "1"), /needs a device access token: set TB_TOKEN=<token>/);
  assert.throws(() => deviceConfigFor(devkit, { ...DEFAULT_SETTINGS, token: "t" }, "1"), /set WIFI_SSID/);
  const config = deviceConfigFor(sim, DEFAULT_SETTINGS, "1");
  assert.equal(config.token, "");
});

test("certs/ca-root.pem is ISRG Root X1, converted to DER; a malformed PEM is a build error", () => {
  const ca = loadCa(join(ROOT, "certs/ca-root.pem"));
  assert.match(ca.subject, /CN=ISRG Root X1/);
  assert.equal(ca.der[0], 0x30, "DER starts with a SEQUENCE");
  assert.throws(() => pemToDer("hello", "bad.pem"), /bad\.pem: no PEM certificate/);
  assert.throws(() => pemToDer("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "bad.pem"), /bad\.pem: the PEM body is not a valid X\.509 certificate/);
  const pem = readFileSync(join(ROOT, "certs/ca-root.pem"), "utf8");
  assert.throws(() => pemToDer(pem + pem, "two.pem"), /more than one certificate/);
});

test("build: one Espruino script and one Moddable app per board, size report, CA as DER", async () => {
  const out = mkdtempSync(join(tmpdir(), "tbfw-build-"));
  const reports = await buildImages({
    boards: [],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, token: "BUILD_TEST_TOKEN", wifiSsid: "lab", wifiPassword: "pw" },
    version: "0.0.0",
    quiet: true,
  });
  assert.deepEqual(reports.map((r) => r.runtime + "/" + r.board), [
    "moddable/esp32-c3-devkitm", "espruino/esp32-devkitc", "moddable/esp32-devkitc", "espruino/esp32-devkitc-battery", "espruino/esp32-devkitc-multi", "moddable/esp32-devkitc-multi",
    "espruino/esp32-devkitc-telemetry", "moddable/esp32-devkitc-telemetry", "moddable/esp32-s3-devkitc", "espruino/sim", "moddable/sim",
  ]);
  for (const r of reports) assert.ok(r.raw > r.minified && r.minified > r.gzip && r.gzip > 0, JSON.stringify(r));
  assert.deepEqual(JSON.parse(readFileSync(join(out, "size-report.json"), "utf8")), reports);
  const manifest = JSON.parse(readFileSync(join(out, "moddable/esp32-devkitc/manifest.json"), "utf8"));
  assert.ok(manifest.include.includes("$(MODDABLE)/modules/crypt/tls.json"));
  assert.ok(manifest.include.includes("$(MODDABLE)/examples/manifest_net.json"));
  assert.deepEqual(manifest.resources, { "*": ["./ca-root"] });
  assert.ok(manifest.config.tls.DHE_RSA);
  assert.deepEqual(manifest.platforms.esp32.include, ["$(MODDABLE)/modules/io/manifest.json", "$(MODDABLE)/modules/network/wifi/manifest.json", "$(MODDABLE)/modules/files/flash/manifest.json"]);
  assert.equal(manifest.platforms.lin.modules["embedded:io/i2c"], "./host-i2c");
  // Updates are mods: a host of mods (mcconfig then makes the ESP32's "xs" partition), the
  // flash partition on the chip, a file standing in for it in the simulator; restarts on both.
  assert.deepEqual(manifest.defines, { XS_MODS: 1 });
  assert.deepEqual(manifest.strip, []);
  assert.ok(manifest.include.includes("$(MODDABLE)/modules/base/modules/manifest.json"));
  assert.deepEqual(manifest.platforms.esp32.modules, { "tb-restart": "./device-restart" });
  assert.equal(manifest.platforms.lin.modules.flash, "./host-flash");
  assert.equal(manifest.platforms.lin.modules["tb-restart"], "./host-restart");
  assert.deepEqual(manifest.platforms.lin.include, ["$(MODDABLE)/modules/files/file/manifest.json"]);
  const telemetryManifest = JSON.parse(readFileSync(join(out, "moddable/esp32-devkitc-telemetry/manifest.json"), "utf8"));
  assert.equal(telemetryManifest.defines, undefined, "no mods without the ota feature");
  assert.equal(telemetryManifest.platforms.lin.modules.flash, undefined);
  const withUpdates = readFileSync(join(out, "moddable/esp32-devkitc/main.js"), "utf8");
  assert.match(withUpdates, /moddableBoot\(moddablePlatform, Modules\.has\(UPDATE_MODULE\), "[0-9a-f]{12}", 300000\)/, "the build id in place of its placeholder");
  assert.doesNotMatch(readFileSync(join(out, "moddable/esp32-devkitc-telemetry/main.js"), "utf8"), /moddableBoot|from ['"]flash['"]/);
  const caDer = loadCa(join(ROOT, "certs/ca-root.pem")).der;
  assert.ok(readFileSync(join(out, "moddable/esp32-devkitc/ca-root.der")).equals(caDer));
  // Espruino: the CA beside the image for Storage, and not in the image (neither as DER nor base64).
  assert.ok(readFileSync(join(out, "espruino/esp32-devkitc.ca.der")).equals(caDer));
  for (const board of ["esp32-devkitc", "esp32-devkitc-telemetry", "sim"]) {
    const image = readFileSync(join(out, "espruino", board + ".js"), "latin1");
    assert.ok(!image.includes(caDer.toString("base64").slice(0, 64)) && !image.includes(caDer.subarray(0, 64).toString("latin1")), board + ": the CA is not in the image");
    assert.ok(image.includes(JSON.stringify(CA_FILE)), board + ": the image reads " + CA_FILE);
  }
  for (const stub of ["host-wifi", "host-sntp", "host-i2c", "host-time", "host-restart", "host-flash", "device-restart"]) assert.ok(existsSync(join(out, "moddable/sim", stub + ".js")));
  const moddableMain = readFileSync(join(out, "moddable/sim/main.js"), "utf8");
  assert.match(moddableMain, /from ['"]securesocket['"]/);
  assert.doesNotMatch(moddableMain, /getSerial|I2C1/, "no Espruino API in the Moddable image");
  const espruino = readFileSync(join(out, "espruino/esp32-devkitc.js"), "utf8");
  assert.doesNotMatch(espruino, /securesocket|embedded:io/, "no Moddable module in the Espruino image");
  assert.equal(espruino.split("\n").filter(Boolean).length, 1, "one minified line");
  // Features are linked per board: the telemetry-only board carries no RPC code.
  assert.match(espruino, /"v2\/r\/req\/"/);
  assert.match(espruino, /"getStatus"/);
  const telemetryOnly = readFileSync(join(out, "espruino/esp32-devkitc-telemetry.js"), "utf8");
  assert.doesNotMatch(telemetryOnly, /r\/req|rpc\/request|"getStatus"|a\/req|attributes\/request/);
  assert.ok(telemetryOnly.length < espruino.length);
  // Sensors too: a board links its own drivers and the platform parts they need, no other.
  assert.doesNotMatch(espruino, /OneWire|analogRead|getTemperature|sht4x|bmp280|ds18b20/);
  const multi = readFileSync(join(out, "espruino/esp32-devkitc-multi.js"), "utf8");
  for (const part of [/new OneWire\(/, /analogRead\(/, /"sht4x"/, /"bmp280"/, /"ds18b20"/, /"ntc"/]) assert.match(multi, part);
  assert.doesNotMatch(multi, /getTemperature|"sht3x"/);
  const multiModdable = readFileSync(join(out, "moddable/esp32-devkitc-multi/main.js"), "utf8");
  assert.match(multiModdable, /from ['"]onewire['"]/);
  assert.match(multiModdable, /from ['"]embedded:io\/analog['"]/);
  assert.doesNotMatch(moddableMain, /onewire|embedded:io\/analog/);
  const multiManifest = JSON.parse(readFileSync(join(out, "moddable/esp32-devkitc-multi/manifest.json"), "utf8"));
  assert.ok(multiManifest.include.includes("$(MODDABLE)/modules/drivers/onewire/manifest.json"));
  assert.equal(multiManifest.platforms.lin.modules["embedded:io/analog"], "./host-analog");
  assert.ok(!manifest.include.includes("$(MODDABLE)/modules/drivers/onewire/manifest.json"));
  // Moddable's own ECMA-419 drivers where it has one (SHT3x, BMP280, NTC), with their manifests; this project's for the others.
  const devkitcModdable = readFileSync(join(out, "moddable/esp32-devkitc/main.js"), "utf8");
  assert.match(devkitcModdable, /from ['"]embedded:sensor\/Humidity-Temperature\/SHT3x['"]/);
  assert.doesNotMatch(devkitcModdable, /sensirionCrc/, "this project's SHT3x driver is not linked into the Moddable image");
  assert.ok(manifest.include.includes("$(MODDABLE)/modules/drivers/sensors/sht3x/manifest.json"));
  for (const driver of ["Barometer-Temperature/BMP280", "Temperature/NTC_Thermistor"]) assert.ok(multiModdable.includes("'embedded:sensor/" + driver + "'"), driver);
  assert.match(multiModdable, /sensirionCrc/, "SHT4x: no Moddable driver, this project's");
  assert.doesNotMatch(multiModdable, /embedded:sensor\/Humidity-Temperature/);
  for (const m of ["bmp280/manifest.json", "ntcThermistor/manifest.json"]) assert.ok(multiManifest.include.includes("$(MODDABLE)/modules/drivers/sensors/" + m), m);
  assert.ok(!multiManifest.include.includes("$(MODDABLE)/modules/drivers/sensors/sht3x/manifest.json"));
  assert.doesNotMatch(moddableMain, /embedded:sensor/);
  assert.doesNotMatch(multi, /embedded:sensor/);
  // The images and the manifests hold the token and the Wi-Fi password: owner only.
  for (const file of ["espruino/esp32-devkitc.js", "espruino/sim.js", "moddable/esp32-devkitc/main.js", "moddable/esp32-devkitc/manifest.json"]) {
    assert.equal(statSync(join(out, file)).mode & 0o777, 0o600, file);
  }
});

test("a type error fails the build instead of shipping", async () => {
  const { bundleForTest } = await import("./helpers/type-error-build.ts");
  await assert.rejects(bundleForTest(), /does not type-check:\n.*broken\.ts.*TS2322/s);
});

test("without a token the sim board still builds, the real board is reported and leaves no image", async () => {
  const out = mkdtempSync(join(tmpdir(), "tbfw-build-notoken-"));
  await assert.rejects(
    buildImages({ boards: [], outDir: out, settings: { ...DEFAULT_SETTINGS, wifiSsid: "lab" }, version: "0.0.0", quiet: true }),
    { message: /^boards\/esp32-devkitc\.json: this board needs a device access token/m }
  );
  assert.ok(existsSync(join(out, "espruino/sim.js")));
  assert.ok(!existsSync(join(out, "espruino/esp32-devkitc.js")));
  assert.ok(!existsSync(join(out, "moddable/esp32-devkitc")));
});

test("npm run build prints sizes and the CA, never the token, the Wi-Fi password or the provisioning secret", () => {
  const out = mkdtempSync(join(tmpdir(), "tbfw-build-print-"));
  const secrets = { TB_TOKEN: "PRINT_CHECK_TOKEN_7f3a", WIFI_PASSWORD: "PRINT_CHECK_WIFI_PW_7f3a", TB_PROVISION_KEY: "print-key", TB_PROVISION_SECRET: "PRINT_CHECK_SECRET_7f3a" };
  const tsx = join(ROOT, "node_modules/.bin/tsx");
  // The boards with the provision feature (the telemetry-only one refuses a provisioning key).
  const run = (env: Record<string, string>) =>
    spawnSync(tsx, ["tools/build/build.ts", "--board", "esp32-devkitc", "--board", "sim", "--out", out, "--config", "none"], { cwd: ROOT, env: { ...process.env, WIFI_SSID: "lab", ...env }, encoding: "utf8", timeout: 120000 });
  // A build that succeeds, and one that fails on a bad port: both outputs are checked.
  const ok = run({ TB_TOKEN: secrets.TB_TOKEN, WIFI_PASSWORD: secrets.WIFI_PASSWORD, TB_PROVISION_KEY: secrets.TB_PROVISION_KEY, TB_PROVISION_SECRET: secrets.TB_PROVISION_SECRET });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /espruino\/esp32-devkitc +\d+/);
  const failed = run({ TB_PORT: "99999", TB_TOKEN: secrets.TB_TOKEN, WIFI_PASSWORD: secrets.WIFI_PASSWORD, TB_PROVISION_SECRET: secrets.TB_PROVISION_SECRET });
  assert.notEqual(failed.status, 0);
  for (const output of [ok.stdout + ok.stderr, failed.stdout + failed.stderr]) {
    for (const [name, value] of Object.entries(secrets).filter(([n]) => n !== "TB_PROVISION_KEY")) assert.ok(!output.includes(value), name + " printed by the build:\n" + output);
  }
});

test("a wrong option on a tool's command line gets one line naming it and the options there are, not a stack trace", () => {
  const tsx = join(ROOT, "node_modules/.bin/tsx");
  const unknown = spawnSync(tsx, ["tools/build/build.ts", "--boards", "sim"], { cwd: ROOT, encoding: "utf8", timeout: 60000 });
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /^npm run build: Unknown option '--boards'/);
  assert.match(unknown.stderr, /npm run build takes --board, --out, --config, --readable/);
  assert.doesNotMatch(unknown.stderr, /\n\s+at /);
  const missing = spawnSync(tsx, ["tools/bench/index.ts", "--runs"], { cwd: ROOT, encoding: "utf8", timeout: 60000 });
  assert.equal(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, /^npm run bench: Option '--runs <value>' argument missing/);
});
