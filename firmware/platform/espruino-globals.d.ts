// The few Espruino globals the espruino adapter uses (signatures from Espruino's source).
// Only firmware/platform/espruino.ts may touch them.

// Espruino calls a socket's listeners, and connect's callback, with the socket as `this`
// (measured on 2v29).
interface EspruinoSocket {
  write(data: string): boolean;
  end(): void;
  on(event: "data", listener: (data: string) => void): void;
  on(event: "close", listener: (hadError: boolean) => void): void;
  on(event: "end", listener: () => void): void;
  on(event: "error", listener: (error: { code: number; message: string }) => void): void;
}

interface EspruinoI2C {
  setup(options: { sda: number | string; scl: number | string; bitrate: number }): void;
  writeTo(address: number, data: Uint8Array): void;
  readFrom(address: number, length: number): Uint8Array;
}

interface EspruinoOneWire {
  reset(): boolean;
  /** ROM codes as 16 hex digits, family code first. */
  search(): string[];
  select(rom: string): void;
  write(data: number[], power: boolean): void;
  read(count: number): number[];
}
declare const OneWire: { new (pin: number): EspruinoOneWire };
/** 0..1 of full scale (ESP32: ADC1 pins 32-39). */
declare function analogRead(pin: number): number;

interface EspruinoStorage {
  read(name: string, offset?: number, length?: number): string | undefined;
  /** Offset 0 creates the file with room for `size` bytes; a later offset writes into it (once: flash). */
  write(name: string, data: string, offset?: number, size?: number): boolean;
  erase(name: string): void;
}

interface EspruinoWifi {
  connect(ssid: string, options: { password: string }, callback: (error: string | null) => void): void;
  on(event: "connected", listener: (details: { ip: string }) => void): void;
  on(event: "disconnected", listener: (details: { reason?: string }) => void): void;
  setSNTP(server: string, timezoneOffset: number): void;
  getIP(): { ip?: string } | undefined;
  /** ESP32: {station, ssid, rssi, ...} (libs/network/esp32/jswrap_esp32_network.c). */
  getStatus(): { rssi?: number } | undefined;
}

interface EspruinoNet {
  connect(options: { host: string; port: number; ca?: string }, onConnect: () => void): EspruinoSocket;
}

/** SHA1, SHA224, SHA256, SHA384, SHA512 where the build has them (ESP32 and Linux: all). */
interface EspruinoCrypto {
  [algorithm: string]: ((data: string) => ArrayBuffer) | undefined;
}

interface EspruinoE {
  CRC32(data: string): number;
  toString(data: Uint8Array): string;
  toUint8Array(data: string): Uint8Array;
  reboot(): void;
  /** ESP32: the chip sensor's raw value, in degrees Fahrenheit (jshReadTemperature). */
  getTemperature(): number;
}

declare function require(name: "net" | "tls"): EspruinoNet;
declare function require(name: "Storage"): EspruinoStorage;
declare function require(name: "Wifi"): EspruinoWifi;
declare function require(name: "crypto"): EspruinoCrypto;
declare function getSerial(): string;
declare function setTimeout(callback: () => void, ms: number): number;
declare function clearTimeout(id: number): void;
declare function atob(text: string): string;
declare function setTime(seconds: number): void;
/** Espruino's global object: what is set here can be called from the REPL. */
declare const global: { [name: string]: unknown };
interface EspruinoProcess {
  version: string;
  memory(): { free: number; usage: number; total: number; blocksize: number };
}
declare const process: EspruinoProcess;
declare const E: EspruinoE;
/** ESP32 only: deep sleep for `us` microseconds, then a reset (targets/esp32/jswrap_esp32.c). */
declare const ESP32: { deepSleep(us: number): void };
declare const I2C1: EspruinoI2C;
declare const console: { log(text: string): void };
