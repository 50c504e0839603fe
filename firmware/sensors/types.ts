import type { I2CBus, TimerHandle } from "../platform/types";

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

/** Rounds to `decimals` places so telemetry does not carry float noise. */
export function roundTo(value: number, decimals: number): number {
  const factor = Math.pow(10, decimals);
  return Math.round(value * factor) / factor;
}

export function inRange(value: number, min: number, max: number): boolean {
  return value === value && value >= min && value <= max;
}
