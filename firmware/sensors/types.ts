import type { SensorConfig } from "../config";
import type { I2CBus, Platform, TimerHandle } from "../platform/types";

/** Named numeric values, e.g. { temperature: 21.4, humidity: 40.2 }. */
export type SensorValues = { [name: string]: number };

/**
 * One reading of a board's sensors, as telemetry: their values under their keys, and
 * `sensor_error` (why the others gave none) when one failed.
 */
export type Reading = { [key: string]: number | string | boolean };

/** `error` is a short reason ("sht3x: no ACK at 0x44"); `values` is null then. */
export type SampleCallback = (error: string | null, values: SensorValues | null) => void;

export interface Sensor {
  readonly model: string;
  sample(done: SampleCallback): void;
}

/** What a driver needs from the runtime: a bus and a way to wait for a conversion. */
export interface SensorContext {
  bus: I2CBus;
  setTimeout(callback: () => void, ms: number): TimerHandle;
}

/**
 * Makes one of the board's sensors. The build links only the factories of the board's
 * models, so an image carries the drivers it uses, not all of them.
 */
export type SensorFactory = (platform: Platform, sensor: SensorConfig, random: () => number) => Sensor;

/** The bus and timer an I2C driver needs, from the platform and the board's pins. */
export function i2cContext(platform: Platform, sensor: SensorConfig): SensorContext {
  return {
    bus: platform.i2c({ sda: sensor.sda!, scl: sensor.scl!, bitrate: sensor.bitrate! }),
    setTimeout: platform.setTimeout,
  };
}

/** Rounds to `decimals` places so telemetry does not carry float noise. */
export function roundTo(value: number, decimals: number): number {
  const factor = Math.pow(10, decimals);
  return Math.round(value * factor) / factor;
}

export function inRange(value: number, min: number, max: number): boolean {
  return value === value && value >= min && value <= max;
}
