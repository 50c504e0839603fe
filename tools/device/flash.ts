// Flashes an Espruino image to a board over serial with the `espruino` npm CLI and
// saves it to flash, optionally with a per-device tb-config.json (token, host...).
//
//   npm run flash -- --port /dev/ttyUSB0 [--board esp32-devkitc | --image FILE] [--device-config my-device.json]
//   npm run flash -- --port tcp://127.0.0.1:2323 ...   (the simulator's console: npm start -- --repl 2323)
//   npm run flash -- --port PORT --erase                 removes the image, the per-device file and updates

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../build/build.ts";
import { OVERRIDE_FILE, RESTART_FILE } from "../../firmware/config.ts";
import { SHARED_CONFIG_FILE } from "../../firmware/app/remote-config.ts";
import { BOOT_FILE, IMAGE_SLOTS } from "../../firmware/thingsboard/ota.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    board: { type: "string", default: "esp32-devkitc" },
    baud: { type: "string", default: "115200" },
    "device-config": { type: "string" },
    image: { type: "string" },
    erase: { type: "boolean", default: false },
  },
});
if (!values.port) {
  console.error("flash: give the serial port, e.g. npm run flash -- --port /dev/ttyUSB0 (list ports with npx espruino --list)");
  process.exit(1);
}
if (values.erase) {
  // What this firmware keeps in Storage (readings waiting in flash, tbq-*, stay to be delivered).
  const files = [".bootcde", OVERRIDE_FILE, SHARED_CONFIG_FILE, BOOT_FILE, ...IMAGE_SLOTS, RESTART_FILE];
  const expression = "var S=require(\"Storage\");" + JSON.stringify(files) + ".forEach(function(f){S.erase(f)});reset();print(\"erased: " + files.join(" ") + "\")";
  const erased = spawnSync(join(ROOT, "node_modules/.bin/espruino"), ["-p", values.port, "-b", values.baud, "--no-ble", "-e", expression], { stdio: "inherit" });
  process.exit(erased.status ?? 1);
}
const image = values.image ?? join(ROOT, "dist/espruino", values.board + ".js");
if (!existsSync(image)) {
  console.error("flash: " + image + " does not exist: " + (values.image ? "give a built image" : "run npm run build first"));
  process.exit(1);
}
const args = ["-p", values.port, "-b", values.baud, "--config", "SAVE_ON_SEND=1", "--no-ble"];
const deviceConfig = values["device-config"];
if (deviceConfig) {
  if (!existsSync(deviceConfig)) {
    console.error("flash: " + deviceConfig + " does not exist");
    process.exit(1);
  }
  // Written to Storage as tb-config.json: per-device overrides read at boot.
  args.push("--storage", OVERRIDE_FILE + ":" + deviceConfig);
}
args.push(image);
const result = spawnSync(join(ROOT, "node_modules/.bin/espruino"), args, { stdio: "inherit" });
process.exit(result.status ?? 1);
