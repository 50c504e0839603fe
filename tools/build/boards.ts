// Board files (boards/<name>.json) are validated before anything is built: a bad pin,
// an unknown sensor or a missing field is an error naming the file and the key.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import type { SensorConfig } from "../../firmware/config.ts";

export type Runtime = "espruino" | "moddable";
export const RUNTIMES: Runtime[] = ["espruino", "moddable"];

/** A sensor as the firmware gets it (firmware/config.ts): only its bus's fields. */
export type BoardSensor = SensorConfig;
export type SensorModel = SensorConfig["model"];

/** Board features: each links one module of the firmware. */
export const FEATURES: Record<string, [file: string, factory: string]> = {
  attributes: ["thingsboard/attributes.ts", "attributesFeature"],
  rpc: ["thingsboard/rpc.ts", "rpcFeature"],
  clock: ["thingsboard/clock.ts", "clockFeature"],
  limits: ["thingsboard/limits.ts", "limitsFeature"],
  provision: ["thingsboard/provision.ts", "provisionFeature"],
  ota: ["thingsboard/ota.ts", "otaFeature"],
  sleep: ["app/sleep.ts", "sleepFeature"],
};

const REMOTE_CONFIG: [string, string] = ["app/remote-config.ts", "remoteConfigService"];
const CLIENT_RPC: [string, string] = ["thingsboard/client-rpc.ts", "clientRpcService"];

/**
 * What runs before a feature, once per board, in the features list (DeviceContext.remoteConfig):
 * the objects features share, and provision's console commands. Let go with the list once the
 * device has started, where a module function making them on first use would be a global
 * of the Espruino image, its code kept for the whole run.
 */
export const FEATURE_SERVICES: Record<string, [file: string, factory: string][]> = {
  attributes: [REMOTE_CONFIG],
  rpc: [REMOTE_CONFIG],
  clock: [CLIENT_RPC],
  limits: [CLIENT_RPC],
  provision: [["thingsboard/provision.ts", "provisionCommands"]],
};

/** The board's features with the services each needs in front of it, each once, in order. */
export function featureFactories(featureNames: string[]): [file: string, factory: string][] {
  const factories: [string, string][] = [];
  for (const name of featureNames) {
    for (const service of FEATURE_SERVICES[name] ?? []) if (!factories.some((f) => f[1] === service[1])) factories.push(service);
    factories.push(FEATURES[name]);
  }
  return factories;
}

/** What a board gets when its file lists no "features": all but deep sleep, which only battery boards want. */
export const DEFAULT_FEATURES = Object.keys(FEATURES).filter((name) => name !== "sleep");

export interface Board {
  name: string;
  file: string;
  /** The ESP32 family member, for pin checks and Moddable's platform (default esp32). */
  chip: Chip;
  description: string;
  runtimes: Runtime[];
  wifi: boolean;
  requiresToken: boolean;
  /** Sampled one after another into one reading; keys unique across them. */
  sensors: BoardSensor[];
  /** Names from FEATURES; every feature when the board file does not say. */
  features: string[];
}

export class ConfigError extends Error {}

/** Each model's bus: I2C addresses it answers at, or its pin kind. */
export const SENSOR_MODELS: Record<SensorModel, { i2c?: number[]; pin?: "onewire" | "adc"; keys: string[] }> = {
  sht3x: { i2c: [0x44, 0x45], keys: ["temperature", "humidity"] },
  sht4x: { i2c: [0x44, 0x45, 0x46], keys: ["temperature", "humidity"] },
  bme280: { i2c: [0x76, 0x77], keys: ["temperature", "humidity", "pressure"] },
  bmp280: { i2c: [0x76, 0x77], keys: ["temperature", "pressure"] },
  ds18b20: { pin: "onewire", keys: ["temperature"] },
  ntc: { pin: "adc", keys: ["temperature"] },
  internal: { keys: ["temperature"] },
  simulated: { keys: ["temperature", "humidity"] },
};

/** The chips boards are checked for; Espruino images are built for the ESP32 only. */
export type Chip = "esp32" | "esp32c3" | "esp32s3";
export const CHIPS: Chip[] = ["esp32", "esp32c3", "esp32s3"];

const CHIP_NAMES: Record<Chip, string> = { esp32: "ESP32", esp32c3: "ESP32-C3", esp32s3: "ESP32-S3" };

/** mcconfig's platform for a chip (Moddable's generic devkit targets). */
export const MODDABLE_PLATFORMS: Record<Chip, string> = { esp32: "esp32", esp32c3: "esp32/esp32c3", esp32s3: "esp32/esp32s3" };

/**
 * Why a GPIO of `chip` cannot drive `bus` (I2C, OneWire: an open-drain output), or null.
 * From Espressif's datasheets: pins that do not exist, the SPI flash (and octal PSRAM on
 * S3 modules), input-only pins (ESP32 34-39), the USB (C3 18-19, S3 19-20) and UART0 console pins.
 */
