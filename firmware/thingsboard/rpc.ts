// Server-side RPC (ThingsBoard: SUBSCRIBE v1/devices/me/rpc/request/+, a request
// {"method","params"} arrives on .../request/{id}, the reply goes to .../response/{id}).
// Bad requests, unknown methods and handlers that throw get an {"error": ...} reply and
// a log line, never an exception. Requests beyond what can be answered now are refused
// with an error reply, never dropped silently.

import type { DeviceContext } from "../app/device";
import { remoteConfig } from "../app/remote-config";
import { errorText } from "../util/log";
import { CLAIM_TOPIC, RPC_REQUEST, RPC_RESPONSE } from "./topics";
import { field, parsePayload, publishJson } from "./json";

/** `reply` answers once; `afterDelivery` runs when the server has the reply (its PUBACK). */
export type RpcHandler = (params: unknown, reply: (result: unknown, afterDelivery?: () => void) => void) => void;

/** Requests being answered or whose reply waits for room, at most. */
const MAX_BUSY = 4;
const RETRY_MS = 500;

export class RpcServer {
  private readonly _context: DeviceContext;
  private readonly _handlers: { [method: string]: RpcHandler } = {};
  private _busy = 0;

  constructor(context: DeviceContext) {
    const rpc = this;
    this._context = context;
    // Kept by the session and sent again after every connect (ThingsBoard keeps no subscriptions).
    context.session.subscribe(RPC_REQUEST + "+", 1);
    context.onMessage.push((topic, payload) => {
      if (topic.indexOf(RPC_REQUEST) !== 0) return false;
      rpc._handle(topic.substring(RPC_REQUEST.length), parsePayload(payload));
      return true;
    });
  }

  /** Adds (or replaces) the handler of `method`: the application API. */
  register(method: string, handler: RpcHandler): void {
    this._handlers[method] = handler;
  }

  private _handle(id: string, request: unknown): void {
    const rpc = this;
    const log = this._context.log;
    const method = field(request, "method");
    let answered = false;
    const reply = (result: unknown, afterDelivery?: () => void) => {
      if (answered) return;
      answered = true;
      rpc._send(id, result === undefined ? {} : result, afterDelivery);
    };
    if (typeof method !== "string") {
      log("E", "rpc", "request " + id + " is not {\"method\": ..., \"params\": ...} JSON; answered with an error");
      reply({ error: "bad request: expected JSON {\"method\": string, \"params\": any}" });
    } else if (!Object.prototype.hasOwnProperty.call(this._handlers, method)) {
      log("W", "rpc", "unknown method " + method + " (request " + id + ")");
      reply({ error: "unknown method: " + method });
    } else if (this._busy >= MAX_BUSY) {
      log("W", "rpc", method + " (request " + id + ") refused: " + MAX_BUSY + " requests still being answered");
      reply({ error: "busy: " + MAX_BUSY + " requests are still being answered; retry later" });
    } else {
      this._busy++;
      const done = (result: unknown, afterDelivery?: () => void) => {
        if (answered) return;
        rpc._busy--;
        log("I", "rpc", method + " (request " + id + ") answered");
        reply(result, afterDelivery);
      };
      try {
        this._handlers[method](field(request, "params"), done);
      } catch (e) {
        const message = errorText(e);
        log("E", "rpc", method + " failed: " + message);
        done({ error: method + " failed: " + message });
      }
    }
  }

  /** Publishes the reply at QoS 1; while the session has no room it retries, counted as busy. */
  private _send(id: string, result: unknown, afterDelivery?: () => void): void {
    const rpc = this;
    const context = this._context;
    if (publishJson(context.session, RPC_RESPONSE + id, result, afterDelivery ? afterDelivery : null)) return;
    this._busy++;
    context.platform.setTimeout(() => {
      rpc._busy--;
      rpc._send(id, result, afterDelivery);
    }, RETRY_MS);
  }
}

/** The one RpcServer of a device: features and the application register handlers on it. */
export function rpcServer(context: DeviceContext): RpcServer {
  const holder = context as DeviceContext & { rpcServer?: RpcServer };
  if (!holder.rpcServer) holder.rpcServer = new RpcServer(context);
  return holder.rpcServer;
}

/**
 * The "rpc" board feature: server-side RPC with the built-ins getStatus, getConfig,
 * setConfig, readNow, reboot, ping and claim.
 */
export function rpcFeature(context: DeviceContext): void {
  const config = context.config;
  const platform = context.platform;
  const rpc = rpcServer(context);
  const remote = remoteConfig(context);
  rpc.register("getStatus", (_params, reply) => {
    const status = context.status();
    status.firmware = config.firmwareVersion;
    status.board = config.board;
    status.runtime = platform.runtime;
    status.clock_set = platform.clockIsSet();
    reply(status);
  });
  rpc.register("getConfig", (_params, reply) => reply(context.settings));
  rpc.register("setConfig", (params, reply) => {
    const problems = remote.update(params, null, false, true);
    reply(problems ? { error: problems, config: context.settings } : { config: context.settings });
  });
  rpc.register("readNow", (_params, reply) => {
    context.sampleNow((error, values) => reply(error !== null ? { error: error } : values));
  });
  rpc.register("ping", (_params, reply) => reply({ pong: true }));
  rpc.register("reboot", (_params, reply) => {
    context.log("W", "rpc", "rebooting on request");
    // Restart once the server has the reply; if it never confirms, restart anyway.
    platform.setTimeout(platform.restart, 10000);
    reply({ rebooting: true }, platform.restart);
  });
  rpc.register("claim", (params, reply) => {
    const secretKey = field(params, "secretKey");
    const durationMs = field(params, "durationMs");
    const claim: { secretKey?: string; durationMs?: number } = {};
    if (typeof secretKey === "string") claim.secretKey = secretKey;
    if (typeof durationMs === "number") claim.durationMs = durationMs;
    reply(publishJson(context.session, CLAIM_TOPIC, claim, null) ? { claiming: true } : { error: "no room to send the claim now; retry" });
  });
}
