// The "clock" board feature: readings taken before the clock is set wait (never a 1970
// ts); when SNTP is unavailable or fails the device asks ThingsBoard for the time
// (client-side RPC getCurrentTime, answered {"time": ms}). Then the readings that waited
// go out with their times corrected; if ThingsBoard gives no time, without ts.

import type { DeviceContext } from "../app/device";
import type { Reading } from "../sensors/types";
import { CLOCK_SET_AFTER_MS } from "../platform/types";
import { field } from "./json";
import { telemetryJson } from "./telemetry";

export function clockFeature(context: DeviceContext): void {
  const platform = context.platform;
  // Set already (kept across a restart): nothing to hold, nothing to ask, nothing kept in RAM.
  if (platform.clockIsSet()) return;
  // Made by clientRpcService, which the build runs before this feature.
  const rpc = context.clientRpc!;
  let held: [number, Reading][] | null = [];
  // shift: how far the clock jumped; null: it will not be set, send without ts.
  const release = (shift: number | null) => {
    const waiting = held;
    held = null;
    if (waiting === null) return;
    // The device queues readings itself again; these hooks can go. Queued here as the device
    // queues them (record in app/device.ts), written out rather than a shared function, which
    // on Espruino would be a global kept for the run.
    delete context.queueReading;
    delete context.clockSet;
    for (let i = 0; i < waiting.length; i++) context.queue.add(telemetryJson(shift === null ? null : waiting[i][0] + shift, waiting[i][1]));
    context.log("I", "clock", waiting.length + " reading(s) sent " + (shift === null ? "without ts" : "with corrected ts"));
  };
  context.queueReading = (t, reading) => {
    if (held !== null && held.length < context.config.queueCapacity) held.push([t, reading]);
    // Full: queued as the device would queue it.
    else context.queue.add(telemetryJson(platform.clockIsSet() ? t : null, reading));
  };
  // The device moved bootAt already.
  context.clockSet = release;
  context.onConnect.push(() => {
    if (platform.clockIsSet()) return;
    rpc("getCurrentTime", {}, (reply) => {
      if (platform.clockIsSet()) return;
      const time = field(reply, "time");
      if (typeof time === "number" && time > CLOCK_SET_AFTER_MS) {
        const shift = time - platform.now();
        platform.setClock(time);
        context.log("I", "clock", "set from ThingsBoard to " + new Date(time).toISOString());
        context.bootAt += shift;
        release(shift);
      } else {
        context.log("W", "clock", "no time from ThingsBoard: " + JSON.stringify(reply));
        release(null);
      }
    });
  });
}
