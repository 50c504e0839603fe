// MQTT 3.1.1 client session over a platform socket: QoS 1 with delivery confirmed by
// PUBACK, keep-alive with dead-link detection, resubscribe and resend with DUP after a
// reconnect, exponential backoff with seeded jitter. Never throws out of a callback.
//
// A class, not a closure: on Espruino 2v29 a method costs about 6 JsVars for the whole
// run and an arrow function made inside a factory about 9, and a factory's own code stays
// in RAM beside its inner functions' copies when the image is not saved to flash (README,
// "Why classes"). Few methods on purpose: each one is an object for the run.

import type { Platform, Socket, SocketHandlers, TimerHandle } from "../platform/types";
import type { Logger } from "../util/log";
import { errorText, seconds } from "../util/log";
import { CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBLISH, SUBACK, decodePacket, encodeConnect, encodePublish, encodeSubscribe, packetLength } from "./codec";

/** What the session reads from the device configuration (the same object: no copy). */
export interface SessionOptions {
  host: string;
  port: number;
  /** See SocketOptions: the CA is the runtime's. */
  tls: boolean;
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
  /** Optional: a device that does nothing on a disconnect passes no function (one less for the run). */
  onDisconnected?: (reason: string) => void;
  onMessage(topic: string, payload: Uint8Array): void;
}

export type SessionState = "idle" | "connecting" | "connected" | "waiting" | "stopped";
/** The state inside the session, as numbers (shorter in the image than the names); sessionStateName() names it. */
const IDLE = 0;
const CONNECTING = 1;
export const CONNECTED = 2;
const WAITING = 3;
const STOPPED = 4;

/**
 * What runs on a message's PUBACK: `onAck(target, payload)` with the target given to
 * publish. A function that lives for the run and the object it works on, rather than a
 * closure made per message: on Espruino a closure keeps the scope it was made in, JsVars
 * for as long as the message waits for its PUBACK (across a reconnect: at the TLS handshake).
 */
export type AckHandler<T> = (target: T, payload: Uint8Array) => void;

/**
 * A QoS 1 message handed over and not yet acknowledged, as an array (no property names
 * in the image): packet id, topic, payload, the connection it was last written on (0:
 * never sent; an older one: (re)send it, with DUP when sent before), and what runs on
 * its PUBACK with what.
 */
type InflightMessage = [number, string, Uint8Array, number, AckHandler<unknown> | null, unknown];
const ID = 0;
const TOPIC = 1;
const PAYLOAD = 2;
const WRITTEN_ON = 3;
const ON_ACK = 4;
const ACK_TARGET = 5;

const PING_TIMER = 0;
const RESPONSE_TIMER = 1;
const RECONNECT_TIMER = 2;
const STABLE_TIMER = 3;
const PACE_TIMER = 4;
/** A connection that stays up this long resets the backoff to its minimum. */
const STABLE_AFTER_MS = 30000;
/**
 * When the server said no (a refused CONNACK: bad token, server unavailable or its connect
 * rate limit; a malformed packet), the backoff may grow this many times past backoffMaxMs:
 * retrying soon would not help and would hammer it. A network failure keeps the short cap,
 * so the device is back soon after the link or the server is.
 */
const REFUSED_BACKOFF_FACTOR = 20;
/** At most this many halvings of the batch and the in-flight window after suspected rate-limit closes. */
const MAX_SQUEEZE = 4;
/** How _close was called: the network or our own timers; the server refused; the server closed the link. */
const NETWORK = 0;
const REFUSED = 1;
const CLOSED_BY_SERVER = 2;
/** ThingsBoard's default maxPayloadSize plus room for the header and topic. */
const MAX_PACKET_BYTES = 65536 + 1024;

/** Backoff before attempt `attempt` (0-based): exponential, capped, with jitter in [half, full]. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  let ceiling = minMs;
  for (let i = 0; i < attempt && ceiling < maxMs; i++) ceiling *= 2;
  if (ceiling > maxMs) ceiling = maxMs;
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** The session's state by name (tests, tools): not in the image, which compares numbers. */
export function sessionStateName(session: MqttSession): SessionState {
  const names: SessionState[] = ["idle", "connecting", "connected", "waiting", "stopped"];
  return names[session.state];
}

