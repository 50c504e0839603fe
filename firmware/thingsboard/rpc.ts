// Server-side RPC (ThingsBoard: SUBSCRIBE v1/devices/me/rpc/request/+, a request
// {"method","params"} arrives on .../request/{id}, the reply goes to .../response/{id}).
// Bad requests get an {"error": ...} reply and a log line, never an exception.

import type { MqttSession } from "../mqtt/session";
import type { Logger } from "../util/log";
import { errorText } from "../util/log";
import { utf8Decode, utf8Encode } from "../util/utf8";

export const RPC_REQUEST_FILTER = "v1/devices/me/rpc/request/+";
const REQUEST_PREFIX = "v1/devices/me/rpc/request/";
const RESPONSE_PREFIX = "v1/devices/me/rpc/response/";

export type RpcHandler = (params: unknown) => unknown;

export class RpcServer {
  private readonly session: MqttSession;
  private readonly log: Logger;
  private readonly handlers: { [method: string]: RpcHandler };

  constructor(session: MqttSession, log: Logger, handlers: { [method: string]: RpcHandler }) {
    this.session = session;
    this.log = log;
    this.handlers = handlers;
  }

  /** Answers the message if it is an RPC request; returns whether it was one. */
  handle(topic: string, payload: Uint8Array): boolean {
    if (topic.indexOf(REQUEST_PREFIX) !== 0) return false;
    const id = topic.substring(REQUEST_PREFIX.length);
    let reply: unknown;
    const text = utf8Decode(payload, 0, payload.length);
    let request: unknown = null;
    try {
      request = text === null ? null : JSON.parse(text);
    } catch (e) {
      request = null;
    }
    const method = request !== null && typeof request === "object" ? (request as { method?: unknown }).method : undefined;
    if (typeof method !== "string") {
      this.log.error("rpc", "request " + id + " is not {\"method\": ..., \"params\": ...} JSON; answered with an error");
      reply = { error: "bad request: expected JSON {\"method\": string, \"params\": any}" };
    } else if (!Object.prototype.hasOwnProperty.call(this.handlers, method)) {
      this.log.warn("rpc", "unknown method \"" + method + "\" (request " + id + ")");
      reply = { error: "unknown method \"" + method + "\"" };
    } else {
      try {
        reply = this.handlers[method]((request as { params?: unknown }).params);
        this.log.info("rpc", method + " (request " + id + ") answered");
      } catch (e) {
        const message = errorText(e);
        this.log.error("rpc", method + " failed: " + message);
        reply = { error: method + " failed: " + message };
      }
    }
    const bytes = utf8Encode(JSON.stringify(reply === undefined ? {} : reply));
    // QoS 1 when there is room, so the reply survives a reconnect; else QoS 0 rather than none.
    if (!this.session.publish(RESPONSE_PREFIX + id, bytes, 1, null)) this.session.publish(RESPONSE_PREFIX + id, bytes, 0, null);
    return true;
  }
}