export function gpioOutputProblem(chip: Chip, pin: number, bus: string): string | null {
  const name = CHIP_NAMES[chip];
  const [max, gaps, ranges] = chip === "esp32" ? [39, [20, 24, 28, 29, 30, 31], "0-39"] : chip === "esp32c3" ? [21, [], "0-21"] : [48, [22, 23, 24, 25], "0-21 and 26-48"];
  if (!Number.isInteger(pin) || pin < 0 || pin > max) return name + " has GPIO " + ranges;
  if (gaps.includes(pin)) return "GPIO" + pin + " does not exist on the " + name;
  if (chip === "esp32") {
    if (pin >= 6 && pin <= 11) return "GPIO" + pin + " is wired to the SPI flash";
    if (pin >= 34) return "GPIO" + pin + " is input-only and cannot drive " + bus;
    if (pin === 1 || pin === 3) return "GPIO" + pin + " is the serial console (UART0)";
  } else if (chip === "esp32c3") {
    if (pin >= 12 && pin <= 17) return "GPIO" + pin + " is wired to the SPI flash";
    if (pin === 18 || pin === 19) return "GPIO" + pin + " is the USB port (D- / D+)";
    if (pin === 20 || pin === 21) return "GPIO" + pin + " is the serial console (UART0)";
  } else {
    if (pin >= 26 && pin <= 32) return "GPIO" + pin + " is wired to the SPI flash and PSRAM";
    if (pin >= 33 && pin <= 37) return "GPIO" + pin + " is taken by octal flash or PSRAM on most ESP32-S3 modules";
    if (pin === 19 || pin === 20) return "GPIO" + pin + " is the USB port (D- / D+)";
    if (pin === 43 || pin === 44) return "GPIO" + pin + " is the serial console (UART0)";
  }
  return null;
}

/** Why an ESP32 GPIO cannot carry I2C, or null when it can. */
export function esp32I2cPinProblem(pin: number): string | null {
  return gpioOutputProblem("esp32", pin, "I2C");
}

/** Why a GPIO cannot be read by the ADC while Wi-Fi runs, or null: only ADC1 can (ESP32 GPIO32-39, C3 GPIO0-4, S3 GPIO1-10). */
export function adcPinProblem(chip: Chip, pin: number): string | null {
  const [first, last] = chip === "esp32" ? [32, 39] : chip === "esp32c3" ? [0, 4] : [1, 10];
  if (Number.isInteger(pin) && pin >= first && pin <= last) return null;
  return "GPIO" + pin + " is not on ADC1 (GPIO" + first + "-" + last + "), and ADC2 cannot be read while Wi-Fi is on";
}

export function esp32AdcPinProblem(pin: number): string | null {
  return adcPinProblem("esp32", pin);
}

function fail(file: string, key: string, problem: string): never {
  throw new ConfigError(file + ": \"" + key + "\": " + problem);
}

function field(obj: Record<string, unknown>, key: string, file: string, path: string): unknown {
  if (!(key in obj)) fail(file, path, "missing");
  return obj[key];
}

function parseAddress(value: unknown, file: string, path: string): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^0x[0-9a-f]{1,2}$/i.test(value)) return parseInt(value, 16);
  return fail(file, path, "must be a 7-bit I2C address such as 68 or \"0x44\", not " + JSON.stringify(value));
}

const hex = (address: number) => "0x" + address.toString(16);

function numberField(obj: Record<string, unknown>, key: string, file: string, path: string, min: number, max: number, fallback?: number): number {
  const value = obj[key] === undefined && fallback !== undefined ? fallback : field(obj, key, file, path + "." + key);
  if (typeof value !== "number" || !(value >= min && value <= max)) fail(file, path + "." + key, "must be a number from " + min + " to " + max);
  return value;
}

const SENSOR_KEYS = ["model", "prefix", "address", "sda", "scl", "bitrate", "pin", "beta", "ohms", "seriesOhms", "toGround"];

