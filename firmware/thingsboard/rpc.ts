// Server-side RPC (ThingsBoard: SUBSCRIBE v1/devices/me/rpc/request/+, a request
// {"method","params"} arrives on .../request/{id}, the reply goes to .../response/{id}).
// Bad requests, unknown methods and handlers that throw get an {"error": ...} reply and
// a log line, never an exception. Requests beyond what can be answered now are refused
// with an error reply, never dropped silently.

import type { DeviceContext } from "../app/device";
import { errorText } from "../util/log";
import { CLAIM_TOPIC, RPC_REQUEST, RPC_RESPONSE } from "./topics";
import { deviceStatus, field, onTopicPrefix, parsePayload, publishJson } from "./json";

/** `reply` answers once; `afterDelivery` runs when the server has the reply (its PUBACK). */
export type RpcHandler = (params: unknown, reply: (result: unknown, afterDelivery?: () => void) => void, method: string) => void;

/** Requests being answered or whose reply waits for room, at most. */
const MAX_BUSY = 4;
const RETRY_MS = 500;

/**
 * Adds (or replaces) the handler of `method`, a built-in's too: the application API, called
 * from a feature of yours. A module function over a table on the context, not a server
 * object with a method: a board that registers nothing keeps neither the table nor this
 * function (on Espruino each function object costs JsVars for the whole run).
 */
export function registerRpc(context: DeviceContext, method: string, handler: RpcHandler): void {
  (context.rpcMethods || (context.rpcMethods = {}))[method] = handler;
}

/**
 * The "rpc" board feature: server-side RPC, with the built-ins getStatus, getConfig,
 * setConfig, readNow, reboot, ping and claim, and the methods given to registerRpc.
 */
export function rpcFeature(context: DeviceContext): void {
  const config = context.config;
  const platform = context.platform;
  const log = context.log;
  // Made by remoteConfigService, which the build runs before this feature.
  const remote = context.remoteConfig!;
  let busy = 0;

  /** Publishes the reply at QoS 1; while the session has no room it tries again. */
  const send = (id: string, result: unknown, afterDelivery?: () => void): void => {
    if (!publishJson(context.session, RPC_RESPONSE + id, result, afterDelivery ? afterDelivery : null)) {
      platform.setTimeout(() => send(id, result, afterDelivery), RETRY_MS);
    }
  };

  /**
   * The reply of request `id`, which answers once (`counted`: the request holds one of
   * the busy slots). Made here, not in the request's handler: on Espruino a closure kept
   * in a variable of the scope it closes over is a cycle, which reference counting never
   * frees (only a garbage collection does, when memory runs low), and with it the
   * request's payload.
   */
  const replier = (id: string, method: unknown, counted: boolean) => {
    let answered = false;
    return (result: unknown, afterDelivery?: () => void) => {
      if (answered) return;
      answered = true;
      if (counted) busy--;
      const error = field(result, "error");
      log(error === undefined ? "I" : "W", "rpc", (typeof method === "string" ? method : "request") + " " + id + (error === undefined ? " answered" : ": " + error));
      send(id, result === undefined ? {} : result, afterDelivery);
    };
  };

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
      const problems = remote(params, null, false, true);
      reply(problems ? { error: problems, config: context.settings } : { config: context.settings });
    } else if (method === "readNow") context.sampleNow((reading) => reply(reading || { error: "every sensor is switched off" }));
    else if (method === "reboot") {
      log("W", "rpc", "rebooting on request");
      // Readings waiting in RAM go to flash first, so they survive the restart.
      const restart = () => {
        context.queue.persist();
        platform.restart();
      };
      // Restart once the server has the reply; if it never confirms, restart anyway.
      platform.setTimeout(restart, 10000);
      reply({ rebooting: true }, restart);
    } else if (method === "claim") {
      const secretKey = field(params, "secretKey");
      const durationMs = field(params, "durationMs");
      const claim: { secretKey?: string; durationMs?: number } = {};
      if (typeof secretKey === "string") claim.secretKey = secretKey;
      if (typeof durationMs === "number") claim.durationMs = durationMs;
      reply(publishJson(context.session, CLAIM_TOPIC, claim, null) ? { claiming: true } : { error: "no room to send the claim now; retry" });
    } else if (method === "ping") reply({ pong: true });
    else reply({ error: typeof method === "string" ? "unknown method: " + method : "bad request: expected {\"method\": string, \"params\": any}" });
  };

  onTopicPrefix(context, RPC_REQUEST, (id, payload) => {
    const request = parsePayload(payload);
    const method = field(request, "method");
    const registered = context.rpcMethods;
    // Own properties only ("toString" is no method). The built-ins answer the rest, bad requests too.
    const handler = typeof method === "string" && registered && Object.prototype.hasOwnProperty.call(registered, method) ? registered[method] : builtIn;
    const counted = busy < MAX_BUSY;
    if (counted) busy++;
    // Not inlined by terser: the reply would then close over this scope again.
    const reply = /*#__NOINLINE__*/ replier(id, method, counted);
    if (!counted) reply({ error: "busy: retry later" });
    else {
      try {
        handler(field(request, "params"), reply, method as string);
      } catch (e) {
        reply({ error: method + " failed: " + errorText(e) });
      }
    }
  });
}
