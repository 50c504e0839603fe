// MQTT 3.1.1 client session over a platform socket: QoS 1 with delivery confirmed by
// PUBACK, keep-alive with dead-link detection, resubscribe and resend with DUP after a
// reconnect, exponential backoff with seeded jitter. Never throws out of a callback.

import type { Platform, Socket, TimerHandle } from "../platform/types";
import type { Logger } from "../util/log";
import { errorText, seconds } from "../util/log";
import {
  CONNACK,
  PINGRESP,
  PUBACK,
  PUBLISH,
  PacketDecoder,
  SUBACK,
  connackReason,
  encodeConnect,
  encodeDisconnect,
  encodePingreq,
  encodePuback,
  encodePublish,
  encodeSubscribe,
} from "./codec";
import type { ServerPacket } from "./codec";

export interface SessionOptions {
  host: string;
  port: number;
  tls: boolean;
  caDer: Uint8Array | null;
  clientId: string;
  username: string | null;
  password: string | null;
  keepAliveS: number;
  /** Longest wait for any answer (CONNACK, PUBACK, SUBACK, PINGRESP) before the link counts as dead. */
  responseTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A connection that stays up this long resets the backoff to its minimum. */
  stableAfterMs: number;
  maxPacketBytes: number;
  /** QoS 1 messages sent and not yet acknowledged, at most. */
  maxInflight: number;
}

export interface SessionEvents {
  onConnected(): void;
  onDisconnected(reason: string): void;
  onMessage(topic: string, payload: Uint8Array): void;
}

interface InflightMessage {
  packetId: number;
  topic: string;
  payload: Uint8Array;
  /** Sent at least once: a resend carries DUP (3.3.1.1). */
  sent: boolean;
  onAck: (() => void) | null;
}

interface Subscription {
  filter: string;
  qos: number;
}

export type SessionState = "idle" | "connecting" | "connected" | "waiting" | "stopped";

