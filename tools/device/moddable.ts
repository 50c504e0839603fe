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
// Boards with the ota feature also get their update package: the app's main.js built by
// mcrun as a mod (<board>.xsa, with <board>.ota.json). In sim, npm run tb -- ota --version V
// builds one at version V, and when the device restarts (an update, or the reboot RPC)
// mcsim is started again, with the simulator's mod partition (a file) as its mod; so it is
// when mcsim crashes or is killed (a power cut), up to 3 times a minute.

import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { parseCommandLine } from "../build/command-line";
import { ConfigError, MODDABLE_PLATFORMS, loadBoard } from "../build/boards.ts";
import { ROOT, buildImages, packageVersion, writeOtaPackage } from "../build/build.ts";
import { SIM_MOD_PARTITION, SIM_RESTART_LINE, xsArchiveBytes } from "../build/moddable-manifest.ts";
import { UPDATE_MODULE } from "../../firmware/platform/moddable-update.ts";
import { DEFAULT_SETTINGS, resolveSettings } from "../build/config.ts";
import type { DeviceSettings } from "../build/config.ts";
import { startControl } from "../sim/control.ts";
import { startLocalEmulator } from "../sim/local-emulator.ts";
import { startLocalDashboard } from "../sim/dashboard.ts";
import { CONTROL_FILE, SIM_DIR, SIM_TOKEN } from "../sim/paths.ts";

const HOST_PLATFORM: Record<string, string> = { linux: "lin", darwin: "mac", win32: "win" };
/** mcsim crashes (or kills) within a minute that sim answers by starting it again. */
const MAX_CRASHES_PER_MINUTE = 3;

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
  mcrun: string;
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
  return { root, mcconfig, mcrun: tool("mcrun") ?? join(bin, "mcrun"), mcsim: tool("mcsim") ?? join(bin, "mcsim") };
}

/** mcconfig's arguments: -m (make), -p platform, -d (debug: xsbug), -t build (build only, no flashing or launching), -o output folder. */
export function mcconfigArgs(options: { platform: string; debug: boolean; buildOnly: boolean; outDir: string }): string[] {
  return ["-m", ...(options.debug ? ["-d"] : []), "-p", options.platform, ...(options.buildOnly ? ["-t", "build"] : []), "-o", options.outDir];
}

/** The newest file under `outDir` whose name passes `wanted`: the simulator library (mc.so) mcconfig made, the archive mcrun made. */
function findBuilt(outDir: string, wanted: (name: string) => boolean): string | null {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (wanted(entry.name)) found.push(join(dir, entry.name));
    }
  };
  if (existsSync(outDir)) walk(outDir);
  return found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0] ?? null;
}

const isSimulatorApp = (name: string) => name === "mc.so" || name === "mc.dll" || name === "mc.dylib";

/** Whether `file` begins with an XS archive (its size, then "XS_A") that fits in it: what mcsim can map as a mod. */
export function holdsArchive(file: string): boolean {
  if (!existsSync(file)) return false;
  const data = readFileSync(file);
  const archiveBytes = xsArchiveBytes(data);
  return archiveBytes >= 0 && archiveBytes <= data.length;
}

/** Stops a process started `detached` and everything it started. */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
  } catch {
    child.kill();
  }
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", "command -v " + name], { stdio: "ignore" }).status === 0;
}