export class MqttSession implements SocketHandlers {
  private readonly _platform: Platform;
  private readonly _options: SessionOptions;
  private readonly _events: SessionEvents;
  private readonly _log: Logger;
  private readonly _random: () => number;
  /**
   * The start of a packet split across socket reads (nearly always null): joined to the next
   * read. Packets are decoded from the read itself, with no buffer kept between packets (on
   * Espruino 256 B held for the run were 19 JsVars).
   */
  private _partial: Uint8Array | null = null;
  /**
   * IDLE..STOPPED; read-only outside the class. Fields read in place of getter methods:
   * on Espruino every method is a function object that stays in RAM (about 5 JsVars).
   */
  state = IDLE;
  private _socket: Socket | null = null;
  /** Bumped per connection: which connection a message was last written on; 0 is "never written". */
  private _generation = 1;
  private _attempt = 0;
  private _closeReason: string | null = null;
  private _refused = false;
  /** Messages handed over and not yet acknowledged (sent or waiting to be resent); read-only outside the class. */
  inflight: InflightMessage[] = [];
  /** Filters kept across reconnects, each at QoS 1. */
  private _filters: string[] = [];
  private _nextPacketId = 1;
  /** Keep-alive, dead-link, reconnect, stable-connection and pace timers, by the indexes above. */
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
  /** Delay before the next connection attempt, for tests and status reports; read-only outside the class. */
  retryDelayMs = 0;
  /** What the dead-link timer waits for ("no PUBACK"...), for its log line. */
  private _waitingFor = "";
  /** Counts connections accepted and messages acknowledged: the device's watchdog watches it. Read-only outside the class. */
  progress = 0;
  /**
   * How many times the batch, the in-flight window and the publish pace are halved: up by one when the server
   * closes the link while a message written on it has no PUBACK (how ThingsBoard rejects a
   * message over a rate limit), down by one once the connection has been stable for
   * STABLE_AFTER_MS and then every keep-alive period. The telemetry queue reads it for its batch size.
   */
  squeeze = 0;

  constructor(platform: Platform, options: SessionOptions, events: SessionEvents, log: Logger, random: () => number) {
    this._platform = platform;
    this._options = options;
    this._events = events;
    this._log = log;
    this._random = random;
  }

  /**
   * Whether the telemetry queue may hand over another QoS 1 message now: one slot of
   * maxInflight stays free for RPC replies and attributes.
   */
  canPublish(): boolean {
    const max = this._options.maxInflight >> this.squeeze;
    return this.state !== STOPPED && this.inflight.length < (max > 1 ? max - 1 : 1);
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

  start(): void {
    if (this.state !== IDLE && this.state !== STOPPED) return;
    this.state = IDLE;
    this._openConnection();
  }

  /** Sends DISCONNECT and stops reconnecting; unacknowledged messages stay queued. */
  stop(): void {
    const socket = this._socket;
    this.state = STOPPED;
    if (socket !== null) {
      try {
        this._platform.socketWrite(socket, new Uint8Array([DISCONNECT << 4, 0]));
      } catch (e) {
        // The link is going away anyway.
      }
    }
    this._close("stopped", NETWORK);
  }

  /**
   * Adds a subscription at QoS 1 (every message ThingsBoard sends a device matters), kept
   * across reconnects; sent now when connected.
   */
  subscribe(filter: string): void {
    if (this._filters.indexOf(filter) >= 0) return;
    this._filters.push(filter);
    if (this.state === CONNECTED) this._sendSubscribe([filter]);
  }

  /**
   * QoS 1: the message is kept until its PUBACK arrives, across reconnects, and
   * `onAck(ackTarget, payload)` runs then. Returns false (nothing kept) when maxInflight
   * is reached. QoS 0: sent only when connected; returns whether it was written.
   */
  publish<T>(topic: string, payload: Uint8Array, qos: number, onAck: AckHandler<T> | null, ackTarget?: T): boolean {
    if (qos === 0) return this.state === CONNECTED && this._send(encodePublish(topic, payload, 0, 0, false));
    if (this.state === STOPPED || this.inflight.length >= this._options.maxInflight) return false;
    this.inflight.push([this._allocatePacketId(), topic, payload, 0, onAck as AckHandler<unknown> | null, ackTarget]);
    this._sendWaiting();
    return true;
  }

  private _allocatePacketId(): number {
    const inflight = this.inflight;
    for (;;) {
      const id = this._nextPacketId;
      this._nextPacketId = id === 65535 ? 1 : id + 1;
      let used = false;
      for (let i = 0; i < inflight.length; i++) if (inflight[i][ID] === id) used = true;
      if (!used) return id;
    }
  }

  private _openConnection(): void {
    this._generation++;
    this.state = CONNECTING;
    this._closeReason = null;
    this._refused = false;
    this._pingOutstanding = false;
    this._subscribeOutstanding = false;
    // Nothing of the old stream.
    this._partial = null;
    this._log("I", "mqtt", "connecting to " + this._where());
    try {
      this._socket = this._platform.connect(this._options, this);
    } catch (e) {
      this._socket = null;
      this._close("cannot open socket: " + errorText(e), NETWORK);
      return;
    }
    // Covers DNS, TCP and TLS set-up as well as the CONNACK.
    this._arm("no CONNACK");
  }

  // The socket's handlers (SocketHandlers), which the platform calls. A socket other than
  // the current one is one already let go: what it still reports is ignored.

  socketOpened(socket: Socket): void {
    const options = this._options;
    if (socket === this._socket) this._send(encodeConnect(options.clientId, options.token, options.keepAliveS));
  }

  socketClosed(socket: Socket, reason: string): void {
    if (socket === this._socket) this._close(reason, CLOSED_BY_SERVER);
  }

  private _where(): string {
    const options = this._options;
    return options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)");
  }

