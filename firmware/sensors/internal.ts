// The ESP32's own temperature sensor (Espruino's E.getTemperature): the die, not the room,
// well above it and coarse. The ESP32's ROM function gives whole degrees Fahrenheit, and
// 128 for ever on chips whose sensor was left out (later revisions). 128 F (53.3 C) is
// also a real die temperature, so it is no reading only until another value was seen.

import type { SampleCallback, Sensor } from "./types";
import { inRange, roundTo } from "./types";
import type { Platform } from "../platform/types";

/** What temprature_sens_read() returns where the chip has no sensor. */
const NO_SENSOR = 128;

export function internalSensor(readFahrenheit: () => number): Sensor {
  let working = false;
  return {
    model: "internal",
    sample: (done: SampleCallback) => {
      const fahrenheit = readFahrenheit();
      const celsius = roundTo(((fahrenheit - 32) * 5) / 9, 1);
      if (fahrenheit !== NO_SENSOR) working = true;
      if (!working) done("internal: the chip gives only 128 F: this ESP32 has no working temperature sensor", null);
      else if (!inRange(celsius, -40, 125)) done("internal: implausible reading (" + fahrenheit + " F)", null);
      else done(null, { temperature: celsius });
    },
  };
}

export function createInternal(platform: Platform): Sensor {
  return internalSensor(platform.chipTemperature!);
}