/** One entry of "sensors" (or the single "sensor"), checked for its model's bus; `path` names it in errors. */
function parseSensor(raw: unknown, file: string, path: string, runtimes: Runtime[], chip: Chip): BoardSensor {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(file, path, "must be an object");
  const obj = raw as Record<string, unknown>;
  const model = field(obj, "model", file, path + ".model");
  if (typeof model !== "string" || !(model in SENSOR_MODELS)) {
    fail(file, path + ".model", "unknown sensor " + JSON.stringify(model) + " (supported: " + Object.keys(SENSOR_MODELS).join(", ") + ")");
  }
  const kind = SENSOR_MODELS[model as SensorModel];
  const allowed = ["model", "prefix", ...(kind.i2c ? ["address", "sda", "scl", "bitrate"] : []), ...(kind.pin ? ["pin"] : []), ...(model === "ntc" ? ["beta", "ohms", "seriesOhms", "toGround"] : [])];
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(file, path + "." + key, SENSOR_KEYS.includes(key) ? "a " + model + " has no " + key + " (its keys: " + allowed.join(", ") + ")" : "unknown key (expected one of " + allowed.join(", ") + ")");
  }
  const sensor: BoardSensor = { model: model as SensorModel };
  if (obj.prefix !== undefined) {
    if (typeof obj.prefix !== "string" || !/^[a-z][a-z0-9_]{0,15}$/i.test(obj.prefix)) fail(file, path + ".prefix", "must be letters, digits and _, starting with a letter, at most 16 characters (e.g. \"outdoor_\")");
    sensor.prefix = obj.prefix;
  }
  if (kind.i2c) {
    sensor.address = parseAddress(field(obj, "address", file, path + ".address"), file, path + ".address");
    if (!kind.i2c.includes(sensor.address)) fail(file, path + ".address", model + " answers at " + kind.i2c.map(hex).join(" or ") + ", not " + hex(sensor.address));
    for (const pinKey of ["sda", "scl"] as const) {
      const pin = field(obj, pinKey, file, path + "." + pinKey);
      if (typeof pin !== "number") fail(file, path + "." + pinKey, "must be a GPIO number");
      const problem = gpioOutputProblem(chip, pin, "I2C");
      if (problem !== null) fail(file, path + "." + pinKey, "bad pin " + pin + ": " + problem);
      sensor[pinKey] = pin;
    }
    if (sensor.sda === sensor.scl) fail(file, path + ".scl", "SDA and SCL must be different pins");
    sensor.bitrate = numberField(obj, "bitrate", file, path, 10000, 1000000, 100000);
  }
  if (kind.pin) {
    const pin = field(obj, "pin", file, path + ".pin");
    if (typeof pin !== "number") fail(file, path + ".pin", "must be a GPIO number");
    const problem = kind.pin === "adc" ? adcPinProblem(chip, pin) : gpioOutputProblem(chip, pin, "OneWire");
    if (problem !== null) fail(file, path + ".pin", "bad pin " + pin + ": " + problem);
    sensor.pin = pin;
  }
  if (model === "ntc") {
    // The thermistor's datasheet gives beta (B25/85) and R25; the divider's resistor is on the board.
    sensor.beta = numberField(obj, "beta", file, path, 1000, 10000);
    sensor.ohms = numberField(obj, "ohms", file, path, 100, 1000000);
    sensor.seriesOhms = numberField(obj, "seriesOhms", file, path, 100, 1000000);
    if (obj.toGround !== undefined && typeof obj.toGround !== "boolean") fail(file, path + ".toGround", "must be true (thermistor from the pin to GND) or false (from 3V3 to the pin)");
    if (obj.toGround === false) sensor.toGround = false;
  }
  if (model === "internal" && runtimes.includes("moddable")) {
    fail(file, path + ".model", "Moddable has no API for the ESP32's temperature sensor: list only \"espruino\" in \"runtimes\", or drop this sensor");
  }
  return sensor;
}

/** Checks what sensors share: one I2C bus (pins), distinct addresses and pins, distinct keys. */
function checkSensorsTogether(sensors: BoardSensor[], file: string, paths: string[]): void {
  const keyOwner: Record<string, number> = {};
  const pinOwner: Record<number, number> = {};
  let bus = -1;
  sensors.forEach((sensor, i) => {
    if (sensor.address !== undefined) {
      if (bus < 0) bus = i;
      else {
        const first = sensors[bus];
        if (sensor.sda !== first.sda || sensor.scl !== first.scl) fail(file, paths[i] + ".sda", "every I2C sensor shares one bus: use SDA " + first.sda + " and SCL " + first.scl + " as " + paths[bus] + " does");
        for (let j = bus; j < i; j++) {
          if (sensors[j].address === sensor.address) fail(file, paths[i] + ".address", hex(sensor.address) + " is already " + paths[j] + "'s (" + sensors[j].model + ") address");
        }
      }
    }
    const pins = sensor.pin !== undefined ? [sensor.pin] : [];
    if (i === bus) pins.push(sensor.sda!, sensor.scl!);
    for (const pin of pins) {
      if (pin in pinOwner) fail(file, paths[i], "GPIO" + pin + " is already used by " + paths[pinOwner[pin]] + " (" + sensors[pinOwner[pin]].model + ")");
      pinOwner[pin] = i;
    }
    for (const key of SENSOR_MODELS[sensor.model].keys) {
      const name = (sensor.prefix || "") + key;
      if (name in keyOwner) {
        fail(file, paths[i], "its key \"" + name + "\" is also " + paths[keyOwner[name]] + "'s (" + sensors[keyOwner[name]].model + "): give one of them a \"prefix\" such as \"outdoor_\"");
      }
      keyOwner[name] = i;
    }
  });
}

