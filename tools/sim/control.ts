// The emulator's control endpoint: a loopback HTTP server that `npm run tb` talks to
// from a second terminal. Its port is written to a file under .sim/ so the CLI finds it.

import { createServer } from "node:http";
import type { AddressInfo, Server } from "node:net";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Attributes, JsonValue, ThingsBoardEmulator } from "./emulator.ts";
import { MAX_IMAGE_BYTES } from "../../firmware/thingsboard/ota.ts";
import { LOADER_START } from "../build/boot-loader.mjs";
import { xsArchiveBytes } from "../build/moddable-manifest.ts";

/** How long `attr set` waits for the device's answer (its client attributes). */
const ANSWER_WAIT_MS = 5000;

export interface ControlRequest {
  command: "devices" | "attr-get" | "attr-set" | "attr-delete" | "rpc" | "telemetry" | "provision-key" | "add-device" | "claims" | "ota";
  device?: string;
  key?: string;
  value?: JsonValue;
  keys?: string[];
  method?: string;
  params?: JsonValue;
  timeoutMs?: number;
  last?: number;
  secret?: string;
  token?: string;
  /** ota: the package file (an absolute path on this machine), its title, version and checksum algorithm. */
  file?: string;
  title?: string;
  version?: string;
  algorithm?: string;
}

/** Builds the running device's image at another version (the simulator's settings), returning its file. */
export type PackageBuilder = (version: string) => Promise<string>;

