// Simulated sensor chips for the Espruino sandbox (its I2C1, OneWire, analogRead and
// E.getTemperature), so a real board's image, with its real drivers, runs in the
// simulator: they answer the commands and registers the datasheets describe, with slowly
// drifting values, and can be told to fail the ways real parts fail.

import { sensirionCrc } from "../../firmware/sensors/sensirion.ts";
import { maximCrc } from "../../firmware/sensors/ds18b20.ts";
import type { BoardSensor } from "../build/boards.ts";

export interface VirtualI2CDevice {
  write(bytes: Uint8Array): void;
  read(length: number): Uint8Array;
}

/** Sensirion SHT3x (single shot 0x2400) or SHT4x (0xFD): then 6 bytes (T, CRC, RH, CRC). */
export class VirtualSensirion implements VirtualI2CDevice {
  private measured = false;
  private step = 0;
  /** Flip a CRC bit in the next reads (a disturbed bus). */
  corruptCrc = false;

  constructor(
    private readonly model: "sht3x" | "sht4x" = "sht3x",
    private readonly base = { temperature: 22, humidity: 45 }
  ) {}

  /** Measurements read out so far: the readings the device took, counted outside the firmware. */
  get readings(): number {
    return this.step;
  }

  write(bytes: Uint8Array): void {
    const command = this.model === "sht3x" ? bytes.length === 2 && bytes[0] === 0x24 && bytes[1] === 0x00 : bytes.length === 1 && bytes[0] === 0xfd;
    // Soft reset (SHT3x 0x30A2, datasheet 4.9): a measurement in progress is dropped.
    if (this.model === "sht3x" && bytes.length === 2 && bytes[0] === 0x30 && bytes[1] === 0xa2) this.measured = false;
    else if (command) this.measured = true;
    else throw new Error("I2C: " + this.model.toUpperCase() + " NACKed command " + Buffer.from(bytes).toString("hex"));
  }

  read(length: number): Uint8Array {
    if (!this.measured) throw new Error("I2C: " + this.model.toUpperCase() + " NACKed the read (no measurement started)");
    this.measured = false;
    this.step++;
    const temperature = this.base.temperature + Math.sin(this.step / 10) * 1.5;
    const humidity = this.base.humidity + Math.cos(this.step / 13) * 5;
    const rawT = Math.round(((temperature + 45) / 175) * 65535);
    // SHT4x: RH = -6 + 125 * word / 65535 (datasheet 4.6); SHT3x: RH = 100 * word / 65535.
    const rawH = this.model === "sht4x" ? Math.round(((humidity + 6) / 125) * 65535) : Math.round((humidity / 100) * 65535);
    // The CRC routine is the driver's; test/sensors.test.ts checks it against the datasheet.
    const data = new Uint8Array([rawT >> 8, rawT & 0xff, 0, rawH >> 8, rawH & 0xff, 0]);
    data[2] = sensirionCrc(data, 0) ^ (this.corruptCrc ? 1 : 0);
    data[5] = sensirionCrc(data, 3);
    return data.slice(0, length);
  }
}

/** The worked example of Bosch's BMP280 datasheet (3.12): 25.08 C, 100653.27 Pa at these raw values. */
export const BOSCH_EXAMPLE = {
  calibration: [0x70, 0x6b, 0x43, 0x67, 0x18, 0xfc, 0x7d, 0x8e, 0x43, 0xd6, 0xd0, 0x0b, 0x27, 0x0b, 0x8c, 0x00, 0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x4b],
  adcT: 519888,
  adcP: 415148,
};

/**
 * Bosch BME280 (chip id 0x60) or BMP280 (0x58) with the datasheet's worked-example
 * calibration, so its raw values compensate to about 25 C and 1006 hPa; small noise on
 * the raw channels. A BMP280 has no humidity registers (0xF2, 0xFD-0xFE, 0xE1-).
 */
export class VirtualBme280 implements VirtualI2CDevice {
  private register = 0;
  private step = 0;
  private readonly registers = new Uint8Array(256);
  /** Raw values to report instead of the drifting ones (a test's fixed point). */
  fixed: { adcT: number; adcP: number; adcH?: number } | null = null;

