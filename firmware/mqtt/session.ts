// MQTT 3.1.1 client session over a platform socket: QoS 1 with delivery confirmed by
// PUBACK, keep-alive with dead-link detection, resubscribe and resend with DUP after a
// reconnect, exponential backoff with seeded jitter. Never throws out of a callback.
//
// Written as one closure, not a class: its state is local variables, which the minifier
// shortens to one letter, where `this._x` costs six bytes a use in the image (and so in
// JsVars on Espruino). Few inner functions on purpose: each one is an object for the run.

import type { Platform, Socket, TimerHandle } from "../platform/types";
import type { Logger } from "../util/log";
import { errorText, seconds } from "../util/log";
import { CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, PUBLISH, createDecoder, SUBACK, encodeConnect, encodeEmpty, encodePuback, encodePublish, encodeSubscribe } from "./codec";

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

export type SessionState = "idle" | "connecting" | "connected" | "waiting" | "stopped";

export interface MqttSession {
  getState(): SessionState;
  isConnected(): boolean;
  /** Messages handed over and not yet acknowledged (sent or waiting to be resent). */
  inflightCount(): number;
  /**
   * Whether the telemetry queue may hand over another QoS 1 message now: one slot of
   * maxInflight stays free for RPC replies and attributes.
   */
  canPublish(): boolean;
  /**
   * Paces PUBLISH packets to `perSecond` on average, allowing bursts of `burst`
   * (0 per second: as fast as acks allow).
   */
  setPace(perSecond: number, burst: number): void;
  /** Delay before the next connection attempt, for tests and status reports. */
  lastRetryDelayMs(): number;
  start(): void;
  /** Sends DISCONNECT and stops reconnecting; unacknowledged messages stay queued. */
  stop(): void;
  /** Adds a subscription kept across reconnects; sent now when connected. */
  subscribe(filter: string, qos: number): void;
  /**
   * QoS 1: the message is kept until its PUBACK arrives, across reconnects, and
   * `onAck` runs then. Returns false (nothing kept) when maxInflight is reached.
   * QoS 0: sent only when connected; returns whether it was written.
   */
  publish(topic: string, payload: Uint8Array, qos: number, onAck: (() => void) | null): boolean;
}

/**
 * A QoS 1 message handed over and not yet acknowledged, as an array (no property names
 * in the image): packet id, topic, payload, the connection it was last written on (0:
 * never sent; an older one: (re)send it, with DUP when sent before), and what runs on its PUBACK.
 */
type InflightMessage = [number, string, Uint8Array, number, (() => void) | null];
const ID = 0;
const TOPIC = 1;
const PAYLOAD = 2;
const WRITTEN_ON = 3;
const ON_ACK = 4;

const PING_TIMER = 0;
const RESPONSE_TIMER = 1;
const RECONNECT_TIMER = 2;
const STABLE_TIMER = 3;
const PACE_TIMER = 4;
/** A connection that stays up this long resets the backoff to its minimum. */
const STABLE_AFTER_MS = 30000;
/** ThingsBoard's default maxPayloadSize plus room for the header and topic. */
const MAX_PACKET_BYTES = 65536 + 1024;

/** Backoff before attempt `attempt` (0-based): exponential, capped, with jitter in [half, full]. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  let ceiling = minMs;
  for (let i = 0; i < attempt && ceiling < maxMs; i++) ceiling *= 2;
  if (ceiling > maxMs) ceiling = maxMs;
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** What a refused CONNACK means (3.2.2.3), as ThingsBoard uses the codes: "reason|what to do". */
const CONNACK_REASONS = [
  "",
  "unacceptable protocol version",
  "client id rejected",
  "server unavailable or connect rate limit hit",
  "bad user name or password|check the access token",
  "not authorized|wrong or unknown access token",
];