/** Backoff before attempt `attempt` (0-based): exponential, capped, with jitter in [half, full]. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  let ceiling = minMs;
  for (let i = 0; i < attempt && ceiling < maxMs; i++) ceiling *= 2;
  if (ceiling > maxMs) ceiling = maxMs;
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

export class MqttSession {
  private readonly platform: Platform;
  private readonly options: SessionOptions;
  private readonly events: SessionEvents;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly decoder: PacketDecoder;
  private state: SessionState = "idle";
  private socket: Socket | null = null;
  /** Bumped per connection so callbacks from an old socket are ignored. */
  private generation = 0;
  private attempt = 0;
  private closeReason: string | null = null;
  private refused = false;
  private inflight: InflightMessage[] = [];
  private subscriptions: Subscription[] = [];
  private nextPacketId = 1;
  private pingTimer: TimerHandle | null = null;
  private responseTimer: TimerHandle | null = null;
  private reconnectTimer: TimerHandle | null = null;
  private stableTimer: TimerHandle | null = null;
  private pingOutstanding = false;
  private subscribeOutstanding = false;
  /** Delay before the next connection attempt, for tests and status reports. */
  private retryDelayMs = 0;

  constructor(platform: Platform, options: SessionOptions, events: SessionEvents, log: Logger, random: () => number) {
    this.platform = platform;
    this.options = options;
    this.events = events;
    this.log = log;
    this.random = random;
    this.decoder = new PacketDecoder(options.maxPacketBytes);
  }

  getState(): SessionState {
    return this.state;
  }

  isConnected(): boolean {
    return this.state === "connected";
  }

  /** Messages handed over and not yet acknowledged (sent or waiting to be resent). */
  inflightCount(): number {
    return this.inflight.length;
  }

  /** Whether publish() would accept another QoS 1 message now. */
  canPublish(): boolean {
    return this.state !== "stopped" && this.inflight.length < this.options.maxInflight;
  }

  lastRetryDelayMs(): number {
    return this.retryDelayMs;
  }

  start(): void {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.state = "idle";
    this.openConnection();
  }

  /** Sends DISCONNECT and stops reconnecting; unacknowledged messages stay queued. */
  stop(): void {
    const socket = this.socket;
    this.state = "stopped";
    if (this.reconnectTimer !== null) this.platform.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (socket !== null) {
      try {
        socket.write(encodeDisconnect());
      } catch (e) {
        // The link is going away anyway.
      }
    }
    this.closeReason = "stopped";
    this.handleClose("stopped");
  }

  /** Adds a subscription kept across reconnects; sent now when connected. */
  subscribe(filter: string, qos: number): void {
    for (let i = 0; i < this.subscriptions.length; i++) {
      if (this.subscriptions[i].filter === filter) return;
    }
    this.subscriptions.push({ filter: filter, qos: qos });
    if (this.state === "connected") this.sendSubscribe([this.subscriptions[this.subscriptions.length - 1]]);
  }

  /**
   * QoS 1: the message is kept until its PUBACK arrives, across reconnects, and
   * `onAck` runs then. Returns false (nothing kept) when maxInflight is reached.
   * QoS 0: sent only when connected; returns whether it was written.
   */
  publish(topic: string, payload: Uint8Array, qos: number, onAck: (() => void) | null): boolean {
    if (qos === 0) {
      if (this.state !== "connected") return false;
      return this.send(encodePublish(topic, payload, 0, 0, false, false));
    }
    if (!this.canPublish()) return false;
    const message: InflightMessage = {
      packetId: this.allocatePacketId(),
      topic: topic,
      payload: payload,
      sent: false,
      onAck: onAck,
    };
    this.inflight.push(message);
    if (this.state === "connected") this.sendPublish(message);
    return true;
  }

  private allocatePacketId(): number {
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      let used = false;
      for (let i = 0; i < this.inflight.length; i++) {
        if (this.inflight[i].packetId === id) used = true;
      }
      if (!used) return id;
    }
  }

  private openConnection(): void {
    const generation = ++this.generation;
    this.state = "connecting";
    this.closeReason = null;
    this.refused = false;
    this.pingOutstanding = false;
    this.subscribeOutstanding = false;
    this.decoder.reset();
    const options = this.options;
    const target = options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)");
    this.log.info("mqtt", "connecting to " + target);
    try {
      this.socket = this.platform.connect(
        { host: options.host, port: options.port, tls: options.tls, caDer: options.caDer },
        {
          onConnect: () => {
            if (generation === this.generation) this.handleSocketOpen();
          },
          onData: (bytes) => {
            if (generation === this.generation) this.handleData(bytes);
          },
          onClose: (reason) => {
            if (generation === this.generation) this.handleClose(reason);
          },
        }
      );
    } catch (e) {
      this.socket = null;
      this.handleClose("cannot open socket: " + errorText(e));
      return;
    }
    // Covers DNS, TCP and TLS set-up as well as the CONNACK.
    this.armResponseTimer("no CONNACK");
  }

  private handleSocketOpen(): void {
    const options = this.options;
    this.send(
      encodeConnect({
        clientId: options.clientId,
        username: options.username,
        password: options.password,
        keepAliveS: options.keepAliveS,
        cleanSession: true,
      })
    );
  }

  private handleData(bytes: Uint8Array): void {
    try {
      this.decoder.push(bytes);
      for (;;) {
        const packet = this.decoder.next();
        if (packet === null) break;
        this.handlePacket(packet);
        if (this.socket === null || this.closeReason !== null) break;
      }
    } catch (e) {
      this.closeWith("malformed packet from server: " + errorText(e), true);
    }
  }

  private handlePacket(packet: ServerPacket): void {
    this.clearResponseTimer();
    if (packet.type === CONNACK) {
      if (this.state !== "connecting") throw new Error("CONNACK after the session was established");
      if (packet.returnCode !== 0) {
        this.refused = true;
        this.closeWith("connection refused: " + connackReason(packet.returnCode), true);
        return;
      }
      this.handleConnected();
    } else if (this.state !== "connected") {
      throw new Error("packet type " + packet.type + " before CONNACK");
    } else if (packet.type === PUBACK) {
      this.handlePuback(packet.packetId);
    } else if (packet.type === PUBLISH) {
      if (packet.qos === 1) this.send(encodePuback(packet.packetId));
      try {
        this.events.onMessage(packet.topic, packet.payload);
      } catch (e) {
        this.log.error("mqtt", "handler for " + packet.topic + " failed: " + errorText(e));
      }
    } else if (packet.type === SUBACK) {
      this.subscribeOutstanding = false;
      for (let i = 0; i < packet.granted.length; i++) {
        if (packet.granted[i] === 0x80) this.log.error("mqtt", "server refused a subscription (SUBACK 0x80)");
      }
    } else if (packet.type === PINGRESP) {
      this.pingOutstanding = false;
    }
    // UNSUBACK needs nothing: this client never unsubscribes.
    this.armResponseTimerIfWaiting();
  }

  private handleConnected(): void {
    this.state = "connected";
    const options = this.options;
    this.log.info("mqtt", "connected to " + options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)"));
    this.stableTimer = this.platform.setTimeout(() => {
      this.stableTimer = null;
      this.attempt = 0;
    }, options.stableAfterMs);
    if (this.subscriptions.length > 0) this.sendSubscribe(this.subscriptions);
    // Resend in order what was not acknowledged; ones sent before carry DUP.
    let resent = 0;
    for (let i = 0; i < this.inflight.length && this.state === "connected"; i++) {
      if (this.inflight[i].sent) resent++;
      this.sendPublish(this.inflight[i]);
    }
    if (resent > 0) this.log.info("mqtt", "resent " + resent + " unacknowledged message(s) with DUP");
    if (this.state !== "connected") return;
    this.schedulePing();
    try {
      this.events.onConnected();
    } catch (e) {
      this.log.error("mqtt", "onConnected handler failed: " + errorText(e));
    }
  }

  private handlePuback(packetId: number): void {
    for (let i = 0; i < this.inflight.length; i++) {
      const message = this.inflight[i];
      if (message.packetId === packetId && message.sent) {
        this.inflight.splice(i, 1);
        if (message.onAck !== null) {
          try {
            message.onAck();
          } catch (e) {
            this.log.error("mqtt", "PUBACK handler failed: " + errorText(e));
          }
        }
        return;
      }
    }
    this.log.warn("mqtt", "PUBACK for unknown packet id " + packetId);
  }

  private sendSubscribe(subscriptions: Subscription[]): void {
    const filters: string[] = [];
    const qos: number[] = [];
    for (let i = 0; i < subscriptions.length; i++) {
      filters.push(subscriptions[i].filter);
      qos.push(subscriptions[i].qos);
    }
    this.subscribeOutstanding = true;
    if (this.send(encodeSubscribe(this.allocatePacketId(), filters, qos))) this.armResponseTimer("no SUBACK");
  }

  private sendPublish(message: InflightMessage): void {
    const bytes = encodePublish(message.topic, message.payload, 1, message.packetId, message.sent, false);
    message.sent = true;
    if (this.send(bytes)) this.armResponseTimer("no PUBACK");
  }

  /** Writes a packet; a failed write closes the connection. Returns whether it was written. */
  private send(bytes: Uint8Array): boolean {
    const socket = this.socket;
    if (socket === null) return false;
    try {
      socket.write(bytes);
    } catch (e) {
      this.closeWith("write failed: " + errorText(e), false);
      return false;
    }
    if (this.state === "connected") this.schedulePing();
    return true;
  }

  /** PINGREQ after keepAlive seconds without sending anything (3.1.2.10). */
  private schedulePing(): void {
    if (this.pingTimer !== null) this.platform.clearTimeout(this.pingTimer);
    this.pingTimer = this.platform.setTimeout(() => {
      this.pingTimer = null;
      if (this.state !== "connected") return;
      this.pingOutstanding = true;
      if (this.send(encodePingreq())) this.armResponseTimer("no PINGRESP");
    }, this.options.keepAliveS * 1000);
  }

  /** Starts the dead-link timer unless it is already running. */
  private armResponseTimer(waitingFor: string): void {
    if (this.responseTimer !== null) return;
    const timeoutMs = this.options.responseTimeoutMs;
    this.responseTimer = this.platform.setTimeout(() => {
      this.responseTimer = null;
      this.closeWith("link dead: " + waitingFor + " within " + seconds(timeoutMs), false);
    }, timeoutMs);
  }

  private armResponseTimerIfWaiting(): void {
    if (this.state !== "connected") return;
    if (this.pingOutstanding) this.armResponseTimer("no PINGRESP");
    else if (this.subscribeOutstanding) this.armResponseTimer("no SUBACK");
    else {
      for (let i = 0; i < this.inflight.length; i++) {
        if (this.inflight[i].sent) {
          this.armResponseTimer("no PUBACK");
          return;
        }
      }
    }
  }

  private clearResponseTimer(): void {
    if (this.responseTimer !== null) this.platform.clearTimeout(this.responseTimer);
    this.responseTimer = null;
  }

  private clearTimers(): void {
    this.clearResponseTimer();
    if (this.pingTimer !== null) this.platform.clearTimeout(this.pingTimer);
    this.pingTimer = null;
    if (this.stableTimer !== null) this.platform.clearTimeout(this.stableTimer);
    this.stableTimer = null;
  }

  /** Closes the socket and handles the close now; its own onClose is ignored. */
  private closeWith(reason: string, isError: boolean): void {
    if (this.closeReason === null) this.closeReason = reason;
    if (isError) this.refused = true;
    this.handleClose(reason);
  }

  /** Detaches and closes the socket; bumping the generation silences its callbacks. */
  private releaseSocket(): void {
    const socket = this.socket;
    this.socket = null;
    this.generation++;
    if (socket === null) return;
    try {
      socket.close();
    } catch (e) {
      // Already closed underneath us: nothing more to release.
    }
  }

  private handleClose(socketReason: string): void {
    const reason = this.closeReason !== null ? this.closeReason : socketReason;
    // Closing an already closed platform socket is a no-op, so this serves every path.
    this.releaseSocket();
    this.clearTimers();
    const wasConnected = this.state === "connected";
    if (this.state === "stopped") {
      this.log.info("mqtt", "disconnected");
      return;
    }
    this.state = "waiting";
    const delay = backoffDelay(this.attempt, this.options.backoffMinMs, this.options.backoffMaxMs, this.random);
    this.attempt++;
    this.retryDelayMs = delay;
    const line = reason + "; retrying in " + seconds(delay);
    if (this.refused) this.log.error("mqtt", line);
    else this.log.warn("mqtt", (wasConnected ? "disconnected: " : "connection failed: ") + line);
    this.reconnectTimer = this.platform.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.state === "waiting") this.openConnection();
    }, delay);
    if (wasConnected) {
      try {
        this.events.onDisconnected(reason);
      } catch (e) {
        this.log.error("mqtt", "onDisconnected handler failed: " + errorText(e));
      }
    }
  }
}
