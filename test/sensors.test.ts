import { test } from "node:test";
import assert from "node:assert/strict";
import { sht3xSensor, sht3xCrc } from "../firmware/sensors/sht3x.ts";
import { bme280Sensor, compensate, parseCalibration } from "../firmware/sensors/bme280.ts";
import { simulatedSensor } from "../firmware/sensors/simulated.ts";
import type { SensorValues } from "../firmware/sensors/types.ts";
import type { I2CBus } from "../firmware/platform/types.ts";
import { seededRandom } from "../firmware/util/random.ts";
import { FakeClock } from "./helpers/fake-platform.ts";

function sample(sensor: { sample(done: (e: string | null, v: SensorValues | null) => void): void }, clock: FakeClock) {
  let result: { error: string | null; values: SensorValues | null } | null = null;
  sensor.sample((error, values) => (result = { error, values }));
  clock.advance(100);
  assert.ok(result, "sample completed");
  return result as { error: string | null; values: SensorValues | null };
}

/** An SHT3x on a fake bus, answering `words` (with their CRCs unless told otherwise). */
function sht3xBus(temperatureRaw: number, humidityRaw: number, corruptCrc = false): I2CBus & { writes: number[][] } {
  const writes: number[][] = [];
  return {
    writes,
    write: (address, bytes) => {
      if (address !== 0x44) throw new Error("I2C: no ACK");
      writes.push([...bytes]);
    },
    read: (address, length) => {
      if (address !== 0x44) throw new Error("I2C: no ACK");
      const data = new Uint8Array([temperatureRaw >> 8, temperatureRaw & 0xff, 0, humidityRaw >> 8, humidityRaw & 0xff, 0]);
      data[2] = sht3xCrc(data, 0) ^ (corruptCrc ? 1 : 0);
      data[5] = sht3xCrc(data, 3);
      return data.subarray(0, length);
    },
  };
}

test("SHT3x CRC matches the datasheet example (0xBEEF -> 0x92)", () => {
  assert.equal(sht3xCrc(new Uint8Array([0xbe, 0xef]), 0), 0x92);
});

test("SHT3x: single-shot measurement converted per the datasheet", () => {
  const clock = new FakeClock();
  // 25.0 C -> raw (25 + 45) / 175 * 65535; 50 %RH -> raw 0.5 * 65535.
  const bus = sht3xBus(Math.round((70 / 175) * 65535), Math.round(0.5 * 65535));
  const result = sample(sht3xSensor({ bus, setTimeout: (cb, ms) => clock.setTimeout(cb, ms) }, 0x44), clock);
  assert.deepEqual(result, { error: null, values: { temperature: 25, humidity: 50 } });
  assert.deepEqual(bus.writes, [[0x24, 0x00]]);
});

test("SHT3x: no ACK, bad CRC and stuck values become sensor errors, not readings", () => {
  const clock = new FakeClock();
  const context = (bus: I2CBus) => ({ bus, setTimeout: (cb: () => void, ms: number) => clock.setTimeout(cb, ms) });
  const missing = sample(sht3xSensor(context(sht3xBus(1, 1)), 0x45), clock);
  assert.equal(missing.values, null);
  assert.match(missing.error!, /^sht3x: no ACK at 0x45/);
  const corrupt = sample(sht3xSensor(context(sht3xBus(30000, 30000, true)), 0x44), clock);
  assert.deepEqual(corrupt, { error: "sht3x: bad CRC", values: null });
  const stuck = sample(sht3xSensor(context(sht3xBus(0xffff, 0xffff)), 0x44), clock);
  assert.match(stuck.error!, /^sht3x: implausible reading/);
});

// Temperature and pressure calibration and raw values: the worked example in Bosch's
// BMP280 datasheet (same compensation as the BME280): 25.08 C, 100653.27 Pa. The
// humidity block (0xE1..) is a made-up but well-formed one.
const CAL1 = new Uint8Array([
  0x70, 0x6b, 0x43, 0x67, 0x18, 0xfc, 0x7d, 0x8e, 0x43, 0xd6, 0xd0, 0x0b, 0x27, 0x0b, 0x8c, 0x00,
  0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x4b,
]);
const CAL2 = new Uint8Array([0x6a, 0x01, 0x00, 0x13, 0x2c, 0x03, 0x1e]);

test("BME280: calibration parsing and compensation give plausible indoor values", () => {
  const calibration = parseCalibration(CAL1, CAL2);
  assert.deepEqual(calibration.t, [27504, 26435, -1000]);
  assert.equal(calibration.p[0], 36477);
  assert.deepEqual(calibration.h, [75, 362, 0, 316, 50, 30]);
  // adc_T = 519888, adc_P = 415148 (Bosch's example), adc_H = 30000.
  const raw = new Uint8Array([415148 >> 12, (415148 >> 4) & 0xff, (415148 & 0xf) << 4, 519888 >> 12, (519888 >> 4) & 0xff, (519888 & 0xf) << 4, 30000 >> 8, 30000 & 0xff]);
  const values = compensate(raw, calibration)!;
  assert.ok(Math.abs(values.temperature - 25.08) < 0.01, "temperature " + values.temperature);
  assert.ok(Math.abs(values.pressure - 1006.53) < 0.05, "pressure " + values.pressure);
  assert.ok(values.humidity >= 0 && values.humidity <= 100);
  const skipped = new Uint8Array(raw);
  skipped[3] = 0x80;
  skipped[4] = 0;
  skipped[5] = 0;
  assert.equal(compensate(skipped, calibration), null);
});

test("BME280 driver: reads id, calibration and a forced measurement; wrong chip is an error", () => {
  const clock = new FakeClock();
  const raw = [415148 >> 12, (415148 >> 4) & 0xff, (415148 & 0xf) << 4, 519888 >> 12, (519888 >> 4) & 0xff, (519888 & 0xf) << 4, 30000 >> 8, 30000 & 0xff];
  const makeBus = (chipId: number): I2CBus => {
    let register = 0;
    return {
      write: (_address, bytes) => {
        register = bytes[0];
      },
      read: (_address, length) => {
        if (register === 0xd0) return new Uint8Array([chipId]);
        if (register === 0x88) return CAL1.subarray(0, length);
        if (register === 0xe1) return CAL2.subarray(0, length);
        if (register === 0xf7) return new Uint8Array(raw);
        throw new Error("unexpected register " + register);
      },
    };
  };
  const context = (bus: I2CBus) => ({ bus, setTimeout: (cb: () => void, ms: number) => clock.setTimeout(cb, ms) });
  const good = sample(bme280Sensor(context(makeBus(0x60)), 0x76), clock);
  assert.equal(good.error, null);
  assert.equal(good.values!.temperature, 25.08);
  const bmp = sample(bme280Sensor(context(makeBus(0x58)), 0x76), clock);
  assert.equal(bmp.error, "bme280: chip id 0x58 at 0x76 is not a BME280 (0x60)");
});

test("simulated sensor drifts plausibly and repeats for the same seed", () => {
  const clock = new FakeClock();
  const a = simulatedSensor(seededRandom(42));
  const b = simulatedSensor(seededRandom(42));
  for (let i = 0; i < 200; i++) {
    const x = sample(a, clock).values!;
    const y = sample(b, clock).values!;
    assert.deepEqual(x, y);
    assert.ok(x.temperature > 15 && x.temperature < 30, "temperature " + x.temperature);
    assert.ok(x.humidity > 25 && x.humidity < 65, "humidity " + x.humidity);
  }
});
