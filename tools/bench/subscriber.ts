// An independent mqtt.js subscriber that counts the telemetry messages the broker passes on
// (on either topic set: the images use v2 by default, the baseline v1),
// so a benchmark run can prove the device really published.

import mqtt from "mqtt";

export interface TelemetryCounter {
  count(): number;
  reset(): void;
  end(): void;
}

export async function countTelemetry(plainPort: number, clientId: string): Promise<TelemetryCounter> {
  const client = mqtt.connect("mqtt://127.0.0.1:" + plainPort, { clientId });
  let received = 0;
  await new Promise<void>((resolve) => client.on("connect", () => client.subscribe(["v1/devices/me/telemetry", "v2/t"], () => resolve())));
  client.on("message", () => received++);
  return {
    count: () => received,
    reset: () => {
      received = 0;
    },
    end: () => client.end(true),
  };
}
