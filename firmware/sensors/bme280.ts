// Bosch BME280 (temperature, pressure, humidity) and BMP280 (temperature, pressure) over
// I2C, forced mode, x1 oversampling. Compensation is the datasheets' floating-point
// version (BST-BME280-DS002 4.2.3 / 8.1, BST-BMP280-DS001 3.11.3 / 8.1): the BMP280 is the
// BME280 without the humidity channel, its registers and its calibration block.

import { errorText } from "../util/log";
import type { SampleCallback, Sensor, SensorContext, SensorValues } from "./types";
import { i2cContext, inRange, roundTo } from "./types";
import type { Platform } from "../platform/types";
import type { SensorConfig } from "../config";

const BME280_ID = 0x60;
/** BMP280 production parts answer 0x58; early samples 0x56 and 0x57. */
const BMP280_IDS = [0x56, 0x57, 0x58];
const MEASURE_MS = 12;

interface Calibration {
  t: number[];
  p: number[];
  h: number[];
}

function u16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

function s16(bytes: Uint8Array, offset: number): number {
  const value = u16(bytes, offset);
  return value > 32767 ? value - 65536 : value;
}

function s12(value: number): number {
  return value > 2047 ? value - 4096 : value;
}

/** Parses the 0x88..0xA1 (26 bytes) and 0xE1..0xE7 (7 bytes) calibration blocks. */
export function parseCalibration(block1: Uint8Array, block2: Uint8Array): Calibration {
  const p: number[] = [u16(block1, 6)];
  for (let i = 8; i < 24; i += 2) p.push(s16(block1, i));
  return {
    t: [u16(block1, 0), s16(block1, 2), s16(block1, 4)],
    p: p,
    h: [
      block1[25],
      s16(block2, 0),
      block2[2],
      s12((block2[3] << 4) | (block2[4] & 0x0f)),
      s12((block2[5] << 4) | (block2[4] >> 4)),
      block2[6] > 127 ? block2[6] - 256 : block2[6],
    ],
  };
}

/**
 * Raw burst from 0xF7 to compensated values: 8 bytes (BME280) or 6 (BMP280: no humidity);
 * null when a channel was skipped.
 */
export function compensate(raw: Uint8Array, cal: Calibration): SensorValues | null {
  const adcP = (raw[0] << 12) | (raw[1] << 4) | (raw[2] >> 4);
  const adcT = (raw[3] << 12) | (raw[4] << 4) | (raw[5] >> 4);
  const withHumidity = raw.length >= 8;
  const adcH = withHumidity ? (raw[6] << 8) | raw[7] : 0;
  if (adcT === 0x80000 || adcP === 0x80000 || adcH === 0x8000) return null;
  const t = cal.t;
  const p = cal.p;
  const h = cal.h;
  let var1 = (adcT / 16384 - t[0] / 1024) * t[1];
  let var2 = (adcT / 131072 - t[0] / 8192) * (adcT / 131072 - t[0] / 8192) * t[2];
  const tFine = var1 + var2;
  const temperature = tFine / 5120;

  var1 = tFine / 2 - 64000;
  var2 = (var1 * var1 * p[5]) / 32768;
  var2 = var2 + var1 * p[4] * 2;
  var2 = var2 / 4 + p[3] * 65536;
  var1 = ((p[2] * var1 * var1) / 524288 + p[1] * var1) / 524288;
  var1 = (1 + var1 / 32768) * p[0];
  let pressure = 0;
  if (var1 !== 0) {
    pressure = 1048576 - adcP;
    pressure = ((pressure - var2 / 4096) * 6250) / var1;
    var1 = (p[8] * pressure * pressure) / 2147483648;
    var2 = (pressure * p[7]) / 32768;
    pressure = pressure + (var1 + var2 + p[6]) / 16;
  }
  if (!withHumidity) return { temperature: temperature, pressure: pressure / 100 };

  let humidity = tFine - 76800;
  humidity =
    (adcH - (h[3] * 64 + (h[4] / 16384) * humidity)) *
    ((h[1] / 65536) * (1 + (h[5] / 67108864) * humidity * (1 + (h[2] / 67108864) * humidity)));
  humidity = humidity * (1 - (h[0] * humidity) / 524288);
  if (humidity > 100) humidity = 100;
  if (humidity < 0) humidity = 0;
  return { temperature: temperature, pressure: pressure / 100, humidity: humidity };
}

/** A BME280 or BMP280 (`model`) at `address`; a closure, not a class (shorter in the image). */
export function bme280Sensor(context: SensorContext, address: number, model: string): Sensor {
  const bus = context.bus;
  const humid = model === "bme280";
  const where = " at 0x" + address.toString(16);
  let calibration: Calibration | null = null;
  const readRegisters = (register: number, length: number): Uint8Array => {
    bus.writeTo(address, new Uint8Array([register]));
    const data = bus.readFrom(address, length);
    if (data.length < length) throw new Error("short read (" + data.length + " of " + length + " bytes)");
    return data;
  };
  return {
    model: model,
    sample: (done: SampleCallback) => {
      try {
        if (calibration === null) {
          const id = readRegisters(0xd0, 1)[0];
          if (humid ? id !== BME280_ID : BMP280_IDS.indexOf(id) < 0) {
            done(model + ": chip id 0x" + id.toString(16) + where + " is not a " + (humid ? "BME280 (0x60)" : "BMP280 (0x58)"), null);
            return;
          }
          calibration = parseCalibration(readRegisters(0x88, 26), humid ? readRegisters(0xe1, 7) : new Uint8Array(7));
        }
        // ctrl_hum (BME280 only) takes effect at the next ctrl_meas write.
        if (humid) bus.writeTo(address, new Uint8Array([0xf2, 0x01]));
        bus.writeTo(address, new Uint8Array([0xf4, 0x25]));
      } catch (e) {
        done(model + ": no ACK" + where + " (" + errorText(e) + ")", null);
        return;
      }
      context.setTimeout(() => {
        let raw: Uint8Array;
        try {
          raw = readRegisters(0xf7, humid ? 8 : 6);
        } catch (e) {
          done(model + ": read failed" + where + " (" + errorText(e) + ")", null);
          return;
        }
        const values = calibration === null ? null : compensate(raw, calibration);
        if (values === null) {
          done(model + ": measurement skipped (all channels must be enabled)", null);
          return;
        }
        if (!inRange(values.temperature, -40, 85) || !inRange(values.pressure, 300, 1100)) {
          // A glitch may also have corrupted the calibration: read it again next time.
          calibration = null;
          done(model + ": implausible reading (" + roundTo(values.temperature, 2) + " C, " + roundTo(values.pressure, 1) + " hPa)", null);
          return;
        }
        values.temperature = roundTo(values.temperature, 2);
        values.pressure = roundTo(values.pressure, 2);
        if (humid) values.humidity = roundTo(values.humidity, 2);
        done(null, values);
      }, MEASURE_MS);
    },
  };
}

export function createBme280(platform: Platform, sensor: SensorConfig): Sensor {
  return bme280Sensor(i2cContext(platform, sensor), sensor.address!, "bme280");
}
export function createBmp280(platform: Platform, sensor: SensorConfig): Sensor {
  return bme280Sensor(i2cContext(platform, sensor), sensor.address!, "bmp280");
}
