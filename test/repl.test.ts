// The workflow without a board: npm start -- --repl serves the simulated device's console
// over TCP; npm run flash uploads an image to it with the unmodified espruino CLI, the
// device saves it (.bootcde), reboots into it with its per-device token, and publishes;
// npm run console shows its log and passes keystrokes to its REPL.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { progressReporter } from "../tools/device/espruino-upload.ts";
import { ROOT } from "../tools/build/build.ts";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { incomplete } from "../tools/sim/repl.ts";
import { buildTestImages, registerSecrets } from "./helpers/device-run.ts";

const tsx = join(ROOT, "node_modules/.bin/tsx");
const simDir = mkdtempSync(join(tmpdir(), "tbfw-repl-"));
const env = { ...process.env, TBFW_SIM_DIR: simDir };
let simulator: ChildProcess;
let output = "";
let replPort = 0;
let emulatorPort = 0;

async function waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(output);
    if (match) return match;
    if (Date.now() > end) throw new Error("timed out waiting for " + what + ":\n" + output);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  simulator = spawn(tsx, ["tools/sim/simulator.ts", "--plain", "--interval", "1000", "--repl", "0", "--timeout", "300"], { cwd: ROOT, env });
  simulator.stdout!.on("data", (chunk) => (output += chunk));
  simulator.stderr!.on("data", (chunk) => (output += chunk));
  replPort = Number((await waitFor(/serial console on tcp:\/\/127\.0\.0\.1:(\d+)/, 60000, "the REPL"))[1]);
  emulatorPort = Number((await waitFor(/ThingsBoard emulator on 127\.0\.0\.1:(\d+) \(plain\)/, 1000, "the emulator"))[1]);
  await waitFor(/device {2}\| \[I\]\[mqtt\] connected/, 30000, "the first image online");
});

after(async () => {
  simulator.kill("SIGTERM");
  await new Promise((resolve) => simulator.once("exit", resolve));
});

