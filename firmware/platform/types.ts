// The one contract between device code and a runtime. Everything under firmware/
// outside platform/ reaches Espruino or Moddable only through these interfaces.

export type TimerHandle = unknown;

/** Wall-clock times before this (Sep 2020) mean the clock was never set: both runtimes boot near 1970. */
export const CLOCK_SET_AFTER_MS = 1600000000000;

/**
 * Espruino: the root CA as DER, a Storage file that npm run flash writes beside the image.
 * Kept out of the image, whose size is RAM on Espruino; an update replaces the image, not it.
 */
export const CA_FILE = "tb-ca.der";

export interface SocketOptions {
  host: string;
  port: number;
  /**
   * The root CA is not in the image: each runtime reads it from flash when a TLS link opens
   * (Moddable: the ca-root.der resource; Espruino: the Storage file tb-ca.der, CA_FILE).
   */
  tls: boolean;
}

/**
 * What a connection reports. The session itself implements these: no closures per
 * connection (on Espruino each function object costs JsVars for as long as it lives). Each
 * call names its socket, so that events of a socket already let go can be told apart.
 */
export interface SocketHandlers {
  socketOpened(socket: Socket): void;
  socketData(socket: Socket, bytes: Uint8Array): void;
  /** Called exactly once per socket, whatever closed it. */
  socketClosed(socket: Socket, reason: string): void;
}

/** An open connection: what Platform.connect returned, only ever handed back to the platform. */
export type Socket = object;

export type WifiState = "connecting" | "connected" | "disconnected";

/** Espruino's I2C method names, so that its I2C1 is the bus itself (no wrapper objects for the run). */
export interface I2CBus {
  writeTo(address: number, bytes: Uint8Array): void;
  readFrom(address: number, length: number): Uint8Array;
}

export interface I2CPins {
  sda: number;
  scl: number;
  bitrate: number;
}

/** A OneWire bus on one pin. ROM codes are 16 hex digits, family code first (Espruino's form). */
export interface OneWireBus {
  /** Reset pulse; true when a device answered with a presence pulse. */
  reset(): boolean;
  /** Every device's ROM code, by the standard ROM search. */
  search(): string[];
  /** Reset, then Match ROM: the next command goes to this device alone. */
  select(rom: string): void;
  /** `power`: keep the line driven high afterwards (a conversion by a parasite-powered device). */
  write(bytes: number[], power: boolean): void;
  read(count: number): Uint8Array;
}

export interface Platform {
  readonly runtime: string;
  /** Stable per chip; used for the client id and to seed jitter (Math.random is unseeded on Espruino). */
  chipId(): string;
  /** Wall-clock milliseconds since the epoch; meaningless until clockIsSet(). */
  now(): number;
  clockIsSet(): boolean;
  /**
   * Calls `callback(a, b)` once after `ms`. Passing what it needs as `a` and `b` rather than
   * in a closure saves a function object and its scope per timer (Espruino's own setTimeout).
   */
  setTimeout<A, B>(callback: (a: A, b: B) => void, ms: number, a?: A, b?: B): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  log(line: string): void;
  connect(options: SocketOptions, handlers: SocketHandlers): Socket;
  /** Queues bytes for sending on `socket`; may throw if it can no longer send. */
  socketWrite(socket: Socket, bytes: Uint8Array): void;
  /** Closes `socket`; its socketClosed follows, at once or later. */
  socketClose(socket: Socket): void;
  /** Whether this board must join Wi-Fi itself before using the network. */
  hasWifi: boolean;
  /** Starts joining; reports every state change. Retries are the caller's. */
  wifiConnect(ssid: string, password: string, onState: (state: WifiState, detail: string) => void): void;
  /**
   * Starts setting the clock from the network (SNTP) where the runtime can. `shiftMs`:
   * how far the clock jumped, so times taken before can be corrected.
   */
  syncClock(onDone: (ok: boolean, shiftMs: number) => void): void;
  /** Sets the wall clock (ms since the epoch), e.g. from ThingsBoard's getCurrentTime. */
  setClock(ms: number): void;
  /**
   * What the runtime tells about itself for the client attributes (runtime_version, ip,
   * rssi, free_memory in bytes, boot_reason); a key is absent where the runtime has no
   * answer. Set by the entry only on boards with the attributes feature.
   */
  facts?: () => { [key: string]: string | number };
  /** Small persistent key/value store (flash on devices). Returns null when absent. */
  storageRead(key: string): string | null;
  storageWrite(key: string, value: string): void;
  storageRemove(key: string): void;
  /**
   * Writes `bytes` into the flash file `name` at `offset`: offset 0 (re)creates it with room
   * for `size` bytes, later writes fill it in, each part once (flash is written once between
   * erases). Only where the ota feature is (Espruino's Storage files, Moddable's mod partition).
   */
  fileWrite?: (name: string, bytes: Uint8Array, offset: number, size: number) => void;
  /**
   * The checksum of the first `size` bytes of the flash file `name` as lowercase hex, by
   * ThingsBoard's algorithm name (SHA256, SHA384, SHA512, CRC32, MD5 where the runtime has
   * it); "" when the runtime cannot compute that one.
   */
  fileDigest?: (name: string, algorithm: string, size: number) => string;
  /**
   * Makes a verified file bootable, where writing it did not (Moddable: the mod archive's
   * header is written last, so that a partly written archive is never mapped at boot).
   */
  fileSeal?: (name: string, size: number) => void;
  /**
   * Whether updates share one place in flash (Moddable's mod partition) that cannot be
   * written while the update in it runs: the device then restarts into the flashed
   * firmware to download the next one.
   */
  oneUpdateSlot?: boolean;
  i2c(pins: I2CPins): I2CBus;
  /** Set by the entry only on boards with a OneWire sensor. */
  oneWire?: (pin: number) => OneWireBus;
  /** The ADC's reading of `pin` as a fraction of full scale (0..1); only on boards with an analog sensor. */
  analogRead?: (pin: number) => number;
  /** The chip's own temperature sensor, raw as the runtime gives it (ESP32: degrees Fahrenheit); only where a board uses it. */
  chipTemperature?: () => number;
  restart(): void;
  /** Deep sleep for `ms`, then a boot (RAM lost, flash kept); only on boards with the sleep feature. */
  deepSleep?: (ms: number) => void;
  /** Makes `fn` a command the user can type on the serial console (where the runtime has one). */
  command(name: string, fn: (...args: unknown[]) => void): void;
}
