// Device configuration: fixed at build time from the board file, the environment and
// device.local.json (tools/config.ts validates it), optionally overridden per device by
// a small JSON file in flash so one image can serve many devices.

export type SensorModel = "sht3x" | "bme280" | "simulated";

export interface SensorConfig {
  model: SensorModel;
  /** 7-bit I2C address; 0 for the simulated sensor. */
  address: number;
  sda: number;
  scl: number;
  bitrate: number;
}

export interface DeviceConfig {
  firmwareVersion: string;
  board: string;
  host: string;
  port: number;
  tls: boolean;
  /** Access token = MQTT username. Never logged. */
  token: string;
  /** Root CA as base64 DER (no PEM armour: Espruino's mbedtls needs DER). */
  caDerBase64: string;
  wifiSsid: string;
  /** Never logged. */
  wifiPassword: string;
  /** Sampling interval: a reading every this many ms. */
  telemetryIntervalMs: number;
  /** Readings go out every this many ms, batched; 0 (or not above the sampling interval): each as it is taken. */
  uploadIntervalMs: number;
  sensor: SensorConfig;
  keepAliveS: number;
  responseTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Readings kept while offline; the oldest is dropped (and counted) past this. */
  queueCapacity: number;
  /** Readings sent in one PUBLISH when a backlog is replayed. */
  batchSize: number;
  /** Batches of readings kept in flash once RAM is full (0: none, drop instead). */
  spillBatches: number;
  maxInflight: number;
  /** Uptime and queue counters go out as telemetry this often (0: never). */
  statusIntervalMs: number;
  /** ThingsBoard rate limits ("count:seconds,...") obeyed until getSessionLimits answers. */
  rateLimits: string;
  dataPointLimits: string;
  /** Largest PUBLISH payload until getSessionLimits answers. */
  maxPayloadBytes: number;
  debug: boolean;
}

/**
 * What ThingsBoard may change while the device runs (shared attributes, setConfig).
 * Keys are the attribute names; `<sensor model>Enabled` switches the sensor.
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
  settings[config.sensor.model + "Enabled"] = true;
  return settings;
}

/** Flash file with per-device overrides: {"host","port","tls","token","telemetryIntervalMs","uploadIntervalMs"}. */
export const OVERRIDE_FILE = "tb-config.json";

/**
 * Applies overrides read from flash. A bad value is reported by key and ignored, so a
 * typo in the file never takes a working device off the air.
 */
export function applyOverrides(config: DeviceConfig, text: string | null, report: (problem: string) => void): DeviceConfig {
  if (text === null || text === "") return config;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    report(OVERRIDE_FILE + " is not valid JSON; ignoring it");
    return config;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    report(OVERRIDE_FILE + " must hold a JSON object; ignoring it");
    return config;
  }
  const source = parsed as { [key: string]: unknown };
  const result: DeviceConfig = Object.assign({}, config);
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = source[key];
    if (key === "host" && typeof value === "string" && value.length > 0) result.host = value;
    else if (key === "port" && typeof value === "number" && value >= 1 && value <= 65535 && Math.floor(value) === value) result.port = value;
    else if (key === "tls" && typeof value === "boolean") result.tls = value;
    else if (key === "token" && typeof value === "string" && value.length > 0) result.token = value;
    else if (key === "telemetryIntervalMs" && typeof value === "number" && value >= 1000) result.telemetryIntervalMs = value;
    else if (key === "uploadIntervalMs" && typeof value === "number" && value >= 0) result.uploadIntervalMs = value;
    else report(OVERRIDE_FILE + ": ignoring key \"" + key + "\" (unknown, or a value of the wrong type or range)");
  }
  return result;
}
