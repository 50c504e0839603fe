// Sensirion SHT4x (SHT40/41/45): 0xFD measures T and RH at high precision, 8.3 ms at most;
// RH % = -6 + 125 * word / 65535, cropped to 0-100 (datasheet 4.6).

import type { Sensor, SensorContext } from "./types";
import { i2cContext } from "./types";
import { sensirionSensor } from "./sensirion";
import type { Platform } from "../platform/types";
import type { SensorConfig } from "../config";

export function sht4xSensor(context: SensorContext, address: number): Sensor {
  return sensirionSensor(context, address, "sht4x", new Uint8Array([0xfd]), 10, -6, 125);
}

export function createSht4x(platform: Platform, sensor: SensorConfig): Sensor {
  return sht4xSensor(i2cContext(platform, sensor), sensor.address!);
}
