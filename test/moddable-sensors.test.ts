// The Moddable image's sensors: Moddable's own ECMA-419 drivers (SHT3x, BMP280, NTC) behind
// the firmware's Sensor interface (firmware/platform/moddable-sensors.ts). CI has no Moddable
// SDK, so the drivers here are stand-ins with the behaviour of Moddable's (modules/drivers/
// sensors/: a value whose CRC fails is left out, pressure in Pa, the NTC divider formula
// with 2^resolution), over the simulator's register-level chips. Moddable's own driver
// classes were run through the adapter by hand (README, "Sensors").

import { test } from "node:test";
import assert from "node:assert/strict";
import { moddableBmp280, moddableNtc, moddableSht3x } from "../firmware/platform/moddable-sensors.ts";
import type { Ecma419SensorClass } from "../firmware/platform/moddable-sensors.ts";
import { sensirionCrc } from "../firmware/sensors/sensirion.ts";
import { compensate, parseCalibration } from "../firmware/sensors/bme280.ts";
import { ntcCelsius } from "../firmware/sensors/ntc.ts";
import type { SensorConfig } from "../firmware/config.ts";
import type { Sensor, SensorValues } from "../firmware/sensors/types.ts";
import { BOSCH_EXAMPLE, VirtualBme280, VirtualNtc, VirtualSensirion } from "../tools/sim/virtual-sensors.ts";
import type { VirtualI2CDevice } from "../tools/sim/virtual-sensors.ts";
import { fakePlatform } from "./helpers/fake-platform.ts";

type IoOptions = { data?: number; clock?: number; hz?: number; address?: number; pin?: number };

/**
 * ECMA-419 I2C over the virtual chips. Like Moddable's (modules/io/i2c/esp32/_i2c.c), a
 * second object at an address whose object is not closed is refused ("duplicate address").
 */
function i2cClass(devices: Record<number, VirtualI2CDevice>, opened: IoOptions[]) {
  const open = new Set<number>();
  return class VirtualI2C {
    readonly address: number;
    constructor(options: IoOptions) {
      opened.push({ data: options.data, clock: options.clock, hz: options.hz, address: options.address });
      if (open.has(options.address!)) throw new RangeError("duplicate address");
      this.address = options.address!;
      open.add(this.address);
    }
    /** Whatever is at the address now (a test may unplug it). */
    device(): VirtualI2CDevice {
      const device = devices[this.address];
      if (!device) throw new Error("I2C: no ACK");
      return device;
    }
    write(bytes: Uint8Array) {
      this.device().write(bytes);
    }
    read(length: number): ArrayBuffer {
      return this.device().read(length).slice().buffer;
    }
    close() {
      open.delete(this.address);
    }
  };
}

type Io = { write(bytes: Uint8Array): void; read(length: number): ArrayBuffer };

/**
 * Like Moddable's SHT3x: a soft reset when opened (its IO object left open when that
 * fails), then per sample a measurement, each word kept only when its CRC holds.
 */
function sht3xDriver() {
  return class Sht3x {
    readonly io: Io & { close(): void };
    constructor(options: { sensor: { io: new (o: object) => Io & { close(): void } } }) {
      this.io = new options.sensor.io({ hz: 1000000, address: 0x44, ...options.sensor });
      this.io.write(new Uint8Array([0x30, 0xa2]));
    }
    sample() {
      this.io.write(new Uint8Array([0x24, 0x00]));
      const data = new Uint8Array(this.io.read(6));
      const result: { thermometer: { temperature?: number }; hygrometer: { humidity?: number } } = { thermometer: {}, hygrometer: {} };
      if (data[2] === sensirionCrc(data, 0)) result.thermometer.temperature = ((data[0] * 256 + data[1]) * 175) / 65535 - 45;
      if (data[5] === sensirionCrc(data, 3)) result.hygrometer.humidity = ((data[3] * 256 + data[4]) * 100) / 65535;
      return result;
    }
    configure() {}
    close() {
      this.io.close();
    }
  };
}