  constructor(readonly chipId = 0x60) {
    this.registers[0xd0] = chipId;
    this.registers.set(BOSCH_EXAMPLE.calibration, 0x88);
    if (chipId === 0x60) this.registers.set([0x6a, 0x01, 0x00, 0x13, 0x2c, 0x03, 0x1e], 0xe1);
  }

  write(bytes: Uint8Array): void {
    this.register = bytes[0];
    if (bytes.length >= 2) {
      if (bytes[0] === 0xf2 && this.chipId !== 0x60) throw new Error("I2C: BMP280 has no ctrl_hum register");
      this.registers[bytes[0]] = bytes[1];
      if (bytes[0] === 0xf4 && (bytes[1] & 0x03) === 0x01) this.measure();
    }
  }

  read(length: number): Uint8Array {
    const out = this.registers.slice(this.register, this.register + length);
    this.register += length;
    return out;
  }

  private measure(): void {
    this.step++;
    const adcP = this.fixed ? this.fixed.adcP : BOSCH_EXAMPLE.adcP + Math.round(Math.sin(this.step / 7) * 200);
    const adcT = this.fixed ? this.fixed.adcT : BOSCH_EXAMPLE.adcT + Math.round(Math.sin(this.step / 9) * 300);
    const adcH = this.fixed?.adcH ?? 30000 + Math.round(Math.cos(this.step / 11) * 500);
    this.registers.set([adcP >> 12, (adcP >> 4) & 0xff, (adcP & 0xf) << 4, adcT >> 12, (adcT >> 4) & 0xff, (adcT & 0xf) << 4], 0xf7);
    if (this.chipId === 0x60) this.registers.set([adcH >> 8, adcH & 0xff], 0xfd);
  }
}

/** A DS18B20 on a virtual OneWire bus: its ROM code, its temperature, and its faults. */
export class VirtualDs18b20 {
  /** Power-on state: 85 C (0x0550), alarm registers, 12-bit configuration (0x7F). */
  private static readonly POWER_ON = [0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10];
  private scratchpad = new Uint8Array(9);
  /** Unplugged: no presence, reads float high (all ones). */
  absent = false;
  /** The chip resets during Convert T (a supply that cannot give the conversion current): the scratchpad is back at its 85 C power-on value. */
  noConversion = false;
  /** Flip a bit of the scratchpad's CRC. */
  corruptCrc = false;
  conversions = 0;

  constructor(
    readonly rom: string,
    public celsius: () => number = () => 21.5
  ) {
    this.powerOn();
  }

  private powerOn(): void {
    this.scratchpad.set(VirtualDs18b20.POWER_ON);
    this.scratchpad[8] = maximCrc(this.scratchpad, 8);
  }

  /** A ROM code for `serial` with the family code and a correct CRC (16 hex digits, family first). */
  static rom(serial: number, family = 0x28): string {
    const bytes = new Uint8Array(8);
    bytes[0] = family;
    for (let i = 1; i < 7; i++) bytes[i] = Math.floor(serial / 256 ** (i - 1)) & 0xff;
    bytes[7] = maximCrc(bytes, 7);
    return Buffer.from(bytes).toString("hex");
  }

  convert(): void {
    if (this.noConversion) return this.powerOn();
    this.conversions++;
    // 12-bit: 1/16 C per step, two's complement.
    const raw = Math.round(this.celsius() * 16) & 0xffff;
    this.scratchpad[0] = raw & 0xff;
    this.scratchpad[1] = raw >> 8;
    this.scratchpad[8] = maximCrc(this.scratchpad, 8);
  }

  readScratchpad(): Uint8Array {
    const data = this.scratchpad.slice();
    if (this.corruptCrc) data[8] ^= 0x01;
    return data;
  }
}

/**
 * A OneWire bus with DS18B20s, at the level of Espruino's OneWire class: reset, search,
 * select (Match ROM), write and read bytes. Several selected devices answering at once
 * pull the line low together (wired AND), as on a real bus.
 */
export class VirtualOneWireBus {
  private selected: VirtualDs18b20[] = [];
  private pending: number[] = [];
  private afterReset = false;

  constructor(readonly devices: VirtualDs18b20[]) {}

  private present(): VirtualDs18b20[] {
    return this.devices.filter((d) => !d.absent);
  }

  reset(): boolean {
    this.selected = [];
    this.pending = [];
    this.afterReset = true;
    return this.present().length > 0;
  }

