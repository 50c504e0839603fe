// npm start: builds the `sim` board's image (dist/espruino/sim.js) and runs it in the Espruino
// sandbox against the local ThingsBoard emulator (tools/sim/emulator.ts) over TLS, with a
// development CA made on first run. Shows the device's serial console and the telemetry
// the emulator received; `npm run tb` drives the device from a second terminal. No
// internet needed.
//
//   tsx tools/sim/simulator.ts [--board sim|esp32-devkitc|...] [--no-sensor] [--messages N] [--interval MS] [--plain] [--repl PORT] [--sleep-speedup N] [--dashboard-port N | --no-dashboard]
//   tsx tools/sim/simulator.ts --host H --port P --token T [--ca PEM] [--plain] [--messages N]
//
// State (the emulator's devices and attributes, the device's flash) lives under .sim/,
// or under $TBFW_SIM_DIR.

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCommandLine } from "../build/command-line";
import { ConfigError, loadBoard } from "../build/boards.ts";
import { ThingsBoardEmulator } from "./emulator.ts";
import { startControl } from "./control.ts";
import { CONTROL_FILE, SIM_DIR, SIM_TOKEN } from "./paths.ts";
import { startLocalEmulator } from "./local-emulator.ts";
import { ROOT, buildImages, packageVersion } from "../build/build.ts";
import { DEFAULT_SETTINGS } from "../build/config.ts";
import type { DeviceSettings } from "../build/config.ts";
import { runEspruinoImage } from "./espruino-sandbox.ts";
import { startRepl } from "./repl.ts";
import { startLocalDashboard } from "./dashboard.ts";
import type { Dashboard } from "./dashboard.ts";
import type { Repl } from "./repl.ts";
import { virtualSensors } from "./virtual-sensors.ts";

const SIM_PROVISION_KEY = "sim-provision-key";
const SIM_PROVISION_SECRET = "sim-provision-secret";

/** What the device's tbForgetToken() does, done to the simulated flash before boot. */
function forgetStoredToken(storageDir: string): void {
  const file = join(storageDir, "tb-config.json");
  if (!existsSync(file)) {
    console.log("simulator: no stored token to forget");
    return;
  }
  const overrides = JSON.parse(readFileSync(file, "latin1")) as Record<string, unknown>;
  delete overrides.token;
  writeFileSync(file, JSON.stringify(overrides), "latin1");
  console.log("simulator: stored token forgotten (" + file + ")");
}

