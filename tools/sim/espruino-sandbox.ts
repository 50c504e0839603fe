// Runs an Espruino image (dist/espruino/<board>.js) on the host in a V8 context that
// offers what Espruino offers and lacks what it lacks: its globals (E, getSerial,
// I2C1, timers, atob/btoa, process.memory) and modules (net, tls, Storage, Wifi), real
// sockets that carry binary strings like Espruino's, file-backed Storage, and none of
// the built-ins that tools/check/check-espruino.ts rejects.
//
// Stricter than a board in one place: the TLS socket verifies the server against the
// CA the image passes (Espruino itself does not), so a wrong CA fails here.

import { Socket, connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { isIP } from "node:net";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import vm from "node:vm";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { removalScript } from "../check/espruino-builtins.ts";
import { caFileFor } from "../build/ca.ts";
import { CA_FILE } from "../../firmware/platform/types.ts";
import type { VirtualI2CDevice, VirtualOneWireBus } from "./virtual-sensors.ts";

export interface SandboxOptions {
  /** The image as npm run flash puts it on a board, with its root CA (<board>.ca.der) beside it. */
  imagePath: string;
  /** Folder that backs Storage (one file per Storage name). */
  storageDir: string;
  /** Every console line of the device. */
  onSerial: (line: string) => void;
  /** The console's output as it comes, unsplit (the REPL forwards it). */
  onSerialText?: (text: string) => void;
  chipId?: string;
  /** Chips on the virtual I2C1 bus by 7-bit address; an address with none NACKs. */
  i2cDevices?: Record<number, VirtualI2CDevice>;
  /** OneWire buses by GPIO (new OneWire(pin)); a pin with none has nothing on it. */
  oneWireBuses?: Record<number, VirtualOneWireBus>;
  /** What analogRead(pin) gives (0..1); an unwired pin floats near 0. */
  analogPins?: Record<number, () => number>;
  /** E.getTemperature() (ESP32: degrees Fahrenheit); absent: NaN, as on a chip without one. */
  chipTemperature?: () => number;
  /** Every write to a socket, for tests that check the bytes on the wire. */
  onSocketWrite?: (socketId: number, bytes: Buffer) => void;
  /** Boot with the clock near 1970, as a board without SNTP does (setTime() sets it). */
  clockUnset?: boolean;
  /**
   * ESP32.deepSleep(us) sleeps this many times faster than real time (default 1); the
   * device's clock still moves by the whole sleep, as the ESP32's RTC does.
   */
  sleepSpeedup?: number;
}

/** One wake of a deep-sleeping image: how long it was awake, then how long it asked to sleep. */
export interface SleepCycle {
  awakeMs: number;
  sleepMs: number;
}

export interface RunningSandbox {
  /** Exceptions that escaped to the event loop ("Uncaught ..." on a board). */
  uncaught: string[];
  /** How often the image rebooted (E.reboot(), or reboot() here: a power cycle). */
  reboots(): number;
  reboot(): void;
  /** Every ESP32.deepSleep() so far. */
  sleeps: SleepCycle[];
  /** Runs a line typed on the console (a command such as tbForgetToken()). */
  typeLine(code: string): void;
  stop(): void;
}


const MAX_STORAGE_NAME = 28;

type Listener = (...args: unknown[]) => void;

/**
 * Espruino-style event emitter for the objects handed to the image. As Espruino does
 * (measured on 2v29), a listener runs with the object that emitted as `this`: set `self`.
 */
function emitter(): { self: unknown; on(event: string, fn: Listener): void; emit(event: string, ...args: unknown[]): void } {
  const listeners: Record<string, Listener[]> = {};
  const events = {
    self: undefined as unknown,
    on(event: string, fn: Listener) {
      (listeners[event] ??= []).push(fn);
    },
    emit(event: string, ...args: unknown[]) {
      for (const fn of listeners[event] ?? []) fn.apply(events.self, args);
    },
  };
  return events;
}

/** Storage.writeJSON's text: JSON with the quotes dropped from keys that are names. */
function espruinoJson(value: unknown): string {
  if (Array.isArray(value)) return "[" + value.map(espruinoJson).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && typeof v !== "function")
      .map(([k, v]) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)) + ":" + espruinoJson(v));
    return "{" + parts.join(",") + "}";
  }
  return JSON.stringify(value) ?? "null";
}

function derToPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return "-----BEGIN CERTIFICATE-----\n" + lines.join("\n") + "\n-----END CERTIFICATE-----\n";
}

export function runEspruinoImage(options: SandboxOptions): RunningSandbox {
  const uncaught: string[] = [];
  const timers = new Map<number, NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let nextTimerId = 1;
  let nextSocketId = 1;
  let stopped = false;
  let consoleBuffer = "";
  mkdirSync(options.storageDir, { recursive: true });
  /** The file behind a Storage name (one file per name, as Espruino's names allow). */
  const storagePath = (name: string) => {
    if (typeof name !== "string" || name.length === 0 || name.length > MAX_STORAGE_NAME) {
      throw new Error("Storage: name must be 1-" + MAX_STORAGE_NAME + " characters: " + JSON.stringify(name));
    }
    return join(options.storageDir, encodeURIComponent(name));
  };
  // Flashed as npm run flash does: the root CA beside the image goes to Storage with it.
  const caFile = caFileFor(options.imagePath);
  if (existsSync(caFile)) copyFileSync(caFile, storagePath(CA_FILE));

  const serial = (text: string) => {
    options.onSerialText?.(text);
    consoleBuffer += text;
    let newline: number;
    while ((newline = consoleBuffer.indexOf("\n")) >= 0) {
      options.onSerial(consoleBuffer.slice(0, newline));
      consoleBuffer = consoleBuffer.slice(newline + 1);
    }
  };

  /** What Espruino prints for an exception nobody caught; the run goes on. */
  const reportUncaught = (e: unknown) => {
    const message = e && typeof e === "object" && "message" in e ? String((e as Error).message) : String(e);
    uncaught.push(message);
    serial("Uncaught Error: " + message + "\n");
  };

  // The device's wall clock: the host's plus an offset that setTime() changes; kept over
  // a reboot, as the ESP32's RTC keeps the time over a software reset.
  let clockOffsetMs = options.clockUnset ? 1000 - Date.now() : 0;
  const deviceNow = () => Date.now() + clockOffsetMs;
  let boots = 0;
  /** When the running image started (host time), for the awake time of a deep-sleep cycle. */
  let bootedAt = Date.now();
  let wakeTimer: NodeJS.Timeout | null = null;
  const sleeps: SleepCycle[] = [];
  /** The running image's global scope, for typed console commands. */
  let current: vm.Context | null = null;
  const teardown = () => {
    for (const handle of timers.values()) clearTimeout(handle);
    timers.clear();
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  /** Starts a fresh interpreter; `run`: and runs the saved code (a power-on), else stays empty (reset()). */
  const boot = (run = true) => {
    const thisBoot = ++boots;
    bootedAt = Date.now();
    /** Runs image code from the host's event loop the way Espruino does: errors are printed, not fatal. */
    const guarded = (fn: unknown, ...args: unknown[]) => {
      // Callbacks of an image that has since rebooted are dead, as on a board.
      if (stopped || thisBoot !== boots || typeof fn !== "function") return;
      try {
        (fn as Listener)(...args);
      } catch (e) {
        reportUncaught(e);
      }
    };

    // Strings may become code: Espruino has eval, and the boot loader runs an update with it.
    const context = vm.createContext({}, { name: "espruino", codeGeneration: { strings: true, wasm: false } });
    vm.runInContext(removalScript(), context);
    const ContextUint8Array = vm.runInContext("Uint8Array", context) as Uint8ArrayConstructor;
    const ContextArrayBuffer = vm.runInContext("ArrayBuffer", context) as ArrayBufferConstructor;
    // Arrays made in the device's realm, so the image's instanceof and Array.isArray hold.
    const ContextArray = vm.runInContext("Array", context) as ArrayConstructor;
    const toContextArray = <T,>(items: T[]): T[] => {
      const array = new ContextArray() as T[];
      for (const item of items) array.push(item);
      return array;
    };

    const toBinaryString = (data: unknown): string => {
      if (typeof data === "string") return data;
      if (data && typeof data === "object" && "length" in data) {
        // Buffer.from keeps the low 8 bits of each element, as Espruino does.
        return Buffer.from(data as ArrayLike<number>).toString("latin1");
      }
      return String(data);
    };

    const i2cDevice = (address: number): VirtualI2CDevice => {
      const device = options.i2cDevices?.[address];
      if (!device) throw new Error("I2C Error: no ACK from 0x" + address.toString(16));
      return device;
    };

    const Storage = {
      read: (name: string, offset?: number, length?: number) => {
        const path = storagePath(name);
        if (!existsSync(path)) return undefined;
        const bytes = readFileSync(path);
        const start = typeof offset === "number" && offset > 0 ? offset : 0;
        if (start >= bytes.length && start > 0) return "";
        return bytes.subarray(start, typeof length === "number" && length > 0 ? start + length : bytes.length).toString("latin1");
      },
      // Espruino's own JSON reader also takes the unquoted keys writeJSON writes.
      readJSON: (name: string, noExceptions?: boolean) => {
        const text = Storage.read(name);
        if (text === undefined) return undefined;
        try {
          return vm.runInContext("JSON.parse", context)(text);
        } catch {
          // Not JSON: maybe writeJSON's unquoted keys, which Espruino reads as an object literal.
        }
        try {
          if (!/^\s*[[{]/.test(text)) throw new Error("Storage.readJSON: not JSON: " + text.slice(0, 40));
          return vm.runInContext("(" + text + ")", context);
        } catch (e) {
          if (noExceptions) return undefined;
          throw e;
        }
      },
      // As jsfWriteFile: offset 0 (re)creates the file with room for `size` bytes (erased
      // flash, 0xFF), a later offset writes into it, and only where it is still erased.
      write: (name: string, data: unknown, offset?: number, size?: number) => {
        const path = storagePath(name);
        const bytes = Buffer.from(toBinaryString(data), "latin1");
        const at = typeof offset === "number" && offset > 0 ? offset : 0;
        let file: Buffer;
        if (at === 0) {
          const total = typeof size === "number" && size > 0 ? size : bytes.length;
          if (total === 0) throw new Error("Can't create zero length file");
          file = Buffer.alloc(total, 0xff);
        } else {
          if (!existsSync(path)) throw new Error("Unable to find or create file");
          file = readFileSync(path);
        }
        if (at + bytes.length > file.length) throw new Error("Too much data for file size");
        for (let i = 0; i < bytes.length; i++) if (file[at + i] !== 0xff) throw new Error("File already written with different data");
        bytes.copy(file, at);
        writeFileSync(path, file);
        return true;
      },
      // As on Espruino 2v29 (measured): keys that are names go unquoted, {base:"x"}, which JSON.parse refuses.
      writeJSON: (name: string, data: unknown) => Storage.write(name, espruinoJson(data)),
      erase: (name: string) => rmSync(storagePath(name), { force: true }),
      list: () => readdirSync(options.storageDir).map((f) => decodeURIComponent(f)),
      getFree: () => 1 << 20,
    };

    const socketModule = (secure: boolean) => ({
      connect: (opts: { host: string; port: number; ca?: string }, onConnect?: () => void) => {
        const events = emitter();
        const socketId = nextSocketId++;
        let socket: Socket;
        if (secure) {
          const ca = typeof opts.ca === "string" && opts.ca.length > 0 ? derToPem(Buffer.from(opts.ca, "latin1")) : undefined;
          if (!ca) serial("WARNING: tls.connect without a CA: no server verification (as on Espruino)\n");
          socket = tlsConnect({
            host: opts.host,
            port: opts.port,
            ca,
            rejectUnauthorized: ca !== undefined,
            servername: isIP(opts.host) ? undefined : opts.host,
            minVersion: "TLSv1.2",
            maxVersion: "TLSv1.2",
          });
          socket.once("secureConnect", () => guarded(() => events.emit("connect")));
        } else {
          socket = netConnect({ host: opts.host, port: opts.port });
          socket.once("connect", () => guarded(() => events.emit("connect")));
        }
        // Espruino's connect callback is the socket's "connect" listener: `this` is the socket.
        if (typeof onConnect === "function") events.on("connect", onConnect);
        sockets.add(socket);
        socket.on("data", (chunk: Buffer) => guarded(() => events.emit("data", chunk.toString("latin1"))));
        socket.on("end", () => guarded(() => events.emit("end")));
        socket.on("error", (error: NodeJS.ErrnoException) => {
          guarded(() => events.emit("error", { code: -1, message: (error.code ? error.code + ": " : "") + error.message }));
        });
        socket.on("close", (hadError: boolean) => {
          sockets.delete(socket);
          guarded(() => events.emit("close", hadError));
        });
        const espruinoSocket = {
          on: (event: string, fn: Listener) => events.on(event, fn),
          // Espruino writes String(data) for anything that is not a string (measured): a
          // Uint8Array goes out as "16,2,0,0". The sandbox does the same, so such a bug shows.
          write: (data: unknown) => {
            const bytes = Buffer.from(typeof data === "string" ? data : String(data), "latin1");
            options.onSocketWrite?.(socketId, bytes);
            if (!socket.destroyed) socket.write(bytes);
            return true;
          },
          end: () => socket.end(),
        };
        events.self = espruinoSocket;
        return espruinoSocket;
      },
    });

    const wifiEvents = emitter();
    const modules: Record<string, unknown> = {
      net: socketModule(false),
      tls: socketModule(true),
      Storage,
      // Espruino's crypto module (mbedtls): one whole message in, the digest as an ArrayBuffer.
      crypto: Object.fromEntries(
        ["SHA1", "SHA224", "SHA256", "SHA384", "SHA512"].map((name) => [
          name,
          (data: unknown) => {
            const digest = createHash(name.replace("SHA", "sha")).update(Buffer.from(toBinaryString(data), "latin1")).digest();
            const buffer = new ContextArrayBuffer(digest.length);
            new ContextUint8Array(buffer).set(digest);
            return buffer;
          },
        ])
      ),
      Wifi: {
        connect: (_ssid: string, _opts: unknown, callback?: (err: string | null) => void) => {
          setTimeout(() => {
            guarded(callback, null);
            guarded(() => wifiEvents.emit("connected", { ip: "127.0.0.1", netmask: "255.0.0.0", gw: "127.0.0.1" }));
          }, 50);
        },
        on: (event: string, fn: Listener) => wifiEvents.on(event, fn),
        // With the clock unset on purpose, SNTP is unavailable too (throws, like the Linux build that has no Wifi module).
      setSNTP: () => {
        if (options.clockUnset) throw new Error("SNTP unavailable in this sandbox run");
      },
        getIP: () => ({ ip: "127.0.0.1" }),
      getStatus: () => ({ station: "connected", rssi: -60 }),
      },
    };
    wifiEvents.self = modules.Wifi;

    // As Espruino's: arguments after the delay are passed to the callback.
    const setTimer = (fn: unknown, ms: unknown, repeat: boolean, args: unknown[]) => {
      const id = nextTimerId++;
      const delay = typeof ms === "number" && ms > 0 ? ms : 0;
      const handle = repeat
        ? setInterval(() => guarded(fn, ...args), delay)
        : setTimeout(() => {
            timers.delete(id);
            guarded(fn, ...args);
          }, delay);
      timers.set(id, handle);
      return id;
    };
    const clearTimer = (id: unknown) => {
      const handle = timers.get(id as number);
      if (handle) {
        clearTimeout(handle);
        timers.delete(id as number);
      }
    };

    const globals: Record<string, unknown> = {
      console: { log: (...args: unknown[]) => serial(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ") + "\n") },
      print: (...args: unknown[]) => serial(args.map((a) => String(a)).join(" ") + "\n"),
      // The REPL's commands the espruino CLI uses: reset() empties RAM (Storage stays) and
      // runs nothing; load() restarts and runs the saved code.
      reset: () => {
        if (stopped) return;
        teardown();
        boot(false);
      },
      load: () => {
        setImmediate(reboot);
      },
      echo: () => undefined,
      require: (name: string) => {
        if (!(name in modules)) throw new Error('Module "' + name + '" not found');
        return modules[name];
      },
      setTimeout: (fn: unknown, ms: unknown, ...args: unknown[]) => setTimer(fn, ms, false, args),
      setInterval: (fn: unknown, ms: unknown, ...args: unknown[]) => setTimer(fn, ms, true, args),
      clearTimeout: clearTimer,
      clearInterval: clearTimer,
      getSerial: () => options.chipId ?? "5ccf7f00-sim0-0001",
      // Microsecond resolution, as on a board (latency figures need better than Date.now()).
      getTime: () => (performance.timeOrigin + performance.now() + clockOffsetMs) / 1000,
    setTime: (seconds: number) => {
      clockOffsetMs = seconds * 1000 - Date.now();
    },
      atob: (text: string) => Buffer.from(text, "base64").toString("latin1"),
      btoa: (text: string) => Buffer.from(text, "latin1").toString("base64"),
      E: {
        // The image turns on pretokenise (rollup.config.mjs): nothing to do in V8.
        setFlags: () => undefined,
        toString: (data: unknown) => toBinaryString(data),
        toUint8Array: (data: unknown) => {
          const bytes = Buffer.from(toBinaryString(data), "latin1");
          const result = new ContextUint8Array(bytes.length);
          for (let i = 0; i < bytes.length; i++) result[i] = bytes[i];
          return result;
        },
        // A hard reset: everything of this run goes, the saved code boots again.
        reboot: () => {
          serial("[sandbox] E.reboot(): rebooting\n");
          setImmediate(reboot);
        },
        // What the espruino CLI sends to save code when it does not know the firmware's version.
        setBootCode: (code: unknown) => {
          Storage.write(".bootcde", toBinaryString(code));
        },
        on: () => undefined,
        hwRand: () => 0,
        // Unsigned, as Espruino 2v29 returns it.
        getTemperature: () => (options.chipTemperature ? options.chipTemperature() : NaN),
        CRC32: (data: unknown) => crc32(Buffer.from(toBinaryString(data), "latin1")) >>> 0,
      },
      process: {
        // The espruino CLI reads VERSION (how to upload) and MODULES (what not to fetch): the
        // Linux build of 2v29 lists timer,Flash,Storage,heatshrink,fs,net,dgram,tls,http,
        // NetworkJS,TelnetServer,crypto; the ESP32 build adds Wifi and ESP32.
        env: {
          VERSION: "2v29-sandbox",
          BOARD: "ESP32",
          SERIAL: options.chipId ?? "5ccf7f00-sim0-0001",
          MODULES: "timer,Flash,Storage,heatshrink,fs,net,dgram,tls,http,NetworkJS,Wifi,ESP32,TelnetServer,crypto",
        },
        version: "2v29-sandbox",
      memory: () => ({ free: 0, usage: 0, total: 0, blocksize: 14 }),
      },
      OneWire: class {
        private readonly bus: VirtualOneWireBus | undefined;
        constructor(pin: number) {
          this.bus = options.oneWireBuses?.[pin];
        }
        reset() {
          return this.bus ? this.bus.reset() : false;
        }
        search() {
          // Espruino returns a new array of ROM strings, empty when nothing answers.
          return toContextArray(this.bus ? this.bus.search() : []);
        }
        select(rom: string) {
          if (typeof rom !== "string" || rom.length !== 16) throw new Error("Invalid OneWire device address " + JSON.stringify(rom));
          this.bus?.select(rom);
        }
        skip() {
          this.bus?.write([0xcc]);
        }
        write(data: number | number[]) {
          this.bus?.write(typeof data === "number" ? data : Array.from(data));
        }
        read(count?: number) {
          // No bus: the pulled-up line reads all ones.
          const bytes = this.bus ? this.bus.read(count ?? 1) : new Array(count ?? 1).fill(0xff);
          return count === undefined ? bytes[0] : toContextArray(bytes);
        }
      },
      analogRead: (pin: number) => {
        const read = options.analogPins?.[pin];
        return read ? Math.min(1, Math.max(0, read())) : 0.01;
      },
      ESP32: {
        // Deep sleep: the chip stops (RAM lost), then boots again; Storage stays.
        deepSleep: (us: number) => {
          const sleepMs = Number(us) / 1000;
          const awakeMs = Date.now() - bootedAt;
          sleeps.push({ awakeMs, sleepMs });
          serial("[sandbox] deep sleep " + (sleepMs / 1000).toFixed(1) + " s after " + (awakeMs / 1000).toFixed(1) + " s awake (cycle " + sleeps.length + ")\n");
          teardown();
          // What the image still runs after this call, and its callbacks, are dead, as on the chip.
          boots++;
          const waitMs = sleepMs / (options.sleepSpeedup ?? 1);
          wakeTimer = setTimeout(() => {
            wakeTimer = null;
            if (stopped) return;
            clockOffsetMs += sleepMs - waitMs;
            boot();
          }, waitMs);
        },
      },
      I2C1: {
        setup: () => undefined,
        writeTo: (address: number, ...data: unknown[]) => {
          const bytes = Buffer.from(data.map((d) => toBinaryString(typeof d === "number" ? [d] : d)).join(""), "latin1");
          i2cDevice(address).write(new Uint8Array(bytes));
        },
        readFrom: (address: number, length: number) => {
          const bytes = i2cDevice(address).read(length);
          const result = new ContextUint8Array(bytes.length);
          for (let i = 0; i < bytes.length; i++) result[i] = bytes[i];
          return result;
        },
      },
    };
    for (const [name, value] of Object.entries(globals)) context[name] = value;
    (vm.runInContext("Date", context) as DateConstructor).now = deviceNow;
    // Espruino's `global`: console commands the image defines live there.
    context.global = vm.runInContext("globalThis", context);
    current = context;

    if (!run) return;
    // Like a board: the code saved to flash (.bootcde) boots, else the image given.
    const saved = storagePath(".bootcde");
    const source = existsSync(saved) ? readFileSync(saved, "latin1") : readFileSync(options.imagePath, "utf8");
    try {
      vm.runInContext(source, context, { filename: existsSync(saved) ? ".bootcde" : options.imagePath });
    } catch (e) {
      reportUncaught(e);
    }

  };
  const reboot = () => {
    if (stopped) return;
    teardown();
    rebootCount++;
    boot();
  };
  let rebootCount = 0;
  boot();

  return {
    uncaught,
    reboots: () => rebootCount,
    sleeps,
    reboot,
    typeLine: (code: string) => {
      // What typing a line on the serial console does: run it, print the result or the error.
      try {
        const result = vm.runInContext(code, current!, { filename: "console" });
        if (result !== undefined) serial("=" + (typeof result === "string" ? JSON.stringify(result) : String(result)) + "\n");
      } catch (e) {
        reportUncaught(e);
      }
    },
    stop: () => {
      stopped = true;
      if (wakeTimer !== null) clearTimeout(wakeTimer);
      teardown();
    },
  };
}
