// Device settings for a build: defaults < device.local.json (git-ignored) < environment.
// Secrets (token, Wi-Fi password) only ever come from these two places, never from
// committed files, and are never printed.

import { existsSync, readFileSync } from "node:fs";
import type { DeviceConfig } from "../../firmware/config.ts";
import type { Board } from "./boards.ts";
import { ConfigError } from "./boards.ts";

export interface DeviceSettings {
  host: string;
  port: number;
  tls: boolean;
  token: string;
  ca: string;
  wifiSsid: string;
  wifiPassword: string;
  telemetryIntervalMs: number;
  /** 0: each reading is sent as it is taken. */
  uploadIntervalMs: number;
  /** Device provisioning (one image, many devices); never printed. */
  provisionKey: string;
  provisionSecret: string;
  /** ThingsBoard's topic set: v2 short topics (v2/t, v2/a, v2/r/...) or the documented v1 ones. */
  topics: "v1" | "v2";
  /** Rate limits ("count:seconds,...", "" for none) obeyed until getSessionLimits answers. */
  rateLimits: string;
  dataPointLimits: string;
}

export const DEFAULT_SETTINGS: DeviceSettings = {
  host: "mqtt.thingsboard.cloud",
  port: 8883,
  tls: true,
  token: "",
  ca: "certs/ca-root.pem",
  wifiSsid: "",
  wifiPassword: "",
  telemetryIntervalMs: 60000,
  uploadIntervalMs: 0,
  provisionKey: "",
  provisionSecret: "",
  topics: "v2",
  rateLimits: "20:1,600:60",
  dataPointLimits: "",
};

/** Environment variable for each setting. */
export const ENV_NAMES: Record<keyof DeviceSettings, string> = {
  host: "TB_HOST",
  port: "TB_PORT",
  tls: "TB_TLS",
  token: "TB_TOKEN",
  ca: "TB_CA",
  wifiSsid: "WIFI_SSID",
  wifiPassword: "WIFI_PASSWORD",
  telemetryIntervalMs: "TELEMETRY_INTERVAL_MS",
  uploadIntervalMs: "UPLOAD_INTERVAL_MS",
  provisionKey: "TB_PROVISION_KEY",
  provisionSecret: "TB_PROVISION_SECRET",
  topics: "TB_TOPICS",
  rateLimits: "TB_RATE_LIMITS",
  dataPointLimits: "TB_DATA_POINT_LIMITS",
};

function parseValue(key: keyof DeviceSettings, value: unknown, where: string): DeviceSettings[keyof DeviceSettings] {
  const problem = (what: string): never => {
    throw new ConfigError(where + ": " + what + (key === "token" || key === "wifiPassword" || key === "provisionSecret" ? "" : ", got " + JSON.stringify(value)));
  };
  if (key === "port") {
    const port = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) problem("must be a port number 1-65535");
    return port as number;
  }
  if (key === "tls") {
    if (value === true || value === "1" || value === "true") return true;
    if (value === false || value === "0" || value === "false") return false;
    return problem("must be 1 (TLS on) or 0 (plain MQTT)");
  }
  if (key === "telemetryIntervalMs" || key === "uploadIntervalMs") {
    const ms = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    // 0 for the upload interval: each reading is sent as it is taken.
    const zeroAllowed = key === "uploadIntervalMs";
    if (typeof ms !== "number" || !Number.isInteger(ms) || (!(zeroAllowed && ms === 0) && (ms < 1000 || ms > 86400000))) {
      problem(zeroAllowed ? "must be 0 (send each reading) or whole milliseconds from 1000 to 86400000" : "must be whole milliseconds from 1000 to 86400000");
    }
    return ms as number;
  }
  if (typeof value !== "string") return problem("must be a string");
  if ((key === "rateLimits" || key === "dataPointLimits") && !/^(\d+:\d+(,\d+:\d+)*)?$/.test(value)) problem("must be ThingsBoard's rate limit form count:seconds[,count:seconds...], e.g. 20:1,600:60, or empty for none");
  if (key === "topics" && value !== "v1" && value !== "v2") problem("must be v2 (short topics, the default) or v1 (the documented v1/devices/me/... topics)");
  if (key === "host" && (value === "" || /\s/.test(value))) problem("must be a host name or address");
  if (key === "token" && /[\s"\\]/.test(value)) problem("must not contain spaces, quotes or backslashes (check the copied access token)");
  return value;
}

/** Reads settings; `localFile` is a JSON object with the same keys as DeviceSettings. */
export function resolveSettings(env: NodeJS.ProcessEnv, localFile: string | null): DeviceSettings {
  const settings: DeviceSettings = { ...DEFAULT_SETTINGS };
  const keys = Object.keys(DEFAULT_SETTINGS) as (keyof DeviceSettings)[];
  if (localFile !== null && existsSync(localFile)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(localFile, "utf8"));
    } catch (e) {
      throw new ConfigError(localFile + ": not valid JSON: " + (e as Error).message);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(localFile + ": must hold a JSON object");
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (!keys.includes(key as keyof DeviceSettings)) {
        throw new ConfigError(localFile + ": unknown key \"" + key + "\" (expected one of " + keys.join(", ") + ")");
      }
      (settings as unknown as Record<string, unknown>)[key] = parseValue(key as keyof DeviceSettings, value, localFile + ": \"" + key + "\"");
    }
  }
  for (const key of keys) {
    const value = env[ENV_NAMES[key]];
    if (value !== undefined && value !== "") {
      (settings as unknown as Record<string, unknown>)[key] = parseValue(key, value, ENV_NAMES[key]);
    }
  }
  if (settings.uploadIntervalMs !== 0 && settings.uploadIntervalMs < settings.telemetryIntervalMs) {
    throw new ConfigError(
      "UPLOAD_INTERVAL_MS / uploadIntervalMs (" + settings.uploadIntervalMs + ") is shorter than the sampling interval TELEMETRY_INTERVAL_MS (" +
        settings.telemetryIntervalMs + "): set it to 0 to send each reading as it is taken, or to a longer interval to batch them"
    );
  }
  return settings;
}

