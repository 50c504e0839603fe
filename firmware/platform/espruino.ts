// Espruino adapter. Sockets carry binary strings (E.toString / E.toUint8Array convert),
// TLS takes the CA as DER bytes in a string (the Storage file CA_FILE), and does NOT
// verify the server certificate (Espruino's mbedtls runs with VERIFY_NONE): the app says
// so at boot.

import type { I2CBus, I2CPins, OneWireBus, Platform, Socket, SocketHandlers, SocketOptions, WifiState } from "./types";
import { CA_FILE, CLOCK_SET_AFTER_MS } from "./types";

/**
 * A socket as the platform keeps it: Espruino's own, with its handlers and state as
 * properties. One set of listeners below serves every socket (Espruino gives them the
 * socket as `this`), so a connection makes no function objects, which cost JsVars for as
 * long as it is open.
 */
interface EspruinoLink extends EspruinoSocket {
  _handlers: SocketHandlers;
  /** What the last error said, for the close that follows it. */
  _error?: string;
  _closed?: boolean;
}

/** Espruino caches the module: one variable here rather than a require() in each use (bytes of image). */
const storage = require("Storage");

// Functions, not arrows: `this` is the socket.
const socketOpened = function (this: EspruinoLink) {
  this._handlers.socketOpened(this);
};
const socketData = function (this: EspruinoLink, data: string) {
  this._handlers.socketData(this, E.toUint8Array(data));
};
const socketError = function (this: EspruinoLink, error: { code: number; message: string }) {
  this._error = error && error.message ? error.message : "socket error " + (error ? error.code : "");
};
const socketClosed = function (this: EspruinoLink) {
  if (this._closed) return;
  this._closed = true;
  this._handlers.socketClosed(this, this._error || "connection closed by the server or network");
};

/**
 * What Espruino tells about itself for the client attributes. Apart from the platform so
 * that a board without the attributes feature does not carry it (the entry links it).
 */
export function espruinoFacts(): { [key: string]: string | number } {
  // Cast: the host type-check sees Node's process here.
  const runtimeProcess = process as unknown as EspruinoProcess;
  const memory = runtimeProcess.memory();
  const facts: { [key: string]: string | number } = { runtime_version: runtimeProcess.version, free_memory: memory.free * memory.blocksize };
  try {
    const wifi = require("Wifi");
    const ip = wifi.getIP();
    if (ip && ip.ip) facts.ip = ip.ip;
    const status = wifi.getStatus();
    if (status && typeof status.rssi === "number") facts.rssi = status.rssi;
  } catch (e) {
    // No Wi-Fi module on this build (Linux): no ip or rssi to report.
  }
  return facts;
}

let reportWifi: ((state: WifiState, detail: string) => void) | null = null;

// Wi-Fi's listeners and connect callback: module functions rather than arrows made in
// wifiConnect, which would keep its scope, and the password with it, for the run.
const wifiConnected = (details: { ip: string }) => {
  if (reportWifi !== null) reportWifi("connected", details && details.ip ? "ip " + details.ip : "");
};
const wifiDisconnected = (details: { reason?: string }) => {
  if (reportWifi !== null) reportWifi("disconnected", details && details.reason ? String(details.reason) : "");
};
const wifiJoined = (error: string | null) => {
  if (error && reportWifi !== null) reportWifi("disconnected", String(error));
};

/**
 * The platform, one object at module level rather than made by a factory: on Espruino a
 * function's cost grows with how deeply it is nested (about 5.5 JsVars at the image's top
 * level, 8.6 one function down, measured on 2v29). The entry sets hasWifi per board.
 */