export function validateBoard(name: string, file: string, raw: unknown): Board {
  if (!/^[a-z0-9][a-z0-9-]{0,27}$/.test(name)) fail(file, "(file name)", "board names are lower-case letters, digits and dashes, at most 28 characters");
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(file, "(top level)", "must be a JSON object");
  const obj = raw as Record<string, unknown>;
  const known = ["description", "chip", "runtimes", "wifi", "requiresToken", "sensors", "sensor", "features"];
  for (const key of Object.keys(obj)) if (!known.includes(key)) fail(file, key, "unknown key (expected one of " + known.join(", ") + ")");
  const description = field(obj, "description", file, "description");
  if (typeof description !== "string") fail(file, "description", "must be a string");
  const runtimes = field(obj, "runtimes", file, "runtimes");
  if (!Array.isArray(runtimes) || runtimes.length === 0) fail(file, "runtimes", "must be a non-empty array of " + RUNTIMES.join(" / "));
  for (const runtime of runtimes) {
    if (!RUNTIMES.includes(runtime as Runtime)) fail(file, "runtimes", "unknown runtime " + JSON.stringify(runtime) + " (expected " + RUNTIMES.join(" or ") + ")");
  }
  const chip = obj.chip === undefined ? "esp32" : obj.chip;
  if (!CHIPS.includes(chip as Chip)) fail(file, "chip", "unknown chip " + JSON.stringify(chip) + " (expected " + CHIPS.join(", ") + ")");
  if (chip !== "esp32" && runtimes.includes("espruino")) fail(file, "runtimes", "the Espruino images are made for the ESP32 only: list only \"moddable\" for an " + CHIP_NAMES[chip as Chip]);
  const wifi = field(obj, "wifi", file, "wifi");
  if (typeof wifi !== "boolean") fail(file, "wifi", "must be true or false");
  const requiresToken = field(obj, "requiresToken", file, "requiresToken");
  if (typeof requiresToken !== "boolean") fail(file, "requiresToken", "must be true or false");
  // "sensors": a list; "sensor": one, the older form.
  if (("sensor" in obj) === ("sensors" in obj)) fail(file, "sensors", "missing: list the board's sensors, e.g. [{\"model\": \"sht3x\", \"address\": \"0x44\", \"sda\": 21, \"scl\": 22}]" + ("sensor" in obj ? " (not both \"sensor\" and \"sensors\")" : ""));
  const listed = "sensors" in obj ? obj.sensors : [obj.sensor];
  if (!Array.isArray(listed) || listed.length === 0 || listed.length > 8) fail(file, "sensors", "must be a list of 1 to 8 sensors");
  const paths = "sensors" in obj ? listed.map((_, i) => "sensors[" + i + "]") : ["sensor"];
  const sensors = listed.map((raw, i) => parseSensor(raw, file, paths[i], runtimes as Runtime[], chip as Chip));
  checkSensorsTogether(sensors, file, paths);
  if (sensors.some((sensor) => sensor.model === "simulated") && sensors.length > 1) fail(file, "sensors", "the simulated sensor stands alone");
  const features = obj.features === undefined ? DEFAULT_FEATURES : obj.features;
  if (!Array.isArray(features)) fail(file, "features", "must be an array of feature names (" + Object.keys(FEATURES).join(", ") + "), [] for telemetry only");
  for (const feature of features) {
    if (typeof feature !== "string" || !(feature in FEATURES)) fail(file, "features", "unknown feature " + JSON.stringify(feature) + " (known: " + Object.keys(FEATURES).join(", ") + ")");
  }
  if ((features as string[]).includes("sleep") && runtimes.includes("moddable")) {
    fail(file, "features", "\"sleep\" (deep sleep between readings) is for Espruino boards: list only \"espruino\" in \"runtimes\"");
  }
  return {
    name,
    file,
    chip: chip as Chip,
    features: features as string[],
    description,
    runtimes: runtimes as Runtime[],
    wifi,
    requiresToken,
    sensors,
  };
}

export function loadBoard(path: string, cwd = process.cwd()): Board {
  const file = relative(cwd, path) || path;
  let raw: unknown;
  if (!existsSync(path)) {
    const dir = dirname(path);
    const known = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => basename(f, ".json")).sort() : [];
    throw new ConfigError(file + ": no such board file" + (known.length ? " (boards here: " + known.join(", ") + ")" : ""));
  }
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(file + ": not valid JSON: " + (e as Error).message);
  }
  return validateBoard(basename(path, ".json"), file, raw);
}

export function loadBoards(dir: string): Board[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => loadBoard(join(dir, f)))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}
