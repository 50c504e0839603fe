// Sensirion SHT3x (SHT30/31/35): single shot, high repeatability, no clock stretching =
// 0x2400; 15 ms conversion; RH % = 100 * word / 65535.

import type { Sensor, SensorContext } from "./types";
import type { Platform } from "../platform/types";
import type { SensorConfig } from "../config";
import { i2cContext } from "./types";
import { sensirionSensor } from "./sensirion";

export function sht3xSensor(context: SensorContext, address: number): Sensor {
  return sensirionSensor(context, address, "sht3x", new Uint8Array([0x24, 0x00]), 16, 0, 100);
}

export function createSht3x(platform: Platform, sensor: SensorConfig): Sensor {
  return sht3xSensor(i2cContext(platform, sensor), sensor.address!);
}
