// Every driver against a register-level stand-in built from its datasheet's formulas and
// example values (tools/sim/virtual-sensors.ts, the simulator's chips), faults included:
// no ACK, a CRC mismatch, out of range, each a sensor_error reason instead of a value.

import { test } from "node:test";
import assert from "node:assert/strict";
import { sht3xSensor } from "../firmware/sensors/sht3x.ts";
import { sht4xSensor } from "../firmware/sensors/sht4x.ts";
import { sensirionCrc } from "../firmware/sensors/sensirion.ts";
import { bme280Sensor, compensate, parseCalibration } from "../firmware/sensors/bme280.ts";
import { ds18b20Sensor, isProbeRom, maximCrc, scratchpadTemperature } from "../firmware/sensors/ds18b20.ts";
import { ntcCelsius, ntcSensor } from "../firmware/sensors/ntc.ts";
import { internalSensor } from "../firmware/sensors/internal.ts";
import { simulatedSensor } from "../firmware/sensors/simulated.ts";
import type { Sensor, SensorValues } from "../firmware/sensors/types.ts";
import type { I2CBus, OneWireBus } from "../firmware/platform/types.ts";
import { seededRandom } from "../firmware/util/random.ts";
import { VirtualBme280, VirtualDs18b20, VirtualNtc, VirtualOneWireBus, VirtualSensirion } from "../tools/sim/virtual-sensors.ts";
import type { VirtualI2CDevice } from "../tools/sim/virtual-sensors.ts";
import { FakeClock } from "./helpers/fake-platform.ts";

function sample(sensor: Sensor, clock: FakeClock) {
  let result: { error: string | null; values: SensorValues | null } | null = null;
  sensor.sample((error, values) => (result = { error, values }));
  // Longer than any conversion (DS18B20: 750 ms at 12 bits).
  clock.advance(1000);
  assert.ok(result, "sample completed");
  return result as { error: string | null; values: SensorValues | null };
}

/** An I2C bus with these chips on it; any other address NACKs, as Espruino's I2C1 reports it. */
function i2cBus(chips: Record<number, VirtualI2CDevice>): I2CBus {
  const chip = (address: number) => {
    if (!chips[address]) throw new Error("I2C Error: no ACK from 0x" + address.toString(16));
    return chips[address];
  };
  return { writeTo: (address, bytes) => chip(address).write(bytes), readFrom: (address, length) => chip(address).read(length) };
}

function oneWire(bus: VirtualOneWireBus): OneWireBus {
  return {
    reset: () => bus.reset(),
    search: () => bus.search(),
    select: (rom) => bus.select(rom),
    write: (bytes) => bus.write(bytes),
    read: (count) => new Uint8Array(bus.read(count)),
  };
}

/** A Sensirion chip at 0x44 answering these raw words (with their CRCs unless told otherwise); it records the commands. */
function sht3xBus(temperatureRaw: number, humidityRaw: number, corruptCrc = false): I2CBus & { writes: number[][] } {
  const writes: number[][] = [];
  return {
    writes,
    writeTo: (address, bytes) => {
      if (address !== 0x44) throw new Error("I2C Error: no ACK");
      writes.push([...bytes]);
    },
    readFrom: (address, length) => {
      if (address !== 0x44) throw new Error("I2C Error: no ACK");
      const data = new Uint8Array([temperatureRaw >> 8, temperatureRaw & 0xff, 0, humidityRaw >> 8, humidityRaw & 0xff, 0]);
      data[2] = sensirionCrc(data, 0) ^ (corruptCrc ? 1 : 0);
      data[5] = sensirionCrc(data, 3);
      return data.subarray(0, length);
    },
  };
}

