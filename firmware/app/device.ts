// What the device does: join the network, set the clock, keep an MQTT session to
// ThingsBoard, and every interval read the sensor and queue a reading for delivery.

import type { DeviceConfig } from "../config";
import { OVERRIDE_FILE, applyOverrides } from "../config";
import { MqttSession, backoffDelay } from "../mqtt/session";
import type { Platform, TimerHandle } from "../platform/types";
import type { Sensor, SensorFactory, SensorValues } from "../sensors/types";
import { telemetryJson } from "../thingsboard/telemetry";
import type { Logger } from "../util/log";
import { createLogger, errorText, seconds } from "../util/log";
import { hashString, seededRandom } from "../util/random";
import { SpillStore } from "./spill-store";
import { TelemetryQueue } from "./telemetry-queue";

export interface Device {
  session: MqttSession;
  queue: TelemetryQueue;
  stop(): void;
}

/** What a feature (RPC, attributes...) gets to work with. */
export interface DeviceContext {
  platform: Platform;
  config: DeviceConfig;
  session: MqttSession;
  queue: TelemetryQueue;
  log: Logger;
  /** Handlers for incoming messages; each returns whether the topic was its own. */
  onMessage: ((topic: string, payload: Uint8Array) => boolean)[];
}

/**
 * A feature chosen per board at build time: the generated entry passes only the
 * board's features, so a board without one does not link its code.
 */
export type Feature = (device: DeviceContext) => void;

/** Client id from the chip id: letters and digits only, at most 23 characters (3.1.3.1). */
export function clientIdFromChip(chipId: string): string {
  let id = "";
  for (let i = 0; i < chipId.length; i++) {
    const c = chipId.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) id += chipId.charAt(i);
  }
  if (id.length > 18) id = id.substring(id.length - 18);
  return "tbfw-" + id;
}

export function startDevice(platform: Platform, builtConfig: DeviceConfig, createSensor: SensorFactory, features: Feature[]): Device {
  const log: Logger = createLogger((line) => platform.log(line), builtConfig.debug);
  const chipId = platform.chipId();
  log("I", "boot", "tb-firmware " + builtConfig.firmwareVersion + " on " + builtConfig.board + " (" + platform.runtime + "), chip " + chipId);

  let overrides: string | null = null;
  try {
    overrides = platform.storageRead(OVERRIDE_FILE);
  } catch (e) {
    log("E", "config", "cannot read " + OVERRIDE_FILE + ": " + errorText(e));
  }
  const config = applyOverrides(builtConfig, overrides, (problem) => log("E", "config", problem));
  if (config.token === "") log("E", "config", "no access token: write {\"token\":\"...\"} to " + OVERRIDE_FILE + " or rebuild with TB_TOKEN");
  if (config.tls && platform.runtime === "espruino") {
    log("W", "tls", "Espruino does not verify the server certificate: the link is encrypted but the server is not authenticated");
  }

  // Seeded from the chip id: Math.random repeats on every boot on Espruino.
  const random = seededRandom(hashString(chipId));
  let sensor: Sensor;
  try {
    sensor = createSensor(platform, config.sensor, random);
  } catch (e) {
    throw new Error(config.sensor.model + " set-up failed: " + errorText(e));
  }
  const session = new MqttSession(
    platform,
    {
      host: config.host,
      port: config.port,
      tls: config.tls,
      caDerBase64: config.tls ? config.caDerBase64 : "",
      clientId: clientIdFromChip(chipId),
      username: config.token,
      password: null,
      keepAliveS: config.keepAliveS,
      responseTimeoutMs: config.responseTimeoutMs,
      backoffMinMs: config.backoffMinMs,
      backoffMaxMs: config.backoffMaxMs,
      stableAfterMs: 30000,
      maxPacketBytes: 65536 + 1024,
      maxInflight: config.maxInflight,
    },
    {
      onConnected: () => upload(),
      onDisconnected: () => undefined,
      onMessage: (topic, payload) => {
        for (let i = 0; i < messageHandlers.length; i++) if (messageHandlers[i](topic, payload)) return;
        log("W", "mqtt", "message on unexpected topic " + topic);
      },
    },
    log,
    random
  );
  const spill = config.spillBatches > 0 ? new SpillStore(platform, log, config.spillBatches) : null;
  // Sampling and uploading apart: readings taken every telemetryIntervalMs go out every
  // uploadIntervalMs, an upload's worth in one message where the queue allows.
  // Counted in readings rather than timed, so an upload always carries the reading just taken.
  const readingsPerUpload = config.uploadIntervalMs > config.telemetryIntervalMs ? Math.ceil(config.uploadIntervalMs / config.telemetryIntervalMs) : 1;
  const queue = new TelemetryQueue(session, log, config.queueCapacity, Math.min(config.queueCapacity, Math.max(config.batchSize, readingsPerUpload)), spill, readingsPerUpload > 1);
  let readingsSinceUpload = 0;
  const upload = () => {
    readingsSinceUpload = 0;
    queue.flush();
  };
  const messageHandlers: ((topic: string, payload: Uint8Array) => boolean)[] = [];
  const context: DeviceContext = { platform: platform, config: config, session: session, queue: queue, log: log, onMessage: messageHandlers };
  for (let i = 0; i < features.length; i++) features[i](context);

  let sampleTimer: TimerHandle | null = null;
  let wifiTimer: TimerHandle | null = null;
  let stopped = false;
  let sessionStarted = false;

  const record = (values: SensorValues | null, error: string | null) => {
    if (error !== null) log("E", "sensor", error);
    queue.add(telemetryJson(platform.clockIsSet() ? platform.now() : null, values, error));
    if (++readingsSinceUpload >= readingsPerUpload) upload();
  };
  const takeSample = () => {
    sampleTimer = platform.setTimeout(takeSample, config.telemetryIntervalMs);
    try {
      sensor.sample((error: string | null, values: SensorValues | null) => record(values, error));
    } catch (e) {
      record(null, sensor.model + ": " + errorText(e));
    }
  };

  const startSession = () => {
    if (sessionStarted || stopped) return;
    sessionStarted = true;
    platform.syncClock((ok) => {
      if (ok) log("I", "clock", "set to " + new Date(platform.now()).toISOString());
      else log("W", "clock", "not set: telemetry goes without ts (server time); TLS may fail where certificate dates are checked");
      if (!stopped) session.start();
    });
  };

  let wifiAttempt = 0;
  const joinWifi = () => {
    wifiTimer = null;
    log("I", "wifi", "joining \"" + config.wifiSsid + "\"");
    platform.wifiConnect(config.wifiSsid, config.wifiPassword, (state, detail) => {
      if (stopped) return;
      if (state === "connected") {
        wifiAttempt = 0;
        log("I", "wifi", "connected" + (detail ? " (" + detail + ")" : ""));
        startSession();
      } else if (state === "disconnected" && wifiTimer === null) {
        // One access point, one device: no jitter needed, so the delay is the full ceiling.
        const delay = backoffDelay(wifiAttempt, 2000, 60000, () => 1);
        wifiAttempt++;
        log("W", "wifi", "disconnected" + (detail ? " (" + detail + ")" : "") + "; retrying in " + seconds(delay));
        wifiTimer = platform.setTimeout(joinWifi, delay);
      }
    });
  };

  if (platform.hasWifi) joinWifi();
  else startSession();
  takeSample();

  return {
    session: session,
    queue: queue,
    stop: () => {
      stopped = true;
      if (sampleTimer !== null) platform.clearTimeout(sampleTimer);
      if (wifiTimer !== null) platform.clearTimeout(wifiTimer);
      session.stop();
    },
  };
}
