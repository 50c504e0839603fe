// The local device page: an HTTP server on loopback, beside the ThingsBoard emulator, that
// shows every device the emulator knows (connection, attributes, a live chart per
// telemetry key, sensor_error and fw_state events, the simulated device's console) and
// lets the user set shared attributes, send RPCs and assign firmware from the browser.
//
// Live updates go out as server-sent events: a snapshot when the page connects, then every
// change. A page that does not read fast enough is dropped (it reconnects and gets a new
// snapshot), so a slow browser never holds the emulator up. The page itself is
// tools/sim/dashboard-page/ (TypeScript, compiled here when first asked for) and uPlot from
// node_modules: everything is served from the project, no internet needed.

import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import ts from "typescript";
import type { EmulatorChange, JsonValue, ThingsBoardEmulator } from "./emulator.ts";
import { assignPackage, handleControl } from "./control.ts";
import type { PackageBuilder } from "./control.ts";
import { MAX_IMAGE_BYTES } from "../../firmware/thingsboard/ota.ts";
import { ConfigError } from "../build/boards.ts";
import { ROOT } from "../build/build.ts";

const PAGE_DIR = join(ROOT, "tools", "sim", "dashboard-page");
/** Console and emulator log lines kept for a page that connects later. */
const LINES_KEPT = 500;
/** A page whose unread events pass this is dropped; it reconnects with a fresh snapshot. */
const MAX_UNREAD_BYTES = 512 * 1024;
const MAX_REQUEST_BYTES = 64 * 1024;
const FIRMWARE_TITLE = "tb-firmware";
/** Where npm start serves the page unless told otherwise: a fixed port, so a bookmark keeps working. */
export const DEFAULT_DASHBOARD_PORT = 8765;

export interface DashboardOptions {
  emulator: ThingsBoardEmulator;
  /** 0: any free port. A busy port is an error unless `fallbackToFreePort`. */
  port: number;
  fallbackToFreePort?: boolean;
  /** Folders holding built images (<dir>/espruino/<board>.js with <board>.ota.json), or folders of such folders (.sim/ota/<version>/), offered for OTA. */
  imageDirs: string[];
  /** Builds the simulated device's image at another version (npm start only). */
  buildPackage?: PackageBuilder;
  /** How much telemetry history a page is sent when it connects. */
  windowMinutes?: number;
}

export interface Dashboard {
  port: number;
  url: string;
  /** A line of the simulated device's serial console. */
  consoleLine(line: string): void;
  close(): Promise<void>;
}

/** An image the page offers for OTA: `id` is its path under the project (what the page sends back). */
export interface OfferedImage {
  id: string;
  board: string;
  title: string;
  version: string;
  size: number;
}

/** An error the page shows as it is (status 4xx). */
class PageError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The page as npm start and npm run moddable -- sim start it, from their --dashboard-port and
 * --no-dashboard options: null when turned off; prints its address.
 */
