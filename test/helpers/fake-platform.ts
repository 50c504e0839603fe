// A platform for unit tests: a manual clock with ordered timers and sockets whose
// server side the test drives byte by byte.

import type { I2CBus, Platform, SocketHandlers, SocketOptions, WifiState } from "../../firmware/platform/types.ts";

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

export class FakeClock {
  now = 0;
  private timers: Timer[] = [];
  private nextId = 1;

  setTimeout(callback: () => void, ms: number): number {
    const timer = { id: this.nextId++, at: this.now + ms, callback };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(id: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  pending(): number {
    return this.timers.length;
  }

  /** Time of the earliest timer, or null. */
  nextAt(): number | null {
    return this.timers.length === 0 ? null : Math.min(...this.timers.map((t) => t.at));
  }

  /** Runs every timer due within `ms`, in time order, advancing the clock as it goes. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.callback();
    }
    this.now = end;
  }
}

export class FakeSocket {
  written: Uint8Array[] = [];
  closed = false;
  constructor(readonly options: SocketOptions, readonly handlers: SocketHandlers) {}

  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error("socket closed");
    this.written.push(bytes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.socketClosed(this, "closed locally");
  }

  /** The server side: completes the connect. */
  open(): void {
    this.handlers.socketOpened(this);
  }

  receive(bytes: number[]): void {
    this.handlers.socketData(this, new Uint8Array(bytes));
  }

  /** The server or network drops the link. */
  drop(reason = "connection reset"): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.socketClosed(this, reason);
  }

  /** First bytes of every packet written so far, e.g. 0x10 CONNECT, 0x32 PUBLISH QoS 1. */
  packetTypes(): number[] {
    return this.written.map((b) => b[0]);
  }
}

export interface FakePlatform extends Platform {
  clock: FakeClock;
  sockets: FakeSocket[];
  logs: string[];
  wifiStates: ((state: WifiState, detail: string) => void)[];
  storage: Record<string, string>;
  /** Wall clock minus the fake monotonic clock; 0 (1970) until the clock is set. */
  wallOffset: number;
  restarts: number;
  commands: Record<string, (...args: unknown[]) => void>;
}

export function fakePlatform(options: { hasWifi?: boolean; bus?: I2CBus; clockSet?: boolean } = {}): FakePlatform {
  const clock = new FakeClock();
  const platform: FakePlatform = {
    runtime: "test",
    hasWifi: options.hasWifi ?? false,
    clock,
    sockets: [],
    logs: [],
    wifiStates: [],
    storage: {},
    wallOffset: options.clockSet ?? true ? 1700000000000 : 0,
    restarts: 0,
    commands: {},
    chipId: () => "24:0a:c4:12:34:56",
    now: () => platform.wallOffset + clock.now,
    clockIsSet: () => platform.wallOffset > 0,
    setTimeout: (callback, ms, a, b) => clock.setTimeout(() => callback(a!, b!), ms),
    clearTimeout: (handle) => clock.clearTimeout(handle),
    log: (line) => platform.logs.push(line),
    connect: (socketOptions, handlers) => {
      const socket = new FakeSocket(socketOptions, handlers);
      platform.sockets.push(socket);
      return socket;
    },
    socketWrite: (socket, bytes) => (socket as FakeSocket).write(bytes),
    socketClose: (socket) => (socket as FakeSocket).close(),
    wifiConnect: (_ssid, _password, onState) => {
      platform.wifiStates.push(onState);
      onState("connecting", "");
    },
    syncClock: (onDone) => onDone(platform.wallOffset > 0, 0),
    setClock: (ms) => {
      platform.wallOffset = ms - clock.now;
    },
    storageRead: (key) => (key in platform.storage ? platform.storage[key] : null),
    storageWrite: (key, value) => {
      platform.storage[key] = value;
    },
    storageRemove: (key) => {
      delete platform.storage[key];
    },
    i2c: () => {
      if (!options.bus) throw new Error("no I2C bus in this test");
      return options.bus;
    },
    command: (name, fn) => {
      platform.commands[name] = fn;
    },
    restart: () => {
      platform.restarts++;
    },
  };
  return platform;
}
