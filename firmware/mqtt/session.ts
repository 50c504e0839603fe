// MQTT 3.1.1 client session over a platform socket: QoS 1 with delivery confirmed by
// PUBACK, keep-alive with dead-link detection, resubscribe and resend with DUP after a
// reconnect, exponential backoff with seeded jitter. Never throws out of a callback.

import type { Platform, Socket, TimerHandle } from "../platform/types";
import type { Logger } from "../util/log";
import { errorText, seconds } from "../util/log";
import { CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBLISH, PacketDecoder, SUBACK, encodeConnect, encodeEmpty, encodePuback, encodePublish, encodeSubscribe } from "./codec";

/** What the session reads from the device configuration (the same object: no copy). */
export interface SessionOptions {
  host: string;
  port: number;
  tls: boolean;
  caDerBase64: string;
  clientId: string;
  /** Access token: the CONNECT user name (ThingsBoard ignores the password). */
  token: string;
  keepAliveS: number;
  /** Longest wait for any answer (CONNACK, PUBACK, SUBACK, PINGRESP) before the link counts as dead. */
  responseTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** QoS 1 messages sent and not yet acknowledged, at most. */
  maxInflight: number;
}

export interface SessionEvents {
  onConnected(): void;
  /** A PUBACK freed room in the in-flight window (whoever's message it was). */
  onRoom?: () => void;
  onDisconnected(reason: string): void;
  onMessage(topic: string, payload: Uint8Array): void;
}

interface InflightMessage {
  packetId: number;
  topic: string;
  payload: Uint8Array;
  /** Sent at least once: a resend carries DUP (3.3.1.1). */
  sent: boolean;
  /** The connection it was last written on: unwritten on this one means (re)send it. */
  generation: number;
  onAck: (() => void) | null;
}

const PING_TIMER = 0;
const RESPONSE_TIMER = 1;
const RECONNECT_TIMER = 2;
const STABLE_TIMER = 3;
const PACE_TIMER = 4;
/** A connection that stays up this long resets the backoff to its minimum. */
const STABLE_AFTER_MS = 30000;
/** ThingsBoard's default maxPayloadSize plus room for the header and topic. */
const MAX_PACKET_BYTES = 65536 + 1024;

export type SessionState = "idle" | "connecting" | "connected" | "waiting" | "stopped";

/** Backoff before attempt `attempt` (0-based): exponential, capped, with jitter in [half, full]. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  let ceiling = minMs;
  for (let i = 0; i < attempt && ceiling < maxMs; i++) ceiling *= 2;
  if (ceiling > maxMs) ceiling = maxMs;
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** What a refused CONNACK means (3.2.2.3), as ThingsBoard uses the codes. */
function connackReason(code: number): string {
  const reasons = [
    "",
    "unacceptable protocol version",
    "client id rejected",
    "server unavailable or connect rate limit hit",
    "bad user name or password|check the access token",
    "not authorized|wrong or unknown access token",
  ];
  const reason = (code < reasons.length ? reasons[code] : "unknown code").split("|");
  return reason[0] + " (CONNACK " + code + ")" + (reason.length > 1 ? ": " + reason[1] : "");
}

export class MqttSession {
  private readonly _platform: Platform;
  private readonly _options: SessionOptions;
  private readonly _events: SessionEvents;
  private readonly _log: Logger;
  private readonly _random: () => number;
  private readonly _decoder: PacketDecoder;
  private _state: SessionState = "idle";
  private _socket: Socket | null = null;
  /** Bumped per connection so callbacks from an old socket are ignored. */
  private _generation = 0;
  private _attempt = 0;
  private _closeReason: string | null = null;
  private _refused = false;
  private _inflight: InflightMessage[] = [];
  /** Filters kept across reconnects, and their QoS (parallel arrays: no object per filter). */
  private _filters: string[] = [];
  private _filterQos: number[] = [];
  private _nextPacketId = 1;
  /** Keep-alive, dead-link, reconnect and stable-connection timers, by the indexes below. */
  private _timers: (TimerHandle | null)[] = [null, null, null, null, null];
  /**
   * A token bucket for PUBLISH packets (ThingsBoard's rate limits): tokens per ms
   * (0: no pacing), the most that may be saved up, what is saved, and when it was counted.
   */
  private _rate = 0;
  private _burst = 0;
  private _tokens = 0;
  private _tokensAt = 0;
  private _pingOutstanding = false;
  private _subscribeOutstanding = false;
  /** Delay before the next connection attempt, for tests and status reports. */
  private _retryDelayMs = 0;

