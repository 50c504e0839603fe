// Moddable XS adapter (ESP32 and the desktop simulator mcsim). SecureSocket verifies
// the server's chain against the embedded CA and its name, and checks certificate
// dates against the clock, so syncClock (SNTP) must finish before a TLS connect.

import { Socket as TcpSocket } from "socket";
import SecureSocket from "securesocket";
import Timer from "timer";
import Preference from "preference";
import WiFi from "wifi";
import SNTP from "sntp";
import Time from "time";
import Net from "net";
import I2C from "embedded:io/i2c";
import Resource from "Resource";
import restartDevice from "tb-restart";
import type { I2CBus, I2CPins, Platform, Socket, SocketHandlers, SocketOptions, WifiState } from "./types";
import { CLOCK_SET_AFTER_MS } from "./types";

// Socket callback messages (Moddable typings/socket.d.ts).
const MSG_ERROR = -2;
const MSG_DISCONNECT = -1;
const MSG_CONNECT = 1;
const MSG_READABLE = 2;

const PREFERENCE_DOMAIN = "tbfw";

/** NVS keys are at most 15 characters: "tb-config.json" becomes "tb-config". */
function preferenceKey(key: string): string {
  const dot = key.lastIndexOf(".");
  return (dot > 0 ? key.substring(0, dot) : key).substring(0, 15);
}

/** What Moddable tells about itself for the client attributes (linked only with that feature). */
export function moddableFacts(): { [key: string]: string | number } {
  const facts: { [key: string]: string | number } = {};
  const ip = Net.get("IP");
  if (ip) facts.ip = ip;
  const rssi = Net.get("RSSI");
  if (typeof rssi === "number") facts.rssi = rssi;
  return facts;
}

let wifi: WiFi | null = null;

/**
 * A socket as the platform hands it out: Moddable's own, with its handlers and state as
 * properties, so that one callback serves every socket (as on Espruino).
 */
type ModdableLink = (TcpSocket | SecureSocket) & { _handlers: SocketHandlers; _closed?: boolean };

/** Closes once and reports it once, whoever closed first. */
const closeLink = (link: ModdableLink, reason: string) => {
  if (link._closed) return;
  link._closed = true;
  try {
    link.close();
  } catch (e) {
    // Already released by the runtime.
  }
  link._handlers.socketClosed(link, reason);
};

// A function, not an arrow: Moddable calls the callback as the socket's method (modSocket.c
// with xsCall on the socket, SecureSocket with this.callback), so `this` is the socket.
const socketEvent = function (this: ModdableLink, message: number) {
  if (message === MSG_CONNECT) this._handlers.socketOpened(this);
  else if (message === MSG_READABLE) this._handlers.socketData(this, new Uint8Array(this.read(ArrayBuffer)));
  else if (message === MSG_DISCONNECT) closeLink(this, "connection closed by the server or network");
  else if (message === MSG_ERROR) closeLink(this, this instanceof SecureSocket ? "socket or TLS error (certificate not trusted, wrong name or clock?)" : "socket error");
};

/** The platform, one object at module level (as on Espruino); the entry sets hasWifi per board. */
export const moddablePlatform: Platform = {
  runtime: "moddable",
  hasWifi: false,
  chipId: () => {
    const mac = Net.get("MAC");
    return mac ? mac : "moddable-sim";
  },
  now: () => Date.now(),
  clockIsSet: () => Date.now() > CLOCK_SET_AFTER_MS,
  setTimeout: (callback, ms, a, b) => Timer.set(() => callback(a!, b!), ms),
  clearTimeout: (handle) => Timer.clear(handle),
  log: (line) => trace(line + "\n"),

  connect: (options: SocketOptions, handlers: SocketHandlers): Socket => {
    const socket: TcpSocket | SecureSocket =
      options.tls
        ? new SecureSocket({
            host: options.host,
            port: options.port,
            // The CA ships as a resource in flash (manifest "resources"), not in the JS heap.
            secure: { protocolVersion: 0x0303, certificate: new Resource("ca-root.der"), verify: true },
          })
        : new TcpSocket({ host: options.host, port: options.port });
    const link = socket as ModdableLink;
    link._handlers = handlers;
    socket.callback = socketEvent;
    return link;
  },
  socketWrite: (socket, bytes) => {
    // No check for a closed socket: its close reaches the session, which then writes no more.
    // Packets from the codec own their whole buffer; copy only a view into a larger one.
    const whole = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;
    (socket as ModdableLink).write((whole ? bytes.buffer : bytes.slice().buffer) as ArrayBuffer);
  },
  // No reason: the session let the socket go before closing it, and ignores what it reports.
  socketClose: (socket) => closeLink(socket as ModdableLink, ""),

  wifiConnect: (ssid, password, onState: (state: WifiState, detail: string) => void) => {
    if (wifi !== null) wifi.close();
    onState("connecting", "");
    wifi = new WiFi({ ssid: ssid, password: password }, (message) => {
      if (message === "gotIP") onState("connected", "ip " + Net.get("IP"));
      else if (message === "disconnect") onState("disconnected", "");
    });
  },

  syncClock: (onDone) => {
    if (Date.now() > CLOCK_SET_AFTER_MS) {
      onDone(true, 0);
      return;
    }
    let done = false;
    new SNTP({ host: "pool.ntp.org" }, (message, value) => {
      if (done) return;
      if (message === 1 && value !== undefined) {
        const before = Date.now();
        Time.set(value);
        done = true;
        onDone(true, Date.now() - before);
      } else if (message === -1) {
        done = true;
        onDone(false, 0);
      }
    });
  },

  setClock: (ms) => Time.set(ms / 1000),

  storageRead: (key) => {
    const value = Preference.get(PREFERENCE_DOMAIN, preferenceKey(key));
    return typeof value === "string" ? value : null;
  },
  storageWrite: (key, value) => Preference.set(PREFERENCE_DOMAIN, preferenceKey(key), value),
  storageRemove: (key) => Preference.delete(PREFERENCE_DOMAIN, preferenceKey(key)),

  i2c: (pins: I2CPins): I2CBus => {
    // ECMA-419 I2C objects are bound to one address: open one per address on demand.
    const devices: { [address: string]: I2C } = {};
    const device = (address: number): I2C => {
      const key = String(address);
      if (!devices[key]) devices[key] = new I2C({ data: pins.sda, clock: pins.scl, hz: pins.bitrate, address: address });
      return devices[key];
    };
    return {
      writeTo: (address, bytes) => device(address).write(bytes),
      readFrom: (address, length) => new Uint8Array(device(address).read(length)),
    };
  },

  // No console to type into: xsbug shows logs only.
  command: () => undefined,
  // ESP32: Moddable's System.restart. Desktop simulator: a stand-in whose line
  // npm run moddable -- sim answers by starting mcsim again (tools/build/moddable-manifest.ts).
  restart: () => restartDevice(),
};
