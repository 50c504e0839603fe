// A local emulator of ThingsBoard's MQTT device API (../shared/reference/thingsboard-device-mqtt.md),
// for the simulator and the tests: access-token devices, client and shared attributes
// with requests and pushed updates, server-side RPC with a timeout, the client-side RPCs
// getCurrentTime and getSessionLimits, per-device rate limits and maxPayloadSize (a
// rejected message gets no PUBACK and the session is closed, as ThingsBoard does),
// only ThingsBoard's subscription filters, provisioning and claiming; v1 and v2 topics.
// State is kept per device in one JSON file when a state file is given.
//
// MQTT framing is mqtt-packet's; everything above it is ThingsBoard's behaviour.

import { createServer as createTcpServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import mqttPacket from "mqtt-packet";
import type { IConnectPacket, IPublishPacket, ISubscribePacket, Packet } from "mqtt-packet";
import type { TlsFiles } from "./dev-ca.ts";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Attributes = { [key: string]: JsonValue };

export interface TelemetryPoint {
  ts: number;
  values: Attributes;
}

export interface DeviceRecord {
  name: string;
  token: string;
  client: Attributes;
  shared: Attributes;
  /** The last telemetry points received, oldest first (bounded). */
  telemetry: TelemetryPoint[];
  claim: { secretKey: string; expiresAt: number } | null;
}

export interface SessionLimits {
  maxPayloadSize: number;
  maxInflightMessages: number;
  rateLimits: { messages: string; telemetryMessages: string; telemetryDataPoints: string };
}

export interface EmulatorOptions {
  /** JSON file that keeps devices, attributes, telemetry and provisioning keys between runs. */
  stateFile?: string;
  plainPort?: number;
  tlsPort?: number;
  tls?: TlsFiles;
  /** Devices known from the start (added to the state when absent). */
  devices?: { name: string; token: string }[];
  /** Provisioning keys: a device that presents one with its secret gets an access token. */
  provisionKeys?: { key: string; secret: string }[];
  limits?: Partial<Omit<SessionLimits, "rateLimits">> & { rateLimits?: Partial<SessionLimits["rateLimits"]> };
  /** false: getSessionLimits gets no answer (a server without it), so the device paces by its configured defaults. */
  answerSessionLimits?: boolean;
  /** Server-side RPC timeout (ThingsBoard's default is 10 s). */
  rpcTimeoutMs?: number;
  /** A provisioning session is closed this long after its answer (ThingsBoard: 60 s). */
  provisionCloseMs?: number;
  onEvent?: (line: string) => void;
  onTelemetry?: (device: string, payload: string) => void;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxPayloadSize: 65536,
  maxInflightMessages: 100,
  rateLimits: { messages: "200:1,6000:60", telemetryMessages: "100:1,3000:60", telemetryDataPoints: "500:1,15000:60" },
};

const TELEMETRY_KEPT = 1000;

/** ThingsBoard's accepted subscription filters (others get SUBACK 0x80). */
const ALLOWED_FILTERS = [
  "v1/devices/me/attributes",
  "v1/devices/me/attributes/response/+",
  "v1/devices/me/rpc/request/+",
  "v1/devices/me/rpc/response/+",
  "v2/fw/response/+/chunk/+",
  "v2/fw/error",
  "v2/a",
  "v2/a/res/+",
  "v2/r/req/+",
  "v2/r/res/+",
];

/** "count:seconds,count:seconds": ThingsBoard's rate limit syntax. */
export class RateLimit {
  private readonly windows: { count: number; ms: number; spent: number[] }[];

  constructor(spec: string) {
    this.windows = spec
      .split(",")
      .filter((part) => part.trim() !== "")
      .map((part) => {
        const [count, secondsText] = part.split(":").map((n) => Number(n));
        if (!Number.isInteger(count) || !Number.isFinite(secondsText) || count <= 0 || secondsText <= 0) {
          throw new Error("rate limit \"" + spec + "\": expected count:seconds[,count:seconds...]");
        }
        return { count, ms: secondsText * 1000, spent: [] };
      });
  }

  /** Takes n from every window; false (and nothing taken) when any would go over. */
  tryTake(n: number, now: number): boolean {
    for (const w of this.windows) {
      while (w.spent.length > 0 && w.spent[0] <= now - w.ms) w.spent.shift();
      if (w.spent.length + n > w.count) return false;
    }
    for (const w of this.windows) for (let i = 0; i < n; i++) w.spent.push(now);
    return true;
  }
}

interface Session {
  socket: Socket;
  device: DeviceRecord | null;
  provisioning: boolean;
  clientId: string;
  version: 1 | 2 | null;
  subscriptions: Set<string>;
  nextPacketId: number;
  limits: { messages: RateLimit; telemetryMessages: RateLimit; telemetryDataPoints: RateLimit };
  closed: boolean;
}

interface PendingRpc {
  id: number;
  device: string;
  method: string;
  params: JsonValue;
  /** Written to a session; back to false when that session ends before the PUBACK. */
  sent: boolean;
  delivered: boolean;
  resolve: (reply: JsonValue) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** What changed in the emulator, as the dashboard follows it (tools/sim/dashboard.ts). */
export type EmulatorChange =
  | { kind: "session"; device: string; online: boolean; clientId: string | null }
  | { kind: "seen"; device: string; at: number }
  | { kind: "telemetry"; device: string; points: TelemetryPoint[] }
  | { kind: "client"; device: string; values: Attributes }
  | { kind: "shared"; device: string; values: Attributes; deleted: string[] }
  | { kind: "log"; line: string };

type Waiter = { device: string; predicate: (topic: string, body: JsonValue) => boolean; resolve: (body: JsonValue) => void; timer: NodeJS.Timeout };

export class ThingsBoardEmulator {
  readonly limits: SessionLimits;
  plainPort = 0;
  tlsPort: number | null = null;
  private readonly options: EmulatorOptions;
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly provisionKeys = new Map<string, string>();
  private readonly sessions = new Set<Session>();
  private readonly pendingRpc: PendingRpc[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly servers: Server[] = [];
  private nextRpcId = 1;
  private readonly firmware = new Map<string, FirmwarePackage>();
  /** Every chunk asked for, per device: "requestId/chunk" (what the tests check resumption by). */
  readonly chunkRequests = new Map<string, string[]>();
  /** Test faults, once per chunk: answered with a byte flipped; not answered; the session closed instead of an answer. */
  readonly firmwareFaults = { corrupt: new Set<number>(), drop: new Set<number>(), disconnect: new Set<number>() };
  private saveTimer: NodeJS.Timeout | null = null;
  private readonly watchers = new Set<(change: EmulatorChange) => void>();
  /** When each device last sent anything (ms), kept in memory only. */
  private readonly lastSeen = new Map<string, number>();

  constructor(options: EmulatorOptions) {
    this.options = options;
    const configured = options.limits ?? {};
    this.limits = {
      maxPayloadSize: configured.maxPayloadSize ?? DEFAULT_LIMITS.maxPayloadSize,
      maxInflightMessages: configured.maxInflightMessages ?? DEFAULT_LIMITS.maxInflightMessages,
      rateLimits: { ...DEFAULT_LIMITS.rateLimits, ...(configured.rateLimits ?? {}) },
    };
    for (const spec of Object.values(this.limits.rateLimits)) new RateLimit(spec);
    this.load();
    for (const d of options.devices ?? []) if (!this.deviceByToken(d.token)) this.addDevice(d.name, d.token);
    for (const k of options.provisionKeys ?? []) this.provisionKeys.set(k.key, k.secret);
  }

  async listen(): Promise<void> {
    const plain = createTcpServer((socket) => this.accept(socket));
    this.plainPort = await listenOn(plain, this.options.plainPort ?? 0);
    this.servers.push(plain);
    if (this.options.tls) {
      const secure = createTlsServer(
        // The chain, leaf then CA, as servers send it: Moddable checks the leaf's names only when a certificate follows it.
        { key: readFileSync(this.options.tls.serverKey), cert: Buffer.concat([readFileSync(this.options.tls.serverCert), readFileSync(this.options.tls.caCert)]) },
        (socket) => this.accept(socket)
      );
      this.tlsPort = await listenOn(secure, this.options.tlsPort ?? 0);
      this.servers.push(secure);
    }
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.socket.destroy();
    for (const rpc of this.pendingRpc.splice(0)) {
      clearTimeout(rpc.timer);
      rpc.reject(new Error("emulator stopped"));
    }
    for (const w of this.waiters.splice(0)) clearTimeout(w.timer);
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.saveNow();
  }

  // ---- what a user (npm run tb) or a test does on the server side ----

  addDevice(name: string, token: string): DeviceRecord {
    if (this.devices.has(name)) throw new Error("a device named \"" + name + "\" exists already");
    const device: DeviceRecord = { name, token, client: {}, shared: {}, telemetry: [], claim: null };
    this.devices.set(name, device);
    this.save();
    this.changed({ kind: "session", device: name, online: false, clientId: null });
    return device;
  }

  addProvisionKey(key: string, secret: string): void {
    this.provisionKeys.set(key, secret);
    this.save();
  }

  listDevices(): { name: string; online: boolean; clientId: string | null; lastTelemetry: number | null; lastSeen: number | null }[] {
    return [...this.devices.values()].map((d) => {
      const session = this.sessionOf(d.name);
      return {
        name: d.name,
        online: session !== null,
        clientId: session ? session.clientId : null,
        lastTelemetry: d.telemetry.length ? d.telemetry[d.telemetry.length - 1].ts : null,
        lastSeen: this.lastSeen.get(d.name) ?? null,
      };
    });
  }

  device(name: string): DeviceRecord {
    const device = this.devices.get(name);
    if (!device) throw new Error("no device named \"" + name + "\" (known: " + ([...this.devices.keys()].join(", ") || "none") + ")");
    return device;
  }

  /** Sets shared attributes and pushes them to the device when it is subscribed. */
  setShared(name: string, values: Attributes): void {
    const device = this.device(name);
    Object.assign(device.shared, values);
    this.save();
    this.changed({ kind: "shared", device: name, values, deleted: [] });
    this.pushAttributes(device, values);
  }

  deleteShared(name: string, keys: string[]): void {
    const device = this.device(name);
    for (const key of keys) delete device.shared[key];
    this.save();
    this.changed({ kind: "shared", device: name, values: {}, deleted: keys });
    this.pushAttributes(device, { deleted: keys });
  }

  /**
   * Server-side RPC: delivered now if the device is subscribed, else as soon as it
   * subscribes (a persistent RPC); rejected when no reply comes within the timeout.
   */
  rpc(name: string, method: string, params: JsonValue, timeoutMs?: number): Promise<JsonValue> {
    this.device(name);
    return new Promise((resolve, reject) => {
      const rpc: PendingRpc = {
        id: this.nextRpcId++,
        device: name,
        method,
        params,
        sent: false,
        delivered: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pendingRpc.splice(this.pendingRpc.indexOf(rpc), 1);
          reject(new Error("RPC " + method + " to " + name + " timed out after " + (timeoutMs ?? this.rpcTimeout()) + " ms" + (this.sessionOf(name) ? "" : " (device offline)")));
        }, timeoutMs ?? this.rpcTimeout()),
      };
      this.pendingRpc.push(rpc);
      this.deliverRpcs(name);
    });
  }

  /**
   * Assigns a firmware package to a device, as ThingsBoard does when one is set on the
   * device or its profile: the fw_* shared attributes change (pushed when it is online)
   * and its chunks are served on request.
   */
  assignFirmware(name: string, data: Buffer, title: string, version: string, algorithm = "SHA256"): Attributes {
    this.device(name);
    if (data.length === 0) throw new Error("the firmware package is empty");
    const checksum = firmwareChecksum(data, algorithm);
    this.firmware.set(name, { title, version, data });
    const attributes = { fw_title: title, fw_version: version, fw_size: data.length, fw_checksum: checksum, fw_checksum_algorithm: algorithm };
    this.setShared(name, attributes);
    this.event(name + ": firmware " + title + " " + version + " assigned (" + data.length + " B, " + algorithm + " " + checksum + ")");
    return attributes;
  }

  /** Resolves with the next message body the device publishes on a matching topic. */
  waitForPublish(name: string, predicate: (topic: string, body: JsonValue) => boolean, timeoutMs: number): Promise<JsonValue | null> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        device: name,
        predicate,
        resolve: (body) => resolve(body),
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(null);
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Closes a device's session (what a server restart or an operator does). */
  disconnect(name: string): boolean {
    const session = this.sessionOf(name);
    if (!session) return false;
    this.closeSession(session, "closed by the operator");
    return true;
  }

  /** Calls `listener` with every change from now on; returns what stops it. */
  watch(listener: (change: EmulatorChange) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  // ---- the MQTT side ----

  private changed(change: EmulatorChange): void {
    for (const watcher of this.watchers) watcher(change);
  }

  private sessionChanged(name: string): void {
    const session = this.sessionOf(name);
    this.changed({ kind: "session", device: name, online: session !== null, clientId: session ? session.clientId : null });
  }

  /** Notes that a device sent something; told to watchers at most once a second. */
  private seen(name: string, now: number): void {
    const before = this.lastSeen.get(name) ?? 0;
    this.lastSeen.set(name, now);
    if (now - before >= 1000) this.changed({ kind: "seen", device: name, at: now });
  }

  private rpcTimeout(): number {
    return this.options.rpcTimeoutMs ?? 10000;
  }

  private event(line: string): void {
    this.options.onEvent?.(line);
    this.changed({ kind: "log", line });
  }

  private sessionOf(name: string): Session | null {
    for (const s of this.sessions) if (s.device && s.device.name === name && !s.closed) return s;
    return null;
  }

  private deviceByToken(token: string): DeviceRecord | null {
    for (const d of this.devices.values()) if (d.token === token) return d;
    return null;
  }

  private accept(socket: Socket): void {
    const session: Session = {
      socket,
      device: null,
      provisioning: false,
      clientId: "",
      version: null,
      subscriptions: new Set(),
      nextPacketId: 1,
      limits: {
        messages: new RateLimit(this.limits.rateLimits.messages),
        telemetryMessages: new RateLimit(this.limits.rateLimits.telemetryMessages),
        telemetryDataPoints: new RateLimit(this.limits.rateLimits.telemetryDataPoints),
      },
      closed: false,
    };
    this.sessions.add(session);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (packet: Packet) => {
      if (session.closed) return;
      try {
        this.onPacket(session, packet);
      } catch (e) {
        this.closeSession(session, "error handling " + packet.cmd + ": " + (e as Error).message);
      }
    });
    parser.on("error", (e) => this.closeSession(session, "malformed MQTT from the device: " + e.message));
    socket.on("data", (bytes) => parser.parse(bytes));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!session.closed) {
        session.closed = true;
        if (session.device) this.event(session.device.name + " disconnected");
      }
      this.sessions.delete(session);
      if (session.device) this.sessionChanged(session.device.name);
      // A persistent RPC not acknowledged by the device goes again on its next session.
      for (const rpc of this.pendingRpc) if (session.device && rpc.device === session.device.name && !rpc.delivered) rpc.sent = false;
    });
  }

  private send(session: Session, packet: object): void {
    if (session.closed) return;
    session.socket.write(mqttPacket.generate(packet as Packet));
  }

  private closeSession(session: Session, why: string): void {
    if (session.closed) return;
    session.closed = true;
    this.event((session.device ? session.device.name : session.provisioning ? "provisioning session" : "connection") + " closed: " + why);
    session.socket.destroy();
    if (session.device) this.sessionChanged(session.device.name);
  }

  private onPacket(session: Session, packet: Packet): void {
    if (packet.cmd === "connect") return this.onConnect(session, packet);
    if (!session.device && !session.provisioning) return this.closeSession(session, packet.cmd + " before CONNECT");
    if (session.device) this.seen(session.device.name, Date.now());
    switch (packet.cmd) {
      case "subscribe":
        return this.onSubscribe(session, packet);
      case "publish":
        return this.onPublish(session, packet);
      case "puback":
        return this.onPuback(session, packet.messageId ?? 0);
      case "pingreq":
        return this.send(session, { cmd: "pingresp" });
      case "unsubscribe":
        for (const t of packet.unsubscriptions) session.subscriptions.delete(t);
        return this.send(session, { cmd: "unsuback", messageId: packet.messageId });
      case "disconnect":
        return this.closeSession(session, "DISCONNECT from the device");
      default:
        return this.closeSession(session, "unexpected " + packet.cmd);
    }
  }

  private onConnect(session: Session, packet: IConnectPacket): void {
    session.clientId = packet.clientId;
    const username = packet.username ?? "";
    if (username === "provision" || packet.clientId === "provision") {
      session.provisioning = true;
      this.send(session, { cmd: "connack", returnCode: 0, sessionPresent: false });
      this.event("provisioning session from " + packet.clientId);
      return;
    }
    const device = username === "" ? null : this.deviceByToken(username);
    if (!device) {
      // ThingsBoard: unknown token -> 5; empty username -> 2 (client id rejected).
      this.send(session, { cmd: "connack", returnCode: username === "" ? 2 : 5, sessionPresent: false });
      this.closeSession(session, username === "" ? "no username (CONNACK 2)" : "unknown access token (CONNACK 5)");
      return;
    }
    const previous = this.sessionOf(device.name);
    if (previous) this.closeSession(previous, "replaced by a new session of the same device");
    session.device = device;
    this.send(session, { cmd: "connack", returnCode: 0, sessionPresent: false });
    this.event(device.name + " connected (client id " + packet.clientId + ")");
    this.seen(device.name, Date.now());
    this.sessionChanged(device.name);
  }

  private onSubscribe(session: Session, packet: ISubscribePacket): void {
    const granted = packet.subscriptions.map((s) => {
      const allowed = session.provisioning ? s.topic === "/provision/response" : ALLOWED_FILTERS.includes(s.topic);
      if (!allowed) {
        this.event((session.device ? session.device.name : "provisioning session") + ": subscription " + s.topic + " refused (0x80)");
        return 0x80;
      }
      session.subscriptions.add(s.topic);
      return Math.min(s.qos, 1);
    });
    this.send(session, { cmd: "suback", messageId: packet.messageId, granted });
    if (session.device) this.deliverRpcs(session.device.name);
  }

  private onPuback(session: Session, packetId: number): void {
    const rpc = this.pendingRpc.find((r) => r.sent && r.device === session.device?.name && rpcPacketId(r.id) === packetId);
    if (rpc) {
      rpc.delivered = true;
      this.event(rpc.device + " received RPC " + rpc.id + " (" + rpc.method + ")");
    }
  }

  private reject(session: Session, why: string): void {
    // ThingsBoard: no PUBACK, session closed.
    this.closeSession(session, why + " (no PUBACK)");
  }

  private onPublish(session: Session, packet: IPublishPacket): void {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const topic = packet.topic;
    if (payload.length > this.limits.maxPayloadSize) return this.reject(session, "payload of " + payload.length + " bytes over maxPayloadSize " + this.limits.maxPayloadSize);
    if (session.provisioning) return this.onProvision(session, packet, payload);
    const device = session.device!;
    const now = Date.now();
    if (!session.limits.messages.tryTake(1, now)) return this.reject(session, "rate limit messages " + this.limits.rateLimits.messages + " exceeded");
    const chunk = /^v2\/fw\/request\/(\d+)\/chunk\/(\d+)$/.exec(topic);
    if (chunk) return this.onChunkRequest(session, device, chunk[1], Number(chunk[2]), payload.toString("latin1"), packet);
    let body: JsonValue = null;
    const text = payload.toString("utf8");
    const json = () => {
      try {
        return JSON.parse(text) as JsonValue;
      } catch {
        throw new Error("payload on " + topic + " is not JSON: " + text.slice(0, 80));
      }
    };
    const v = (v1: string, v2: string) => topic === v1 || topic === v2;
    const prefix = (v1: string, v2: string) => (topic.startsWith(v1) ? topic.slice(v1.length) : topic.startsWith(v2) ? topic.slice(v2.length) : null);
    const version: 1 | 2 = topic.startsWith("v2/") ? 2 : 1;
    let requestId: string | null;
    if (v("v1/devices/me/telemetry", "v2/t")) {
      body = json();
      const points = telemetryPoints(body, now);
      const dataPoints = points.reduce((n, p) => n + Object.keys(p.values).length, 0);
      if (!session.limits.telemetryMessages.tryTake(1, now)) return this.reject(session, "rate limit telemetryMessages " + this.limits.rateLimits.telemetryMessages + " exceeded");
      if (!session.limits.telemetryDataPoints.tryTake(dataPoints, now)) return this.reject(session, "rate limit telemetryDataPoints " + this.limits.rateLimits.telemetryDataPoints + " exceeded");
      device.telemetry.push(...points);
      if (device.telemetry.length > TELEMETRY_KEPT) device.telemetry.splice(0, device.telemetry.length - TELEMETRY_KEPT);
      this.options.onTelemetry?.(device.name, text);
      this.changed({ kind: "telemetry", device: device.name, points });
    } else if (v("v1/devices/me/attributes", "v2/a")) {
      body = json();
      if (!isObject(body)) throw new Error("attributes must be a JSON object");
      Object.assign(device.client, body);
      this.event(device.name + " client attributes: " + text);
      this.changed({ kind: "client", device: device.name, values: body });
    } else if ((requestId = prefix("v1/devices/me/attributes/request/", "v2/a/req/")) !== null) {
      body = json();
      const request = isObject(body) ? body : {};
      const reply: { client?: Attributes; shared?: Attributes } = {};
      const pick = (from: Attributes, keys: JsonValue | undefined) => {
        const out: Attributes = {};
        const wanted = typeof keys === "string" ? keys.split(",").map((k) => k.trim()).filter((k) => k) : Object.keys(from);
        for (const k of wanted) if (k in from) out[k] = from[k];
        return out;
      };
      if (request.clientKeys !== undefined || request.sharedKeys === undefined) reply.client = pick(device.client, request.clientKeys);
      if (request.sharedKeys !== undefined || request.clientKeys === undefined) reply.shared = pick(device.shared, request.sharedKeys);
      this.publishTo(session, (version === 2 ? "v2/a/res/" : "v1/devices/me/attributes/response/") + requestId, reply);
    } else if ((requestId = prefix("v1/devices/me/rpc/response/", "v2/r/res/")) !== null) {
      body = json();
      const rpc = this.pendingRpc.find((r) => r.device === device.name && String(r.id) === requestId);
      if (rpc) {
        clearTimeout(rpc.timer);
        this.pendingRpc.splice(this.pendingRpc.indexOf(rpc), 1);
        rpc.resolve(body);
      } else this.event(device.name + " answered RPC " + requestId + ", which is not pending (timed out?)");
    } else if ((requestId = prefix("v1/devices/me/rpc/request/", "v2/r/req/")) !== null) {
      body = json();
      const answer = this.clientRpc(device, body);
      if (answer !== undefined) this.publishTo(session, (version === 2 ? "v2/r/res/" : "v1/devices/me/rpc/response/") + requestId, answer);
    } else if (topic === "v1/devices/me/claim") {
      body = text === "" ? {} : json();
      const claim = isObject(body) ? body : {};
      device.claim = {
        secretKey: typeof claim.secretKey === "string" ? claim.secretKey : "",
        expiresAt: now + (typeof claim.durationMs === "number" ? claim.durationMs : 86400000),
      };
      this.event(device.name + " can be claimed for " + Math.round((device.claim.expiresAt - now) / 1000) + " s" + (device.claim.secretKey ? " with its secret key" : ""));
    } else {
      return this.reject(session, "publish to unsupported topic " + topic);
    }
    this.save();
    if (packet.qos > 0) this.send(session, { cmd: "puback", messageId: packet.messageId });
    for (const w of [...this.waiters]) {
      if (w.device === device.name && w.predicate(topic, body)) {
        clearTimeout(w.timer);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(body);
      }
    }
  }

  /**
   * ThingsBoard's firmware chunks: the payload is the chunk size in ASCII (empty or 0: the
   * whole image); chunk n comes raw, shorter at the end, empty past it. A size over
   * maxPayloadSize gets PAYLOAD_TOO_LARGE on v2/fw/error and the session closed.
   */
  private onChunkRequest(session: Session, device: DeviceRecord, requestId: string, n: number, sizeText: string, packet: IPublishPacket): void {
    if (packet.qos > 0) this.send(session, { cmd: "puback", messageId: packet.messageId });
    const log = this.chunkRequests.get(device.name) ?? [];
    log.push(requestId + "/" + n);
    this.chunkRequests.set(device.name, log);
    const firmware = this.firmware.get(device.name);
    const raw = (topic: string, payload: Buffer) => this.send(session, { cmd: "publish", topic, payload, qos: 0, retain: false, dup: false });
    if (!firmware) return raw("v2/fw/error", Buffer.from("No firmware assigned to the device"));
    const size = sizeText.trim() === "" ? 0 : Number(sizeText);
    if (!Number.isInteger(size) || size < 0) return raw("v2/fw/error", Buffer.from("Invalid chunk size: " + sizeText));
    if (size > this.limits.maxPayloadSize) {
      raw("v2/fw/error", Buffer.from("PAYLOAD_TOO_LARGE"));
      return this.closeSession(session, "firmware chunk size " + size + " over maxPayloadSize " + this.limits.maxPayloadSize);
    }
    if (this.firmwareFaults.drop.delete(n)) return this.event(device.name + ": firmware chunk " + n + " not answered (test fault)");
    if (this.firmwareFaults.disconnect.delete(n)) return this.closeSession(session, "asked for firmware chunk " + n + " (test fault)");
    const data = size === 0 ? firmware.data : firmware.data.subarray(n * size, Math.min(firmware.data.length, (n + 1) * size));
    const payload = Buffer.from(data);
    if (payload.length > 0 && this.firmwareFaults.corrupt.delete(n)) payload[0] ^= 0xff;
    raw("v2/fw/response/" + requestId + "/chunk/" + n, payload);
  }

  private clientRpc(device: DeviceRecord, body: JsonValue): JsonValue | undefined {
    const method = isObject(body) ? body.method : undefined;
    this.event(device.name + " client-side RPC " + String(method));
    // ThingsBoard answers these from its rule chain; these are the answers our rule chain gives.
    if (method === "getCurrentTime") return { time: Date.now() };
    if (method === "getSessionLimits") return this.options.answerSessionLimits === false ? undefined : (this.limits as unknown as JsonValue);
    return { error: "unknown method: " + String(method) };
  }

  private onProvision(session: Session, packet: IPublishPacket, payload: Buffer): void {
    if (packet.topic !== "/provision/request") return this.reject(session, "a provisioning session may only publish /provision/request");
    let request: Attributes = {};
    try {
      const parsed = JSON.parse(payload.toString("utf8")) as JsonValue;
      if (isObject(parsed)) request = parsed;
    } catch {
      // Answered as a failure below.
    }
    if (packet.qos > 0) this.send(session, { cmd: "puback", messageId: packet.messageId });
    let reply: Attributes;
    const key = request.provisionDeviceKey;
    const name = request.deviceName;
    if (typeof key !== "string" || !this.provisionKeys.has(key) || this.provisionKeys.get(key) !== request.provisionDeviceSecret) {
      reply = { status: "NOT_FOUND", errorMsg: "Provision data was not found!" };
    } else if (typeof name !== "string" || name === "") {
      reply = { status: "FAILURE", errorMsg: "deviceName is required" };
    } else if (this.devices.has(name)) {
      // ThingsBoard refuses a second provisioning of the same name (unless pre-provisioned).
      reply = { status: "FAILURE", errorMsg: "Device with name " + name + " already exists" };
    } else {
      const token = typeof request.token === "string" && request.token !== "" ? request.token : randomToken();
      this.addDevice(name, token);
      reply = { status: "SUCCESS", credentialsType: "ACCESS_TOKEN", credentialsValue: token };
    }
    this.event("provisioning " + String(name) + ": " + reply.status);
    this.publishTo(session, "/provision/response", reply);
    setTimeout(() => this.closeSession(session, "provisioning answered"), this.options.provisionCloseMs ?? 60000).unref();
  }

  private publishTo(session: Session, topic: string, body: unknown, qos: 0 | 1 = 0): number {
    const messageId = qos > 0 ? session.nextPacketId++ : undefined;
    if (session.nextPacketId > 65535) session.nextPacketId = 1;
    this.send(session, { cmd: "publish", topic, payload: Buffer.from(JSON.stringify(body)), qos, retain: false, dup: false, messageId });
    return messageId ?? 0;
  }

  private pushAttributes(device: DeviceRecord, body: Attributes): void {
    const session = this.sessionOf(device.name);
    if (!session) return;
    if (session.subscriptions.has("v2/a")) this.publishTo(session, "v2/a", body);
    else if (session.subscriptions.has("v1/devices/me/attributes")) this.publishTo(session, "v1/devices/me/attributes", body);
  }

  private deliverRpcs(name: string): void {
    const session = this.sessionOf(name);
    if (!session) return;
    const v2 = session.subscriptions.has("v2/r/req/+");
    if (!v2 && !session.subscriptions.has("v1/devices/me/rpc/request/+")) return;
    for (const rpc of this.pendingRpc) {
      if (rpc.device !== name || rpc.sent) continue;
      rpc.sent = true;
      // Sent at QoS 1 with the RPC id as the packet id, so the PUBACK names it.
      this.send(session, {
        cmd: "publish",
        topic: (v2 ? "v2/r/req/" : "v1/devices/me/rpc/request/") + rpc.id,
        payload: Buffer.from(JSON.stringify({ method: rpc.method, params: rpc.params })),
        qos: 1,
        retain: false,
        dup: false,
        messageId: rpcPacketId(rpc.id),
      });
      this.event(name + " <- RPC " + rpc.id + " " + rpc.method);
    }
  }

  // ---- state file ----

  private load(): void {
    const file = this.options.stateFile;
    if (!file || !existsSync(file)) return;
    let state: { devices?: DeviceRecord[]; provisionKeys?: [string, string][] };
    try {
      state = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new Error(file + " is not valid JSON (" + (e as Error).message + "); delete it to start with an empty emulator");
    }
    for (const d of state.devices ?? []) this.devices.set(d.name, { ...d, telemetry: d.telemetry ?? [], claim: d.claim ?? null });
    for (const [k, s] of state.provisionKeys ?? []) this.provisionKeys.set(k, s);
  }

  private save(): void {
    if (!this.options.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.saveNow(), 200);
    this.saveTimer.unref();
  }

  private saveNow(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const file = this.options.stateFile;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    const state = { devices: [...this.devices.values()], provisionKeys: [...this.provisionKeys.entries()] };
    writeFileSync(file + ".tmp", JSON.stringify(state, null, 1));
    renameSync(file + ".tmp", file);
  }
}

