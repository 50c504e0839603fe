// Serial console of a board running Espruino (115200 baud): the device's log lines and
// the REPL. Ctrl-C twice to leave.
//
//   npm run console -- --port /dev/ttyUSB0

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../build/build.ts";

const { values } = parseArgs({ options: { port: { type: "string" }, baud: { type: "string", default: "115200" } } });
if (!values.port) {
  console.error("console: give the serial port, e.g. npm run console -- --port /dev/ttyUSB0");
  process.exit(1);
}
const result = spawnSync(join(ROOT, "node_modules/.bin/espruino"), ["-p", values.port, "-b", values.baud, "--no-ble"], { stdio: "inherit" });
process.exit(result.status ?? 1);