export function createSession(platform: Platform, options: SessionOptions, events: SessionEvents, log: Logger, random: () => number): MqttSession {
  const decoder = createDecoder(MAX_PACKET_BYTES);
  let state: SessionState = "idle";
  let socket: Socket | null = null;
  /** Bumped per connection so callbacks from an old socket are ignored; 0 is "never written". */
  let generation = 1;
  let attempt = 0;
  let closeReason: string | null = null;
  let refused = false;
  const inflight: InflightMessage[] = [];
  /** Filters kept across reconnects, and their QoS (parallel arrays: no object per filter). */
  const filters: string[] = [];
  const filterQos: number[] = [];
  let nextPacketId = 1;
  /** Keep-alive, dead-link, reconnect, stable-connection and pace timers, by the indexes above. */
  const timers: (TimerHandle | null)[] = [null, null, null, null, null];
  /**
   * A token bucket for PUBLISH packets (ThingsBoard's rate limits): tokens per ms
   * (0: no pacing), the most that may be saved up, what is saved, and when it was counted.
   */
  let rate = 0;
  let burst = 0;
  let tokens = 0;
  let tokensAt = 0;
  let pingOutstanding = false;
  let subscribeOutstanding = false;
  let retryDelayMs = 0;

  const allocatePacketId = (): number => {
    for (;;) {
      const id = nextPacketId;
      nextPacketId = id === 65535 ? 1 : id + 1;
      let used = false;
      for (let i = 0; i < inflight.length; i++) if (inflight[i][ID] === id) used = true;
      if (!used) return id;
    }
  };

  /** Runs application code: what it throws is logged, never let into the session. */
  const call = (handler: () => void, what: string): void => {
    try {
      handler();
    } catch (e) {
      log("E", "mqtt", what + " handler failed: " + errorText(e));
    }
  };

  const clearTimer = (which: number): void => {
    if (timers[which] !== null) platform.clearTimeout(timers[which]);
    timers[which] = null;
  };

  /** Runs `then` after `ms` as timer `which`, unless cleared. */
  const startTimer = (which: number, ms: number, then: () => void): void => {
    timers[which] = platform.setTimeout(() => {
      timers[which] = null;
      then();
    }, ms);
  };

  /**
   * null: (re)starts the keep-alive, a PINGREQ after keepAlive seconds without sending
   * anything (3.1.2.10). Else starts the dead-link timer for `waitingFor`, unless running.
   */
  const arm = (waitingFor: string | null): void => {
    if (waitingFor === null) {
      clearTimer(PING_TIMER);
      startTimer(PING_TIMER, options.keepAliveS * 1000, () => {
        if (state !== "connected") return;
        pingOutstanding = true;
        if (send(encodeEmpty(PINGREQ))) arm("no PINGRESP");
      });
    } else if (timers[RESPONSE_TIMER] === null) {
      const timeoutMs = options.responseTimeoutMs;
      startTimer(RESPONSE_TIMER, timeoutMs, () => close("link dead: " + waitingFor + " within " + seconds(timeoutMs), false));
    }
  };

  /** Writes a packet; a failed write closes the connection. Returns whether it was written. */
  const send = (bytes: Uint8Array): boolean => {
    if (socket === null) return false;
    try {
      socket.write(bytes);
    } catch (e) {
      close("write failed: " + errorText(e), false);
      return false;
    }
    if (state === "connected") arm(null);
    return true;
  };

  const sendSubscribe = (list: string[], qos: number[]): void => {
    subscribeOutstanding = true;
    if (send(encodeSubscribe(allocatePacketId(), list, qos))) arm("no SUBACK");
  };

  /** Writes, in order and at the pace set, the messages not yet written on this connection. */
  const sendWaiting = (): void => {
    for (let i = 0; i < inflight.length && state === "connected" && timers[PACE_TIMER] === null; i++) {
      const message = inflight[i];
      if (message[WRITTEN_ON] === generation) continue;
      if (rate > 0) {
        const now = platform.now();
        // The wall clock set back: count no time rather than stall.
        tokens += now > tokensAt ? (now - tokensAt) * rate : 0;
        if (tokens > burst) tokens = burst;
        tokensAt = now;
        if (tokens < 1) {
          startTimer(PACE_TIMER, Math.ceil((1 - tokens) / rate), sendWaiting);
          return;
        }
        tokens--;
      }
      const bytes = encodePublish(message[TOPIC], message[PAYLOAD], 1, message[ID], message[WRITTEN_ON] > 0);
      message[WRITTEN_ON] = generation;
      if (send(bytes)) arm("no PUBACK");
    }
  };

  /**
   * Ends the connection for `reason` (the first reason given wins) and schedules the
   * next attempt, unless stopped. `refusedNow`: logged as an error (the server said no).
   */
  const close = (reason: string, refusedNow: boolean): void => {
    if (closeReason === null) closeReason = reason;
    reason = closeReason;
    if (refusedNow) refused = true;
    // Detach first: bumping the generation silences the old socket's callbacks.
    const closing = socket;
    socket = null;
    generation++;
    if (closing !== null) {
      try {
        closing.close();
      } catch (e) {
        // Already closed underneath us: nothing more to release.
      }
    }
    for (let i = 0; i < timers.length; i++) clearTimer(i);
    const wasConnected = state === "connected";
    if (state === "stopped") {
      log("I", "mqtt", "disconnected");
      return;
    }
    state = "waiting";
    const delay = backoffDelay(attempt++, options.backoffMinMs, options.backoffMaxMs, random);
    retryDelayMs = delay;
    const line = reason + "; retrying in " + seconds(delay);
    if (refused) log("E", "mqtt", line);
    else log("W", "mqtt", (wasConnected ? "disconnected: " : "connection failed: ") + line);
    startTimer(RECONNECT_TIMER, delay, () => {
      if (state === "waiting") openConnection();
    });
    if (wasConnected) call(() => events.onDisconnected(reason), "disconnect");
  };

  const where = (): string => options.host + ":" + options.port + (options.tls ? " (tls)" : " (plain)");

  const connected = (): void => {
    state = "connected";
    // A new connection starts with the three messages a connect sends (session limits request,
    // client attributes, attribute request) and no more: the session limits are not known yet.
    tokens = 3;
    tokensAt = platform.now();
    log("I", "mqtt", "connected to " + where());
    startTimer(STABLE_TIMER, STABLE_AFTER_MS, () => {
      attempt = 0;
    });
    if (filters.length > 0) sendSubscribe(filters, filterQos);
    // Resend in order what was not acknowledged; ones sent before carry DUP.
    let resent = 0;
    for (let i = 0; i < inflight.length; i++) if (inflight[i][WRITTEN_ON] > 0) resent++;
    if (resent > 0) log("I", "mqtt", "resending " + resent + " unacknowledged message(s) with DUP");
    sendWaiting();
    if (state !== "connected") return;
    arm(null);
    call(events.onConnected, "connect");
  };

  /** Bytes from the server: frames them and handles every whole packet. */
  const onData = (bytes: Uint8Array): void => {
    try {
      decoder.push(bytes);
      // Nothing more once a packet closed the connection.
      while (socket !== null && closeReason === null) {
        const packet = decoder.next();
        if (packet === null) break;
        clearTimer(RESPONSE_TIMER);
        const type = packet.type;
        if (type === CONNACK) {
          if (state !== "connecting") throw new Error("second CONNACK");
          if (packet.code !== 0) {
            const reason = (CONNACK_REASONS[packet.code] || "unknown code").split("|");
            close("connection refused: " + reason[0] + " (CONNACK " + packet.code + ")" + (reason[1] ? ": " + reason[1] : ""), true);
            return;
          }
          connected();
        } else if (state !== "connected") {
          throw new Error("packet type " + type + " before CONNACK");
        } else if (type === PUBACK) {
          let found = false;
          for (let i = 0; i < inflight.length && !found; i++) {
            const message = inflight[i];
            if (message[ID] === packet.id && message[WRITTEN_ON] > 0) {
              found = true;
              inflight.splice(i, 1);
              if (message[ON_ACK] !== null) call(message[ON_ACK], "PUBACK");
              if (events.onRoom) call(events.onRoom, "PUBACK");
            }
          }
          if (!found) log("W", "mqtt", "PUBACK for unknown packet id " + packet.id);
        } else if (type === PUBLISH) {
          if (packet.qos === 1) send(encodePuback(packet.id));
          call(() => events.onMessage(packet.topic, packet.payload as Uint8Array), packet.topic);
        } else if (type === SUBACK) {
          subscribeOutstanding = false;
          if (packet.code === 0x80) log("E", "mqtt", "server refused a subscription (SUBACK 0x80)");
        } else if (type === PINGRESP) {
          pingOutstanding = false;
        }
        // UNSUBACK needs nothing: this client never unsubscribes.
        if (state === "connected") {
          // Still waiting for an answer: keep the dead-link timer running.
          let waitingFor = pingOutstanding ? "no PINGRESP" : subscribeOutstanding ? "no SUBACK" : null;
          for (let i = 0; i < inflight.length && waitingFor === null; i++) if (inflight[i][WRITTEN_ON] > 0) waitingFor = "no PUBACK";
          if (waitingFor !== null) arm(waitingFor);
        }
      }
    } catch (e) {
      close("malformed packet from server: " + errorText(e), true);
    }
  };

  const openConnection = (): void => {
    const current = ++generation;
    state = "connecting";
    closeReason = null;
    refused = false;
    pingOutstanding = false;
    subscribeOutstanding = false;
    decoder.reset();
    log("I", "mqtt", "connecting to " + where());
    try {
      socket = platform.connect(options, {
        onConnect: () => {
          if (current === generation) send(encodeConnect(options.clientId, options.token, null, options.keepAliveS));
        },
        onData: (bytes) => {
          if (current === generation) onData(bytes);
        },
        onClose: (reason) => {
          if (current === generation) close(reason, false);
        },
      });
    } catch (e) {
      socket = null;
      close("cannot open socket: " + errorText(e), false);
      return;
    }
    // Covers DNS, TCP and TLS set-up as well as the CONNACK.
    arm("no CONNACK");
  };

  return {
    getState: () => state,
    isConnected: () => state === "connected",
    inflightCount: () => inflight.length,
    canPublish: () => state !== "stopped" && inflight.length < (options.maxInflight > 1 ? options.maxInflight - 1 : 1),
    setPace: (perSecond, most) => {
      rate = perSecond / 1000;
      burst = most;
      // What is saved up stays (at most the new burst): a new pace never allows a burst at once.
      if (tokens > most) tokens = most;
    },
    lastRetryDelayMs: () => retryDelayMs,
    start: () => {
      if (state !== "idle" && state !== "stopped") return;
      state = "idle";
      openConnection();
    },
    stop: () => {
      const open = socket;
      state = "stopped";
      if (open !== null) {
        try {
          open.write(encodeEmpty(DISCONNECT));
        } catch (e) {
          // The link is going away anyway.
        }
      }
      close("stopped", false);
    },
    subscribe: (filter, qos) => {
      if (filters.indexOf(filter) >= 0) return;
      filters.push(filter);
      filterQos.push(qos);
      if (state === "connected") sendSubscribe([filter], [qos]);
    },
    publish: (topic, payload, qos, onAck) => {
      if (qos === 0) return state === "connected" && send(encodePublish(topic, payload, 0, 0, false));
      if (state === "stopped" || inflight.length >= options.maxInflight) return false;
      inflight.push([allocatePacketId(), topic, payload, 0, onAck]);
      sendWaiting();
      return true;
    },
  };
}