  /** Bytes from the server: frames them and handles every whole packet. */
  socketData(socket: Socket, bytes: Uint8Array): void {
    if (socket !== this._socket) return;
    const inflight = this.inflight;
    const log = this._log;
    const events = this._events;
    try {
      const partial = this._partial;
      if (partial !== null) {
        // A new array once per read while a packet is split: ThingsBoard's are small (OTA: 2 KB).
        const joined = new Uint8Array(partial.length + bytes.length);
        joined.set(partial, 0);
        joined.set(bytes, partial.length);
        bytes = joined;
        this._partial = null;
      }
      let start = 0;
      // Nothing more once a packet closed the connection.
      while (this._socket !== null && this._closeReason === null) {
        const length = packetLength(bytes, start, bytes.length, MAX_PACKET_BYTES);
        if (length === 0) {
          // A view, not a copy: the platform never reuses a read.
          if (start < bytes.length) this._partial = bytes.subarray(start);
          break;
        }
        const packet = decodePacket(bytes, start, length);
        start += length;
        this._timer(RESPONSE_TIMER);
        const type = packet.type;
        if (type === CONNACK) {
          if (this.state !== CONNECTING) throw new Error("second CONNACK");
          if (packet.code !== 0) {
            // What a refused CONNACK means (3.2.2.3), as ThingsBoard uses the codes: "reason|what to do".
            // A table here, not at the top of the module, costs no RAM until a refusal.
            const reasons = [
              "",
              "unacceptable protocol version",
              "client id rejected",
              "server unavailable or connect rate limit hit",
              "bad user name or password|check the access token",
              "not authorized|wrong or unknown access token",
            ];
            const reason = (reasons[packet.code] || "unknown code").split("|");
            this._close("connection refused: " + reason[0] + " (CONNACK " + packet.code + ")" + (reason[1] ? ": " + reason[1] : ""), REFUSED);
            return;
          }
          this.state = CONNECTED;
          this.progress++;
          // A new connection starts with the three messages a connect sends (session limits request,
          // client attributes, attribute request) and no more: the session limits are not known yet.
          this._tokens = 3;
          this._tokensAt = this._platform.now();
          log("I", "mqtt", "connected to " + this._where());
          this._timer(STABLE_TIMER, STABLE_AFTER_MS);
          if (this._filters.length > 0) this._sendSubscribe(this._filters);
          // Resend in order what was not acknowledged; ones sent before carry DUP.
          let resent = 0;
          for (let i = 0; i < inflight.length; i++) if (inflight[i][WRITTEN_ON] > 0) resent++;
          if (resent > 0) log("I", "mqtt", "resending " + resent + " unacknowledged message(s) with DUP");
          this._sendWaiting();
          if (this.state !== CONNECTED) return;
          this._arm(null);
          this._call(events.onConnected, "connect");
        } else if (this.state !== CONNECTED) {
          throw new Error("packet type " + type + " before CONNACK");
        } else if (type === PUBACK) {
          let found = false;
          for (let i = 0; i < inflight.length && !found; i++) {
            const message = inflight[i];
            if (message[ID] === packet.id && message[WRITTEN_ON] > 0) {
              found = true;
              this.progress++;
              inflight.splice(i, 1);
              if (message[ON_ACK] !== null) this._call(message[ON_ACK], "PUBACK", message[ACK_TARGET], message[PAYLOAD]);
              if (events.onRoom) this._call(events.onRoom, "PUBACK");
            }
          }
          if (!found) log("W", "mqtt", "PUBACK for unknown packet id " + packet.id);
        } else if (type === PUBLISH) {
          if (packet.qos === 1) this._send(new Uint8Array([PUBACK << 4, 2, packet.id >> 8, packet.id]));
          this._call(events.onMessage, packet.topic, packet.topic, packet.payload as Uint8Array);
        } else if (type === SUBACK) {
          this._subscribeOutstanding = false;
          if (packet.code === 0x80) log("E", "mqtt", "server refused a subscription (SUBACK 0x80)");
        } else if (type === PINGRESP) {
          this._pingOutstanding = false;
        }
        // UNSUBACK needs nothing: this client never unsubscribes.
        if (this.state === CONNECTED) {
          // Still waiting for an answer: keep the dead-link timer running.
          let waitingFor = this._pingOutstanding ? "no PINGRESP" : this._subscribeOutstanding ? "no SUBACK" : null;
          for (let i = 0; i < inflight.length && waitingFor === null; i++) if (inflight[i][WRITTEN_ON] > 0) waitingFor = "no PUBACK";
          if (waitingFor !== null) this._arm(waitingFor);
        }
      }
    } catch (e) {
      this._close("malformed packet from server: " + errorText(e), REFUSED);
    }
  }