  constructor(platform: Platform, options: SessionOptions, events: SessionEvents, log: Logger, random: () => number) {
    this._platform = platform;
    this._options = options;
    this._events = events;
    this._log = log;
    this._random = random;
    this._decoder = new PacketDecoder(MAX_PACKET_BYTES);
  }

  getState(): SessionState {
    return this._state;
  }

  isConnected(): boolean {
    return this._state === "connected";
  }

  /** Messages handed over and not yet acknowledged (sent or waiting to be resent). */
  inflightCount(): number {
    return this._inflight.length;
  }

  /**
   * Whether the telemetry queue may hand over another QoS 1 message now: one slot of
   * maxInflight stays free for RPC replies and attributes.
   */
  canPublish(): boolean {
    const max = this._options.maxInflight;
    return this._state !== "stopped" && this._inflight.length < (max > 1 ? max - 1 : 1);
  }

  /**
   * Paces PUBLISH packets to `perSecond` on average, allowing bursts of `burst`
   * (0 per second: as fast as acks allow).
   */
  setPace(perSecond: number, burst: number): void {
    this._rate = perSecond / 1000;
    this._burst = burst;
    // What is saved up stays (at most the new burst): a new pace never allows a burst at once.
    if (this._tokens > burst) this._tokens = burst;
  }

  lastRetryDelayMs(): number {
    return this._retryDelayMs;
  }

  start(): void {
    if (this._state !== "idle" && this._state !== "stopped") return;
    this._state = "idle";
    this._openConnection();
  }

  /** Sends DISCONNECT and stops reconnecting; unacknowledged messages stay queued. */
  stop(): void {
    const socket = this._socket;
    this._state = "stopped";
    if (socket !== null) {
      try {
        socket.write(encodeEmpty(DISCONNECT));
      } catch (e) {
        // The link is going away anyway.
      }
    }
    this._close("stopped", false);
  }

  /** Adds a subscription kept across reconnects; sent now when connected. */
  subscribe(filter: string, qos: number): void {
    if (this._filters.indexOf(filter) >= 0) return;
    this._filters.push(filter);
    this._filterQos.push(qos);
    if (this._state === "connected") this._sendSubscribe([filter], [qos]);
  }

  /**
   * QoS 1: the message is kept until its PUBACK arrives, across reconnects, and
   * `onAck` runs then. Returns false (nothing kept) when maxInflight is reached.
   * QoS 0: sent only when connected; returns whether it was written.
   */
  publish(topic: string, payload: Uint8Array, qos: number, onAck: (() => void) | null): boolean {
    if (qos === 0) {
      if (this._state !== "connected") return false;
      return this._send(encodePublish(topic, payload, 0, 0, false));
    }
    if (this._state === "stopped" || this._inflight.length >= this._options.maxInflight) return false;
    this._inflight.push({
      packetId: this._allocatePacketId(),
      topic: topic,
      payload: payload,
      sent: false,
      generation: 0,
      onAck: onAck,
    });
    this._sendWaiting();
    return true;
  }

  private _allocatePacketId(): number {
    for (;;) {
      const id = this._nextPacketId;
      this._nextPacketId = id === 65535 ? 1 : id + 1;
      let used = false;
      for (let i = 0; i < this._inflight.length; i++) {
        if (this._inflight[i].packetId === id) used = true;
      }
      if (!used) return id;
    }
  }

  // Few methods on purpose: on Espruino every function object costs JsVars for the whole run.

