// Flashes an Espruino image to a board over serial with the `espruino` npm CLI (showing
// the upload's progress) and saves it to flash with its root CA (tb-ca.der, from the
// <board>.ca.der beside the image), optionally with a per-device tb-config.json (token, host...); then
// restarts the board and waits for its boot line, so a saved image that does not start
// is noticed here. A port that cannot be opened is named with the ports found.
//
//   npm run flash -- --port /dev/ttyUSB0 [--board esp32-devkitc | --image FILE] [--device-config my-device.json]
//   npm run flash -- --port tcp://127.0.0.1:2323 ...   (the simulator's console: npm start -- --repl 2323)
//   npm run flash -- --port PORT --erase                 removes the image, its CA, the per-device file and updates

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseCommandLine } from "../build/command-line";
import { ROOT } from "../build/build.ts";
import { caFileFor } from "../build/ca.ts";
import { CA_FILE } from "../../firmware/platform/types.ts";
import { OVERRIDE_FILE, RESTART_FILE } from "../../firmware/config.ts";
import { SHARED_CONFIG_FILE } from "../../firmware/app/remote-config.ts";
import { BOOT_FILE, IMAGE_SLOTS } from "../../firmware/thingsboard/ota.ts";
import { awaitLine, listPorts, portProblem } from "./port.ts";

/** How long the boot line may take after a restart: Wi-Fi is not needed for it, only the start. */
const BOOT_WAIT_MS = 30000;

const { values } = parseCommandLine("npm run flash", {
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
  console.error("flash: give the serial port, e.g. npm run flash -- --port /dev/ttyUSB0 (serial ports found: " + ((await listPorts()).join(", ") || "none") + ")");
  process.exit(1);
}
const problem = await portProblem(values.port, Number(values.baud));
if (problem !== "") {
  console.error("flash: " + problem);
  process.exit(1);
}
if (values.erase) {
  // What this firmware keeps in Storage (readings waiting in flash, tbq-*, stay to be delivered).
  const files = [".bootcde", OVERRIDE_FILE, SHARED_CONFIG_FILE, BOOT_FILE, ...IMAGE_SLOTS, RESTART_FILE, CA_FILE];
  const expression = "var S=require(\"Storage\");" + JSON.stringify(files) + ".forEach(function(f){S.erase(f)});reset();print(\"erased: " + files.join(" ") + "\")";
  const erased = spawnSync(join(ROOT, "node_modules/.bin/espruino"), ["-p", values.port, "-b", values.baud, "--no-ble", "-e", expression], { stdio: "inherit" });
  process.exit(erased.status ?? 1);
}
const image = values.image ?? join(ROOT, "dist/espruino", values.board + ".js");
if (!existsSync(image)) {
  console.error("flash: " + image + " does not exist: " + (values.image ? "give a built image" : "run npm run build first"));
  process.exit(1);
}
// LOAD_STORAGE_FILE=0: no load() from the CLI; this script restarts the board below and watches it boot.
const args = ["-p", values.port, "-b", values.baud, "--config", "SAVE_ON_SEND=1", "--config", "LOAD_STORAGE_FILE=0", "--no-ble"];
// A telnet console reports itself as one that needs no throttling, so the CLI sends at full
// speed; the Espruino Linux build then lost characters mid-upload (seen: a statement whose
// first bytes were gone). Throttled as over serial: slower, but whole.
if (values.port.startsWith("tcp://")) args.push("--config", "SERIAL_THROTTLE_SEND=1");
// The root CA goes to Storage beside the image (it is not in the image): npm run build writes it.
const caFile = caFileFor(image);
if (!existsSync(caFile)) {
  console.error("flash: " + caFile + " (the image's root CA) does not exist: run npm run build, which writes it beside the image");
  process.exit(1);
}
args.push("--storage", CA_FILE + ":" + caFile);
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
console.log("flash: uploading " + image + " (" + (statSync(image).size / 1024).toFixed(1) + " KB) to " + values.port);
// The espruino CLI itself, with a progress line every 10 % (espruino-upload.ts).
const result = spawnSync(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "tools/device/espruino-upload.ts"), ...args], { stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
// Espruino's telnet console drops a client that comes right after another left (port.ts).
await new Promise((r) => setTimeout(r, 1000));
const booted = await awaitLine(values.port, Number(values.baud), "\x10load()\n", /\[I\]\[boot\] tb-firmware [^\r\n]*/, BOOT_WAIT_MS);
if (booted === null) {
  console.error("flash: the image is saved, but the device printed no boot line within " + BOOT_WAIT_MS / 1000 + " s after a restart; look with npm run console -- --port " + values.port);
  process.exit(1);
}
console.log("flash: saved and booted: " + booted);