async function main(): Promise<void> {
  const { values } = parseCommandLine("npm start", {
    options: {
      host: { type: "string" },
      port: { type: "string" },
      token: { type: "string" },
      ca: { type: "string" },
      plain: { type: "boolean", default: false },
      messages: { type: "string" },
      interval: { type: "string", default: "5000" },
      timeout: { type: "string", default: "0" },
      board: { type: "string", default: "sim" },
      "no-sensor": { type: "boolean", default: false },
      provision: { type: "boolean", default: false },
      "forget-token": { type: "boolean", default: false },
      repl: { type: "string" },
      "sleep-speedup": { type: "string", default: "1" },
      "dashboard-port": { type: "string" },
      "no-dashboard": { type: "boolean", default: false },
    },
  });
  const remote = values.host !== undefined;
  const messages = values.messages === undefined ? 0 : Number(values.messages);
  const interval = Number(values.interval);
  if (!Number.isInteger(messages) || messages < 0) throw new ConfigError("--messages must be a whole number");
  if (!Number.isInteger(interval) || interval < 1000) throw new ConfigError("--interval must be at least 1000 ms");
  if (remote && !values.token) throw new ConfigError("--host needs --token <device access token>");
  const sleepSpeedup = Number(values["sleep-speedup"]);
  if (!(sleepSpeedup >= 1 && sleepSpeedup <= 1000)) throw new ConfigError("--sleep-speedup must be from 1 to 1000 (how much faster than real time a deep sleep passes)");
  const replPort = values.repl === undefined ? null : Number(values.repl);
  if (replPort !== null && !(Number.isInteger(replPort) && replPort >= 0 && replPort <= 65535)) throw new ConfigError("--repl needs a TCP port, e.g. --repl 2323");

  let emulator: ThingsBoardEmulator | null = null;
  let control: { close(): Promise<void> } | null = null;
  let dashboard: Dashboard | null = null;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const settings: DeviceSettings = { ...DEFAULT_SETTINGS, telemetryIntervalMs: interval, tls: !values.plain };

  if (remote) {
    settings.host = values.host!;
    settings.port = values.port ? Number(values.port) : values.plain ? 1883 : 8883;
    settings.token = values.token!;
    if (values.ca) settings.ca = values.ca;
    console.log("simulator: device -> " + settings.host + ":" + settings.port + (settings.tls ? " (tls, CA " + settings.ca + ")" : " (plain)"));
  } else {
    const { emulator: running, tls } = await startLocalEmulator((received) => {
      if (messages > 0 && received >= messages) finish(0);
    });
    emulator = running;
    // npm run tb -- ota --version V (and the dashboard): this board's image at version V, built with these settings.
    const buildPackage = async (version: string) => {
      const outDir = join(SIM_DIR, "ota", version);
      await buildImages({ boards: [values.board], outDir, settings, version, quiet: true, debug: true });
      return join(outDir, "espruino", values.board + ".js");
    };
    control = await startControl(running, CONTROL_FILE, buildPackage);
    dashboard = await startLocalDashboard(values["dashboard-port"], values["no-dashboard"], { emulator: running, imageDirs: [join(ROOT, "dist"), join(SIM_DIR, "ota")], buildPackage });
    settings.host = "127.0.0.1";
    settings.port = settings.tls ? running.tlsPort! : running.plainPort;
    settings.token = SIM_TOKEN;
    if (values.provision) {
      // One image, many devices: no token, a provisioning key the emulator accepts.
      settings.token = "";
      settings.provisionKey = SIM_PROVISION_KEY;
      settings.provisionSecret = SIM_PROVISION_SECRET;
      running.addProvisionKey(SIM_PROVISION_KEY, SIM_PROVISION_SECRET);
      console.log("simulator: the device provisions itself with key " + SIM_PROVISION_KEY);
    }
    settings.ca = tls.caCert;
    console.log("simulator: ThingsBoard emulator on 127.0.0.1:" + running.plainPort + " (plain) and :" + running.tlsPort + " (tls, CA " + tls.caCert + ")");
    console.log("simulator: drive the device from another terminal: npm run tb -- rpc getStatus | attr set samplingIntervalMs 5000 | telemetry --last 5");
  }

  const board = loadBoard(join(ROOT, "boards", values.board + ".json"));
  if (!board.runtimes.includes("espruino")) throw new ConfigError(board.file + ": the simulator runs Espruino images; this board has none");
  // A Wi-Fi board joins the sandbox's simulated network: any name will do.
  if (board.wifi && settings.wifiSsid === "") settings.wifiSsid = "simulated-wifi";
  const outDir = join(ROOT, "dist");
  await buildImages({ boards: [board.name], outDir, settings, version: packageVersion(), quiet: true, debug: true });
  const imagePath = join(outDir, "espruino", board.name + ".js");
  const storageDir = join(SIM_DIR, "storage", board.name);
  if (values["forget-token"]) forgetStoredToken(storageDir);
  // npm start flashes the image it just built: code saved by an earlier run's REPL upload goes.
  rmSync(join(storageDir, ".bootcde"), { force: true });
  let repl: Repl | null = null;
  // The board's real drivers talk to simulated chips on virtual buses (none with --no-sensor).
  const chips = virtualSensors(values["no-sensor"] ? [] : board.sensors);
  console.log("simulator: running " + imagePath + " (Ctrl-C to stop)");
  let delivered = 0;
  const sandbox = runEspruinoImage({
    imagePath,
    // Like a board's flash: kept between runs, one per board.
    storageDir,
    ...chips,
    sleepSpeedup,
    onSerialText: (text) => repl?.write(text),
    onSerial: (line) => {
      console.log("device  | " + line);
      dashboard?.consoleLine(line);
      const match = /^\[D\]\[queue\] delivered (\d+) reading/.exec(line);
      if (remote && match) {
        delivered += Number(match[1]);
        if (messages > 0 && delivered >= messages) finish(0);
      }
    },
  });
  if (replPort !== null) {
    repl = await startRepl(replPort, sandbox);
    console.log("simulator: serial console on tcp://127.0.0.1:" + repl.port + " (npm run console -- --port tcp://127.0.0.1:" + repl.port + ", npm run flash -- --port tcp://127.0.0.1:" + repl.port + ")");
  }
  process.on("SIGINT", () => finish(0));
  process.on("SIGTERM", () => finish(0));
  const timeoutS = Number(values.timeout);
  if (timeoutS > 0) setTimeout(() => {
    console.error("simulator: timed out after " + timeoutS + " s");
    finish(1);
  }, timeoutS * 1000).unref();
  const code = await done;
  sandbox.stop();
  if (repl) await repl.close();
  if (control) await control.close();
  if (dashboard) await dashboard.close();
  if (emulator) await emulator.close();
  if (sandbox.uncaught.length > 0) {
    console.error("simulator: " + sandbox.uncaught.length + " uncaught error(s) in the image");
    process.exit(1);
  }
  process.exit(code);
}

main().catch((e) => {
  if (e instanceof ConfigError) {
    console.error("simulator: " + e.message);
    process.exit(1);
  }
  throw e;
});
