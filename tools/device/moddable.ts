// npm run moddable: the Moddable SDK's mcconfig around this project's Moddable apps.
//
//   npm run moddable -- build [--board esp32-devkitc] [--platform esp32] [--debug]
//   npm run moddable -- flash [--board esp32-devkitc] [--platform esp32] [--port /dev/ttyUSB0] [--debug]
//   npm run moddable -- sim   [--board sim] [--plain] [--interval MS] [--messages N] [--timeout S] [--dashboard-port N | --no-dashboard]
//   (--out DIR: where the apps are made, dist/ by default)
//
// build and flash make the board's app (dist/moddable/<board>/, settings as for npm run
// build) and run mcconfig in it, for the board's chip (esp32, esp32/esp32c3, esp32/esp32s3). sim starts the local
// ThingsBoard emulator (as npm start does, so npm run tb drives the device), builds the
// app pointed at it (its CA, host, port and token), and runs it in Moddable's desktop
// simulator, mcsim, under xvfb-run when there is no display; the device's log and the
// telemetry the emulator receives are printed as npm start prints them.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, MODDABLE_PLATFORMS, loadBoard } from "../build/boards.ts";
import { ROOT, buildImages, packageVersion } from "../build/build.ts";
import { DEFAULT_SETTINGS, resolveSettings } from "../build/config.ts";
import type { DeviceSettings } from "../build/config.ts";
import { startControl } from "../sim/control.ts";
import { startLocalEmulator } from "../sim/local-emulator.ts";
import { startLocalDashboard } from "../sim/dashboard.ts";
import { CONTROL_FILE, SIM_TOKEN } from "../sim/paths.ts";

const HOST_PLATFORM: Record<string, string> = { linux: "lin", darwin: "mac", win32: "win" };

/** What to install, said once for every way the SDK can be missing. */
export const INSTALL_MODDABLE = [
  "Install the Moddable SDK (https://github.com/Moddable-OpenSource/moddable, documentation/Moddable SDK - Getting Started.md):",
  "  git clone https://github.com/Moddable-OpenSource/moddable ~/moddable",
  "  export MODDABLE=~/moddable",
  "  cd $MODDABLE/build/makefiles/lin && make      # (mac on macOS): builds mcconfig, mcsim and xsbug",
  "  export PATH=$MODDABLE/build/bin/lin/release:$PATH",
  "For ESP32 boards also ESP-IDF v5 (documentation/devices/esp32.md): install it, then `source $IDF_PATH/export.sh`.",
  "On Linux without a display, the simulator runs under xvfb-run: sudo apt-get install xvfb.",
].join("\n");

export interface ModdableTools {
  root: string;
  mcconfig: string;
  mcsim: string;
}

/** The SDK's tools from $MODDABLE (and PATH), or what is missing and how to install it. */
export function findModdable(env: NodeJS.ProcessEnv = process.env): ModdableTools | string {
  const root = env.MODDABLE;
  if (!root) return "MODDABLE is not set.\n" + INSTALL_MODDABLE;
  if (!existsSync(join(root, "tools", "mcconfig.js")) && !existsSync(join(root, "build"))) return "MODDABLE=" + root + " is not a Moddable SDK (no tools/mcconfig.js).\n" + INSTALL_MODDABLE;
  const bin = join(root, "build", "bin", HOST_PLATFORM[process.platform] ?? "lin", "release");
  const tool = (name: string): string | null => {
    if (existsSync(join(bin, name))) return join(bin, name);
    for (const dir of (env.PATH ?? "").split(delimiter)) if (dir && existsSync(join(dir, name))) return join(dir, name);
    return null;
  };
  const mcconfig = tool("mcconfig");
  if (!mcconfig) return "mcconfig is not built: not in " + bin + " nor on PATH.\n" + INSTALL_MODDABLE;
  return { root, mcconfig, mcsim: tool("mcsim") ?? join(bin, "mcsim") };
}

/** mcconfig's arguments: -m (make), -p platform, -d (debug: xsbug), -t build (build only, no flashing or launching), -o output folder. */
export function mcconfigArgs(options: { platform: string; debug: boolean; buildOnly: boolean; outDir: string }): string[] {
  return ["-m", ...(options.debug ? ["-d"] : []), "-p", options.platform, ...(options.buildOnly ? ["-t", "build"] : []), "-o", options.outDir];
}

