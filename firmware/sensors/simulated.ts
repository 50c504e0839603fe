// A sensor for the simulators (Moddable's desktop simulator has no I2C): plausible
// indoor values with slow drift and a little noise, seeded so runs are repeatable.

import type { SampleCallback, Sensor, SensorFactory } from "./types";
import { roundTo } from "./types";

export class SimulatedSensor implements Sensor {
  readonly model = "simulated";
  private readonly _random: () => number;
  private _temperature: number;
  private _humidity: number;

  constructor(random: () => number) {
    this._random = random;
    this._temperature = 20 + random() * 4;
    this._humidity = 40 + random() * 10;
  }

  sample(done: SampleCallback): void {
    // Random walk pulled back towards a comfortable room.
    this._temperature += (this._random() - 0.5) * 0.4 + (22 - this._temperature) * 0.05;
    this._humidity += (this._random() - 0.5) * 1.0 + (45 - this._humidity) * 0.05;
    done(null, { temperature: roundTo(this._temperature, 2), humidity: roundTo(this._humidity, 2) });
  }
}

export const createSimulated: SensorFactory = (_platform, _sensor, random) => new SimulatedSensor(random);
