// Sensirion SHT3x and SHT4x humidity and temperature over I2C, one shot: a command, a
// conversion wait, then 6 bytes (T word, CRC, RH word, CRC). CRC-8: poly 0x31, init 0xFF.
// The two differ only in the command, the wait and the humidity scale.

import { errorText } from "../util/log";
import type { SampleCallback, Sensor, SensorContext } from "./types";
import { inRange, roundTo } from "./types";

export function sensirionCrc(bytes: Uint8Array, offset: number): number {
  let crc = 0xff;
  for (let i = offset; i < offset + 2; i++) {
    crc ^= bytes[i];
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/**
 * A Sensirion sensor at `address`: `command` starts a measurement that takes `waitMs`;
 * RH % = humidityOffset + humidityScale * word / 65535, cropped to 0-100 as the SHT4x
 * datasheet asks. A closure, not a class (shorter in the image).
 */
export function sensirionSensor(context: SensorContext, address: number, model: string, command: Uint8Array, waitMs: number, humidityOffset: number, humidityScale: number): Sensor {
  // No more variables here than the sample needs: this scope is kept for the whole run.
  return {
    model: model,
    sample: (done: SampleCallback) => {
      try {
        context.bus.writeTo(address, command);
      } catch (e) {
        done(model + ": no ACK at 0x" + address.toString(16) + " (" + errorText(e) + ")", null);
        return;
      }
      context.setTimeout(() => {
        let data: Uint8Array;
        try {
          data = context.bus.readFrom(address, 6);
        } catch (e) {
          done(model + ": read failed at 0x" + address.toString(16) + " (" + errorText(e) + ")", null);
          return;
        }
        // A short read fails the CRC check too (missing bytes compare as undefined).
        if (sensirionCrc(data, 0) !== data[2] || sensirionCrc(data, 3) !== data[5]) {
          done(model + ": bad CRC", null);
          return;
        }
        const rawTemperature = (data[0] << 8) | data[1];
        const temperature = roundTo(-45 + (175 * rawTemperature) / 65535, 2);
        const humidity = roundTo(Math.min(100, Math.max(0, humidityOffset + (humidityScale * ((data[3] << 8) | data[4])) / 65535)), 2);
        // All-ones or all-zeros words pass the CRC but mean a stuck bus or chip.
        if (rawTemperature === 0xffff || rawTemperature === 0 || !inRange(temperature, -40, 125)) {
          done(model + ": implausible reading (" + temperature + " C, " + humidity + " %RH)", null);
          return;
        }
        done(null, { temperature: temperature, humidity: humidity });
      }, waitMs);
    },
  };
}
