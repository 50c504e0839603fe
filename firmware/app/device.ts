// What the device does: join the network, set the clock, keep an MQTT session to
// ThingsBoard, and every interval read the sensors and queue a reading for delivery.

import type { DeviceConfig, Settings } from "../config";
import { OVERRIDE_FILE, RESTART_FILE, applyOverrides, defaultSettings, sensorSwitch } from "../config";
import { backoffDelay, MqttSession } from "../mqtt/session";
import type { Platform, TimerHandle } from "../platform/types";
import type { Reading, Sensor, SensorFactory, SensorValues } from "../sensors/types";
import { telemetryJson } from "../thingsboard/telemetry";
import type { Logger } from "../util/log";
import { createLogger, errorText, seconds } from "../util/log";
import { hashString, seededRandom } from "../util/random";
import type { RemoteConfig } from "./remote-config";
import type { ClientRpc } from "../thingsboard/client-rpc";
import type { RpcHandler } from "../thingsboard/rpc";
import { TelemetryQueue } from "./telemetry-queue";

export interface Device {
  session: MqttSession;
  queue: TelemetryQueue;
  context: DeviceContext;
  stop(): void;
}

/** What a feature (RPC, attributes...) gets to work with. */
export interface DeviceContext {
  platform: Platform;
  config: DeviceConfig;
  session: MqttSession;
  queue: TelemetryQueue;
  log: Logger;
  /** The settings in effect; change them, then call applySettings(). */
  settings: Settings;
  /** The board's settings, what a deleted shared attribute falls back to; only while remoteConfig exists. */
  defaults?: Settings;
  applySettings(): void;
  /**
   * Topic prefixes and, at the same index in onMessage, their handlers: a message goes to
   * the first whose prefix its topic starts with, with the rest of the topic, and on to
   * the next match when the handler returns false. A table, not a wrapper closure per
   * prefix: on Espruino each closure costs JsVars for the whole run.
   */
  topics: string[];
  onMessage: ((rest: string, payload: Uint8Array) => boolean | void)[];
  /** Run after every connect, in order, once subscriptions are on their way. */
  onConnect: (() => void)[];
  /**
   * Takes a reading now, outside the sampling schedule: every sensor switched on, one after
   * another, their keys prefixed and merged, failures joined in `sensor_error`; null when
   * every sensor is switched off.
   */
  sampleNow(done: (reading: Reading | null) => void): void;
  /**
   * Hooks a feature may set, each unset (no function kept for the run) while nothing needs
   * it; only one feature sets each. queueReading: takes the readings (taken at `t`,
   * platform.now() then) instead of the queue; the clock feature holds them until the clock
   * is set, then unsets it. clockSet: told that the wall clock was set and jumped by
   * `shiftMs` (bootAt already moved). startSession: starts the MQTT session in place of
   * session.start() (provision: credentials first).
   */
  queueReading?: (t: number, reading: Reading) => void;
  clockSet?: (shiftMs: number) => void;
  /** ThingsBoard's limits obeyed: message and data point rate limits ("count:seconds,..."), payload bytes; applySettings() after a change. */
  limits: [string, string, number];
  /** platform.now() at boot, moved with the clock (uptime). */
  bootAt: number;
  startSession?: () => void;
  /** Why the device restarted itself last time ("" when it did not): reported once connected. */
  restartReason: string;
  /**
   * Shared by features, made by services: the build puts remoteConfigService before the
   * first feature that reads it (attributes, rpc), clientRpcService before clock and
   * limits. A service is in the features list rather than made on first use by a module
   * function: such a function is a global of the Espruino image, kept with its code for
   * the whole run, while the list is let go once started.
   */
  remoteConfig?: RemoteConfig;
  clientRpc?: ClientRpc;
  /** RPC methods of the application (registerRpc), made by the first one registered. */
  rpcMethods?: { [method: string]: RpcHandler };
}

/** The [count, seconds] windows of a ThingsBoard rate limit "count:seconds,..." ("" : none). */
export function limitWindows(limits: string): number[][] {
  const windows: number[][] = [];
  const parts = limits.split(",");
  for (let i = 0; i < parts.length; i++) {
    const pair = parts[i].split(":");
    const count = Number(pair[0]);
    const seconds = Number(pair[1]);
    if (count > 0 && seconds > 0) windows.push([count, seconds]);
  }
  return windows;
}

/**
 * The pace that keeps under every window of `messages`: [per second, burst], 70% of the
 * strictest rate, a burst small enough that burst + rate * window stays under 90% of each
 * window's count; then the data points one message may carry so that `points` holds too.
 */
