// Moddable buses only some boards use: OneWire (Moddable's onewire module). Apart from
// moddable.ts so that only images that need it import it. The ADC is read by Moddable's
// NTC driver (moddable-sensors.ts).

import OneWire from "onewire";
import type { OneWireBus } from "./types";

function romHex(buffer: ArrayBuffer): string {
  // Moddable keeps ROM codes CRC byte first; the platform's form is family code first.
  const rom = new Uint8Array(buffer);
  let hex = "";
  for (let i = rom.length - 1; i >= 0; i--) hex += (rom[i] + 256).toString(16).substring(1);
  return hex;
}

function romBytes(hex: string): ArrayBuffer {
  const rom = new Uint8Array(8);
  for (let i = 0; i < 8; i++) rom[7 - i] = parseInt(hex.substring(i * 2, i * 2 + 2), 16);
  return rom.buffer;
}

export function moddableOneWire(pin: number): OneWireBus {
  const bus = new OneWire({ pin: pin });
  return {
    reset: () => bus.reset(),
    search: () => bus.search().map(romHex),
    select: (rom) => bus.select(romBytes(rom)),
    // No strong pull-up on Moddable: parasite-powered devices are not supported (README).
    write: (bytes) => bus.write(new Uint8Array(bytes)),
    read: (count) => {
      const data = bus.read(count);
      return typeof data === "number" ? new Uint8Array([data]) : new Uint8Array(data as ArrayBuffer);
    },
  };
}
