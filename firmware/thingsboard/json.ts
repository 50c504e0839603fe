// JSON in and out of MQTT payloads, never throwing: a bad payload from the server is
// reported by the caller, not an exception in a socket callback.

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

/** Publishes `value` as JSON at QoS 1 (kept across reconnects); false when the session has no room. */
export function publishJson(session: MqttSession, topic: string, value: unknown, onAck: (() => void) | null): boolean {
  return session.publish(topic, utf8Encode(JSON.stringify(value)), 1, onAck);
}
