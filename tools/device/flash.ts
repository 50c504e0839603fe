// Flashes an Espruino image to a board over serial with the `espruino` npm CLI and
// saves it to flash, optionally with a per-device tb-config.json (token, host...).
//
//   npm run flash -- --port /dev/ttyUSB0 [--board esp32-devkitc] [--device-config my-device.json]

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../build/build.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    board: { type: "string", default: "esp32-devkitc" },
    baud: { type: "string", default: "115200" },
    "device-config": { type: "string" },
  },
});
if (!values.port) {
  console.error("flash: give the serial port, e.g. npm run flash -- --port /dev/ttyUSB0 (list ports with npx espruino --list)");
  process.exit(1);
}
const image = join(ROOT, "dist/espruino", values.board + ".js");
if (!existsSync(image)) {
  console.error("flash: " + image + " does not exist: run npm run build first");
  process.exit(1);
}
const args = ["-p", values.port, "-b", values.baud, "--board", "ESP32", "--config", "SAVE_ON_SEND=1", "--no-ble"];
const deviceConfig = values["device-config"];
if (deviceConfig) {
  if (!existsSync(deviceConfig)) {
    console.error("flash: " + deviceConfig + " does not exist");
    process.exit(1);
  }
  // Written to Storage as tb-config.json: per-device overrides read at boot.
  args.push("--storage", "tb-config.json:" + deviceConfig);
}
args.push(image);
const result = spawnSync(join(ROOT, "node_modules/.bin/espruino"), args, { stdio: "inherit" });
process.exit(result.status ?? 1);
