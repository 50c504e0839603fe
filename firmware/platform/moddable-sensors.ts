// Moddable's own ECMA-419 sensor drivers (SHT3x, BMP280, NTC thermistor) behind this
// firmware's Sensor interface. The generated entry imports the driver class and the IO
// class ("embedded:sensor/...", "embedded:io/i2c" or "embedded:io/analog") and passes
// them in, so an image links only its board's drivers. Models Moddable has no ECMA-419
// driver for (SHT4x, BME280, DS18B20) use this project's drivers on both runtimes.

import type { SensorConfig } from "../config";
import type { SampleCallback, Sensor, SensorFactory, SensorValues } from "../sensors/types";
import { inRange, roundTo } from "../sensors/types";
import { errorText } from "../util/log";

/** The ECMA-419 sensor class pattern: options.sensor opens the bus; sample() answers at once. */
export interface Ecma419Sensor {
  sample(): unknown;
  configure(options: object): void;
  close(): void;
}
export type Ecma419SensorClass = new (options: { sensor: object }) => Ecma419Sensor;

/** What one sample holds, by the ECMA-419 sensor class names (absent: the driver dropped it, e.g. a bad CRC). */
type Ecma419Sample = {
  thermometer?: { temperature?: number };
  hygrometer?: { humidity?: number };
  barometer?: { pressure?: number };
  temperature?: number;
};

type Closable = { close(): void };
type IoClass = new (options: object) => Closable;

/**
 * A Sensor around an ECMA-419 driver, opened on first use and again after a failure (the
 * part may have been reconnected): `open` makes the driver with `io` as its IO class,
 * `values` turns a sample into values or why it is not one.
 */
export function ecma419Sensor(model: string, where: string, Io: unknown, open: (io: unknown) => Ecma419Sensor, values: (sample: Ecma419Sample) => SensorValues | string): Sensor {
  let driver: Ecma419Sensor | null = null;
  // The IO object the driver opened, kept so that it can be closed when the driver cannot
  // be: Moddable refuses a second I2C object at an open address ("duplicate address") or
  // a second Analog on a pin in use, and a driver whose constructor throws (SHT3x: no
  // answer to its reset) leaves its IO object open until the garbage collector runs.
  let io: Closable | null = null;
  const tracked = function (options: object): Closable {
    io = new (Io as IoClass)(options);
    return io;
  };
  return {
    model: model,
    sample: (done: SampleCallback) => {
      let result: SensorValues | string;
      const opening = driver === null;
      try {
        if (driver === null) driver = open(tracked);
        result = values(driver.sample() as Ecma419Sample);
      } catch (e) {
        const opened = [driver, io];
        driver = null;
        io = null;
        for (let i = 0; i < opened.length; i++) {
          try {
            if (opened[i] !== null) opened[i]!.close();
          } catch (closing) {
            // Closing a failed or closed bus may fail too; it is dropped either way.
          }
        }
        done(model + (opening ? ": no answer" : ": read failed") + where + " (" + errorText(e) + ")", null);
        return;
      }
      if (typeof result === "string") done(model + ": " + result + where, null);
      else done(null, result);
    },
  };
}

function i2cOptions(io: unknown, sensor: SensorConfig): { sensor: object } {
  return { sensor: { io: io, data: sensor.sda, clock: sensor.scl, hz: sensor.bitrate, address: sensor.address } };
}

function where(sensor: SensorConfig): string {
  return " at 0x" + sensor.address!.toString(16);
}

/** Moddable's SHT3x (embedded:sensor/Humidity-Temperature/SHT3x): it leaves out a value whose CRC fails. */
export function moddableSht3x(Driver: Ecma419SensorClass, I2C: unknown): SensorFactory {
  return (_platform, sensor) =>
    ecma419Sensor("sht3x", where(sensor), I2C, (io) => new Driver(i2cOptions(io, sensor)), (sample) => {
      const temperature = sample.thermometer && sample.thermometer.temperature;
      const humidity = sample.hygrometer && sample.hygrometer.humidity;
      if (typeof temperature !== "number" || typeof humidity !== "number") return "bad CRC";
      // -45 C and 130 C are the all-zeros and all-ones words: a stuck bus or chip.
      if (!inRange(temperature, -40, 125)) return "implausible reading (" + roundTo(temperature, 2) + " C)";
      return { temperature: roundTo(temperature, 2), humidity: roundTo(Math.min(100, Math.max(0, humidity)), 2) };
    });
}

/** Moddable's BMP280 (embedded:sensor/Barometer-Temperature/BMP280): normal mode, pressure in Pa. */
export function moddableBmp280(Driver: Ecma419SensorClass, I2C: unknown): SensorFactory {
  return (_platform, sensor) =>
    ecma419Sensor("bmp280", where(sensor), I2C, (io) => new Driver(i2cOptions(io, sensor)), (sample) => {
      const temperature = Number(sample.thermometer && sample.thermometer.temperature);
      const pressure = Number(sample.barometer && sample.barometer.pressure) / 100;
      if (!inRange(temperature, -40, 85) || !inRange(pressure, 300, 1100)) return "implausible reading (" + roundTo(temperature, 2) + " C, " + roundTo(pressure, 1) + " hPa)";
      return { temperature: roundTo(temperature, 2), pressure: roundTo(pressure, 2) };
    });
}

/**
 * configure() of Moddable's NTC_Thermistor, by its own names. Typed here because `beta` is
 * also a board setting the Espruino build mangles; Moddable images ship unmangled, so the
 * driver gets these names as written.
 */
interface NtcDriverSettings {
  series_resistance?: number;
  thermistor_resistance?: number;
  beta?: number;
  pullup: boolean;
  averaging: number;
}

/** Moddable's NTC thermistor (embedded:sensor/Temperature/NTC_Thermistor): the divider from the board file, 8 ADC readings averaged. */
export function moddableNtc(Driver: Ecma419SensorClass, Analog: unknown): SensorFactory {
  return (_platform, sensor) =>
    ecma419Sensor(
      "ntc",
      " on GPIO" + sensor.pin,
      Analog,
      (io) => {
        const driver = new Driver({ sensor: { io: io, pin: sensor.pin } });
        // pullup: the fixed resistor goes to 3V3 and the thermistor to GND (the board file's toGround).
        const settings: NtcDriverSettings = { series_resistance: sensor.seriesOhms, thermistor_resistance: sensor.ohms, beta: sensor.beta, pullup: sensor.toGround !== false, averaging: 8 };
        driver.configure(settings);
        return driver;
      },
      (sample) => {
        const celsius = sample.temperature;
        // An open or shorted thermistor (the ADC at a rail) computes to far outside this range, or to NaN.
        if (typeof celsius !== "number" || !inRange(celsius, -40, 125)) return "implausible reading (" + (typeof celsius === "number" ? roundTo(celsius, 1) : celsius) + " C): thermistor open or shorted?";
        return { temperature: roundTo(celsius, 2) };
      }
    );
}
