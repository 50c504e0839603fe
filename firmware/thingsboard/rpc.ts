// Server-side RPC (ThingsBoard: SUBSCRIBE v1/devices/me/rpc/request/+, a request
// {"method","params"} arrives on .../request/{id}, the reply goes to .../response/{id}).
// Bad requests get an {"error": ...} reply and a log line, never an exception.

import type { DeviceContext } from "../app/device";
import type { MqttSession } from "../mqtt/session";
import type { Logger } from "../util/log";
import { errorText } from "../util/log";
import { utf8Decode, utf8Encode } from "../util/utf8";

const RPC_REQUEST_FILTER = "v1/devices/me/rpc/request/+";
const REQUEST_PREFIX = "v1/devices/me/rpc/request/";
const RESPONSE_PREFIX = "v1/devices/me/rpc/response/";

export type RpcHandler = (params: unknown) => unknown;

export class RpcServer {
  private readonly _session: MqttSession;
  private readonly _log: Logger;
  private readonly _handlers: { [method: string]: RpcHandler };

  constructor(session: MqttSession, log: Logger, handlers: { [method: string]: RpcHandler }) {
    this._session = session;
    this._log = log;
    this._handlers = handlers;
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
      this._log("E", "rpc", "request " + id + " is not {\"method\": ..., \"params\": ...} JSON; answered with an error");
      reply = { error: "bad request: expected JSON {\"method\": string, \"params\": any}" };
    } else if (!Object.prototype.hasOwnProperty.call(this._handlers, method)) {
      this._log("W", "rpc", "unknown method \"" + method + "\" (request " + id + ")");
      reply = { error: "unknown method \"" + method + "\"" };
    } else {
      try {
        reply = this._handlers[method]((request as { params?: unknown }).params);
        this._log("I", "rpc", method + " (request " + id + ") answered");
      } catch (e) {
        const message = errorText(e);
        this._log("E", "rpc", method + " failed: " + message);
        reply = { error: method + " failed: " + message };
      }
    }
    const bytes = utf8Encode(JSON.stringify(reply === undefined ? {} : reply));
    // QoS 1 when there is room, so the reply survives a reconnect; else QoS 0 rather than none.
    if (!this._session.publish(RESPONSE_PREFIX + id, bytes, 1, null)) this._session.publish(RESPONSE_PREFIX + id, bytes, 0, null);
    return true;
  }
}

/** The "rpc" board feature: server-side RPC with the built-in getStatus. */
export function rpcFeature(device: DeviceContext): void {
  const config = device.config;
  const queue = device.queue;
  const rpc = new RpcServer(device.session, device.log, {
    getStatus: () => ({
      firmware: config.firmwareVersion,
      board: config.board,
      runtime: device.platform.runtime,
      queued: queue.size(),
      inFlash: queue.spilledBatches(),
      delivered: queue.deliveredCount(),
      dropped: queue.droppedCount(),
    }),
  });
  // Kept by the session and sent again after every connect (ThingsBoard keeps no subscriptions).
  device.session.subscribe(RPC_REQUEST_FILTER, 1);
  device.onMessage.push((topic, payload) => rpc.handle(topic, payload));
}