/** The simulator library (mc.so) mcconfig made under `outDir`, newest first. */
function findSimulatorApp(outDir: string): string | null {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name === "mc.so" || entry.name === "mc.dll" || entry.name === "mc.dylib") found.push(join(dir, entry.name));
    }
  };
  if (existsSync(outDir)) walk(outDir);
  return found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0] ?? null;
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", "command -v " + name], { stdio: "ignore" }).status === 0;
}

/** Runs mcconfig in the app's folder; its output goes to the terminal. Resolves with its exit code. */
function runMcconfig(tools: ModdableTools, appDir: string, args: string[], extraEnv: NodeJS.ProcessEnv): Promise<number> {
  console.log("moddable: " + tools.mcconfig + " " + args.join(" ") + "   (in " + appDir + ")");
  // mcconfig's makefiles call the SDK's other tools (xsc, xsl, mcrez...) by name.
  const path = dirname(tools.mcconfig) + delimiter + (process.env.PATH ?? "");
  const child = spawn(tools.mcconfig, args, { cwd: appDir, stdio: "inherit", env: { ...process.env, ...extraEnv, PATH: path } });
  return new Promise((resolve) => {
    child.on("error", (e) => {
      console.error("moddable: cannot run mcconfig: " + e.message);
      resolve(127);
    });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function buildApp(outDir: string, board: string, settings: DeviceSettings, debug: boolean): Promise<string> {
  await buildImages({ boards: [board], outDir, settings, version: packageVersion(), quiet: true, debug });
  return join(outDir, "moddable", board);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      board: { type: "string" },
      platform: { type: "string" },
      port: { type: "string" },
      debug: { type: "boolean", default: false },
      plain: { type: "boolean", default: false },
      interval: { type: "string", default: "5000" },
      messages: { type: "string" },
      timeout: { type: "string", default: "0" },
      out: { type: "string", default: join(ROOT, "dist") },
      "dashboard-port": { type: "string" },
      "no-dashboard": { type: "boolean", default: false },
    },
  });
  const command = positionals[0];
  if (!["build", "flash", "sim"].includes(command ?? "") || positionals.length > 1) {
    throw new ConfigError("usage: npm run moddable -- build|flash|sim [--board NAME] [--platform esp32] [--port PORT] [--debug]");
  }
  const boardName = values.board ?? (command === "sim" ? "sim" : "esp32-devkitc");
  const board = loadBoard(join(ROOT, "boards", boardName + ".json"));
  if (!board.runtimes.includes("moddable")) throw new ConfigError(board.file + ": this board has no Moddable build (\"runtimes\")");
  const tools = findModdable();
  if (typeof tools === "string") throw new ConfigError(tools);

  if (command !== "sim") {
    const platform = values.platform ?? MODDABLE_PLATFORMS[board.chip];
    if (platform.startsWith("esp32") && !process.env.IDF_PATH) {
      throw new ConfigError("IDF_PATH is not set: building for " + platform + " needs ESP-IDF.\n" + INSTALL_MODDABLE);
    }
    const appDir = await buildApp(values.out, board.name, resolveSettings(process.env, join(ROOT, "device.local.json")), values.debug);
    const outDir = join(appDir, "mc-" + platform.replace(/\W/g, "-"));
    mkdirSync(outDir, { recursive: true });
    const env = values.port ? { UPLOAD_PORT: values.port } : {};
    const code = await runMcconfig(tools, appDir, mcconfigArgs({ platform, debug: values.debug, buildOnly: command === "build", outDir }), env);
    if (code !== 0) throw new ConfigError("mcconfig failed (exit " + code + "): see its output above");
    console.log("moddable: " + (command === "build" ? "built " + board.name + " for " + platform + " in " + outDir : "flashed " + board.name + (values.port ? " on " + values.port : "")));
    return 0;
  }

  // sim: the emulator first, so the app can be built with its port, CA and token.
  const interval = Number(values.interval);
  const messages = values.messages === undefined ? 0 : Number(values.messages);
  if (!Number.isInteger(interval) || interval < 1000) throw new ConfigError("--interval must be at least 1000 ms");
  if (!Number.isInteger(messages) || messages < 0) throw new ConfigError("--messages must be a whole number");
  const display = process.platform !== "linux" || !!process.env.DISPLAY;
  if (!display && !hasCommand("xvfb-run")) throw new ConfigError("no display and no xvfb-run: sudo apt-get install xvfb (or run with DISPLAY set)");
  if (!existsSync(tools.mcsim)) throw new ConfigError("mcsim is not built (" + tools.mcsim + ").\n" + INSTALL_MODDABLE);
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const { emulator, tls } = await startLocalEmulator((received) => {
    if (messages > 0 && received >= messages) finish(0);
  });
  // No firmware updates on Moddable: npm run tb -- ota says so instead of building one.
  const control = await startControl(emulator, CONTROL_FILE);
  const dashboard = await startLocalDashboard(values["dashboard-port"], values["no-dashboard"], { emulator, imageDirs: [] });
  const settings: DeviceSettings = {
    ...DEFAULT_SETTINGS,
    host: "127.0.0.1",
    tls: !values.plain,
    port: values.plain ? emulator.plainPort : emulator.tlsPort!,
    token: SIM_TOKEN,
    ca: tls.caCert,
    telemetryIntervalMs: interval,
  };
  console.log("moddable: ThingsBoard emulator on 127.0.0.1:" + emulator.plainPort + " (plain) and :" + emulator.tlsPort + " (tls, CA " + tls.caCert + ")");
  console.log("moddable: drive the device from another terminal: npm run tb -- rpc getStatus | attr set samplingIntervalMs 5000 | telemetry --last 5");
  const appDir = await buildApp(values.out, board.name, settings, true);
  const platform = HOST_PLATFORM[process.platform] ?? "lin";
  const outDir = join(appDir, "mc-" + platform);
  mkdirSync(outDir, { recursive: true });
  const stop = async (code: number) => {
    await dashboard?.close();
    await control.close();
    await emulator.close();
    return code;
  };
  const built = await runMcconfig(tools, appDir, mcconfigArgs({ platform, debug: false, buildOnly: true, outDir }), {});
  if (built !== 0) {
    console.error("moddable: mcconfig failed (exit " + built + "): see its output above");
    return stop(1);
  }
  const app = findSimulatorApp(outDir);
  if (!app) {
    console.error("moddable: mcconfig made no simulator app (mc.so) under " + outDir);
    return stop(1);
  }
  // mcsim writes the app's trace() with C stdio: line-buffered through stdbuf, or a pipe holds the lines back.
  const line = hasCommand("stdbuf") ? ["stdbuf", "-oL", "-eL"] : [];
  const argv = [...(display ? [] : ["xvfb-run", "-a"]), ...line, tools.mcsim, app];
  const [program, args] = [argv[0], argv.slice(1)];
  console.log("moddable: " + program + " " + args.join(" ") + " (Ctrl-C to stop)");
  const simulator = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  // The app's trace() lines: the same [L][tag] lines the board prints on its console.
  let pending = "";
  const onOutput = (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      console.log("device  | " + line);
      dashboard?.consoleLine(line);
    }
  };
  simulator.stdout.on("data", onOutput);
  simulator.stderr.on("data", onOutput);
  simulator.on("exit", (code) => {
    console.log("moddable: mcsim exited (" + code + ")");
    finish(code === 0 ? 0 : 1);
  });
  process.on("SIGINT", () => finish(0));
  process.on("SIGTERM", () => finish(0));
  const timeoutS = Number(values.timeout);
  if (timeoutS > 0) {
    setTimeout(() => {
      console.error("moddable: timed out after " + timeoutS + " s");
      finish(1);
    }, timeoutS * 1000).unref();
  }
  const code = await done;
  simulator.kill();
  return stop(code);
}

if (process.argv[1] && process.argv[1].endsWith("moddable.ts")) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof ConfigError) {
        console.error("moddable: " + e.message);
        process.exit(1);
      }
      throw e;
    }
  );
}
