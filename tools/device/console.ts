// Serial console of a board running Espruino (115200 baud), or of the simulator
// (`tcp://127.0.0.1:PORT`, npm start -- --repl PORT): the device's log lines coloured by
// level, optionally with timestamps and copied to a file, and keystrokes passed to its
// REPL. When the port goes away (the board resets, is unplugged, the simulator restarts)
// it waits and connects again by itself. Ctrl-] leaves.
//
//   npm run console -- --port /dev/ttyUSB0 [--baud 115200] [--timestamps] [--log FILE] [--no-color]
//   npm run console -- --port tcp://127.0.0.1:2323

import { appendFileSync } from "node:fs";
import { parseCommandLine } from "../build/command-line";
import type { Link } from "./port.ts";
import { listPorts, openLink } from "./port.ts";

const COLOURS: Record<string, string> = { E: "\x1b[31m", W: "\x1b[33m", D: "\x1b[90m" };
const RESET = "\x1b[0m";
/** Ctrl-]: leaves, as telnet's escape. Ctrl-C goes to the device (it breaks a running command). */
const QUIT = "\x1d";

/** One line of the device as shown: coloured by its level, with a time when asked. */
export function formatLine(line: string, options: { color: boolean; timestamps: boolean; now?: Date }): string {
  const level = /^\[([EWID])\]\[/.exec(line);
  const stamp = options.timestamps ? (options.now ?? new Date()).toISOString().slice(11, 23) + " " : "";
  const colour = options.color && level ? COLOURS[level[1]] : undefined;
  return stamp + (colour ? colour + line + RESET : line);
}

async function main(): Promise<void> {
  const { values } = parseCommandLine("npm run console", {
    options: {
      port: { type: "string" },
      baud: { type: "string", default: "115200" },
      timestamps: { type: "boolean", default: false },
      log: { type: "string" },
      "no-color": { type: "boolean", default: false },
    },
  });
  if (!values.port) {
    console.error(
      "console: give the port, e.g. npm run console -- --port /dev/ttyUSB0 (serial ports found: " +
        ((await listPorts()).join(", ") || "none") +
        "), or --port tcp://127.0.0.1:2323 for the simulator (npm start -- --repl 2323)"
    );
    process.exit(1);
  }
  const port = values.port;
  const baud = Number(values.baud);
  const color = !values["no-color"] && process.stdout.isTTY === true ? true : process.env.FORCE_COLOR === "1";
  const logFile = values.log;
  let partial = "";
  let link: Link | null = null;
  let retries = 0;
  let connectedOnce = false;

  const show = (text: string) => {
    partial += text.replace(/\r/g, "");
    let newline: number;
    while ((newline = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      process.stdout.write(formatLine(line, { color, timestamps: values.timestamps }) + "\n");
      if (logFile) appendFileSync(logFile, new Date().toISOString() + " " + line + "\n");
    }
    // The REPL's prompt and echo have no newline: shown as they come.
    if (partial === ">" || (partial.length > 0 && !partial.startsWith("["))) {
      process.stdout.write(partial);
      partial = "";
    }
  };

  const open = async () => {
    link = await openLink(
      port,
      baud,
      (bytes) => show(bytes.toString("latin1")),
      () => {
        retries = 0;
        connectedOnce = true;
        console.error("[console] connected to " + port + " (Ctrl-] to leave)");
      },
      async (why) => {
        link = null;
        if (!connectedOnce) {
          // Never there: a wrong or busy port, not a board that reset.
          const ports = port.startsWith("tcp://")
            ? "is the simulator running with npm start -- --repl PORT?"
            : "serial ports found: " + ((await listPorts()).join(", ") || "none");
          console.error("console: cannot open " + port + ": " + why + " (" + ports + ")");
          process.exit(1);
        }
        // The board reset or was unplugged, or the simulator restarted: try again.
        if (retries++ === 0) console.error("[console] " + port + ": " + why + "; waiting for it to come back");
        setTimeout(() => void open(), 1000);
      }
    );
  };
  await open();

  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  process.stdin.on("data", (bytes: Buffer) => {
    if (bytes.includes(QUIT.charCodeAt(0))) {
      link?.close();
      process.exit(0);
    }
    // A terminal in raw mode sends Enter as \r, as a serial terminal does.
    link?.write(bytes);
  });
  process.stdin.on("end", () => undefined);
}

if (process.argv[1] && process.argv[1].endsWith("console.ts")) await main();
