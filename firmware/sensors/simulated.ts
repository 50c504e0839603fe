// A sensor for the simulators (Moddable's desktop simulator has no I2C): plausible
// indoor values with slow drift and a little noise, seeded so runs are repeatable.

import type { SampleCallback, Sensor } from "./types";
import { roundTo } from "./types";
import type { Platform } from "../platform/types";
import type { SensorConfig } from "../config";

export function simulatedSensor(random: () => number): Sensor {
  let temperature = 20 + random() * 4;
  let humidity = 40 + random() * 10;
  return {
    model: "simulated",
    sample: (done: SampleCallback) => {
      // Random walk pulled back towards a comfortable room.
      temperature += (random() - 0.5) * 0.4 + (22 - temperature) * 0.05;
      humidity += (random() - 0.5) * 1.0 + (45 - humidity) * 0.05;
      done(null, { temperature: roundTo(temperature, 2), humidity: roundTo(humidity, 2) });
    },
  };
}

export function createSimulated(_platform: Platform, _sensor: SensorConfig, random: () => number): Sensor {
  return simulatedSensor(random);
}
