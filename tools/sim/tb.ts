// npm run tb: drives the ThingsBoard emulator that `npm start` runs, from a second terminal,
// and prints what the device answered.
//
//   npm run tb -- devices
//   npm run tb -- attr get | attr set KEY VALUE | attr delete KEY...
//   npm run tb -- rpc METHOD [PARAMS_JSON] [--timeout MS]
//   npm run tb -- telemetry [--last N]
//   npm run tb -- claims
//   npm run tb -- provision-key KEY SECRET
//   npm run tb -- add-device NAME TOKEN
//   npm run tb -- ota [FILE] --version 1.1.0 [--title tb-firmware] [--algorithm SHA256]
// Every command takes --device NAME when the emulator knows several devices.

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseCommandLine } from "../build/command-line";
import type { ControlRequest } from "./control.ts";
import { CONTROL_FILE } from "./paths.ts";
import type { JsonValue } from "./emulator.ts";


const USAGE = `usage: npm run tb -- COMMAND [--device NAME]
  devices                          devices the emulator knows, online or not
  attr get                         client and shared attributes
  attr set KEY VALUE               set a shared attribute (VALUE is JSON, else a string)
  attr delete KEY...               delete shared attributes
  rpc METHOD [PARAMS] [--timeout MS]   server-side RPC; prints the device's reply
  telemetry [--last N]             the last N telemetry points received
  claims                           whether the device can be claimed, and until when
  provision-key KEY SECRET         accept a provisioning key and secret
  add-device NAME TOKEN            register a device with an access token
  ota [FILE] --version V [--title tb-firmware] [--algorithm SHA256|SHA384|SHA512|CRC32|MD5]
                                   assign a firmware package (an Espruino image built for
                                   this emulator) and follow the update; without FILE,
                                   npm start builds its image at version V`;

