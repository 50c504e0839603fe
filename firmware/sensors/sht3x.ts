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

/** An SHT3x at `address`; a closure, not a class (shorter in the image). */
export function sht3xSensor(context: SensorContext, address: number): Sensor {
  const bus = context.bus;
  const where = " at 0x" + address.toString(16);
  return {
    model: "sht3x",
    sample: (done: SampleCallback) => {
      try {
        bus.write(address, MEASURE_HIGH);
      } catch (e) {
        done("sht3x: no ACK" + where + " (" + errorText(e) + ")", null);
        return;
      }
      context.setTimeout(() => {
        let data: Uint8Array;
        try {
          data = bus.read(address, 6);
        } catch (e) {
          done("sht3x: read failed" + where + " (" + errorText(e) + ")", null);
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
        const temperature = roundTo(-45 + (175 * rawTemperature) / 65535, 2);
        const humidity = roundTo((100 * rawHumidity) / 65535, 2);
        // All-ones or all-zeros words pass the CRC but mean a stuck bus or chip.
        if (rawTemperature === 0xffff || rawTemperature === 0 || !inRange(temperature, -40, 125) || !inRange(humidity, 0, 100)) {
          done("sht3x: implausible reading (" + temperature + " C, " + humidity + " %RH)", null);
          return;
        }
        done(null, { temperature: temperature, humidity: humidity });
      }, CONVERSION_MS);
    },
  };
}

export const createSht3x: SensorFactory = (platform, sensor) => sht3xSensor(i2cContext(platform, sensor), sensor.address);
