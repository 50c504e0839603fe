// A sensor for the simulators (Moddable's desktop simulator has no I2C): plausible
// indoor values with slow drift and a little noise, seeded so runs are repeatable.

import type { SampleCallback, Sensor, SensorFactory } from "./types";
import { roundTo } from "./types";

export class SimulatedSensor implements Sensor {
  readonly model = "simulated";
  private readonly random: () => number;
  private temperature: number;
  private humidity: number;

  constructor(random: () => number) {
    this.random = random;
    this.temperature = 20 + random() * 4;
    this.humidity = 40 + random() * 10;
  }

  sample(done: SampleCallback): void {
    // Random walk pulled back towards a comfortable room.
    this.temperature += (this.random() - 0.5) * 0.4 + (22 - this.temperature) * 0.05;
    this.humidity += (this.random() - 0.5) * 1.0 + (45 - this.humidity) * 0.05;
    done(null, { temperature: roundTo(this.temperature, 2), humidity: roundTo(this.humidity, 2) });
  }
}

export const createSimulated: SensorFactory = (_platform, _sensor, random) => new SimulatedSensor(random);