  private _sendSubscribe(filters: string[]): void {
    this._subscribeOutstanding = true;
    if (this._send(encodeSubscribe(this._allocatePacketId(), filters))) this._arm("no SUBACK");
  }

  /** Writes, in order and at the pace set, the messages not yet written on this connection. */
  private _sendWaiting(): void {
    const inflight = this.inflight;
    for (let i = 0; i < inflight.length && this.state === CONNECTED && this._timers[PACE_TIMER] === null; i++) {
      const message = inflight[i];
      if (message[WRITTEN_ON] === this._generation) continue;
      // Slower too while a rate limit is suspected: half the pace and burst per halving.
      const rate = this._rate / (1 << this.squeeze);
      if (rate > 0) {
        const now = this._platform.now();
        const burst = this._burst >> this.squeeze || 1;
        // The wall clock set back: count no time rather than stall.
        let tokens = this._tokens + (now > this._tokensAt ? (now - this._tokensAt) * rate : 0);
        if (tokens > burst) tokens = burst;
        this._tokensAt = now;
        this._tokens = tokens;
        if (tokens < 1) {
          this._timer(PACE_TIMER, Math.ceil((1 - tokens) / rate));
          return;
        }
        this._tokens--;
      }
      const bytes = encodePublish(message[TOPIC], message[PAYLOAD], 1, message[ID], message[WRITTEN_ON] > 0);
      message[WRITTEN_ON] = this._generation;
      if (this._send(bytes)) this._arm("no PUBACK");
    }
  }

  /**
   * Runs application code, `handler(a, b)` (no closure per call): what it throws is logged,
   * never let into the session. Called on its own: the handlers use no `this`.
   */
  private _call<A, B>(handler: (a: A, b: B) => void, what: string, a?: A, b?: B): void {
    try {
      handler(a as A, b as B);
    } catch (e) {
      this._log("E", "mqtt", what + " handler failed: " + errorText(e));
    }
  }

  /** Writes a packet; a failed write closes the connection. Returns whether it was written. */
  private _send(bytes: Uint8Array): boolean {
    const socket = this._socket;
    if (socket === null) return false;
    try {
      this._platform.socketWrite(socket, bytes);
    } catch (e) {
      this._close("write failed: " + errorText(e), NETWORK);
      return false;
    }
    if (this.state === CONNECTED) this._arm(null);
    return true;
  }

