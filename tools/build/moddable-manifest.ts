// manifest.json for the Moddable build of a board. Hardware (esp32) gets Wi-Fi, SNTP,
// TLS, ECMA-419 I2C and Analog, and OneWire where a board has DS18B20 probes, and with the ota feature
// what a host of mods needs; the desktop simulator (lin/mac/win) has no Wi-Fi, SNTP, I2C,
// restart or flash partition, so those modules are mapped to stand-ins (that say so, or
// stand in with a file and a line npm run moddable -- sim acts on).

import type { Board, SensorModel } from "./boards.ts";
import type { DeviceSettings } from "./config.ts";

const unavailable = (what: string) =>
  `// Desktop simulator stand-in: ${what} does not exist there.\n` +
  `export default class Unavailable { constructor() { throw new Error("${what} is not available in the Moddable desktop simulator"); } }\n`;

/** What the simulator's stand-in for a restart prints: npm run moddable -- sim then starts mcsim again. */
export const SIM_RESTART_LINE = "[I][boot] restarting (npm run moddable -- sim starts the simulator again)";
/** The simulator's mod partition: a file in mcsim's working folder (npm run moddable -- sim: .sim/moddable/). */
export const SIM_MOD_PARTITION = "tb-mod-partition.xsa";
/** The size an XS archive (a mod) says it has: its first atom, a big-endian size then "XS_A"; -1 when `data` is not one. */
export function xsArchiveBytes(data: Uint8Array): number {
  if (data.length < 8 || String.fromCharCode(data[4], data[5], data[6], data[7]) !== "XS_A") return -1;
  return ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;
}

/** As mcconfig makes the ESP32's mod partition when XS_MODS is defined (tools/mcmanifest.js). */
export const MOD_PARTITION_BYTES = 0x40000;

/** File name (without .js) -> source of the stand-ins shipped next to main.js. */
export const MODDABLE_HOST_STUBS: Record<string, string> = {
  "host-wifi": unavailable("Wi-Fi"),
  "host-sntp": unavailable("SNTP"),
  "host-i2c": unavailable("I2C"),
  "host-analog": unavailable("the ADC"),
  "host-time": "// The desktop simulator uses the host clock, which is already set.\nexport default { set() {} };\n",
  // "tb-restart": a function, so that the firmware calls no runtime method named like one of its own (rollup.config.mjs, INTERNAL_PROPERTIES).
  "device-restart": '// Restarts the ESP32 (Moddable\'s ECMA-419 "system" module).\nimport System from "system";\nexport default function restart() { System.restart(); }\n',
  "host-restart": `// Desktop simulator stand-in: mcsim cannot restart itself; npm run moddable -- sim does it on this line.\nexport default function restart() { trace(${JSON.stringify(SIM_RESTART_LINE + "\n")}); }\n`,
  "host-flash": [
    "// Desktop simulator stand-in for Moddable's flash module on the mod partition (\"xs\"): a",
    "// file in mcsim's working folder with NOR flash's rules (erase sets a block to 0xFF, a write",
    "// can only clear bits), which npm run moddable -- sim gives mcsim as its mod at each start.",
    'import { File } from "file";',
    `const SIZE = ${MOD_PARTITION_BYTES};`,
    "const BLOCK = 4096;",
    "export default class Flash {",
    "  constructor(name) {",
    '    if (name !== "xs") throw new Error("no flash partition " + name + " in the simulator");',
    `    this.file = new File(${JSON.stringify(SIM_MOD_PARTITION)}, true);`,
    "    for (let at = this.file.length; at < SIZE; at += BLOCK) this.erase(at / BLOCK);",
    "  }",
    "  get byteLength() { return SIZE; }",
    "  get blockSize() { return BLOCK; }",
    "  erase(sector) {",
    "    this.file.position = sector * BLOCK;",
    "    this.file.write(new Uint8Array(BLOCK).fill(255).buffer);",
    "  }",
    "  read(offset, byteLength) {",
    "    this.file.position = offset;",
    "    return this.file.read(ArrayBuffer, byteLength);",
    "  }",
    "  write(offset, byteLength, buffer) {",
    "    const bytes = new Uint8Array(this.read(offset, byteLength));",
    "    const data = ArrayBuffer.isView(buffer) ? buffer : new Uint8Array(buffer);",
    "    for (let i = 0; i < byteLength; i++) bytes[i] &= data[i];",
    "    this.file.position = offset;",
    "    this.file.write(bytes.buffer);",
    "  }",
    "}",
    "",
  ].join("\n"),
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
  const updates = board.features.includes("ota");
  const hostModules: Record<string, string> = { wifi: "./host-wifi", sntp: "./host-sntp", "embedded:io/i2c": "./host-i2c", "embedded:io/analog": "./host-analog", time: "./host-time", "tb-restart": "./host-restart" };
  if (updates) hostModules.flash = "./host-flash";
  const simulator = { modules: hostModules, ...(updates ? { include: ["$(MODDABLE)/modules/files/file/manifest.json"] } : {}) };
  return {
    include: [
      "$(MODDABLE)/examples/manifest_base.json",
      "$(MODDABLE)/examples/manifest_net.json",
      "$(MODDABLE)/modules/crypt/tls.json",
      "$(MODDABLE)/modules/files/preference/manifest.json",
      // Updates are mods (firmware/platform/moddable-update.ts): Modules.has and importNow.
      ...(updates ? ["$(MODDABLE)/modules/base/modules/manifest.json"] : []),
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
    // A host for mods: XS maps the mod partition at boot (on the ESP32 mcconfig then makes a
    // 256 KB "xs" partition out of the application's), and no language feature is stripped,
    // since the linker cannot see what a later version of the firmware will use.
    ...(updates ? { defines: { XS_MODS: 1 }, strip: [] } : {}),
    platforms: {
      esp32: {
        // manifest_net joins Wi-Fi through ECMA-419 io (which also has "system", for restarts);
        // the classic "wifi" module the adapter uses for reconnects is a manifest of its own.
        modules: { "tb-restart": "./device-restart" },
        include: [
          "$(MODDABLE)/modules/io/manifest.json",
          "$(MODDABLE)/modules/network/wifi/manifest.json",
          ...(updates ? ["$(MODDABLE)/modules/files/flash/manifest.json"] : []),
        ],
      },
      lin: simulator,
      mac: simulator,
      win: simulator,
      "...": { error: "board " + board.name + ": build with -p esp32 for hardware or -p lin / mac / win for the desktop simulator" },
    },
  };
}
