import type { SensorConfig } from "../config";
import type { I2CBus, Platform, TimerHandle } from "../platform/types";

/** Named numeric values, e.g. { temperature: 21.4, humidity: 40.2 }. */
export type SensorValues = { [name: string]: number };

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
 * Makes the board's sensor. The build links only the factory of the board's model, so
 * an image carries one driver, not all of them.
 */
export type SensorFactory = (platform: Platform, sensor: SensorConfig, random: () => number) => Sensor;

/** The bus and timer an I2C driver needs, from the platform and the board's pins. */
export function i2cContext(platform: Platform, sensor: SensorConfig): SensorContext {
  return {
    bus: platform.i2c({ sda: sensor.sda, scl: sensor.scl, bitrate: sensor.bitrate }),
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
