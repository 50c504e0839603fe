// The "limits" board feature: after every connect the device asks ThingsBoard for its
// session limits (client-side RPC getSessionLimits) and obeys them: no message above
// maxPayloadSize, and a publish pace under the messages, telemetryMessages and
// telemetryDataPoints rate limits. Without an answer the configured defaults stay.

import type { DeviceContext } from "../app/device";
import { field } from "./json";

export function limitsFeature(context: DeviceContext): void {
  // Made by clientRpcService, which the build runs before this feature.
  const rpc = context.clientRpc!;
  // First after a connect: the answer sets the pace for everything that follows.
  context.onConnect.unshift(() => {
    rpc("getSessionLimits", {}, (reply) => {
      const limits = field(reply, "rateLimits");
      const messages = field(limits, "messages");
      const telemetry = field(limits, "telemetryMessages");
      const points = field(limits, "telemetryDataPoints");
      const maxPayload = field(reply, "maxPayloadSize");
      if (typeof maxPayload !== "number" || maxPayload < 1024 || typeof messages !== "string") {
        context.log("W", "limits", "no usable session limits from ThingsBoard (" + JSON.stringify(reply) + "): keeping the defaults");
        return;
      }
      const messageLimits = messages + (typeof telemetry === "string" ? "," + telemetry : "");
      context.limits = [messageLimits, typeof points === "string" ? points : "", maxPayload];
      context.applySettings();
      context.log("I", "limits", "payload <= " + maxPayload + " B, messages " + messageLimits + ", data points " + points);
    });
  });
}