export const espruinoPlatform: Platform = {
  runtime: "espruino",
  hasWifi: false,
  // The runtime's own functions where they fit: a wrapper would be one more function object.
  chipId: getSerial,
  now: () => Math.floor(Date.now()),
  clockIsSet: () => Date.now() > CLOCK_SET_AFTER_MS,
  // Espruino's passes the arguments after the delay to the callback, as the platform's must.
  setTimeout: setTimeout as unknown as Platform["setTimeout"],
  clearTimeout: clearTimeout as (handle: unknown) => void,
  log: console.log,

  connect: (options: SocketOptions, handlers: SocketHandlers): Socket => {
    const connectOptions: { host: string; port: number; ca?: string } = { host: options.host, port: options.port };
    // Without the file the link is as secure as with it on Espruino (no verification either way).
    const ca = options.tls && storage.read(CA_FILE);
    if (ca) connectOptions.ca = ca;
    const socket = require(options.tls ? "tls" : "net").connect(connectOptions, socketOpened) as EspruinoLink;
    socket._handlers = handlers;
    socket.on("data", socketData);
    socket.on("error", socketError);
    socket.on("close", socketClosed);
    return socket;
  },
  // No check for a closed socket: its close reaches the session, which then writes no more.
  socketWrite: (socket, bytes) => (socket as EspruinoLink).write(E.toString(bytes)),
  socketClose: (socket) => {
    if (!(socket as EspruinoLink)._closed) (socket as EspruinoLink).end();
  },

  wifiConnect: (ssid, password, onState: (state: WifiState, detail: string) => void) => {
    const wifi = require("Wifi");
    if (reportWifi === null) {
      // Listeners once: joinWifi runs again on every retry.
      wifi.on("connected", wifiConnected);
      wifi.on("disconnected", wifiDisconnected);
    }
    reportWifi = onState;
    onState("connecting", "");
    wifi.connect(ssid, { password: password }, wifiJoined);
  },

  syncClock: (onDone) => {
    if (Date.now() > CLOCK_SET_AFTER_MS) {
      onDone(true, 0);
      return;
    }
    try {
      require("Wifi").setSNTP("pool.ntp.org", 0);
    } catch (e) {
      onDone(false, 0);
      return;
    }
    let polls = 0;
    let before = Date.now();
    const poll = () => {
      // The jump happened within the last poll period: shift known to 0.5 s.
      if (Date.now() > CLOCK_SET_AFTER_MS) onDone(true, Date.now() - before - 500);
      else if (++polls >= 20) onDone(false, 0);
      else {
        before = Date.now();
        setTimeout(poll, 500);
      }
    };
    setTimeout(poll, 500);
  },

  setClock: (ms) => setTime(ms / 1000),

  storageRead: (key) => {
    const value = storage.read(key);
    return value === undefined ? null : value;
  },
  storageWrite: (key, value) => {
    // Storage.write returns false when flash is full: make that an error the caller logs.
    if (!storage.write(key, value)) throw new Error("Storage full writing " + key);
  },
  // Espruino's own functions where they fit: a native costs fewer JsVars than a function
  // of the image (neither needs `this`).
  storageRemove: storage.erase,

  i2c: (pins: I2CPins): I2CBus => {
    I2C1.setup({ sda: pins.sda, scl: pins.scl, bitrate: pins.bitrate });
    return I2C1;
  },

  restart: E.reboot,
  command: (name, fn) => {
    // Cast: the host type-check sees Node's global here.
    (global as unknown as { [name: string]: unknown })[name] = fn;
  },
};

/** OneWire buses: set on the platform by the entry only on boards with a OneWire sensor. */
export function espruinoOneWire(pin: number): OneWireBus {
  const bus = new OneWire(pin);
  return {
    reset: () => bus.reset(),
    search: () => bus.search(),
    select: (rom) => bus.select(rom),
    write: (bytes, power) => bus.write(bytes, power),
    read: (count) => new Uint8Array(bus.read(count)),
  };
}

/** Analog pins (0..1 of full scale): set by the entry only on boards with an analog sensor. */
export function espruinoAnalogRead(pin: number): number {
  return analogRead(pin);
}

/** The ESP32's own sensor (raw, degrees Fahrenheit): set by the entry only where a board reads it. */
export function espruinoChipTemperature(): number {
  return E.getTemperature();
}

/** Deep sleep, then a boot: set by the entry only on boards with the sleep feature. */
export function espruinoDeepSleep(ms: number): void {
  ESP32.deepSleep(ms * 1000);
}

/** Flash files for updates: set on the platform by the entry only on boards with the ota feature. */
export function espruinoFileWrite(name: string, bytes: Uint8Array, offset: number, size: number): void {
  if (!storage.write(name, E.toString(bytes), offset, size)) throw new Error("Storage full writing " + name);
}

/**
 * Native hashes over the file where it lies: on the ESP32 Storage is memory-mapped, so the
 * image is hashed in flash, not copied to RAM. Set with espruinoFileWrite.
 */
export function espruinoFileDigest(name: string, algorithm: string): string {
  const data = storage.read(name) || "";
  if (algorithm === "CRC32") return ("0000000" + (E.CRC32(data) >>> 0).toString(16)).slice(-8);
  const hash = require("crypto")[algorithm];
  if (typeof hash !== "function") return "";
  const digest = new Uint8Array(hash(data));
  let hex = "";
  for (let i = 0; i < digest.length; i++) hex += (digest[i] + 256).toString(16).substring(1);
  return hex;
}