  /** ROM codes in the order the standard ROM search finds them (lowest bit first). */
  search(): string[] {
    this.reset();
    const key = (rom: string) => [...Buffer.from(rom, "hex")].map((b) => b.toString(2).padStart(8, "0").split("").reverse().join("")).join("");
    return this.present()
      .map((d) => d.rom)
      .sort((a, b) => (key(a) < key(b) ? -1 : 1));
  }

  select(rom: string): void {
    this.reset();
    this.afterReset = false;
    this.selected = this.present().filter((d) => d.rom === rom.toLowerCase());
  }

  write(bytes: number[] | number): void {
    for (const byte of typeof bytes === "number" ? [bytes] : bytes) {
      if (this.afterReset) {
        this.afterReset = false;
        if (byte === 0xcc) this.selected = this.present();
        else throw new Error("OneWire: ROM command 0x" + byte.toString(16) + " is not simulated");
      } else if (byte === 0x44) this.selected.forEach((d) => d.convert());
      else if (byte === 0xbe) {
        // Wired AND of everyone selected; nobody: the line floats high.
        const answers = this.selected.map((d) => d.readScratchpad());
        this.pending = [];
        for (let i = 0; i < 9; i++) this.pending.push(answers.reduce((acc, a) => acc & a[i], 0xff));
      } else throw new Error("OneWire: function command 0x" + byte.toString(16) + " is not simulated");
    }
  }

  read(count: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(this.pending.length ? this.pending.shift()! : 0xff);
    return out;
  }
}

/** An NTC thermistor in a divider, as the ADC sees it (0..1 of full scale). */
export class VirtualNtc {
  /** "open": the thermistor's leg is cut; "short": shorted. */
  fault: "open" | "short" | null = null;

  constructor(
    private readonly sensor: BoardSensor,
    public celsius: () => number = () => 23
  ) {}

  ratio(): number {
    const toGround = this.sensor.toGround !== false;
    if (this.fault === "open") return toGround ? 1 : 0;
    if (this.fault === "short") return toGround ? 0 : 1;
    const kelvin = this.celsius() + 273.15;
    const ohms = this.sensor.ohms! * Math.exp(this.sensor.beta! * (1 / kelvin - 1 / 298.15));
    const series = this.sensor.seriesOhms!;
    return toGround ? ohms / (ohms + series) : series / (ohms + series);
  }
}

/** What the sandbox is given for a board's sensors: chips by address, buses and ADC by pin, the chip's own sensor. */
export interface VirtualSensors {
  i2cDevices: Record<number, VirtualI2CDevice>;
  oneWireBuses: Record<number, VirtualOneWireBus>;
  analogPins: Record<number, () => number>;
  /** Degrees Fahrenheit, as the ESP32's ROM function gives them. */
  chipTemperature?: () => number;
}

/** Stand-ins for every sensor of a board (two DS18B20s on each OneWire pin); none for the simulated one. */
export function virtualSensors(sensors: BoardSensor[]): VirtualSensors {
  const result: VirtualSensors = { i2cDevices: {}, oneWireBuses: {}, analogPins: {} };
  sensors.forEach((sensor, i) => {
    const model = sensor.model;
    if (model === "sht3x" || model === "sht4x") result.i2cDevices[sensor.address!] = new VirtualSensirion(model);
    else if (model === "bme280" || model === "bmp280") result.i2cDevices[sensor.address!] = new VirtualBme280(model === "bme280" ? 0x60 : 0x58);
    else if (model === "ds18b20") {
      const step = { n: 0 };
      const drift = (base: number) => () => base + Math.sin(step.n++ / 8) * 0.5;
      result.oneWireBuses[sensor.pin!] = new VirtualOneWireBus([new VirtualDs18b20(VirtualDs18b20.rom(0x1000 + i * 2), drift(18)), new VirtualDs18b20(VirtualDs18b20.rom(0x1001 + i * 2), drift(60))]);
    } else if (model === "ntc") {
      const ntc = new VirtualNtc(sensor);
      result.analogPins[sensor.pin!] = () => ntc.ratio();
    } else if (model === "internal") {
      // A die a little above 45 C, in whole degrees Fahrenheit as the ROM function gives them.
      let step = 0;
      result.chipTemperature = () => 113 + Math.round(Math.sin(step++ / 6) * 2);
    }
  });
  return result;
}
