// Sensirion SHT3x (SHT30/31/35) humidity and temperature over I2C, single-shot mode.
// Datasheet: single shot, high repeatability, no clock stretching = 0x2400; 15 ms
// conversion; each 16-bit word is followed by CRC-8 (poly 0x31, init 0xFF).

import { errorText } from "../util/log";
import type { SampleCallback, Sensor, SensorContext, SensorFactory } from "./types";
import { i2cContext, inRange, roundTo } from "./types";

const MEASURE_HIGH = new Uint8Array([0x24, 0x00]);
const CONVERSION_MS = 16;

export function sht3xCrc(bytes: Uint8Array, offset: number): number {
  let crc = 0xff;
  for (let i = offset; i < offset + 2; i++) {
    crc ^= bytes[i];
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

export class Sht3x implements Sensor {
  readonly model = "sht3x";
  private readonly _context: SensorContext;
  private readonly _address: number;

  constructor(context: SensorContext, address: number) {
    this._context = context;
    this._address = address;
  }

  sample(done: SampleCallback): void {
    const address = this._address;
    const bus = this._context.bus;
    try {
      bus.write(address, MEASURE_HIGH);
    } catch (e) {
      done("sht3x: no ACK at 0x" + address.toString(16) + " (" + errorText(e) + ")", null);
      return;
    }
    this._context.setTimeout(() => {
      let data: Uint8Array;
      try {
        data = bus.read(address, 6);
      } catch (e) {
        done("sht3x: read failed at 0x" + address.toString(16) + " (" + errorText(e) + ")", null);
        return;
      }
      if (data.length < 6) {
        done("sht3x: short read (" + data.length + " of 6 bytes)", null);
        return;
      }
      if (sht3xCrc(data, 0) !== data[2] || sht3xCrc(data, 3) !== data[5]) {
        done("sht3x: bad CRC", null);
        return;
      }
      const rawTemperature = (data[0] << 8) | data[1];
      const rawHumidity = (data[3] << 8) | data[4];
      const temperature = -45 + (175 * rawTemperature) / 65535;
      const humidity = (100 * rawHumidity) / 65535;
      // All-ones or all-zeros words pass the CRC but mean a stuck bus or chip.
      if (rawTemperature === 0xffff || rawTemperature === 0 || !inRange(temperature, -40, 125) || !inRange(humidity, 0, 100)) {
        done("sht3x: implausible reading (" + roundTo(temperature, 2) + " C, " + roundTo(humidity, 2) + " %RH)", null);
        return;
      }
      done(null, { temperature: roundTo(temperature, 2), humidity: roundTo(humidity, 2) });
    }, CONVERSION_MS);
  }
}

export const createSht3x: SensorFactory = (platform, sensor) => new Sht3x(i2cContext(platform, sensor), sensor.address);