/** Like Moddable's BMP280: chip id 0x58 checked when opened, normal mode, pressure in Pa (its compensation is native; the datasheet's here). */
function bmp280Driver() {
  return class Bmp280 {
    readonly io: Io & { close(): void };
    readonly calibration: ReturnType<typeof parseCalibration>;
    constructor(options: { sensor: { io: new (o: object) => Io & { close(): void } } }) {
      const io = (this.io = new options.sensor.io({ hz: 400000, address: 0x76, ...options.sensor }));
      io.write(new Uint8Array([0xd0]));
      if (new Uint8Array(io.read(1))[0] !== 0x58) {
        this.close();
        throw new Error("unexpected sensor");
      }
      io.write(new Uint8Array([0x88]));
      this.calibration = parseCalibration(new Uint8Array(io.read(26)), new Uint8Array(7));
      io.write(new Uint8Array([0xf4, 0x27]));
    }
    sample() {
      // The virtual chip measures on a forced-mode write; a real one in normal mode measures by itself.
      this.io.write(new Uint8Array([0xf4, 0x25]));
      this.io.write(new Uint8Array([0xf7]));
      const values = compensate(new Uint8Array(this.io.read(6)), this.calibration)!;
      return { barometer: { pressure: values.pressure * 100 }, thermometer: { temperature: values.temperature } };
    }
    configure() {}
    close() {
      this.io.close();
    }
  };
}

/** Like Moddable's NTC_Thermistor: R from 2^resolution / adc, pullup meaning the thermistor goes to GND. */
function ntcDriver(configured: object[]) {
  return class Ntc {
    readonly io: { read(): number; resolution: number };
    series = 10000;
    nominal = 10000;
    beta = 3435;
    averaging = 1;
    pullup = false;
    constructor(options: { sensor: object & { io: new (o: object) => { read(): number; resolution: number } } }) {
      this.io = new options.sensor.io(options.sensor);
    }
    configure(options: { series_resistance: number; thermistor_resistance: number; beta: number; averaging: number; pullup: boolean }) {
      configured.push(options);
      this.series = options.series_resistance;
      this.nominal = options.thermistor_resistance;
      this.beta = options.beta;
      this.averaging = options.averaging;
      this.pullup = options.pullup;
    }
    sample() {
      const resolution = 2 ** this.io.resolution;
      let adc = 0;
      for (let i = 0; i < this.averaging; i++) adc += this.io.read();
      adc /= this.averaging;
      const ohms = this.pullup ? this.series / (resolution / adc - 1) : this.series * (resolution / adc - 1);
      return { temperature: 1 / (Math.log(ohms / this.nominal) / this.beta + 1 / 298.15) - 273.15 };
    }
    close() {}
  };
}

function sample(sensor: Sensor): { error: string | null; values: SensorValues | null } {
  let result: { error: string | null; values: SensorValues | null } | null = null;
  sensor.sample((error, values) => (result = { error, values }));
  assert.ok(result, "Moddable's drivers answer within sample()");
  return result;
}

const SHT3X: SensorConfig = { model: "sht3x", address: 0x44, sda: 21, scl: 22, bitrate: 100000 };

test("Moddable SHT3x: the board's pins, address and bit rate reach the driver; values as this project's driver gives them", () => {
  const chip = new VirtualSensirion("sht3x", { temperature: 21, humidity: 40 });
  const opened: IoOptions[] = [];
  const sensor = moddableSht3x(sht3xDriver() as unknown as Ecma419SensorClass, i2cClass({ 0x44: chip }, opened))(fakePlatform(), SHT3X, Math.random);
  const { error, values } = sample(sensor);
  assert.equal(error, null);
  assert.deepEqual(opened, [{ data: 21, clock: 22, hz: 100000, address: 0x44 }]);
  // The virtual chip's first reading: base + sin(1/10) * 1.5 C, base + cos(1/13) * 5 %RH, rounded to 2 places.
  assert.ok(Math.abs(values!.temperature - (21 + Math.sin(0.1) * 1.5)) < 0.01, JSON.stringify(values));
  assert.ok(Math.abs(values!.humidity - (40 + Math.cos(1 / 13) * 5)) < 0.01, JSON.stringify(values));
  assert.equal(values!.temperature, Math.round(values!.temperature * 100) / 100);
  assert.equal(sensor.model, "sht3x");
});