/** npm run console against the simulator's port; `until` waits for its output to match. */
function startConsole(args: string[], extraEnv: Record<string, string>) {
  const consoleProcess = spawn(tsx, ["tools/device/console.ts", "--port", "tcp://127.0.0.1:" + replPort, ...args], { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: ["pipe", "pipe", "pipe"] });
  let seen = "";
  consoleProcess.stdout!.on("data", (chunk) => (seen += chunk));
  consoleProcess.stderr!.on("data", (chunk) => (seen += chunk));
  const until = async (pattern: RegExp, what: string, timeoutMs = 20000) => {
    const end = Date.now() + timeoutMs;
    while (!pattern.test(seen)) {
      if (Date.now() > end) throw new Error("timed out waiting for " + what + " on the console:\n" + seen);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  return { consoleProcess, until };
}

test("a statement split over lines waits for its end; a complete one runs", () => {
  assert.equal(incomplete("print(1"), true);
  assert.equal(incomplete("function f() {"), true);
  assert.equal(incomplete("print(1)"), false);
  assert.equal(incomplete("print(1))"), false, "a syntax error runs (and is reported), it does not wait");
});

test("npm run flash -- --port tcp://...: the espruino CLI uploads a new image to the simulator, which saves it, reboots into it with its per-device token and publishes", async () => {
  const out = mkdtempSync(join(tmpdir(), "tbfw-repl-build-"));
  // An image for the simulator's emulator with no token of its own: the token comes per device.
  await buildTestImages({
    boards: ["sim"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: emulatorPort, tls: false, token: "", telemetryIntervalMs: 1000 },
    version: "7.7.7",
    quiet: true,
  });
  const image = join(out, "espruino", "sim.js");
  const added = spawnSync(tsx, ["tools/sim/tb.ts", "add-device", "dev1", "dev1-repl-token"], { cwd: ROOT, env, encoding: "utf8" });
  assert.equal(added.status, 0, added.stdout + added.stderr);
  registerSecrets("dev1-repl-token");
  const deviceConfig = join(out, "dev1.json");
  writeFileSync(deviceConfig, JSON.stringify({ token: "dev1-repl-token" }));

  const flash = spawnSync(tsx, ["tools/device/flash.ts", "--port", "tcp://127.0.0.1:" + replPort, "--image", image, "--device-config", deviceConfig], { cwd: ROOT, env, encoding: "utf8", timeout: 120000 });
  assert.equal(flash.status, 0, flash.stdout + flash.stderr);
  assert.match(flash.stdout, /^flash: uploading .*sim\.js \(\d+\.\d KB\) to tcp:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(flash.stdout, /Upload Complete/);
  // Progress while uploading, from the CLI's own status callbacks.
  assert.match(flash.stdout, /^flash: upload 0% \(0\.0 of \d+\.\d KB\)$/m);
  assert.match(flash.stdout, /^flash: upload 50% \([\d.]+ of \d+\.\d KB\)$/m);
  assert.match(flash.stdout, /^flash: upload 100% \(([\d.]+) of \1 KB\)$/m);
  // Restarted by the script after the upload, which saw the new image's boot line.
  assert.match(flash.stdout, /^flash: saved and booted: \[I\]\[boot\] tb-firmware 7\.7\.7 on sim \(espruino\)/m);
  // The CLI asked the device what it runs: 1 KB Storage writes, not one E.setBootCode string, and no module looked up online.
  assert.doesNotMatch(flash.stdout + flash.stderr, /pre-1v96|Module \w+ not found/);

  await waitFor(/device {2}\| \[I\]\[boot\] tb-firmware 7\.7\.7 on sim/, 20000, "the new image booting");
  await waitFor(/tb {6}\| dev1 connected/, 20000, "dev1 connected with its own token");
  // Saved like on a board: the same code in .bootcde, the per-device file beside it.
  const saved = join(simDir, "storage", "sim", ".bootcde");
  assert.ok(existsSync(saved));
  assert.equal(readFileSync(saved, "latin1").trim(), readFileSync(image, "latin1").trim());
  assert.deepEqual(JSON.parse(readFileSync(join(simDir, "storage", "sim", "tb-config.json"), "latin1")), { token: "dev1-repl-token" });
  const end = Date.now() + 20000;
  let telemetry = "";
  while (Date.now() < end) {
    const result = spawnSync(tsx, ["tools/sim/tb.ts", "telemetry", "--device", "dev1", "--last", "1"], { cwd: ROOT, env, encoding: "utf8" });
    telemetry = result.stdout;
    if (/"temperature"/.test(telemetry)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.match(telemetry, /\{"temperature":[\d.]+,"humidity":[\d.]+\}/);
  assert.doesNotMatch(output + flash.stdout + flash.stderr, /dev1-repl-token/, "the token is not printed");
});

test("npm run console -- --port tcp://...: typed lines run on the device's REPL, and its log lines arrive (here after a load() typed there)", async () => {
  const { consoleProcess, until } = startConsole([], {});
  try {
    await until(/\[console\] connected/, "the connection");
    consoleProcess.stdin!.write("6*7\r");
    await until(/=42/, "the answer to a typed line");
    consoleProcess.stdin!.write("load()\r");
    await until(/\[I\]\[boot\] tb-firmware 7\.7\.7 on sim/, "the boot line after load()");
    await until(/\[I\]\[mqtt\] connected to 127\.0\.0\.1/, "the device online again");
  } finally {
    consoleProcess.kill("SIGTERM");
  }
});

test("upload progress: every 10 %, 100 % when the CLI has sent all, nothing for its own short commands", () => {
  const lines: string[] = [];
  const status = progressReporter((line) => lines.push(line));
  status.setStatus("Sending...", 100);
  status.incrementProgress(50);
  status.setStatus("Sent");
  status.setStatus("Minifying");
  status.setStatus("Sending...", 10240);
  for (let i = 0; i < 9; i++) status.incrementProgress(1000);
  status.setStatus("Sent");
  assert.deepEqual(lines, [
    "flash: upload 0% (0.0 of 10.0 KB)",
    // 2000 of 10240 is 19 %: the 10 % line, and so on.
    ...[10, 20, 30, 40, 50, 60, 70, 80].map((p, i) => "flash: upload " + p + "% (" + (((i + 2) * 1000) / 1024).toFixed(1) + " of 10.0 KB)"),
    "flash: upload 100% (10.0 of 10.0 KB)",
  ]);
});

test("npm run flash and npm run console name a port that cannot be opened, with the serial ports found", () => {
  for (const script of ["tools/device/flash.ts", "tools/device/console.ts"]) {
    const absent = spawnSync(tsx, [script, "--port", "/dev/tbfw-no-such-port"], { cwd: ROOT, env, encoding: "utf8", timeout: 30000 });
    assert.equal(absent.status, 1);
    assert.match(absent.stderr, /cannot open \/dev\/tbfw-no-such-port: .*No such file or directory.* \(serial ports found: /);
    const nothing = spawnSync(tsx, [script, "--port", "tcp://127.0.0.1:1"], { cwd: ROOT, env, encoding: "utf8", timeout: 30000 });
    assert.equal(nothing.status, 1);
    assert.match(nothing.stderr, /ECONNREFUSED.*is the simulator running with npm start -- --repl PORT\?/);
  }
});

test("npm run flash -- --erase removes the image and the per-device file from the device's flash", () => {
  const storage = join(simDir, "storage", "sim");
  assert.ok(existsSync(join(storage, ".bootcde")) && existsSync(join(storage, "tb-config.json")));
  const erase = spawnSync(tsx, ["tools/device/flash.ts", "--port", "tcp://127.0.0.1:" + replPort, "--erase"], { cwd: ROOT, env, encoding: "utf8", timeout: 60000 });
  assert.equal(erase.status, 0, erase.stdout + erase.stderr);
  assert.ok(!existsSync(join(storage, ".bootcde")), ".bootcde erased");
  assert.ok(!existsSync(join(storage, "tb-config.json")), "tb-config.json erased");
});

test("npm run console: lines coloured by level, with timestamps and a log file, and it connects again by itself when the device's console comes back", async () => {
  const logFile = join(mkdtempSync(join(tmpdir(), "tbfw-console-")), "console.log");
  const { consoleProcess, until } = startConsole(["--timestamps", "--log", logFile], { FORCE_COLOR: "1" });
  try {
    await until(/\[console\] connected/, "the connection");
    consoleProcess.stdin!.write('print("[W][test] a warning")\r');
    await until(/\d\d:\d\d:\d\d\.\d{3} \x1b\[33m\[W\]\[test\] a warning\x1b\[0m/, "a yellow, timestamped warning");
    assert.match(readFileSync(logFile, "utf8"), /^\d{4}-\d\d-\d\dT[\d:.]+Z \[W\]\[test\] a warning$/m);

    // The simulator goes away and comes back on the same port: the console follows by itself.
    simulator.kill("SIGTERM");
    await new Promise((resolve) => simulator.once("exit", resolve));
    await until(/waiting for it to come back/, "the console noticing");
    output = "";
    simulator = spawn(tsx, ["tools/sim/simulator.ts", "--plain", "--interval", "1000", "--repl", String(replPort), "--timeout", "300"], { cwd: ROOT, env });
    simulator.stdout!.on("data", (chunk) => (output += chunk));
    simulator.stderr!.on("data", (chunk) => (output += chunk));
    await until(/\[console\] connected[\s\S]*\[console\] connected/, "the console connected again", 60000);
    consoleProcess.stdin!.write("6*7\r");
    await until(/=42/, "the REPL of the restarted simulator");
  } finally {
    consoleProcess.kill("SIGTERM");
  }
});