test("SHT3x CRC matches the datasheet example (0xBEEF -> 0x92)", () => {
  assert.equal(sensirionCrc(new Uint8Array([0xbe, 0xef]), 0), 0x92);
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
      writeTo: (_address, bytes) => {
        register = bytes[0];
      },
      readFrom: (_address, length) => {
        if (register === 0xd0) return new Uint8Array([chipId]);
        if (register === 0x88) return CAL1.subarray(0, length);
        if (register === 0xe1) return CAL2.subarray(0, length);
        if (register === 0xf7) return new Uint8Array(raw);
        throw new Error("unexpected register " + register);
      },
    };
  };
  const context = (bus: I2CBus) => ({ bus, setTimeout: (cb: () => void, ms: number) => clock.setTimeout(cb, ms) });
  const good = sample(bme280Sensor(context(makeBus(0x60)), 0x76, "bme280"), clock);
  assert.equal(good.error, null);
  assert.equal(good.values!.temperature, 25.08);
  const bmp = sample(bme280Sensor(context(makeBus(0x58)), 0x76, "bme280"), clock);
  assert.equal(bmp.error, "bme280: chip id 0x58 at 0x76 is not a BME280 (0x60)");
});

test("SHT4x: 0xFD, then T and RH by the SHT4x formulas (RH = -6 + 125 S/65535, cropped to 0-100)", () => {
  const clock = new FakeClock();
  const context = (bus: I2CBus) => ({ bus, setTimeout: (cb: () => void, ms: number) => clock.setTimeout(cb, ms) });
  // 25 C: S_T = 70/175 * 65535 = 26214; 50 %RH: S_RH = 56/125 * 65535 = 29360 (29359.7).
  const bus = sht3xBus(26214, 29360);
  const result = sample(sht4xSensor(context(bus), 0x44), clock);
  assert.deepEqual(result, { error: null, values: { temperature: 25, humidity: 50 } });
  assert.deepEqual(bus.writes, [[0xfd]]);
  // RH words below 6 % or above 100 % after the formula are cropped, as the datasheet says.
  assert.equal(sample(sht4xSensor(context(sht3xBus(26214, 100)), 0x44), clock).values!.humidity, 0);
  assert.equal(sample(sht4xSensor(context(sht3xBus(26214, 65535)), 0x44), clock).values!.humidity, 100);
  // The simulator's chip speaks the same protocol.
  const chip = new VirtualSensirion("sht4x");
  const simulated = sample(sht4xSensor(context(i2cBus({ 0x44: chip })), 0x44), clock);
  assert.equal(simulated.error, null);
  assert.ok(Math.abs(simulated.values!.temperature - 22) < 2 && Math.abs(simulated.values!.humidity - 45) < 6, JSON.stringify(simulated.values));
  assert.equal(chip.readings, 1);
  // Faults: no chip at the address, a disturbed CRC, an SHT3x command to an SHT4x.
  assert.match(sample(sht4xSensor(context(i2cBus({})), 0x44), clock).error!, /^sht4x: no ACK at 0x44 \(I2C Error: no ACK from 0x44\)$/);
  chip.corruptCrc = true;
  assert.deepEqual(sample(sht4xSensor(context(i2cBus({ 0x44: chip })), 0x44), clock), { error: "sht4x: bad CRC", values: null });
  assert.match(sample(sht3xSensor(context(i2cBus({ 0x44: new VirtualSensirion("sht4x") })), 0x44), clock).error!, /^sht3x: no ACK at 0x44 \(I2C: SHT4X NACKed command 2400\)$/);
});

test("BMP280: the datasheet's worked example (25.08 C, 100653.27 Pa), no humidity; a BME280 or another chip id is refused", () => {
  const clock = new FakeClock();
  const context = (bus: I2CBus) => ({ bus, setTimeout: (cb: () => void, ms: number) => clock.setTimeout(cb, ms) });
  const chip = new VirtualBme280(0x58);
  chip.fixed = { adcT: 519888, adcP: 415148 };
  const result = sample(bme280Sensor(context(i2cBus({ 0x76: chip })), 0x76, "bmp280"), clock);
  assert.deepEqual(result, { error: null, values: { temperature: 25.08, pressure: 1006.53 } });
  // A BME280 at that address is not what the board file says.
  const bme = sample(bme280Sensor(context(i2cBus({ 0x76: new VirtualBme280(0x60) })), 0x76, "bmp280"), clock);
  assert.equal(bme.error, "bmp280: chip id 0x60 at 0x76 is not a BMP280 (0x58)");
  // Out of range: a raw pressure far below anything on Earth's surface.
  chip.fixed = { adcT: 519888, adcP: 1000000 };
  assert.match(sample(bme280Sensor(context(i2cBus({ 0x76: chip })), 0x76, "bmp280"), clock).error!, /^bmp280: implausible reading \(25\.08 C, \d+(\.\d)? hPa\)$/);
  assert.match(sample(bme280Sensor(context(i2cBus({})), 0x77, "bmp280"), clock).error!, /^bmp280: no ACK at 0x77/);
});

