// Client-side RPC: the device asks ThingsBoard (PUBLISH v1/devices/me/rpc/request/{id},
// the answer comes on .../response/{id}). One table of pending calls per device; a call
// that gets no answer within the response timeout is answered with null.

import type { DeviceContext } from "../app/device";
import type { TimerHandle } from "../platform/types";
import { RPC_REQUEST, RPC_RESPONSE } from "./topics";
import { onTopicPrefix, parsePayload, publishJson } from "./json";

export type ReplyHandler = (reply: unknown) => void;

/**
 * Calls `method`; `onReply` gets the answer, or null (no answer, or no room to ask).
 * A function, not an object with a method: one function object fewer for the whole run.
 */
export type ClientRpc = (method: string, params: unknown, onReply: ReplyHandler) => void;

function createClientRpc(context: DeviceContext): ClientRpc {
  let nextId = 0;
  const pending: { [id: string]: [ReplyHandler, TimerHandle] } = {};
  /** `reply`: the answer's payload, or null (none). */
  const finish = (id: string, reply: Uint8Array | null): void => {
    const call = pending[id];
    if (!call) return;
    delete pending[id];
    context.platform.clearTimeout(call[1]);
    const answer = reply === null ? null : parsePayload(reply);
    call[0](answer === undefined ? null : answer);
  };
  onTopicPrefix(context, RPC_RESPONSE, finish);
  return (method, params, onReply) => {
    const id = String(++nextId);
    if (!publishJson(context.session, RPC_REQUEST + id, { method: method, params: params }, null)) {
      onReply(null);
      return;
    }
    const timeoutMs = context.config.responseTimeoutMs;
    pending[id] = [
      onReply,
      context.platform.setTimeout(() => {
        context.log("W", "rpc", method + ": no answer from the server within " + timeoutMs + " ms");
        finish(id, null);
      }, timeoutMs),
    ];
  };
}

/** Makes the device's one ClientRpc, for the features that call the server (DeviceContext.clientRpc). */
export function clientRpcService(context: DeviceContext): void {
  context.clientRpc = createClientRpc(context);
}