export async function startControl(emulator: ThingsBoardEmulator, portFile: string, buildPackage?: PackageBuilder): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const reply = (status: number, value: unknown) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify(value));
      };
      let parsed: ControlRequest;
      try {
        parsed = JSON.parse(body) as ControlRequest;
      } catch {
        reply(400, { error: "request body is not JSON" });
        return;
      }
      handleControl(emulator, parsed, buildPackage).then(
        (value) => reply(200, value),
        (e: Error) => reply(400, { error: e.message })
      );
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
  mkdirSync(dirname(portFile), { recursive: true });
  writeFileSync(portFile, JSON.stringify({ port, pid: process.pid }));
  return {
    port,
    close: async () => {
      rmSync(portFile, { force: true });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The device a command is for: the one named, else the only one online, else the only one. */
function pickDevice(emulator: ThingsBoardEmulator, name: string | undefined): string {
  if (name) return emulator.device(name).name;
  const devices = emulator.listDevices();
  const online = devices.filter((d) => d.online);
  if (online.length === 1) return online[0].name;
  if (devices.length === 1) return devices[0].name;
  if (devices.length === 0) throw new Error("the emulator knows no device yet");
  throw new Error("several devices (" + devices.map((d) => d.name + (d.online ? " (online)" : "")).join(", ") + "): name one with --device");
}

export async function handleControl(emulator: ThingsBoardEmulator, request: ControlRequest, buildPackage?: PackageBuilder): Promise<unknown> {
  switch (request.command) {
    case "devices":
      return emulator.listDevices();
    case "attr-get": {
      const device = emulator.device(pickDevice(emulator, request.device));
      return { device: device.name, client: device.client, shared: device.shared };
    }
    case "attr-set":
    case "attr-delete": {
      const name = pickDevice(emulator, request.device);
      // The device answers a configuration change with its client attribute config_error.
      const answer = emulator.waitForPublish(name, (topic, body) => isAttributesTopic(topic) && hasKey(body, "config_error"), ANSWER_WAIT_MS);
      if (request.command === "attr-set") {
        if (!request.key) throw new Error("attr set needs a key");
        emulator.setShared(name, { [request.key]: request.value ?? null });
      } else {
        if (!request.keys || request.keys.length === 0) throw new Error("attr delete needs at least one key");
        emulator.deleteShared(name, request.keys);
      }
      const online = emulator.listDevices().find((d) => d.name === name)?.online ?? false;
      const said = online ? await answer : null;
      return { device: name, online, deviceSaid: said };
    }
    case "rpc": {
      const name = pickDevice(emulator, request.device);
      if (!request.method) throw new Error("rpc needs a method name");
      return { device: name, reply: await emulator.rpc(name, request.method, request.params ?? {}, request.timeoutMs) };
    }
    case "telemetry": {
      const device = emulator.device(pickDevice(emulator, request.device));
      const last = request.last ?? 10;
      return { device: device.name, points: device.telemetry.slice(-last) };
    }
    case "provision-key":
      if (!request.key || !request.secret) throw new Error("provision-key needs a key and a secret");
      emulator.addProvisionKey(request.key, request.secret);
      return { added: request.key };
    case "add-device":
      if (!request.key || !request.token) throw new Error("add-device needs a name and a token");
      emulator.addDevice(request.key, request.token);
      return { added: request.key };
    case "claims": {
      const device = emulator.device(pickDevice(emulator, request.device));
      return { device: device.name, claim: device.claim ? { secretKeySet: device.claim.secretKey !== "", expiresAt: new Date(device.claim.expiresAt).toISOString() } : null };
    }
    case "ota": {
      const name = pickDevice(emulator, request.device);
      if (!request.title || !request.version) throw new Error("ota needs --title and --version");
      let file = request.file;
      if (!file) {
        // No file: the simulator builds its image at that version, with the settings it runs with.
        if (!buildPackage) throw new Error("ota needs a FILE here: only npm start can build its image at another version");
        file = await buildPackage(request.version);
      }
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch (e) {
        throw new Error("cannot read " + file + ": " + (e as Error).message);
      }
      return { file, ...assignPackage(emulator, name, data, file, request.title, request.version, request.algorithm ?? "SHA256") };
    }
    default:
      throw new Error("unknown command " + JSON.stringify((request as { command: unknown }).command));
  }
}

function isAttributesTopic(topic: string): boolean {
  return topic === "v1/devices/me/attributes" || topic === "v2/a";
}

function hasKey(body: JsonValue, key: string): boolean {
  return body !== null && typeof body === "object" && !Array.isArray(body) && key in (body as Attributes);
}

/** Checks a package (`label` names it in errors) and assigns it to a device: what npm run tb -- ota and the dashboard do. */
export function assignPackage(emulator: ThingsBoardEmulator, device: string, data: Buffer, label: string, title: string, version: string, algorithm: string): { device: string; online: boolean; attributes: Attributes } {
  const problem = packageProblem(data);
  if (problem) throw new Error(label + ": " + problem + "; nothing was assigned");
  const attributes = emulator.assignFirmware(device, data, title, version, algorithm);
  const online = emulator.listDevices().find((d) => d.name === device)?.online ?? false;
  return { device, online, attributes };
}

/**
 * Why `data` cannot be an update ("" when it can): an Espruino image is JavaScript text that
 * starts with the boot loader; a Moddable update is a mod archive (its size, then "XS_A").
 */
export function packageProblem(data: Buffer): string {
  if (data.length === 0) return "the file is empty";
  if (data.length > MAX_IMAGE_BYTES) return "the file is " + data.length + " B; an update is at most " + MAX_IMAGE_BYTES + " B";
  const archiveBytes = xsArchiveBytes(data);
  if (archiveBytes >= 0) return archiveBytes === data.length ? "" : "the mod archive says " + archiveBytes + " B but the file has " + data.length + " B (cut short?)";
  if (data.includes(0)) return "the file is binary, not an Espruino image (dist/espruino/<board>.js) nor a Moddable mod archive (<board>.xsa from npm run moddable -- build)";
  if (!data.subarray(0, LOADER_START.length).equals(Buffer.from(LOADER_START))) return "the file is not an Espruino image of this firmware with the ota feature (dist/espruino/<board>.js starts with its boot loader)";
  return "";
}