test("DS18B20: Maxim CRC-8 and the datasheet's temperature/data table", () => {
  // Maxim application note 27: ROM 02 1C B8 01 00 00 00 has CRC A2.
  assert.equal(maximCrc(new Uint8Array([0x02, 0x1c, 0xb8, 0x01, 0x00, 0x00, 0x00]), 7), 0xa2);
  assert.equal(isProbeRom("28" + "1cb801000000" + "00"), false, "bad CRC");
  assert.equal(isProbeRom(VirtualDs18b20.rom(0x1234)), true);
  assert.equal(isProbeRom(VirtualDs18b20.rom(0x1234, 0x10)), false, "DS18S20: another scratchpad format");
  // DS18B20 datasheet, table 1 (12-bit): +125, +25.0625, +10.125, +0.5, 0, -0.5, -10.125, -25.0625, -55.
  const table: [number, number][] = [[0x07d0, 125], [0x0191, 25.0625], [0x00a2, 10.125], [0x0008, 0.5], [0x0000, 0], [0xfff8, -0.5], [0xff5e, -10.125], [0xfe6f, -25.0625], [0xfc90, -55]];
  for (const [raw, celsius] of table) {
    const pad = new Uint8Array([raw & 0xff, raw >> 8, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0]);
    pad[8] = maximCrc(pad, 8);
    assert.equal(scratchpadTemperature(pad), celsius, "raw 0x" + raw.toString(16));
  }
  const powerOn = new Uint8Array([0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0]);
  powerOn[8] = maximCrc(powerOn, 8);
  assert.match(String(scratchpadTemperature(powerOn)), /^85 C power-on value/);
  // All zeros passes the CRC (0) but is nobody answering; all ones fails it.
  assert.equal(scratchpadTemperature(new Uint8Array(9)), "no answer");
  assert.equal(scratchpadTemperature(new Uint8Array(9).fill(0xff)), "bad CRC");
});

test("DS18B20 driver: one probe gives temperature, several give temperature_<serial>; a lost probe, a bad CRC, no conversion are errors", () => {
  const clock = new FakeClock();
  const setTimer = (cb: () => void, ms: number) => clock.setTimeout(cb, ms);
  const single = new VirtualOneWireBus([new VirtualDs18b20(VirtualDs18b20.rom(0xa1), () => -10.125)]);
  assert.deepEqual(sample(ds18b20Sensor(oneWire(single), setTimer, 4), clock), { error: null, values: { temperature: -10.125 } });

  const top = new VirtualDs18b20(VirtualDs18b20.rom(0x010203), () => 60.5);
  const bottom = new VirtualDs18b20(VirtualDs18b20.rom(0x040506), () => 18.25);
  const tank = new VirtualOneWireBus([top, bottom]);
  const sensor = ds18b20Sensor(oneWire(tank), setTimer, 4);
  assert.deepEqual(sample(sensor, clock), { error: null, values: { temperature_030201000000: 60.5, temperature_060504000000: 18.25 } });
  // One Convert T for all (Skip ROM), each read by Match ROM.
  assert.equal(top.conversions, 1);
  assert.equal(bottom.conversions, 1);

  // Unplugged: the other still reports under its own key, and the lost one is named.
  bottom.absent = true;
  const lost = sample(sensor, clock);
  assert.deepEqual(lost.values, { temperature_030201000000: 60.5 });
  assert.equal(lost.error, "ds18b20: " + bottom.rom + ": bad CRC on GPIO4");
  bottom.absent = false;
  top.corruptCrc = true;
  assert.deepEqual(sample(sensor, clock), { error: "ds18b20: " + top.rom + ": bad CRC on GPIO4", values: { temperature_060504000000: 18.25 } });
  top.corruptCrc = false;
  top.noConversion = true;
  bottom.noConversion = true;
  const brownOut = sample(sensor, clock);
  assert.equal(brownOut.values, null);
  assert.equal(brownOut.error, "ds18b20: " + [bottom.rom, top.rom].map((rom) => rom + ": 85 C power-on value (no conversion: check the probe's 3V3)").join("; ") + " on GPIO4");
  // Nothing on the pin.
  assert.deepEqual(sample(ds18b20Sensor(oneWire(new VirtualOneWireBus([])), setTimer, 5), clock), { error: "ds18b20: no probe found on GPIO5", values: null });
});