/** A command-line value: JSON when it parses (5000, true, {"a":1}), else the text itself. */
export function parseValue(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

export function requestFor(positionals: string[], values: { device?: string; timeout?: string; last?: string; title?: string; version?: string; algorithm?: string }): ControlRequest {
  const [command, ...rest] = positionals;
  const device = values.device;
  const need = (n: number, what: string) => {
    if (rest.length < n) throw new Error(command + " needs " + what + "\n" + USAGE);
  };
  switch (command) {
    case "devices":
      return { command: "devices" };
    case "attr": {
      const [sub, ...args] = rest;
      if (sub === "get") return { command: "attr-get", device };
      if (sub === "set") {
        if (args.length !== 2) throw new Error("attr set needs KEY VALUE\n" + USAGE);
        return { command: "attr-set", device, key: args[0], value: parseValue(args[1]) };
      }
      if (sub === "delete") {
        if (args.length === 0) throw new Error("attr delete needs at least one KEY\n" + USAGE);
        return { command: "attr-delete", device, keys: args };
      }
      throw new Error("attr needs get, set or delete\n" + USAGE);
    }
    case "rpc": {
      need(1, "a METHOD");
      let params: JsonValue = {};
      if (rest[1] !== undefined) {
        try {
          params = JSON.parse(rest[1]) as JsonValue;
        } catch {
          throw new Error("rpc PARAMS must be JSON, e.g. '{\"key\":\"samplingIntervalMs\"}': " + rest[1]);
        }
      }
      const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new Error("--timeout must be a positive number of milliseconds");
      return { command: "rpc", device, method: rest[0], params, timeoutMs };
    }
    case "telemetry": {
      const last = values.last === undefined ? 10 : Number(values.last);
      if (!Number.isInteger(last) || last <= 0) throw new Error("--last must be a positive whole number");
      return { command: "telemetry", device, last };
    }
    case "claims":
      return { command: "claims", device };
    case "provision-key":
      need(2, "KEY SECRET");
      return { command: "provision-key", key: rest[0], secret: rest[1] };
    case "add-device":
      need(2, "NAME TOKEN");
      return { command: "add-device", key: rest[0], token: rest[1] };
    case "ota": {
      if (!values.version) throw new Error("ota needs --version (the version the package holds, e.g. 1.1.0)\n" + USAGE);
      const algorithm = (values.algorithm ?? "SHA256").toUpperCase();
      if (!["SHA256", "SHA384", "SHA512", "CRC32", "MD5"].includes(algorithm)) throw new Error("--algorithm: SHA256, SHA384, SHA512, CRC32 or MD5 (Moddable only): what the device can check; got " + values.algorithm);
      return { command: "ota", device, file: rest[0] === undefined ? undefined : resolve(rest[0]), title: values.title ?? "tb-firmware", version: values.version, algorithm };
    }
    default:
      throw new Error((command ? "unknown command \"" + command + "\"" : "no command") + "\n" + USAGE);
  }
}

export async function sendControl(request: ControlRequest, controlFile = CONTROL_FILE): Promise<unknown> {
  if (!existsSync(controlFile)) throw new Error("no emulator is running (start one with npm start; " + controlFile + " is missing)");
  const { port } = JSON.parse(readFileSync(controlFile, "utf8")) as { port: number };
  let response: Response;
  try {
    response = await fetch("http://127.0.0.1:" + port + "/", { method: "POST", body: JSON.stringify(request) });
  } catch {
    throw new Error("the emulator at 127.0.0.1:" + port + " does not answer: is npm start still running?");
  }
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(body.error ?? "HTTP " + response.status);
  return body;
}

/** Human-readable lines for a command's result. */
export function describe(request: ControlRequest, result: unknown): string {
  const r = result as Record<string, unknown>;
  switch (request.command) {
    case "attr-set":
    case "attr-delete":
      if (!r.online) return r.device + " is offline: it gets the change when it connects and requests its attributes";
      if (r.deviceSaid === null) return r.device + " did not answer within 5 s";
      return r.device + " answered: " + JSON.stringify(r.deviceSaid);
    case "rpc":
      return r.device + " replied: " + JSON.stringify(r.reply);
    case "ota":
      return (
        "assigned " + r.file + " as " + request.title + " " + request.version + " to " + r.device + " (" + JSON.stringify(r.attributes) + ")" +
        (r.online ? "" : "\n" + r.device + " is offline: it starts when it connects")
      );
    case "telemetry":
      return (r.points as { ts: number; values: unknown }[]).map((p) => new Date(p.ts).toISOString() + "  " + JSON.stringify(p.values)).join("\n") || "no telemetry yet";
    default:
      return JSON.stringify(result, null, 2);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine("npm run tb", {
    allowPositionals: true,
    options: {
      device: { type: "string" },
      timeout: { type: "string" },
      last: { type: "string" },
      title: { type: "string" },
      version: { type: "string" },
      algorithm: { type: "string" },
    },
  });
  const request = requestFor(positionals, values);
  const started = Date.now();
  const result = (await sendControl(request)) as { device: string };
  console.log(describe(request, result));
  if (request.command === "ota") await followUpdate(result.device, started);
}

/** Prints the device's fw_state reports as they come, until UPDATED or FAILED (or 10 minutes). */
async function followUpdate(device: string, since: number): Promise<void> {
  let shown = 0;
  const end = Date.now() + 600000;
  while (Date.now() < end) {
    const { points } = (await sendControl({ command: "telemetry", device, last: 1000 })) as { points: { ts: number; values: Record<string, unknown> }[] };
    const states = points.filter((p) => p.ts >= since && "fw_state" in p.values);
    for (const p of states.slice(shown)) {
      const v = p.values;
      console.log(new Date(p.ts).toISOString() + "  " + String(v.fw_state) + (v.fw_progress !== undefined ? " " + String(v.fw_progress) + " %" : "") + (v.fw_error ? ": " + String(v.fw_error) : "") + (v.current_fw_version ? " (now " + String(v.current_fw_version) + ")" : ""));
      if (v.fw_state === "UPDATED") return;
      if (v.fw_state === "FAILED") process.exit(1);
    }
    shown = states.length;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error("no UPDATED or FAILED from " + device + " within 10 minutes");
}

if (process.argv[1] && process.argv[1].endsWith(join("sim", "tb.ts"))) {
  main().catch((e: Error) => {
    console.error("tb: " + e.message);
    process.exit(1);
  });
}
