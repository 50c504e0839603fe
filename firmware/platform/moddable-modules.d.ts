// The Moddable modules the moddable adapter imports, as typed in the Moddable SDK's
// typings/ folder (socket, securesocket, timer, preference, wifi, sntp, time, net,
// Resource, embedded:io/i2c), and tb-restart. Only firmware/platform/moddable.ts may import them;
// the generated entry also imports flash, crypt and modules for updates.

declare module "socket" {
  export class Socket {
    constructor(options: { host: string; port: number });
    callback: (message: number, value?: number) => void;
    read(type: typeof ArrayBuffer): ArrayBuffer;
    write(data: ArrayBuffer): void;
    close(): void;
  }
}

declare module "securesocket" {
  export default class SecureSocket {
    constructor(options: { host: string; port: number; secure: { [key: string]: unknown } });
    callback: (message: number, value?: number) => void;
    read(type: typeof ArrayBuffer): ArrayBuffer;
    write(data: ArrayBuffer): void;
    close(): void;
  }
}

declare module "timer" {
  const Timer: {
    set(callback: () => void, ms: number): unknown;
    clear(id: unknown): void;
  };
  export default Timer;
}

declare module "preference" {
  const Preference: {
    get(domain: string, key: string): string | number | boolean | ArrayBuffer | undefined;
    set(domain: string, key: string, value: string): void;
    delete(domain: string, key: string): void;
  };
  export default Preference;
}

declare module "wifi" {
  export default class WiFi {
    constructor(options: { ssid: string; password?: string }, callback: (message: "connect" | "gotIP" | "disconnect") => void);
    close(): void;
  }
}

declare module "sntp" {
  export default class SNTP {
    constructor(options: { host: string }, callback: (message: number, value?: number) => void);
  }
}

declare module "time" {
  const Time: { set(seconds: number): void };
  export default Time;
}

declare module "net" {
  const Net: { get(property: "MAC" | "IP"): string | undefined; get(property: "RSSI"): number | undefined };
  export default Net;
}

declare module "embedded:io/i2c" {
  export default class I2C {
    constructor(options: { data: number; clock: number; hz: number; address: number });
    write(buffer: ArrayBuffer | Uint8Array): void;
    read(byteLength: number): ArrayBuffer;
    close(): void;
  }
}

declare module "Resource" {
  export default class Resource {
    constructor(path: string);
    readonly byteLength: number;
  }
}

declare function trace(...text: string[]): void;

declare module "onewire" {
  export default class OneWire {
    constructor(options: { pin: number });
    reset(): boolean;
    /** ROM codes, CRC byte first (modonewire.c swaps them). */
    search(): ArrayBuffer[];
    select(rom: ArrayBuffer): void;
    write(data: number | Uint8Array): void;
    read(count: number): number | ArrayBuffer | Uint8Array;
  }
}

declare module "tb-restart" {
  /** This project's module (tools/build/moddable-manifest.ts): System.restart on the ESP32, a stand-in in the simulator. */
  export default function restartDevice(): void;
}