  /**
   * null: (re)starts the keep-alive, a PINGREQ after keepAlive seconds without sending
   * anything (3.1.2.10). Else starts the dead-link timer for `waitingFor`, unless running.
   */
  private _arm(waitingFor: string | null): void {
    if (waitingFor === null) {
      this._timer(PING_TIMER, this._options.keepAliveS * 1000);
    } else if (this._timers[RESPONSE_TIMER] === null) {
      this._waitingFor = waitingFor;
      this._timer(RESPONSE_TIMER, this._options.responseTimeoutMs);
    }
  }

  /**
   * Stops timer `which` if it runs, then starts it for `ms` (none: only stopped). The
   * platform calls _onTimer with the session and `which`: no closure per timer. One method
   * for both: each is a function object for the run on Espruino.
   */
  private _timer(which: number, ms?: number): void {
    const handle = this._timers[which];
    if (handle !== null) this._platform.clearTimeout(handle);
    this._timers[which] = ms === undefined ? null : this._platform.setTimeout(MqttSession._onTimer, ms, this, which);
  }

  /** Every timer of the session ends here (static: the platform passes the session). */
  private static _onTimer(session: MqttSession, which: number): void {
    session._timers[which] = null;
    if (which === PING_TIMER) {
      if (session.state !== CONNECTED) return;
      session._pingOutstanding = true;
      if (session._send(new Uint8Array([PINGREQ << 4, 0]))) session._arm("no PINGRESP");
    } else if (which === RESPONSE_TIMER) {
      session._close("link dead: " + session._waitingFor + " within " + seconds(session._options.responseTimeoutMs), NETWORK);
    } else if (which === RECONNECT_TIMER) {
      if (session.state === WAITING) session._openConnection();
    } else if (which === STABLE_TIMER) {
      session._attempt = 0;
      // Stable again: after a suspected rate limit, one step back per keep-alive period.
      if (session.squeeze > 0) {
        session.squeeze--;
        session._timer(STABLE_TIMER, session._options.keepAliveS * 1000);
        session._sendWaiting();
      }
    } else session._sendWaiting();
  }

  /**
   * Ends the connection for `reason` (the first reason given wins) and schedules the
   * next attempt, unless stopped. `how`: NETWORK, REFUSED (logged as an error: the server
   * said no) or CLOSED_BY_SERVER.
   */
  private _close(reason: string, how: number): void {
    if (this._closeReason === null) this._closeReason = reason;
    reason = this._closeReason;
    if (how === REFUSED) this._refused = true;
    // The server closed the link with a message written on it and not acknowledged: how
    // ThingsBoard rejects a message over a rate limit. Fewer readings per message and fewer
    // in flight until the connection has been stable again.
    const inflight = this.inflight;
    let unacknowledged = false;
    for (let i = 0; i < inflight.length; i++) if (inflight[i][WRITTEN_ON] === this._generation) unacknowledged = true;
    if (how === CLOSED_BY_SERVER && this.state === CONNECTED && unacknowledged && this.squeeze < MAX_SQUEEZE) {
      this.squeeze++;
      this._log("W", "mqtt", "no PUBACK before the close: rate limit? slowing down");
    }
    // Detach first: what the old socket still reports is then ignored.
    const socket = this._socket;
    this._socket = null;
    if (socket !== null) {
      try {
        this._platform.socketClose(socket);
      } catch (e) {
        // Already closed underneath us: nothing more to release.
      }
    }
    for (let i = 0; i < this._timers.length; i++) this._timer(i);
    const wasConnected = this.state === CONNECTED;
    if (this.state === STOPPED) {
      this._log("I", "mqtt", "disconnected");
      return;
    }
    this.state = WAITING;
    const options = this._options;
    const delay = backoffDelay(this._attempt++, options.backoffMinMs, options.backoffMaxMs * (this._refused ? REFUSED_BACKOFF_FACTOR : 1), this._random);
    this.retryDelayMs = delay;
    const line = reason + "; retrying in " + seconds(delay);
    if (this._refused) this._log("E", "mqtt", line);
    else this._log("W", "mqtt", (wasConnected ? "disconnected: " : "connection failed: ") + line);
    this._timer(RECONNECT_TIMER, delay);
    const events = this._events;
    if (wasConnected && events.onDisconnected) {
      this._call(events.onDisconnected, "disconnect", reason);
    }
  }
}