export function paceFor(messages: string, points: string): number[] {
  const windows = limitWindows(messages);
  let rate = 0;
  for (let i = 0; i < windows.length; i++) if (rate === 0 || windows[i][0] / windows[i][1] < rate) rate = windows[i][0] / windows[i][1];
  rate *= 0.7;
  let burst = 1e9;
  for (let i = 0; i < windows.length; i++) burst = Math.min(burst, 0.9 * windows[i][0] - rate * windows[i][1]);
  if (burst < 1) burst = 1;
  const pointWindows = limitWindows(points);
  let perMessage = 1e9;
  // Without a message pace the point limit cannot be kept by the size of a message alone.
  for (let i = 0; i < pointWindows.length && rate > 0; i++) perMessage = Math.min(perMessage, (0.9 * pointWindows[i][0]) / (burst + rate * pointWindows[i][1]));
  return [rate, Math.floor(burst), perMessage < 1 ? 1 : Math.floor(perMessage)];
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

/** Where a pass over the sensors is (one variable of startDevice's scope rather than two, which live for the run). */
const NOT_IN_SAMPLE = 0;
/** Inside a sensor's sample() call, no answer yet. */
const SAMPLE_WAITING = 1;
/** Inside it, and it answered at once. */
const SAMPLE_ANSWERED = 2;
/** Where the device is (startSession runs once, and nothing runs once it is stopped). */
const SESSION_NOT_STARTED = 0;
const SESSION_STARTED = 1;
const DEVICE_STOPPED = 2;

/**
 * `createSensors[i]` makes `config.sensors[i]`. What is only needed while starting is not
 * kept in a variable here: this scope lives as long as the device (its closures hold it),
 * and on Espruino every variable in it costs JsVars for the whole run.
 */
export function startDevice(platform: Platform, config: DeviceConfig, createSensors: SensorFactory[], features: Feature[]): Device {
  // Until the settings exist: the board's build-time level.
  let log: Logger = createLogger(platform.log, { logLevel: config.debug ? "debug" : "info" });
  log("I", "boot", "tb-firmware " + config.firmwareVersion + " on " + config.board + " (" + platform.runtime + "), chip " + platform.chipId());

  // The built configuration gives way to the one with the overrides, so that it is not kept
  // too; a copy either way, since keys read only while starting are deleted from it below.
  // No variable for the file's text: this scope is kept for the run.
  try {
    config = applyOverrides(Object.assign({}, config), platform.storageRead(OVERRIDE_FILE), (problem) => log("E", "config", problem));
  } catch (e) {
    log("E", "config", "cannot read " + OVERRIDE_FILE + ": " + errorText(e));
    config = Object.assign({}, config);
  }
  const settings: Settings = defaultSettings(config);
  log = createLogger(platform.log, settings);
  if (config.token === "" && !config.provisionKey) log("E", "config", "no access token: write {\"token\":\"...\"} to " + OVERRIDE_FILE + " or rebuild with TB_TOKEN");
  if (config.tls && platform.runtime === "espruino") {
    log("W", "tls", "Espruino does not verify the server certificate (encrypted, not authenticated)");
  }

  // Seeded from the chip id: Math.random repeats on every boot on Espruino.
  const random = seededRandom(hashString(platform.chipId()));
  // A driver that cannot start fails the start-up, which the entry logs.
  const sensors: Sensor[] = [];
  for (let i = 0; i < createSensors.length; i++) {
    sensors.push(createSensors[i](platform, config.sensors[i], random));
  }
  // As the features below: each factory runs once, and the array is let go.
  createSensors = null as never;
  config.clientId = clientIdFromChip(platform.chipId());
  const session = new MqttSession(
    platform,
    config,
    {
      onConnected: () => {
        for (let i = 0; i < context.onConnect.length; i++) context.onConnect[i]();
        // An upload: what waits goes now.
        readingsSinceUpload = 0;
        queue.flush();
      },
      // Attributes and RPC replies share the in-flight window: telemetry goes on when they leave it.
      onRoom: () => queue.pump(),
      onMessage: (topic, payload) => {
        const topics = context.topics;
        for (let i = 0; i < topics.length; i++) if (topic.indexOf(topics[i]) === 0 && context.onMessage[i](topic.substring(topics[i].length), payload) !== false) return;
        log("W", "mqtt", "message on unexpected topic " + topic);
      },
    },
    log,
    random
  );
  const queue = new TelemetryQueue(session, log, config.queueCapacity, platform, config.spillBatches);
  // Sampling and uploading apart: readings taken every samplingIntervalMs go out every
  // uploadIntervalMs, an upload's worth in one message where the queue allows.
  // Counted in readings rather than timed, so an upload always carries the reading just taken.
  let readingsPerUpload = 1;
  let readingsSinceUpload = 0;

  let sampleTimer: TimerHandle | null = null;
  let sampledInterval = 0;
  const applySettings = () => {
    const sampling = settings.samplingIntervalMs;
    const uploadEvery = settings.uploadIntervalMs;
    readingsPerUpload = uploadEvery > sampling ? Math.ceil(uploadEvery / sampling) : 1;
    const batch = Math.min(config.queueCapacity, Math.max(settings.batchSize, readingsPerUpload));
    // A message's data points at the pace below stay under the telemetryDataPoints limit.
    const limits = context.limits;
    const pace = paceFor(limits[0], limits[1]);
    session.setPace(pace[0], pace[1]);
    queue.setLimits(batch, Math.floor(limits[2] * 0.9), pace[2], readingsPerUpload > 1);
    // A new sampling interval takes effect now, not after the old one runs out.
    if (sampleTimer !== null && sampling !== sampledInterval) {
      platform.clearTimeout(sampleTimer);
      sampleTimer = platform.setTimeout(takeSample, sampling);
      sampledInterval = sampling;
    }
  };

  const record = (reading: Reading | null) => {
    // Every sensor switched off: nothing to report.
    if (reading === null) return;
    if (reading.sensor_error) log("E", "sensor", reading.sensor_error as string);
    const t = platform.now();
    // Without the clock: no ts (server time).
    if (context.queueReading) context.queueReading(t, reading);
    else queue.add(telemetryJson(platform.clockIsSet() ? t : null, reading));
    if (++readingsSinceUpload >= readingsPerUpload) {
      readingsSinceUpload = 0;
      queue.flush();
    }
  };
  // One pass over the sensors at a time, by one long-lived function (no closure per sample:
  // on Espruino each costs JsVars); whoever asks while a pass runs gets that pass's reading,
  // so a sensor is never asked twice at once (readNow during a DS18B20 conversion).
  const waiting: ((reading: Reading | null) => void)[] = [];
  let reading: Reading | null = null;
  let index = -1;
  // A sensor may answer within its sample() call (an error, or Moddable's synchronous
  // drivers): the loop takes that answer instead of nesting one call per sensor, so the
  // stack stays flat however many sensors fail at once (XS's stack is small).
  let inSample = NOT_IN_SAMPLE;
  const nextSensor = (error: string | null, values: SensorValues | null) => {
    if (index >= 0) {
      if (reading === null) reading = {};
      const prefix = config.sensors[index].prefix || "";
      if (values !== null) for (const key in values) reading[prefix + key] = values[key];
      if (error !== null) reading.sensor_error = reading.sensor_error ? reading.sensor_error + "; " + error : error;
    }
    if (inSample !== NOT_IN_SAMPLE) {
      inSample = SAMPLE_ANSWERED;
      return;
    }
    for (;;) {
      // The switch's name made at each sample rather than kept: on Espruino RAM is scarcer than time.
      while (++index < sensors.length && settings[sensorSwitch(config.sensors[index])] === false);
      if (index >= sensors.length) break;
      inSample = SAMPLE_WAITING;
      try {
        sensors[index].sample(nextSensor);
      } catch (e) {
        // Still inSample: this only records the error.
        if (inSample === SAMPLE_WAITING) nextSensor(sensors[index].model + ": " + errorText(e), null);
      }
      const answered = inSample === SAMPLE_ANSWERED;
      inSample = NOT_IN_SAMPLE;
      // Not answered yet: the sensor calls nextSensor when its conversion is done.
      if (!answered) return;
    }
    const done = waiting.splice(0, waiting.length);
    const result = reading;
    reading = null;
    index = -1;
    for (let i = 0; i < done.length; i++) done[i](result);
  };
  const sampleNow = (done: (reading: Reading | null) => void) => {
    if (waiting.push(done) === 1) nextSensor(null, null);
  };
  const takeSample = () => {
    sampledInterval = settings.samplingIntervalMs;
    sampleTimer = platform.setTimeout(takeSample, sampledInterval);
    sampleNow(record);
  };

  const context: DeviceContext = {
    platform: platform,
    config: config,
    session: session,
    queue: queue,
    log: log,
    settings: settings,
    // A copy, not a variable here: this scope is kept for the run.
    defaults: Object.assign({}, settings),
    applySettings: applySettings,
    topics: [],
    onMessage: [],
    onConnect: [],
    sampleNow: sampleNow,
    limits: [config.rateLimits, config.dataPointLimits, config.maxPayloadBytes],
    bootAt: platform.now(),
    restartReason: "",
  };
  // Read into the context, not a variable of this scope (kept for the run).
  try {
    context.restartReason = platform.storageRead(RESTART_FILE) || "";
    if (context.restartReason !== "") {
      log("W", "boot", "restarted: " + context.restartReason);
      platform.storageRemove(RESTART_FILE);
    }
  } catch (e) {
    log("E", "boot", RESTART_FILE + ": " + errorText(e));
  }
  applySettings();
  for (let i = 0; i < features.length; i++) features[i](context);
  // Each runs once. The closures made here keep this scope, and so the array: let go, its
  // functions can go (loaded into RAM, Espruino keeps each function's text with it). Not
  // emptied with splice: an empty array would still be a JsVar of this scope.
  features = null as never;
  // Only remote configuration falls back to the defaults.
  if (!context.remoteConfig) delete context.defaults;
  // Read only while starting (the settings, the limits and the stores have them now): on
  // Espruino every key left on the configuration costs JsVars for the whole run. The cast
  // each time rather than an alias: a variable here would be kept for the run too.
  delete (config as Partial<DeviceConfig>).telemetryIntervalMs;
  delete (config as Partial<DeviceConfig>).uploadIntervalMs;
  delete (config as Partial<DeviceConfig>).batchSize;
  delete (config as Partial<DeviceConfig>).statusIntervalMs;
  delete (config as Partial<DeviceConfig>).debug;
  delete (config as Partial<DeviceConfig>).rateLimits;
  delete (config as Partial<DeviceConfig>).dataPointLimits;
  delete (config as Partial<DeviceConfig>).maxPayloadBytes;
  delete (config as Partial<DeviceConfig>).spillBatches;

  let wifiTimer: TimerHandle | null = null;
  // Whether startSession ran, or the device was stopped: one variable of this scope rather than two.
  let phase = SESSION_NOT_STARTED;


  const startSession = () => {
    if (phase !== SESSION_NOT_STARTED) return;
    phase = SESSION_STARTED;
    platform.syncClock((ok, shiftMs) => {
      if (ok) {
        log("I", "clock", "set to " + new Date(platform.now()).toISOString());
        context.bootAt += shiftMs;
        if (context.clockSet) context.clockSet(shiftMs);
      } else log("W", "clock", "no SNTP: no ts until the clock is set");
      if (phase === DEVICE_STOPPED) return;
      if (context.startSession) context.startSession();
      else session.start();
    });
  };

  let wifiAttempt = 0;
  const joinWifi = () => {
    wifiTimer = null;
    log("I", "wifi", "joining \"" + config.wifiSsid + "\"");
    platform.wifiConnect(config.wifiSsid, config.wifiPassword, (state, detail) => {
      if (phase === DEVICE_STOPPED) return;
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

  // The watchdog: once a minute, and when neither a connection was accepted nor a message
  // acknowledged for watchdogMs (counted in minutes: the wall clock jumps when it is set),
  // readings waiting in RAM go to flash, the reason is kept, and the device restarts.
  let watchdogTimer: TimerHandle | null = null;
  let progressSeen = -1;
  let stalledMinutes = 0;
  const watch = () => {
    const progress = session.progress;
    stalledMinutes = progress === progressSeen ? stalledMinutes + 1 : 0;
    progressSeen = progress;
    if (stalledMinutes * 60000 >= config.watchdogMs) {
      const reason = "watchdog: no delivery and no connection for " + stalledMinutes + " min";
      log("E", "boot", reason + "; restarting");
      try {
        platform.storageWrite(RESTART_FILE, reason);
      } catch (e) {
        // Restart anyway: that is what recovers the device.
      }
      queue.persist();
      platform.restart();
    } else watchdogTimer = platform.setTimeout(watch, 60000);
  };
  if (config.watchdogMs > 0) watch();

  if (platform.hasWifi) joinWifi();
  else startSession();
  takeSample();

  return {
    session: session,
    queue: queue,
    context: context,
    stop: () => {
      phase = DEVICE_STOPPED;
      if (sampleTimer !== null) platform.clearTimeout(sampleTimer);
      if (wifiTimer !== null) platform.clearTimeout(wifiTimer);
      if (watchdogTimer !== null) platform.clearTimeout(watchdogTimer);
      session.stop();
    },
  };
}
