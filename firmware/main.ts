// Wires a board's configuration and a runtime's platform to the application.
// The build generates the entry that calls main() with both (tools/build.ts).

import type { DeviceConfig } from "./config";
import { startDevice } from "./app/device";
import type { Feature } from "./app/device";
import type { Platform } from "./platform/types";
import type { SensorFactory } from "./sensors/types";
import { errorText } from "./util/log";

export function main(platform: Platform, config: DeviceConfig, createSensor: SensorFactory, features: Feature[]): void {
  try {
    startDevice(platform, config, createSensor, features);
  } catch (e) {
    platform.log("[E][boot] start-up failed: " + errorText(e));
  }
}