test("Moddable SHT3x: a dropped value (bad CRC), no sensor, a failed read and a stuck bus are sensor errors; it opens again after a failure", () => {
  const chip = new VirtualSensirion("sht3x");
  const devices: Record<number, VirtualI2CDevice> = {};
  const opened: IoOptions[] = [];
  const sensor = moddableSht3x(sht3xDriver() as unknown as Ecma419SensorClass, i2cClass(devices, opened))(fakePlatform(), SHT3X, Math.random);
  assert.deepEqual(sample(sensor), { error: "sht3x: no answer at 0x44 (I2C: no ACK)", values: null });
  // Plugged in: opened again at the next sample. The driver's IO object from the failed
  // open was closed by the adapter, or this open would be a "duplicate address".
  devices[0x44] = chip;
  assert.deepEqual(sample(sensor).error, null);
  assert.equal(opened.length, 2);
  chip.corruptCrc = true;
  assert.deepEqual(sample(sensor), { error: "sht3x: bad CRC at 0x44", values: null });
  chip.corruptCrc = false;
  // A chip that stops answering mid-run: the read fails, and the driver is opened again next time.
  devices[0x44] = { write: () => {}, read: () => { throw new Error("I2C: read NACKed"); } };
  assert.deepEqual(sample(sensor), { error: "sht3x: read failed at 0x44 (I2C: read NACKed)", values: null });
  // All-ones words with valid CRCs (a stuck bus): 130 C is out of the SHT3x's range.
  const ones = new Uint8Array([0xff, 0xff, 0, 0xff, 0xff, 0]);
  ones[2] = sensirionCrc(ones, 0);
  ones[5] = sensirionCrc(ones, 3);
  devices[0x44] = { write: () => {}, read: () => ones };
  assert.deepEqual(sample(sensor), { error: "sht3x: implausible reading (130 C) at 0x44", values: null });
  const opens = opened.length;
  sample(sensor);
  assert.equal(opened.length, opens, "an implausible value is not a bus failure: the driver stays open");
});

test("Moddable BMP280: the datasheet's worked example in hPa; wrong chip and out-of-range pressure are errors", () => {
  const chip = new VirtualBme280(0x58);
  chip.fixed = { adcT: BOSCH_EXAMPLE.adcT, adcP: BOSCH_EXAMPLE.adcP };
  const board: SensorConfig = { model: "bmp280", prefix: "baro_", address: 0x76, sda: 21, scl: 22, bitrate: 100000 };
  const opened: IoOptions[] = [];
  const sensor = moddableBmp280(bmp280Driver() as unknown as Ecma419SensorClass, i2cClass({ 0x76: chip }, opened))(fakePlatform(), board, Math.random);
  assert.deepEqual(sample(sensor), { error: null, values: { temperature: 25.08, pressure: 1006.53 } });
  assert.deepEqual(opened, [{ data: 21, clock: 22, hz: 100000, address: 0x76 }]);
  chip.fixed = { adcT: BOSCH_EXAMPLE.adcT, adcP: 1000000 };
  assert.match(sample(sensor).error!, /^bmp280: implausible reading \(25\.08 C, \d+(\.\d)? hPa\) at 0x76$/);
  const bme = moddableBmp280(bmp280Driver() as unknown as Ecma419SensorClass, i2cClass({ 0x76: new VirtualBme280(0x60) }, []))(fakePlatform(), board, Math.random);
  assert.deepEqual(sample(bme), { error: "bmp280: no answer at 0x76 (unexpected sensor)", values: null });
});

test("Moddable NTC: the board's divider reaches the driver (toGround is its pullup); open and shorted thermistors are errors", () => {
  for (const toGround of [true, false]) {
    const board: SensorConfig = { model: "ntc", prefix: "ntc_", pin: 34, beta: 3950, ohms: 10000, seriesOhms: 10000, toGround };
    const ntc = new VirtualNtc(board, () => 37.5);
    const pins: number[] = [];
    // A 12-bit ADC reading the virtual divider.
    const Analog = class {
      readonly resolution = 12;
      constructor(options: { pin: number }) {
        pins.push(options.pin);
      }
      read() {
        return Math.round(ntc.ratio() * 4096);
      }
    };
    const configured: object[] = [];
    const sensor = moddableNtc(ntcDriver(configured) as unknown as Ecma419SensorClass, Analog)(fakePlatform(), board, Math.random);
    const { error, values } = sample(sensor);
    assert.equal(error, null);
    assert.deepEqual(pins, [34]);
    assert.deepEqual(configured, [{ series_resistance: 10000, thermistor_resistance: 10000, beta: 3950, pullup: toGround, averaging: 8 }]);
    // Within the 12-bit ADC's step of this project's own formula.
    assert.ok(Math.abs(values!.temperature - 37.5) < 0.05, JSON.stringify(values));
    assert.ok(Math.abs((ntcCelsius(ntc.ratio(), 3950, 10000, 10000, toGround) as number) - 37.5) < 0.01);
    for (const fault of ["open", "short"] as const) {
      ntc.fault = fault;
      assert.match(sample(sensor).error!, /^ntc: implausible reading \((-?\d+(\.\d)?|NaN|-?Infinity) C\): thermistor open or shorted\? on GPIO34$/, fault);
    }
  }
});
