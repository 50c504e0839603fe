// Maxim DS18B20 (and DS1822) temperature probes on a OneWire bus, several on one pin.
// Every sample: a ROM search (probes found are kept, so one that stops answering is an
// error, not a silent gap), Skip ROM + Convert T to all at once, 750 ms at 12 bits, then
// each probe's scratchpad by Match ROM, checked with the Dallas/Maxim CRC-8.

import type { OneWireBus, Platform } from "../platform/types";
import { errorText } from "../util/log";
import type { SampleCallback, Sensor, SensorValues } from "./types";
import { inRange } from "./types";
import type { SensorConfig } from "../config";

const CONVERT_MS = 750;
/** Family codes with the DS18B20's scratchpad format: DS18B20, DS1822. */
const FAMILIES = ["28", "22"];
/** The power-on value of the temperature register: a conversion that never ran. */
const POWER_ON_RAW = 0x0550;

/** Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected: 0x8C), over `length` bytes. */
export function maximCrc(bytes: Uint8Array, length: number): number {
  let crc = 0;
  for (let i = 0; i < length; i++) {
    let byte = bytes[i];
    for (let bit = 0; bit < 8; bit++) {
      const mix = (crc ^ byte) & 1;
      crc >>= 1;
      if (mix) crc ^= 0x8c;
      byte >>= 1;
    }
  }
  return crc;
}

/** Whether a ROM code (16 hex digits, family first) is a probe this driver reads, with a good CRC. */
export function isProbeRom(rom: string): boolean {
  if (rom.length !== 16 || FAMILIES.indexOf(rom.substring(0, 2)) < 0) return false;
  const bytes = new Uint8Array(8);
  for (let i = 0; i < 8; i++) bytes[i] = parseInt(rom.substring(i * 2, i * 2 + 2), 16);
  return maximCrc(bytes, 7) === bytes[7];
}

/** Celsius from a 9-byte scratchpad, or why it is not a reading. */
export function scratchpadTemperature(data: Uint8Array): number | string {
  if (data.length < 9) return "short read (" + data.length + " of 9 bytes)";
  if (maximCrc(data, 8) !== data[8]) return "bad CRC";
  // The configuration register always has its low five bits set: all zeros (which pass the CRC) is no device.
  if ((data[4] & 0x9f) !== 0x1f) return "no answer";
  const raw = (data[1] << 8) | data[0];
  if (raw === POWER_ON_RAW) return "85 C power-on value (no conversion: check the probe's 3V3)";
  const celsius = (raw & 0x8000 ? raw - 0x10000 : raw) / 16;
  return inRange(celsius, -55, 125) ? celsius : "implausible reading (" + celsius + " C)";
}

/**
 * The probes on `bus` (GPIO `pin`). One probe gives `temperature`; several give
 * `temperature_<serial>` (the 12 hex digits of each ROM's serial number), so a key keeps
 * meaning one probe when another is added or fails.
 */
export function ds18b20Sensor(bus: OneWireBus, setTimeout: (callback: () => void, ms: number) => unknown, pin: number): Sensor {
  const probes: string[] = [];
  const where = " on GPIO" + pin;
  return {
    model: "ds18b20",
    sample: (done: SampleCallback) => {
      try {
        const found = bus.search() || [];
        for (let i = 0; i < found.length; i++) if (isProbeRom(found[i]) && probes.indexOf(found[i]) < 0) probes.push(found[i]);
        if (probes.length === 0) {
          done("ds18b20: no probe found" + where, null);
          return;
        }
        if (!bus.reset()) {
          done("ds18b20: no presence pulse" + where, null);
          return;
        }
        // Skip ROM, Convert T: every probe converts at once; power on for parasite pull-up where the runtime has it.
        bus.write([0xcc, 0x44], true);
      } catch (e) {
        done("ds18b20: " + errorText(e) + where, null);
        return;
      }
      setTimeout(() => {
        const values: SensorValues = {};
        let errors = "";
        let read = 0;
        for (let i = 0; i < probes.length; i++) {
          let result: number | string;
          try {
            bus.select(probes[i]);
            bus.write([0xbe], false);
            result = scratchpadTemperature(bus.read(9));
          } catch (e) {
            result = errorText(e);
          }
          if (typeof result === "number") {
            values[probes.length > 1 ? "temperature_" + probes[i].substring(2, 14) : "temperature"] = result;
            read++;
          } else errors += (errors ? "; " : "ds18b20: ") + probes[i] + ": " + result;
        }
        done(errors ? errors + where : null, read ? values : null);
      }, CONVERT_MS);
    },
  };
}

export function createDs18b20(platform: Platform, sensor: SensorConfig): Sensor {
  return ds18b20Sensor(platform.oneWire!(sensor.pin!), platform.setTimeout, sensor.pin!);
}
