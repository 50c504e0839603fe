// An NTC thermistor in a voltage divider on an ADC pin, by the beta equation:
// 1/T = 1/T25 + ln(R/R25)/beta (T in kelvin). The divider (fixed resistor, which leg the
// thermistor is) comes from the board file. The ADC gives the divider's ratio (0..1).

import type { SampleCallback, Sensor } from "./types";
import { inRange, roundTo } from "./types";
import type { Platform } from "../platform/types";
import type { SensorConfig } from "../config";

const KELVIN = 273.15;
/** Readings averaged per sample: the ESP32's ADC is noisy. */
const ADC_SAMPLES = 8;

/**
 * Celsius from the divider ratio, or why it is not a reading. `toGround`: the thermistor
 * is the lower leg (GPIO to GND), so its share of the voltage grows with its resistance.
 */
export function ntcCelsius(ratio: number, beta: number, ohmsAt25: number, seriesOhms: number, toGround: boolean): number | string {
  // At the rails a thermistor is open or shorted (or the pin floats): no temperature to compute.
  if (!(ratio > 0.005 && ratio < 0.995)) return "ADC at " + roundTo(ratio * 100, 1) + "% of full scale: thermistor open or shorted";
  const ohms = toGround ? (seriesOhms * ratio) / (1 - ratio) : (seriesOhms * (1 - ratio)) / ratio;
  const celsius = 1 / (1 / (25 + KELVIN) + Math.log(ohms / ohmsAt25) / beta) - KELVIN;
  return inRange(celsius, -40, 125) ? roundTo(celsius, 2) : "implausible reading (" + roundTo(celsius, 1) + " C)";
}

export function ntcSensor(read: (pin: number) => number, pin: number, beta: number, ohmsAt25: number, seriesOhms: number, toGround: boolean): Sensor {
  return {
    model: "ntc",
    sample: (done: SampleCallback) => {
      let sum = 0;
      for (let i = 0; i < ADC_SAMPLES; i++) sum += read(pin);
      const result = ntcCelsius(sum / ADC_SAMPLES, beta, ohmsAt25, seriesOhms, toGround);
      if (typeof result === "number") done(null, { temperature: result });
      else done("ntc: " + result + " on GPIO" + pin, null);
    },
  };
}

export function createNtc(platform: Platform, sensor: SensorConfig): Sensor {
  return ntcSensor(platform.analogRead!, sensor.pin!, sensor.beta!, sensor.ohms!, sensor.seriesOhms!, sensor.toGround !== false);
}
