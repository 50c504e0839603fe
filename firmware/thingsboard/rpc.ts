// Server-side RPC (ThingsBoard: SUBSCRIBE v1/devices/me/rpc/request/+, a request
// {"method","params"} arrives on .../request/{id}, the reply goes to .../response/{id}).
// Bad requests, unknown methods and handlers that throw get an {"error": ...} reply and
// a log line, never an exception. Requests beyond what can be answered now are refused
// with an error reply, never dropped silently.

import type { DeviceContext } from "../app/device";
import { remoteConfig } from "../app/remote-config";
import { errorText } from "../util/log";
import { CLAIM_TOPIC, RPC_REQUEST, RPC_RESPONSE } from "./topics";
import { deviceStatus, field, onTopicPrefix, publishJson } from "./json";
import { single } from "../app/device";

/** `reply` answers once; `afterDelivery` runs when the server has the reply (its PUBACK). */
export type RpcHandler = (params: unknown, reply: (result: unknown, afterDelivery?: () => void) => void, method: string) => void;

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
    onTopicPrefix(context, RPC_REQUEST, (id, request) => rpc._handle(id, request));
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
      const error = field(result, "error");
      log(error === undefined ? "I" : "W", "rpc", method + " " + id + (error === undefined ? " answered" : ": " + error));
      rpc._send(id, result === undefined ? {} : result, afterDelivery);
    };
    const handler = typeof method === "string" && Object.prototype.hasOwnProperty.call(this._handlers, method) ? this._handlers[method] : null;
    if (handler === null) reply({ error: typeof method === "string" ? "unknown method: " + method : "bad request: expected {\"method\": string, \"params\": any}" });
    else if (this._busy >= MAX_BUSY) reply({ error: "busy: retry later" });
    else {
      this._busy++;
      const done = (result: unknown, afterDelivery?: () => void) => {
        if (!answered) rpc._busy--;
        reply(result, afterDelivery);
      };
      try {
        handler(field(request, "params"), done, method as string);
      } catch (e) {
        done({ error: method + " failed: " + errorText(e) });
      }
    }
  }

  /** Publishes the reply at QoS 1; while the session has no room it tries again. */
  private _send(id: string, result: unknown, afterDelivery?: () => void): void {
    const rpc = this;
    if (!publishJson(this._context.session, RPC_RESPONSE + id, result, afterDelivery ? afterDelivery : null)) {
      this._context.platform.setTimeout(() => rpc._send(id, result, afterDelivery), RETRY_MS);
    }
  }
}

/** The one RpcServer of a device: features and the application register handlers on it. */
export function rpcServer(context: DeviceContext): RpcServer {
  return single(context, "rpcServer", () => new RpcServer(context));
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
  // One function for all built-ins: every function object costs JsVars on Espruino.
  const builtIn: RpcHandler = (params, reply, method) => {
    if (method === "getStatus") {
      const status = deviceStatus(context);
      status.firmware = config.firmwareVersion;
      status.board = config.board;
      status.runtime = platform.runtime;
      status.clock_set = platform.clockIsSet();
      reply(status);
    } else if (method === "getConfig") reply(context.settings);
    else if (method === "setConfig") {
      const problems = remote.update(params, null, false, true);
      reply(problems ? { error: problems, config: context.settings } : { config: context.settings });
    } else if (method === "readNow") context.sampleNow((error, values) => reply(error !== null ? { error: error } : values));
    else if (method === "reboot") {
      context.log("W", "rpc", "rebooting on request");
      // Restart once the server has the reply; if it never confirms, restart anyway.
      platform.setTimeout(platform.restart, 10000);
      reply({ rebooting: true }, platform.restart);
    } else if (method === "claim") {
      const secretKey = field(params, "secretKey");
      const durationMs = field(params, "durationMs");
      const claim: { secretKey?: string; durationMs?: number } = {};
      if (typeof secretKey === "string") claim.secretKey = secretKey;
      if (typeof durationMs === "number") claim.durationMs = durationMs;
      reply(publishJson(context.session, CLAIM_TOPIC, claim, null) ? { claiming: true } : { error: "no room to send the claim now; retry" });
    } else reply({ pong: true });
  };
  const names = ["getStatus", "getConfig", "setConfig", "readNow", "reboot", "claim", "ping"];
  for (let i = 0; i < names.length; i++) rpc.register(names[i], builtIn);
}
