// Device configuration: fixed at build time from the board file, the environment and
// device.local.json (tools/config.ts validates it), optionally overridden per device by
// a small JSON file in flash so one image can serve many devices.

import type { SessionOptions } from "./mqtt/session";

export type SensorModel = "sht3x" | "sht4x" | "bme280" | "bmp280" | "ds18b20" | "ntc" | "internal" | "simulated";

/** One sensor of a board; only the fields of its bus are present (the build leaves the rest out). */
export interface SensorConfig {
  model: SensorModel;
  /** Put before each of its keys ("outdoor_" gives outdoor_temperature): two sensors of a kind need different ones. */
  prefix?: string;
  /** I2C: 7-bit address and pins. */
  address?: number;
  sda?: number;
  scl?: number;
  bitrate?: number;
  /** OneWire (ds18b20) or ADC (ntc) GPIO. */
  pin?: number;
  /** NTC thermistor: beta (K), resistance at 25 C, the divider's fixed resistor (ohms), and whether the thermistor is the lower leg (to GND). */
  beta?: number;
  ohms?: number;
  seriesOhms?: number;
  toGround?: boolean;
}

/**
 * The session reads its options (host, port, tls, clientId, token, timing, maxInflight)
 * from this object itself. The token is never logged; the CA is not here but in flash
 * beside the image (SocketOptions); clientId is set at boot from the chip id.
 */
export interface DeviceConfig extends SessionOptions {
  firmwareVersion: string;
  board: string;
  wifiSsid: string;
  /** Never logged. */
  wifiPassword: string;
  /** Sampling interval: a reading every this many ms. */
  telemetryIntervalMs: number;
  /** Readings go out every this many ms, batched; 0 (or not above the sampling interval): each as it is taken. */
  uploadIntervalMs: number;
  /** The board's sensors, sampled one after another into one reading. */
  sensors: SensorConfig[];
  /** Readings kept while offline; the oldest is dropped (and counted) past this. */
  queueCapacity: number;
  /** Readings sent in one PUBLISH when a backlog is replayed. */
  batchSize: number;
  /** Batches of readings kept in flash once RAM is full (0: none, drop instead). */
  spillBatches: number;
  /** Uptime and queue counters go out as telemetry this often (0: never). */
  statusIntervalMs: number;
  /** ThingsBoard rate limits ("count:seconds,...") obeyed until getSessionLimits answers. */
  rateLimits: string;
  dataPointLimits: string;
  /** Largest PUBLISH payload until getSessionLimits answers. */
  maxPayloadBytes: number;
  /** Restart when nothing was delivered and no connection accepted for this long (0: never). */
  watchdogMs: number;
  /** Sleep (battery boards): the longest a wake may last before the device sleeps anyway. */
  awakeMaxMs: number;
  /** OTA: bytes asked for per chunk, capped at the payload limit (boards with the ota feature). */
  otaChunkBytes: number;
  /** Provisioning (one image, many devices): only on boards built with a key. The secret is never logged. */
  provisionKey?: string;
  provisionSecret?: string;
  debug: boolean;
}

/**
 * What ThingsBoard may change while the device runs (shared attributes, setConfig).
 * Keys are the attribute names; `<prefix><sensor model>Enabled` switches a sensor.
 */
export interface Settings {
  samplingIntervalMs: number;
  uploadIntervalMs: number;
  batchSize: number;
  /** error, warn, info or debug. */
  logLevel: string;
  statusIntervalMs: number;
  [sensorEnabled: string]: number | string | boolean;
}

/** The settings a board starts with, before anything from ThingsBoard. */
export function defaultSettings(config: DeviceConfig): Settings {
  const settings: Settings = {
    samplingIntervalMs: config.telemetryIntervalMs,
    uploadIntervalMs: config.uploadIntervalMs,
    batchSize: config.batchSize,
    logLevel: config.debug ? "debug" : "info",
    statusIntervalMs: config.statusIntervalMs,
  };
  for (let i = 0; i < config.sensors.length; i++) settings[sensorSwitch(config.sensors[i])] = true;
  return settings;
}

/** The setting that switches a sensor on and off: `sht3xEnabled`, `outdoor_sht3xEnabled`. */
export function sensorSwitch(sensor: SensorConfig): string {
  return (sensor.prefix || "") + sensor.model + "Enabled";
}

/** Flash file with per-device overrides: {"host","port","tls","token","telemetryIntervalMs","uploadIntervalMs"}. */
export const OVERRIDE_FILE = "tb-config.json";

/** Flash file with why the device restarted itself (the watchdog), read and removed at boot. */
export const RESTART_FILE = "tb-restart.txt";

/** What a value must be: [type] or ["number", min, max] (whole numbers). A table is smaller than code per key. */
export type ValueCheck = (string | number)[];

/** Why `value` does not pass `check` ("" when it does). */
export function valueProblem(check: ValueCheck, value: unknown): string {
  const type = check[0];
  if (type === "number") {
    return typeof value === "number" && Math.floor(value) === value && value >= (check[1] as number) && value <= (check[2] as number) ? "" : "must be a whole number from " + check[1] + " to " + check[2];
  }
  return typeof value === type && value !== "" ? "" : type === "boolean" ? "must be true or false" : "must be a non-empty string";
}

/**
 * Applies overrides read from flash. A bad value is reported by key and ignored, so a
 * typo in the file never takes a working device off the air.
 */
export function applyOverrides(config: DeviceConfig, text: string | null, report: (problem: string) => void): DeviceConfig {
  if (text === null || text === "") return config;
  let parsed: { [key: string]: unknown };
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    report(OVERRIDE_FILE + " is not valid JSON; ignoring it");
    return config;
  }
  const result = Object.assign({}, config) as DeviceConfig & { [key: string]: unknown };
  // Built here, once per boot, not at the top of the module: Espruino would keep it in RAM.
  const overrides: { [key: string]: ValueCheck } = {
    host: ["string"],
    port: ["number", 1, 65535],
    tls: ["boolean"],
    token: ["string"],
    telemetryIntervalMs: ["number", 1000, 86400000],
    uploadIntervalMs: ["number", 0, 86400000],
  };
  for (const key in parsed) {
    const check = overrides[key];
    const problem = check ? valueProblem(check, parsed[key]) : "unknown key";
    if (problem === "") result[key] = parsed[key];
    else report(OVERRIDE_FILE + ": " + key + ": " + problem + "; ignored");
  }
  return result;
}