  private _openConnection(): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const session = this;
    const generation = ++this._generation;
    this._state = "connecting";
    this._closeReason = null;
    this._refused = false;
    this._pingOutstanding = false;
    this._subscribeOutstanding = false;
    this._decoder.reset();
    const options = this._options;
    this._log("I", "mqtt", "connecting to " + options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)"));
    try {
      this._socket = this._platform.connect(
        options,
        {
          onConnect: () => {
            if (generation === session._generation) session._send(encodeConnect(options.clientId, options.token, null, options.keepAliveS));
          },
          onData: (bytes) => {
            if (generation === session._generation) session._onData(bytes);
          },
          onClose: (reason) => {
            if (generation === session._generation) session._close(reason, false);
          },
        }
      );
    } catch (e) {
      this._socket = null;
      this._close("cannot open socket: " + errorText(e), false);
      return;
    }
    // Covers DNS, TCP and TLS set-up as well as the CONNACK.
    this._arm("no CONNACK");
  }

  /** Bytes from the server: frames them and handles every whole packet. */
  private _onData(bytes: Uint8Array): void {
    try {
      this._decoder.push(bytes);
      // Nothing more once a packet closed the connection.
      while (this._socket !== null && this._closeReason === null) {
        const packet = this._decoder.next();
        if (packet === null) break;
        this._clearTimer(RESPONSE_TIMER);
        const type = packet.type;
        if (type === CONNACK) {
          if (this._state !== "connecting") throw new Error("second CONNACK");
          if (packet.code !== 0) {
            this._close("connection refused: " + connackReason(packet.code), true);
            return;
          }
          this._connected();
        } else if (this._state !== "connected") {
          throw new Error("packet type " + type + " before CONNACK");
        } else if (type === PUBACK) {
          let found = false;
          for (let i = 0; i < this._inflight.length && !found; i++) {
            const message = this._inflight[i];
            if (message.packetId === packet.id && message.sent) {
              found = true;
              this._inflight.splice(i, 1);
              if (message.onAck !== null) this._call(message.onAck, "PUBACK");
              if (this._events.onRoom) this._call(this._events.onRoom, "PUBACK");
            }
          }
          if (!found) this._log("W", "mqtt", "PUBACK for unknown packet id " + packet.id);
        } else if (type === PUBLISH) {
          if (packet.qos === 1) this._send(encodePuback(packet.id));
          const events = this._events;
          this._call(() => events.onMessage(packet.topic, packet.payload as Uint8Array), packet.topic);
        } else if (type === SUBACK) {
          this._subscribeOutstanding = false;
          if (packet.code === 0x80) this._log("E", "mqtt", "server refused a subscription (SUBACK 0x80)");
        } else if (type === PINGRESP) {
          this._pingOutstanding = false;
        }
        // UNSUBACK needs nothing: this client never unsubscribes.
        if (this._state === "connected") {
          // Still waiting for an answer: keep the dead-link timer running.
          let waitingFor = this._pingOutstanding ? "no PINGRESP" : this._subscribeOutstanding ? "no SUBACK" : null;
          for (let i = 0; i < this._inflight.length && waitingFor === null; i++) if (this._inflight[i].sent) waitingFor = "no PUBACK";
          if (waitingFor !== null) this._arm(waitingFor);
        }
      }
    } catch (e) {
      this._close("malformed packet from server: " + errorText(e), true);
    }
  }

  private _connected(): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const session = this;
    this._state = "connected";
    // A new connection starts with the three messages a connect sends (session limits request,
    // client attributes, attribute request) and no more: the session limits are not known yet.
    this._tokens = 3;
    this._tokensAt = this._platform.now();
    const options = this._options;
    this._log("I", "mqtt", "connected to " + options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)"));
    this._timers[STABLE_TIMER] = this._platform.setTimeout(() => {
      session._timers[STABLE_TIMER] = null;
      session._attempt = 0;
    }, STABLE_AFTER_MS);
    if (this._filters.length > 0) this._sendSubscribe(this._filters, this._filterQos);
    // Resend in order what was not acknowledged; ones sent before carry DUP.
    let resent = 0;
    for (let i = 0; i < this._inflight.length; i++) if (this._inflight[i].sent) resent++;
    if (resent > 0) this._log("I", "mqtt", "resending " + resent + " unacknowledged message(s) with DUP");
    this._sendWaiting();
    if (this._state !== "connected") return;
    this._arm(null);
    this._call(this._events.onConnected, "connect");
  }

  private _sendSubscribe(filters: string[], qos: number[]): void {
    this._subscribeOutstanding = true;
    if (this._send(encodeSubscribe(this._allocatePacketId(), filters, qos))) this._arm("no SUBACK");
  }

  /** Writes, in order and at the pace set, the messages not yet written on this connection. */
  private _sendWaiting(): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const session = this;
    for (let i = 0; i < this._inflight.length && this._state === "connected" && this._timers[PACE_TIMER] === null; i++) {
      const message = this._inflight[i];
      if (message.generation === this._generation) continue;
      if (this._rate > 0) {
        const now = this._platform.now();
        // The wall clock set back: count no time rather than stall.
        const tokens = this._tokens + (now > this._tokensAt ? (now - this._tokensAt) * this._rate : 0);
        this._tokens = tokens < this._burst ? tokens : this._burst;
        this._tokensAt = now;
        if (this._tokens < 1) {
          this._timers[PACE_TIMER] = this._platform.setTimeout(() => {
            session._timers[PACE_TIMER] = null;
            session._sendWaiting();
          }, Math.ceil((1 - this._tokens) / this._rate));
          return;
        }
        this._tokens--;
      }
      const bytes = encodePublish(message.topic, message.payload, 1, message.packetId, message.sent);
      message.sent = true;
      message.generation = this._generation;
      if (this._send(bytes)) this._arm("no PUBACK");
    }
  }

  /** Runs application code: what it throws is logged, never let into the session. */
  private _call(handler: () => void, what: string): void {
    try {
      handler();
    } catch (e) {
      this._log("E", "mqtt", what + " handler failed: " + errorText(e));
    }
  }

  /** Writes a packet; a failed write closes the connection. Returns whether it was written. */
  private _send(bytes: Uint8Array): boolean {
    const socket = this._socket;
    if (socket === null) return false;
    try {
      socket.write(bytes);
    } catch (e) {
      this._close("write failed: " + errorText(e), false);
      return false;
    }
    if (this._state === "connected") this._arm(null);
    return true;
  }

  /**
   * null: (re)starts the keep-alive, a PINGREQ after keepAlive seconds without sending
   * anything (3.1.2.10). Else starts the dead-link timer for `waitingFor`, unless running.
   */
  private _arm(waitingFor: string | null): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const session = this;
    const platform = this._platform;
    if (waitingFor === null) {
      this._clearTimer(PING_TIMER);
      this._timers[PING_TIMER] = platform.setTimeout(() => {
        session._timers[PING_TIMER] = null;
        if (session._state !== "connected") return;
        session._pingOutstanding = true;
        if (session._send(encodeEmpty(PINGREQ))) session._arm("no PINGRESP");
      }, this._options.keepAliveS * 1000);
    } else if (this._timers[RESPONSE_TIMER] === null) {
      const timeoutMs = this._options.responseTimeoutMs;
      this._timers[RESPONSE_TIMER] = platform.setTimeout(() => {
        session._timers[RESPONSE_TIMER] = null;
        session._close("link dead: " + waitingFor + " within " + seconds(timeoutMs), false);
      }, timeoutMs);
    }
  }

  private _clearTimer(which: number): void {
    const handle = this._timers[which];
    if (handle !== null) this._platform.clearTimeout(handle);
    this._timers[which] = null;
  }

  /**
   * Ends the connection for `reason` (the first reason given wins) and schedules the
   * next attempt, unless stopped. `refused`: logged as an error (the server said no).
   */
  private _close(reason: string, refused: boolean): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const session = this;
    if (this._closeReason === null) this._closeReason = reason;
    reason = this._closeReason;
    if (refused) this._refused = true;
    // Detach first: bumping the generation silences the old socket's callbacks.
    const socket = this._socket;
    this._socket = null;
    this._generation++;
    if (socket !== null) {
      try {
        socket.close();
      } catch (e) {
        // Already closed underneath us: nothing more to release.
      }
    }
    for (let i = 0; i < this._timers.length; i++) this._clearTimer(i);
    const wasConnected = this._state === "connected";
    if (this._state === "stopped") {
      this._log("I", "mqtt", "disconnected");
      return;
    }
    this._state = "waiting";
    const delay = backoffDelay(this._attempt, this._options.backoffMinMs, this._options.backoffMaxMs, this._random);
    this._attempt++;
    this._retryDelayMs = delay;
    const line = reason + "; retrying in " + seconds(delay);
    if (this._refused) this._log("E", "mqtt", line);
    else this._log("W", "mqtt", (wasConnected ? "disconnected: " : "connection failed: ") + line);
    this._timers[RECONNECT_TIMER] = this._platform.setTimeout(() => {
      session._timers[RECONNECT_TIMER] = null;
      if (session._state === "waiting") session._openConnection();
    }, delay);
    if (wasConnected) {
      const events = this._events;
      this._call(() => events.onDisconnected(reason), "disconnect");
    }
  }
}