/** Runs mcconfig (or mcrun) in the app's folder; its output goes to the terminal. Resolves with its exit code. */
function runMcconfig(tools: ModdableTools, appDir: string, args: string[], extraEnv: NodeJS.ProcessEnv, tool = tools.mcconfig): Promise<number> {
  console.log("moddable: " + tool + " " + args.join(" ") + "   (in " + appDir + ")");
  // mcconfig's makefiles call the SDK's other tools (xsc, xsl, mcrez...) by name.
  const path = dirname(tools.mcconfig) + delimiter + (process.env.PATH ?? "");
  const child = spawn(tool, args, { cwd: appDir, stdio: "inherit", env: { ...process.env, ...extraEnv, PATH: path } });
  return new Promise((resolve) => {
    child.on("error", (e) => {
      console.error("moddable: cannot run " + tool + ": " + e.message);
      resolve(127);
    });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function buildApp(outDir: string, board: string, settings: DeviceSettings, debug: boolean, version = packageVersion()): Promise<string> {
  await buildImages({ boards: [board], outDir, settings, version, quiet: true, debug });
  return join(outDir, "moddable", board);
}

/**
 * The update package of the app in `appDir`: its main.js built by mcrun as a mod for
 * `platform`, holding the firmware as UPDATE_MODULE (what the flashed firmware imports,
 * firmware/platform/moddable-update.ts). Written to `<appDir>/<board>.xsa`, described in
 * `<board>.ota.json` as ThingsBoard's form wants it. Returns the .xsa file.
 */
export async function buildModPackage(tools: ModdableTools, appDir: string, board: string, platform: string, version: string): Promise<string> {
  const modDir = join(appDir, "mod");
  rmSync(modDir, { recursive: true, force: true });
  mkdirSync(modDir, { recursive: true });
  // The image holds the device's token: so does the mod made from it (owner-only files).
  copyFileSync(join(appDir, "main.js"), join(modDir, "main.js"));
  chmodSync(join(modDir, "main.js"), 0o600);
  writeFileSync(join(modDir, "manifest.json"), JSON.stringify({ include: "$(MODDABLE)/examples/manifest_mod.json", modules: { [UPDATE_MODULE]: "./main" } }, null, 2) + "\n");
  const outDir = join(modDir, "out");
  mkdirSync(outDir);
  const code = await runMcconfig(tools, modDir, ["-m", "-p", platform, "-t", "build", "-o", outDir], {}, tools.mcrun);
  if (code !== 0) throw new ConfigError("mcrun failed (exit " + code + "): see its output above");
  const archive = findBuilt(outDir, (name) => name.endsWith(".xsa"));
  if (!archive) throw new ConfigError("mcrun made no mod archive (.xsa) under " + outDir);
  const file = join(appDir, board + ".xsa");
  copyFileSync(archive, file);
  chmodSync(file, 0o600);
  const ota = writeOtaPackage(file, readFileSync(file), version, { platform });
  console.log("moddable: OTA package " + file + "  title " + ota.title + "  version " + version + "  " + ota.size + " B  SHA256 " + ota.sha256);
  return file;
}

async function main(): Promise<number> {
  const { values, positionals } = parseCommandLine("npm run moddable", {
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
    if (board.features.includes("ota")) await buildModPackage(tools, appDir, board.name, platform, packageVersion());
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
  const settings: DeviceSettings = {
    ...DEFAULT_SETTINGS,
    host: "127.0.0.1",
    tls: !values.plain,
    port: values.plain ? emulator.plainPort : emulator.tlsPort!,
    token: SIM_TOKEN,
    ca: tls.caCert,
    telemetryIntervalMs: interval,
  };
  const platform = HOST_PLATFORM[process.platform] ?? "lin";
  // npm run tb -- ota --version V (and the dashboard): this app at version V, as a mod.
  const buildPackage = board.features.includes("ota")
    ? async (version: string) => buildModPackage(tools, await buildApp(join(SIM_DIR, "ota", version), board.name, settings, true, version), board.name, platform, version)
    : undefined;
  const control = await startControl(emulator, CONTROL_FILE, buildPackage);
  const dashboard = await startLocalDashboard(values["dashboard-port"], values["no-dashboard"], { emulator, imageDirs: [], buildPackage });
  console.log("moddable: ThingsBoard emulator on 127.0.0.1:" + emulator.plainPort + " (plain) and :" + emulator.tlsPort + " (tls, CA " + tls.caCert + ")");
  console.log("moddable: drive the device from another terminal: npm run tb -- rpc getStatus | attr set samplingIntervalMs 5000 | telemetry --last 5");
  const appDir = await buildApp(values.out, board.name, settings, true);
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
  const app = findBuilt(outDir, isSimulatorApp);
  if (!app) {
    console.error("moddable: mcconfig made no simulator app (mc.so) under " + outDir);
    return stop(1);
  }
  // mcsim writes the app's trace() with C stdio: line-buffered through stdbuf, or a pipe holds the lines back.
  const line = hasCommand("stdbuf") ? ["stdbuf", "-oL", "-eL"] : [];
  const argv = [...(display ? [] : ["xvfb-run", "-a"]), ...line, tools.mcsim, app];
  const [program, args] = [argv[0], argv.slice(1)];
  // mcsim's working folder holds the simulator's mod partition (tools/build/moddable-manifest.ts, host-flash).
  const simDir = join(SIM_DIR, "moddable");
  mkdirSync(simDir, { recursive: true });
  const partition = join(simDir, SIM_MOD_PARTITION);
  let simulator: ChildProcess | null = null;
  let restarting = false;
  let stopping = false;
  /** When mcsim ended on its own lately: it is started again, as a board resets, unless that keeps happening. */
  const crashes: number[] = [];
  const launch = () => {
    // A sealed archive in the partition is the mod, as XS maps the ESP32's "xs" partition at boot.
    const withMod = holdsArchive(partition) ? [partition] : [];
    console.log("moddable: " + program + " " + [...args, ...withMod].join(" ") + " (Ctrl-C to stop)");
    // Its own process group: xvfb-run leaves mcsim running when it alone is killed.
    const child = spawn(program, [...args, ...withMod], { cwd: simDir, stdio: ["ignore", "pipe", "pipe"], detached: true });
    simulator = child;
    // The app's trace() lines: the same [L][tag] lines the board prints on its console.
    let pending = "";
    const onOutput = (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        console.log("device  | " + line);
        dashboard?.consoleLine(line);
        if (line.trim() === SIM_RESTART_LINE && !restarting) {
          // The device restarts: mcsim cannot, so it is started again (RAM lost, Preference and the partition kept).
          restarting = true;
          killGroup(child);
        }
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    child.on("exit", (code, signal) => {
      if (restarting) {
        restarting = false;
        launch();
        return;
      }
      if (code !== 0 && !stopping) {
        // A crash or a kill (a power cut, by hand): a board would boot again, with its flash.
        const now = Date.now();
        while (crashes.length > 0 && now - crashes[0] > 60000) crashes.shift();
        crashes.push(now);
        if (crashes.length <= MAX_CRASHES_PER_MINUTE) {
          console.log("moddable: mcsim ended (" + (signal ?? code) + "); starting it again, as a board boots after a reset");
          launch();
          return;
        }
        console.log("moddable: mcsim ended " + crashes.length + " times within a minute; stopping");
      }
      console.log("moddable: mcsim exited (" + (signal ?? code) + ")");
      finish(code === 0 ? 0 : 1);
    });
  };
  launch();
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
  restarting = false;
  stopping = true;
  if (simulator) killGroup(simulator);
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