test("NTC: beta equation both ways round the divider; open and shorted thermistors are errors", () => {
  const clock = new FakeClock();
  // 10 kOhm at 25 C, B 3950, 10 kOhm fixed: half scale is 25 C.
  assert.equal(ntcCelsius(0.5, 3950, 10000, 10000, true), 25);
  assert.equal(ntcCelsius(0.5, 3950, 10000, 10000, false), 25);
  // R(0 C) = R25 exp(B (1/273.15 - 1/298.15)) = 33621 Ohm; lower leg: 33621/43621 of full scale.
  const r0 = 10000 * Math.exp(3950 * (1 / 273.15 - 1 / 298.15));
  assert.ok(Math.abs(r0 - 33621) < 1);
  assert.equal(ntcCelsius(r0 / (r0 + 10000), 3950, 10000, 10000, true), 0);
  assert.equal(ntcCelsius(10000 / (r0 + 10000), 3950, 10000, 10000, false), 0);
  assert.match(String(ntcCelsius(0.999, 3950, 10000, 10000, true)), /^ADC at 99\.9% of full scale: thermistor open or shorted$/);
  // The simulator's divider through the driver (8 ADC reads averaged).
  const board = { model: "ntc" as const, pin: 34, beta: 3950, ohms: 10000, seriesOhms: 10000 };
  for (const toGround of [true, false]) {
    const ntc = new VirtualNtc({ ...board, toGround }, () => 37.5);
    const reads: number[] = [];
    const sensor = ntcSensor((pin) => (reads.push(pin), ntc.ratio()), 34, 3950, 10000, 10000, toGround);
    assert.deepEqual(sample(sensor, clock), { error: null, values: { temperature: 37.5 } });
    assert.deepEqual(reads, new Array(8).fill(34));
    ntc.fault = "open";
    assert.match(sample(sensor, clock).error!, /^ntc: ADC at (100|0)% of full scale: thermistor open or shorted on GPIO34$/);
  }
  // A divider that says 150 C is out of the range the driver reports.
  const hot = new VirtualNtc(board, () => 150);
  assert.match(sample(ntcSensor(() => hot.ratio(), 34, 3950, 10000, 10000, true), clock).error!, /^ntc: implausible reading \(150 C\) on GPIO34$/);
});

test("ESP32 internal sensor: Fahrenheit to Celsius; 128 F until another value means no sensor", () => {
  const clock = new FakeClock();
  const values = [128, 128, 113, 128];
  const sensor = internalSensor(() => values.shift()!);
  const absent = sample(sensor, clock);
  assert.equal(absent.values, null);
  assert.match(absent.error!, /^internal: the chip gives only 128 F/);
  assert.match(sample(sensor, clock).error!, /^internal: the chip gives only 128 F/);
  assert.deepEqual(sample(sensor, clock), { error: null, values: { temperature: 45 } });
  // Once the sensor has worked, 128 F is a hot die (53.3 C), not a missing sensor.
  assert.deepEqual(sample(sensor, clock), { error: null, values: { temperature: 53.3 } });
  assert.match(sample(internalSensor(() => NaN), clock).error!, /^internal: implausible reading/);
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