/**
 * Session timing and queue sizes. A silent link is noticed within keepAliveS +
 * responseTimeoutMs (30 s) whatever the sampling interval, at the cost of a PINGREQ and
 * PINGRESP after 15 s without traffic (README, "Delivery under faults"); a failed connection
 * is retried within backoffMaxMs (15 s), one the server refused within 20 times that.
 */
export const FIRMWARE_DEFAULTS = {
  keepAliveS: 15,
  responseTimeoutMs: 15000,
  backoffMinMs: 2000,
  backoffMaxMs: 15000,
  queueCapacity: 100,
  batchSize: 10,
  spillBatches: 50,
  maxInflight: 4,
  statusIntervalMs: 300000,
  maxPayloadBytes: 65536,
  watchdogMs: 1800000,
  /** OTA: bytes asked for per chunk (capped at maxPayloadBytes). */
  otaChunkBytes: 2048,
  /** Sleep (battery boards): a wake lasts at most this long, delivered or not. */
  awakeMaxMs: 60000,
  /** OTA: a new image that gets no message acknowledged within this long is rolled back (the boot loader's, not in DeviceConfig). */
  otaConfirmMs: 300000,
};

/** The configuration compiled into one image; fails when the board needs what is missing. */
export function deviceConfigFor(board: Board, settings: DeviceSettings, version: string, debug = false): DeviceConfig {
  const provisioning = settings.provisionKey !== "";
  if (provisioning && !board.features.includes("provision")) {
    throw new ConfigError(board.file + ": TB_PROVISION_KEY is set but this board has no \"provision\" feature: add it to \"features\" or build without the key");
  }
  if (provisioning && settings.provisionSecret === "") {
    throw new ConfigError("TB_PROVISION_KEY needs TB_PROVISION_SECRET (or \"provisionSecret\" in device.local.json): both are on the device profile's provisioning page in ThingsBoard");
  }
  if (board.requiresToken && settings.token === "" && !provisioning) {
    throw new ConfigError(
      board.file + ": this board needs a device access token: set TB_TOKEN=<token> in the environment or \"token\" in device.local.json " +
        "(copy it from ThingsBoard: Devices > your device > Copy access token), or a provisioning key and secret (TB_PROVISION_KEY, TB_PROVISION_SECRET)"
    );
  }
  if (board.wifi && settings.wifiSsid === "") {
    throw new ConfigError(board.file + ": this board joins Wi-Fi: set WIFI_SSID (and WIFI_PASSWORD) in the environment or in device.local.json");
  }
  return {
    firmwareVersion: version,
    board: board.name,
    host: settings.host,
    port: settings.port,
    tls: settings.tls,
    token: settings.token,
    // From the chip id at boot.
    clientId: "",
    wifiSsid: settings.wifiSsid,
    wifiPassword: settings.wifiPassword,
    telemetryIntervalMs: settings.telemetryIntervalMs,
    uploadIntervalMs: settings.uploadIntervalMs,
    sensors: board.sensors.map((sensor) => ({ ...sensor })),
    debug,
    ...FIRMWARE_DEFAULTS,
    rateLimits: settings.rateLimits,
    dataPointLimits: settings.dataPointLimits,
    // Only in images that provision: others carry no key.
    ...(provisioning ? { provisionKey: settings.provisionKey, provisionSecret: settings.provisionSecret } : {}),
  };
}
