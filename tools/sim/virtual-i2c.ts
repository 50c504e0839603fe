// Simulated I2C chips for the Espruino sandbox's I2C1, so a real board's image (with its
// real SHT3x or BME280 driver) runs in the simulator: they answer the same commands and
// registers as the datasheets describe, with slowly drifting values.

import { sht3xCrc } from "../../firmware/sensors/sht3x.ts";

export interface VirtualI2CDevice {
  write(bytes: Uint8Array): void;
  read(length: number): Uint8Array;
}

/** Sensirion SHT3x: single-shot 0x2400, then 6 bytes (T, CRC, RH, CRC). */
export class VirtualSht3x implements VirtualI2CDevice {
  private measured = false;
  private step = 0;

  constructor(private readonly base = { temperature: 22, humidity: 45 }) {}

  /** Measurements read out so far: the readings the device took, counted outside the firmware. */
  get readings(): number {
    return this.step;
  }

  write(bytes: Uint8Array): void {
    if (bytes.length === 2 && bytes[0] === 0x24 && bytes[1] === 0x00) this.measured = true;
    else throw new Error("I2C: SHT3x NACKed command " + Buffer.from(bytes).toString("hex"));
  }

  read(length: number): Uint8Array {
    if (!this.measured) throw new Error("I2C: SHT3x NACKed the read (no measurement started)");
    this.measured = false;
    this.step++;
    const temperature = this.base.temperature + Math.sin(this.step / 10) * 1.5;
    const humidity = this.base.humidity + Math.cos(this.step / 13) * 5;
    const rawT = Math.round(((temperature + 45) / 175) * 65535);
    const rawH = Math.round((humidity / 100) * 65535);
    // The CRC routine is the driver's; test/sensors.test.ts checks it against the datasheet.
    const data = new Uint8Array([rawT >> 8, rawT & 0xff, 0, rawH >> 8, rawH & 0xff, 0]);
    data[2] = sht3xCrc(data, 0);
    data[5] = sht3xCrc(data, 3);
    return data.slice(0, length);
  }
}

/**
 * Bosch BME280 with the BMP280 datasheet's worked-example calibration, so its raw values
 * compensate to about 25 C and 1006 hPa; small noise on the raw channels.
 */
export class VirtualBme280 implements VirtualI2CDevice {
  private register = 0;
  private step = 0;
  private readonly registers = new Uint8Array(256);

  constructor() {
    this.registers[0xd0] = 0x60;
    const cal1 = [0x70, 0x6b, 0x43, 0x67, 0x18, 0xfc, 0x7d, 0x8e, 0x43, 0xd6, 0xd0, 0x0b, 0x27, 0x0b, 0x8c, 0x00, 0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x4b];
    this.registers.set(cal1, 0x88);
    this.registers.set([0x6a, 0x01, 0x00, 0x13, 0x2c, 0x03, 0x1e], 0xe1);
  }

  write(bytes: Uint8Array): void {
    this.register = bytes[0];
    if (bytes.length >= 2) {
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
    const adcP = 415148 + Math.round(Math.sin(this.step / 7) * 200);
    const adcT = 519888 + Math.round(Math.sin(this.step / 9) * 300);
    const adcH = 30000 + Math.round(Math.cos(this.step / 11) * 500);
    this.registers.set([adcP >> 12, (adcP >> 4) & 0xff, (adcP & 0xf) << 4, adcT >> 12, (adcT >> 4) & 0xff, (adcT & 0xf) << 4, adcH >> 8, adcH & 0xff], 0xf7);
  }
}

/** The device for a board's sensor model, or none (the bus then NACKs: a missing sensor). */
export function virtualSensor(model: string): VirtualI2CDevice | null {
  if (model === "sht3x") return new VirtualSht3x();
  if (model === "bme280") return new VirtualBme280();
  return null;
}