export async function startLocalDashboard(portOption: string | undefined, off: boolean, options: Omit<DashboardOptions, "port" | "fallbackToFreePort">): Promise<Dashboard | null> {
  if (off) return null;
  const port = portOption === undefined ? null : Number(portOption);
  if (port !== null && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new ConfigError("--dashboard-port needs a TCP port, e.g. --dashboard-port 8765 (0: any free port)");
  // The default port, or any free one when it is taken; a port asked for must be free.
  const dashboard = await startDashboard({ ...options, port: port ?? DEFAULT_DASHBOARD_PORT, fallbackToFreePort: port === null });
  console.log("dashboard: " + dashboard.url);
  return dashboard;
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { emulator } = options;
  const windowMs = (options.windowMinutes ?? 30) * 60000;
  const consoleLines: { at: number; line: string }[] = [];
  const logLines: { at: number; line: string }[] = [];
  const streams = new Set<ServerResponse>();
  const assets = new Map<string, { type: string; body: Buffer }>();

  const keep = (lines: { at: number; line: string }[], line: string) => {
    const entry = { at: Date.now(), line };
    lines.push(entry);
    if (lines.length > LINES_KEPT) lines.splice(0, lines.length - LINES_KEPT);
    return entry;
  };
  const broadcast = (event: object) => {
    const text = "data: " + JSON.stringify(event) + "\n\n";
    for (const stream of streams) {
      if (stream.writableLength > MAX_UNREAD_BYTES) {
        streams.delete(stream);
        stream.destroy();
        continue;
      }
      stream.write(text);
    }
  };
  const unwatch = emulator.watch((change: EmulatorChange) => {
    if (change.kind === "log") broadcast({ kind: "log", ...keep(logLines, change.line) });
    else broadcast(change);
  });

  const snapshot = () => ({
    kind: "snapshot",
    now: Date.now(),
    windowMinutes: windowMs / 60000,
    canBuild: options.buildPackage !== undefined,
    devices: emulator.listDevices().map((summary) => {
      const record = emulator.device(summary.name);
      const since = Date.now() - windowMs;
      return { ...summary, client: record.client, shared: record.shared, telemetry: record.telemetry.filter((p) => p.ts >= since) };
    }),
    console: consoleLines,
    log: logLines,
  });

  const offeredImages = (): OfferedImage[] => {
    const images: OfferedImage[] = [];
    const folders = options.imageDirs.flatMap((dir) => (existsSync(dir) ? [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))] : []));
    for (const dir of folders) {
      const espruino = join(dir, "espruino");
      if (!existsSync(espruino)) continue;
      for (const name of readdirSync(espruino).filter((f) => f.endsWith(".ota.json")).sort()) {
        try {
          const info = JSON.parse(readFileSync(join(espruino, name), "utf8")) as { file: string; title: string; version: string; size: number };
          if (!existsSync(join(espruino, info.file))) continue;
          images.push({ id: relative(ROOT, join(espruino, info.file)), board: info.file.replace(/\.js$/, ""), title: info.title, version: info.version, size: info.size });
        } catch {
          // A half-written or foreign .ota.json is not offered.
        }
      }
    }
    return images;
  };

  const asset = (name: string): { type: string; body: Buffer } => {
    const cached = assets.get(name);
    if (cached) return cached;
    let made: { type: string; body: Buffer };
    if (name === "page.js") {
      // The page is TypeScript (type-checked by npm run typecheck); browsers get plain ES2020.
      const source = readFileSync(join(PAGE_DIR, "page.ts"), "utf8");
      const output = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.None, removeComments: true } });
      made = { type: "text/javascript; charset=utf-8", body: Buffer.from(output.outputText) };
    } else if (name === "uPlot.js" || name === "uPlot.css") {
      const require = createRequire(import.meta.url);
      const file = require.resolve(name === "uPlot.js" ? "uplot/dist/uPlot.iife.min.js" : "uplot/dist/uPlot.min.css");
      made = { type: name.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8", body: readFileSync(file) };
    } else {
      const types: Record<string, string> = { "index.html": "text/html; charset=utf-8", "page.css": "text/css; charset=utf-8" };
      made = { type: types[name], body: readFileSync(join(PAGE_DIR, name)) };
    }
    assets.set(name, made);
    return made;
  };
  const ASSETS: Record<string, string> = { "/": "index.html", "/index.html": "index.html", "/page.css": "page.css", "/page.js": "page.js", "/vendor/uPlot.js": "uPlot.js", "/vendor/uPlot.css": "uPlot.css" };

  const api = async (path: string, request: IncomingMessage, url: URL): Promise<unknown> => {
    if (path === "/api/images" && request.method === "GET") return offeredImages();
    if (request.method !== "POST") throw new PageError(405, path + " takes POST");
    if (path === "/api/ota/upload") {
      // The file's bytes as the body; what it is for in the query.
      const data = await readBody(request, MAX_IMAGE_BYTES + 1);
      const device = onlyText(url.searchParams.get("device"), "device");
      const version = onlyText(url.searchParams.get("version"), "version");
      const label = url.searchParams.get("name") || "the uploaded file";
      knownDevice(emulator, device);
      return assignPackage(emulator, device, data, label, url.searchParams.get("title") || FIRMWARE_TITLE, version, "SHA256");
    }
    const body = parseBody(await readBody(request, MAX_REQUEST_BYTES));
    const device = onlyText(body.device, "device");
    knownDevice(emulator, device);
    switch (path) {
      case "/api/attr": {
        const key = onlyText(body.key, "key");
        const value = jsonField(body.value, "the value of " + key);
        return handleControl(emulator, { command: "attr-set", device, key, value });
      }
      case "/api/attr-delete":
        return handleControl(emulator, { command: "attr-delete", device, keys: [onlyText(body.key, "key")] });
      case "/api/rpc": {
        const method = onlyText(body.method, "method");
        const params = typeof body.params === "string" && body.params.trim() === "" ? {} : jsonField(body.params, "params");
        if (!emulator.listDevices().find((d) => d.name === device)?.online) {
          throw new PageError(409, device + " is offline: the RPC was not sent (start the simulator, or wait until the device connects)");
        }
        try {
          return { device, method, reply: await emulator.rpc(device, method, params) };
        } catch (e) {
          throw new PageError(504, (e as Error).message);
        }
      }
      case "/api/ota": {
        const version = onlyText(body.version, "version");
        const title = typeof body.title === "string" && body.title !== "" ? body.title : FIRMWARE_TITLE;
        if (body.build === true) {
          if (!options.buildPackage) throw new PageError(400, "only npm start can build its image at another version; pick an image");
          return handleControl(emulator, { command: "ota", device, title, version }, options.buildPackage);
        }
        const id = onlyText(body.image, "image");
        const image = offeredImages().find((i) => i.id === id);
        if (!image) throw new PageError(404, "no image " + id + " in " + options.imageDirs.map((d) => relative(ROOT, d) || ".").join(", ") + " (npm run build makes them)");
        return assignPackage(emulator, device, readFileSync(join(ROOT, id)), id, title, version, "SHA256");
      }
      default:
        throw new PageError(404, "no such API: " + path);
    }
  };

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (path === "/api/events") {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      response.write("retry: 1000\n\ndata: " + JSON.stringify(snapshot()) + "\n\n");
      streams.add(response);
      request.on("close", () => streams.delete(response));
      return;
    }
    if (path.startsWith("/api/")) {
      api(path, request, url).then(
        (value) => sendJson(response, 200, value),
        (e: Error) => sendJson(response, e instanceof PageError ? e.status : 400, { error: e.message })
      );
      return;
    }
    if (path === "/favicon.ico") {
      response.writeHead(204).end();
      return;
    }
    const name = ASSETS[path];
    if (!name || request.method !== "GET") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: " + path);
      return;
    }
    const { type, body } = asset(name);
    response.writeHead(200, { "content-type": type, "cache-control": "no-cache" }).end(body);
  });
  // A comment line now and then keeps idle streams open through proxies and shows a dead page.
  const heartbeat = setInterval(() => {
    for (const stream of streams) stream.write(": alive\n\n");
  }, 15000);
  heartbeat.unref();

  const port = await listen(server, options.port, options.fallbackToFreePort ?? false);
  return {
    port,
    url: "http://127.0.0.1:" + port + "/",
    consoleLine: (line) => broadcast({ kind: "console", ...keep(consoleLines, line) }),
    close: async () => {
      clearInterval(heartbeat);
      unwatch();
      for (const stream of streams) stream.destroy();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function listen(server: ReturnType<typeof createServer>, port: number, fallback: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE" && fallback && port !== 0) listen(server, 0, false).then(resolve, reject);
      else reject(e.code === "EADDRINUSE" ? new Error("dashboard: port " + port + " is in use; pick another with --dashboard-port") : e);
    });
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(value));
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let length = 0;
    // Past the limit the rest is read and thrown away, so the browser gets the answer, not a reset.
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length <= limit) parts.push(chunk);
    });
    request.on("end", () => {
      if (length > limit) reject(new PageError(413, "the request is over " + (limit > MAX_REQUEST_BYTES ? MAX_IMAGE_BYTES + " B (the largest update)" : limit + " B")));
      else resolve(Buffer.concat(parts));
    });
    request.on("error", reject);
  });
}

function parseBody(data: Buffer): Record<string, JsonValue> {
  try {
    const body = JSON.parse(data.toString("utf8")) as JsonValue;
    if (body !== null && typeof body === "object" && !Array.isArray(body)) return body;
  } catch {
    // Answered below.
  }
  throw new PageError(400, "the request body is not a JSON object");
}

function onlyText(value: JsonValue | undefined | null, name: string): string {
  if (typeof value !== "string" || value.trim() === "") throw new PageError(400, name + " is missing");
  return value.trim();
}

/** A value typed on the page: JSON text (5000, true, "text", {"a":1}). */
function jsonField(value: JsonValue | undefined, what: string): JsonValue {
  if (typeof value !== "string") throw new PageError(400, what + " is missing");
  try {
    return JSON.parse(value) as JsonValue;
  } catch (e) {
    throw new PageError(400, what + " is not valid JSON (" + (e as Error).message + "); nothing was changed. Text needs quotes: \"on\"");
  }
}

function knownDevice(emulator: ThingsBoardEmulator, name: string): void {
  try {
    emulator.device(name);
  } catch (e) {
    throw new PageError(404, (e as Error).message);
  }
}
