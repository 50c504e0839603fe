// manifest.json for the Moddable build of a board. Hardware (esp32) gets Wi-Fi, SNTP,
// TLS, ECMA-419 I2C and Analog, and OneWire where a board has DS18B20 probes; the desktop simulator (lin/mac/win) has no Wi-Fi, SNTP or I2C
// modules, so the modules the bundle imports are mapped to stubs that say so.

import type { Board, SensorModel } from "./boards.ts";
import type { DeviceSettings } from "./config.ts";

const unavailable = (what: string) =>
  `// Desktop simulator stand-in: ${what} does not exist there.\n` +
  `export default class Unavailable { constructor() { throw new Error("${what} is not available in the Moddable desktop simulator"); } }\n`;

/** File name (without .js) -> source of the stand-ins shipped next to main.js. */
export const MODDABLE_HOST_STUBS: Record<string, string> = {
  "host-wifi": unavailable("Wi-Fi"),
  "host-sntp": unavailable("SNTP"),
  "host-i2c": unavailable("I2C"),
  "host-analog": unavailable("the ADC"),
  "host-time": "// The desktop simulator uses the host clock, which is already set.\nexport default { set() {} };\n",
};

/**
 * Models Moddable has an ECMA-419 driver for: the Moddable image uses it (firmware/platform/moddable-sensors.ts)
 * instead of this project's: [driver module, its manifest, IO module, adapter].
 */
export const MODDABLE_SENSOR_DRIVERS: Partial<Record<SensorModel, [string, string, string, string]>> = {
  sht3x: ["embedded:sensor/Humidity-Temperature/SHT3x", "$(MODDABLE)/modules/drivers/sensors/sht3x/manifest.json", "embedded:io/i2c", "moddableSht3x"],
  bmp280: ["embedded:sensor/Barometer-Temperature/BMP280", "$(MODDABLE)/modules/drivers/sensors/bmp280/manifest.json", "embedded:io/i2c", "moddableBmp280"],
  ntc: ["embedded:sensor/Temperature/NTC_Thermistor", "$(MODDABLE)/modules/drivers/sensors/ntcThermistor/manifest.json", "embedded:io/analog", "moddableNtc"],
};

export function moddableManifest(board: Board, settings: DeviceSettings): object {
  const hostModules = { wifi: "./host-wifi", sntp: "./host-sntp", "embedded:io/i2c": "./host-i2c", "embedded:io/analog": "./host-analog", time: "./host-time" };
  return {
    include: [
      "$(MODDABLE)/examples/manifest_base.json",
      "$(MODDABLE)/examples/manifest_net.json",
      "$(MODDABLE)/modules/crypt/tls.json",
      "$(MODDABLE)/modules/files/preference/manifest.json",
      // Moddable's OneWire (RMT on the ESP32, a stand-in in the desktop simulator) for DS18B20 probes.
      ...(board.sensors.some((sensor) => sensor.model === "ds18b20") ? ["$(MODDABLE)/modules/drivers/onewire/manifest.json"] : []),
      // Moddable's ECMA-419 drivers for the board's sensors that have one (SHT3x, BMP280, NTC).
      ...[...new Set(board.sensors.map((sensor) => sensor.model))].flatMap((model) => (MODDABLE_SENSOR_DRIVERS[model] ? [MODDABLE_SENSOR_DRIVERS[model]![1]] : [])),
    ],
    modules: { "*": ["./main"] },
    resources: settings.tls ? { "*": ["./ca-root"] } : {},
    config: {
      // Cipher families SecureSocket may offer (ssl_ciphersuites.js reads mc/config).
      tls: { DHE_RSA: true, ECDHE_RSA: true, ECDHE_ECDSA: true },
    },
    creation: { stack: 512, keys: { available: 64 } },
    platforms: {
      esp32: {
        // manifest_net joins Wi-Fi through ECMA-419 io; the classic "wifi" module the
        // adapter uses for reconnects is a manifest of its own.
        include: ["$(MODDABLE)/modules/io/manifest.json", "$(MODDABLE)/modules/network/wifi/manifest.json"],
      },
      lin: { modules: hostModules },
      mac: { modules: hostModules },
      win: { modules: hostModules },
      "...": { error: "board " + board.name + ": build with -p esp32 for hardware or -p lin / mac / win for the desktop simulator" },
    },
  };
}