interface FirmwarePackage {
  title: string;
  version: string;
  data: Buffer;
}

/** fw_checksum as ThingsBoard writes it: hex digests; CRC32 as Guava prints it, low byte first. */
export function firmwareChecksum(data: Buffer, algorithm: string): string {
  if (algorithm === "CRC32") {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(crc32(data) >>> 0);
    return bytes.toString("hex");
  }
  const hashes: Record<string, string> = { MD5: "md5", SHA256: "sha256", SHA384: "sha384", SHA512: "sha512" };
  if (!hashes[algorithm]) throw new Error("checksum algorithm " + algorithm + ": expected one of " + [...Object.keys(hashes), "CRC32"].join(", "));
  return createHash(hashes[algorithm]).update(data).digest("hex");
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** ThingsBoard's telemetry forms: {k:v}, {ts,values}, or an array of either. */
export function telemetryPoints(body: JsonValue, now: number): TelemetryPoint[] {
  const items = Array.isArray(body) ? body : [body];
  return items.map((item) => {
    if (!isObject(item)) throw new Error("telemetry must be a JSON object or an array of objects");
    if (typeof item.ts === "number" && isObject(item.values)) return { ts: item.ts, values: item.values };
    return { ts: now, values: item };
  });
}

function randomToken(): string {
  return randomBytes(15).toString("base64url");
}

function rpcPacketId(rpcId: number): number {
  return ((rpcId - 1) % 65535) + 1;
}

function listenOn(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}
