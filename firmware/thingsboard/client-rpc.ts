// Client-side RPC: the device asks ThingsBoard (PUBLISH v1/devices/me/rpc/request/{id},
// the answer comes on .../response/{id}). One table of pending calls per device; a call
// that gets no answer within the response timeout is answered with null.

import type { DeviceContext } from "../app/device";
import type { TimerHandle } from "../platform/types";
import { RPC_REQUEST, RPC_RESPONSE } from "./topics";
import { onTopicPrefix, publishJson } from "./json";
import { single } from "../app/device";

export type ReplyHandler = (reply: unknown) => void;

export class ClientRpc {
  private readonly _context: DeviceContext;
  private _nextId = 0;
  private _pending: { [id: string]: [ReplyHandler, TimerHandle] } = {};

  constructor(context: DeviceContext) {
    const rpc = this;
    this._context = context;
    onTopicPrefix(context, RPC_RESPONSE, (id, reply) => rpc._finish(id, reply));
  }

  /** Calls `method`; `onReply` gets the answer, or null (no answer, or no room to ask). */
  call(method: string, params: unknown, onReply: ReplyHandler): void {
    const rpc = this;
    const context = this._context;
    const id = String(++this._nextId);
    if (!publishJson(context.session, RPC_REQUEST + id, { method: method, params: params }, null)) {
      onReply(null);
      return;
    }
    this._pending[id] = [
      onReply,
      context.platform.setTimeout(() => {
        context.log("W", "rpc", method + ": no answer from the server within " + context.config.responseTimeoutMs + " ms");
        rpc._finish(id, null);
      }, context.config.responseTimeoutMs),
    ];
  }

  private _finish(id: string, reply: unknown): void {
    const pending = this._pending[id];
    if (!pending) return;
    delete this._pending[id];
    this._context.platform.clearTimeout(pending[1]);
    pending[0](reply === undefined ? null : reply);
  }
}

/** The one ClientRpc of a device, shared by the features that call the server. */
export function clientRpc(context: DeviceContext): ClientRpc {
  return single(context, "clientRpc", () => new ClientRpc(context));
}
