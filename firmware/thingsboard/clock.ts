// The "clock" board feature: when SNTP is unavailable or fails, the device asks
// ThingsBoard for the time (client-side RPC getCurrentTime, answered {"time": ms}).
// Readings taken before then wait and go out with their times corrected.

import type { DeviceContext } from "../app/device";
import { CLOCK_SET_AFTER_MS } from "../platform/types";
import { clientRpc } from "./client-rpc";
import { field } from "./json";

export function clockFeature(context: DeviceContext): void {
  const platform = context.platform;
  const rpc = clientRpc(context);
  context.clockFromServer = true;
  context.onConnect.push(() => {
    if (platform.clockIsSet()) return;
    rpc.call("getCurrentTime", {}, (reply) => {
      if (platform.clockIsSet()) return;
      const time = field(reply, "time");
      if (typeof time === "number" && time > CLOCK_SET_AFTER_MS) {
        const shift = time - platform.now();
        platform.setClock(time);
        context.log("I", "clock", "set from ThingsBoard to " + new Date(time).toISOString());
        context.clockSet(shift);
      } else {
        context.log("W", "clock", "ThingsBoard gave no time (" + JSON.stringify(reply) + "): telemetry goes without ts (server time)");
        context.clockSet(null);
      }
    });
  });
}
