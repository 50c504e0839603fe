// Board files (boards/<name>.json) are validated before anything is built: a bad pin,
// an unknown sensor or a missing field is an error naming the file and the key.

import { readFileSync, readdirSync } from "node:fs";
import { basename, join, relative } from "node:path";

export type Runtime = "espruino" | "moddable";
export const RUNTIMES: Runtime[] = ["espruino", "moddable"];

export interface BoardSensor {
  model: "sht3x" | "bme280" | "simulated";
  address: number;
  sda: number;
  scl: number;
  bitrate: number;
}

/** Board features: each links one module of the firmware. */
export const FEATURES: Record<string, [file: string, factory: string]> = {
  attributes: ["thingsboard/attributes.ts", "attributesFeature"],
  rpc: ["thingsboard/rpc.ts", "rpcFeature"],
  clock: ["thingsboard/clock.ts", "clockFeature"],
  limits: ["thingsboard/limits.ts", "limitsFeature"],
  provision: ["thingsboard/provision.ts", "provisionFeature"],
  ota: ["thingsboard/ota.ts", "otaFeature"],
};

export interface Board {
  name: string;
  file: string;
  description: string;
  runtimes: Runtime[];
  wifi: boolean;
  requiresToken: boolean;
  sensor: BoardSensor;
  /** Names from FEATURES; every feature when the board file does not say. */
  features: string[];
}

export class ConfigError extends Error {}

const SENSOR_ADDRESSES: Record<string, number[]> = { sht3x: [0x44, 0x45], bme280: [0x76, 0x77], simulated: [] };

/** Why an ESP32 GPIO cannot carry I2C, or null when it can. */
export function esp32I2cPinProblem(pin: number): string | null {
  if (!Number.isInteger(pin) || pin < 0 || pin > 39) return "ESP32 has GPIO 0-39";
  if (pin === 20 || pin === 24 || (pin >= 28 && pin <= 31)) return "GPIO" + pin + " does not exist on the ESP32";
  if (pin >= 6 && pin <= 11) return "GPIO" + pin + " is wired to the SPI flash";
  if (pin >= 34) return "GPIO" + pin + " is input-only and cannot drive I2C";
  if (pin === 1 || pin === 3) return "GPIO" + pin + " is the serial console (UART0)";
  return null;
}

function fail(file: string, key: string, problem: string): never {
  throw new ConfigError(file + ": \"" + key + "\": " + problem);
}

function field(obj: Record<string, unknown>, key: string, file: string, path: string): unknown {
  if (!(key in obj)) fail(file, path, "missing");
  return obj[key];
}

function parseAddress(value: unknown, file: string): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^0x[0-9a-f]{1,2}$/i.test(value)) return parseInt(value, 16);
  return fail(file, "sensor.address", "must be a 7-bit I2C address such as 68 or \"0x44\", not " + JSON.stringify(value));
}

export function validateBoard(name: string, file: string, raw: unknown): Board {
  if (!/^[a-z0-9][a-z0-9-]{0,27}$/.test(name)) fail(file, "(file name)", "board names are lower-case letters, digits and dashes, at most 28 characters");
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(file, "(top level)", "must be a JSON object");
  const obj = raw as Record<string, unknown>;
  const known = ["description", "runtimes", "wifi", "requiresToken", "sensor", "features"];
  for (const key of Object.keys(obj)) if (!known.includes(key)) fail(file, key, "unknown key (expected one of " + known.join(", ") + ")");
  const description = field(obj, "description", file, "description");
  if (typeof description !== "string") fail(file, "description", "must be a string");
  const runtimes = field(obj, "runtimes", file, "runtimes");
  if (!Array.isArray(runtimes) || runtimes.length === 0) fail(file, "runtimes", "must be a non-empty array of " + RUNTIMES.join(" / "));
  for (const runtime of runtimes) {
    if (!RUNTIMES.includes(runtime as Runtime)) fail(file, "runtimes", "unknown runtime " + JSON.stringify(runtime) + " (expected " + RUNTIMES.join(" or ") + ")");
  }
  const wifi = field(obj, "wifi", file, "wifi");
  if (typeof wifi !== "boolean") fail(file, "wifi", "must be true or false");
  const requiresToken = field(obj, "requiresToken", file, "requiresToken");
  if (typeof requiresToken !== "boolean") fail(file, "requiresToken", "must be true or false");
  const sensorRaw = field(obj, "sensor", file, "sensor");
  if (sensorRaw === null || typeof sensorRaw !== "object") fail(file, "sensor", "must be an object");
  const sensorObj = sensorRaw as Record<string, unknown>;
  const model = field(sensorObj, "model", file, "sensor.model");
  if (typeof model !== "string" || !(model in SENSOR_ADDRESSES)) {
    fail(file, "sensor.model", "unknown sensor " + JSON.stringify(model) + " (supported: " + Object.keys(SENSOR_ADDRESSES).join(", ") + ")");
  }
  const sensor: BoardSensor = { model: model as BoardSensor["model"], address: 0, sda: -1, scl: -1, bitrate: 0 };
  if (model !== "simulated") {
    sensor.address = parseAddress(field(sensorObj, "address", file, "sensor.address"), file);
    if (!SENSOR_ADDRESSES[model].includes(sensor.address)) {
      fail(file, "sensor.address", model + " answers at " + SENSOR_ADDRESSES[model].map((a) => "0x" + a.toString(16)).join(" or ") + ", not 0x" + sensor.address.toString(16));
    }
    for (const pinKey of ["sda", "scl"] as const) {
      const pin = field(sensorObj, pinKey, file, "sensor." + pinKey);
      if (typeof pin !== "number") fail(file, "sensor." + pinKey, "must be a GPIO number");
      const problem = esp32I2cPinProblem(pin);
      if (problem !== null) fail(file, "sensor." + pinKey, "bad pin " + pin + ": " + problem);
      sensor[pinKey] = pin;
    }
    if (sensor.sda === sensor.scl) fail(file, "sensor.scl", "SDA and SCL must be different pins");
    const bitrate = sensorObj.bitrate === undefined ? 100000 : sensorObj.bitrate;
    if (typeof bitrate !== "number" || bitrate < 10000 || bitrate > 1000000) fail(file, "sensor.bitrate", "must be between 10000 and 1000000 Hz");
    sensor.bitrate = bitrate;
  } else if (!runtimes.every((r) => r === "espruino" || r === "moddable")) {
    fail(file, "runtimes", "unsupported");
  }
  const features = obj.features === undefined ? Object.keys(FEATURES) : obj.features;
  if (!Array.isArray(features)) fail(file, "features", "must be an array of feature names (" + Object.keys(FEATURES).join(", ") + "), [] for telemetry only");
  for (const feature of features) {
    if (typeof feature !== "string" || !(feature in FEATURES)) fail(file, "features", "unknown feature " + JSON.stringify(feature) + " (known: " + Object.keys(FEATURES).join(", ") + ")");
  }
  return {
    name,
    file,
    features: features as string[],
    description,
    runtimes: runtimes as Runtime[],
    wifi,
    requiresToken,
    sensor,
  };
}

export function loadBoard(path: string, cwd = process.cwd()): Board {
  const file = relative(cwd, path) || path;
  let raw: unknown;
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
