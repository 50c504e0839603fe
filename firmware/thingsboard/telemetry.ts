// ThingsBoard device telemetry (v1/devices/me/telemetry) payloads.

import type { Reading } from "../sensors/types";


/**
 * One reading as ThingsBoard JSON: {"ts":ms,"values":{...}} when the clock is set, else
 * the bare values (the server stamps its own time). A sensor failure is reported as
 * "sensor_error": reason instead of a made-up value, beside what the other sensors read.
 */
export function telemetryJson(ts: number | null, reading: Reading): string {
  const body = JSON.stringify(reading);
  if (ts === null) return body;
  return "{\"ts\":" + ts + ",\"values\":" + body + "}";
}
