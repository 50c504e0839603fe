// JSON in and out of MQTT payloads, never throwing: a bad payload from the server is
// reported by the caller, not an exception in a socket callback. And the status the
// features report.

import type { DeviceContext } from "../app/device";
import type { MqttSession } from "../mqtt/session";
import { utf8Decode, utf8Encode } from "../util/utf8";

/** The payload as JSON, or undefined when it is not UTF-8 JSON. */
export function parsePayload(payload: Uint8Array): unknown {
  const text = utf8Decode(payload, 0, payload.length);
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    return undefined;
  }
}

/** The object's property, or undefined when `value` is no object. */
export function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" ? (value as { [key: string]: unknown })[key] : undefined;
}

/**
 * Subscribes to `prefix` + "+" (kept across reconnects) and hands every message under
 * `prefix` to `handle`, with the id after the prefix (the handler parses the payload:
 * no wrapper closure per prefix).
 */
export function onTopicPrefix(context: DeviceContext, prefix: string, handle: (id: string, payload: Uint8Array) => void): void {
  context.session.subscribe(prefix + "+");
  context.topics.push(prefix);
  context.onMessage.push(handle);
}

/** Publishes `value` as JSON at QoS 1 (kept across reconnects); false when the session has no room. */
export function publishJson(session: MqttSession, topic: string, value: unknown, onAck: (() => void) | null): boolean {
  return session.publish(topic, utf8Encode(JSON.stringify(value)), 1, onAck);
}

/** Uptime and queue counters (getStatus, status telemetry). */
export function deviceStatus(context: DeviceContext): { [key: string]: number | string | boolean } {
  const queue = context.queue;
  return {
    uptime_s: Math.floor((context.platform.now() - context.bootAt) / 1000),
    queued: queue.size(),
    in_flash: queue.spilledBatches,
    delivered: queue.deliveredTotal,
    dropped: queue.droppedCount,
  };
}
