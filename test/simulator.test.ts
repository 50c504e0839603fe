// npm start's path: the simulator builds the sim image, starts the ThingsBoard emulator
// with its development CA, runs the image and exits after N telemetry messages over TLS.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../tools/build/build.ts";

test("the simulator delivers telemetry over TLS to the ThingsBoard emulator and exits after N messages", () => {
  const result = spawnSync(join(ROOT, "node_modules/.bin/tsx"), ["tools/sim/simulator.ts", "--messages", "2", "--interval", "1000", "--timeout", "60"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 90000,
    env: { ...process.env, TBFW_SIM_DIR: mkdtempSync(join(tmpdir(), "tbfw-sim-")) },
  });
  const output = result.stdout + result.stderr;
  assert.equal(result.status, 0, output);
  assert.match(output, /device {2}\| \[I\]\[mqtt\] connected to 127\.0\.0\.1:\d+ \(tls\)/);
  assert.match(output, /tb {6}\| telemetry #1: \[?\{"ts":\d+,"values":\{"temperature":[\d.]+,"humidity":[\d.]+\}\}/);
  assert.match(output, /tb {6}\| telemetry #2: /);
  assert.match(output, /tb {6}\| sim-device client attributes: \{.*"current_fw_title":"tb-firmware"/);
  assert.doesNotMatch(output, /sim-device-token/, "the token is not printed");
});

test("the simulator refuses bad options with a clear message", () => {
  const result = spawnSync(join(ROOT, "node_modules/.bin/tsx"), ["tools/sim/simulator.ts", "--host", "tb.example"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /simulator: --host needs --token <device access token>/);
});

test("npm run tb drives the running simulated device: RPC, shared attributes with the device's answer, telemetry, a firmware update", async () => {
  const simDir = mkdtempSync(join(tmpdir(), "tbfw-sim-"));
  const env = { ...process.env, TBFW_SIM_DIR: simDir };
  const tsx = join(ROOT, "node_modules/.bin/tsx");
  const simulator = spawn(tsx, ["tools/sim/simulator.ts", "--plain", "--interval", "1000", "--timeout", "240"], { cwd: ROOT, env });
  let output = "";
  simulator.stdout.on("data", (chunk) => (output += chunk));
  simulator.stderr.on("data", (chunk) => (output += chunk));
  const tb = (...args: string[]) => {
    const result = spawnSync(tsx, ["tools/sim/tb.ts", ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 30000 });
    return { status: result.status, out: result.stdout + result.stderr };
  };
  try {
    const end = Date.now() + 60000;
    while (!/tb {6}\| sim-device client attributes: \{"config_error"/.test(output)) {
      if (Date.now() > end) throw new Error("the simulator did not come up:\n" + output);
      await new Promise((r) => setTimeout(r, 200));
    }
    const ping = tb("rpc", "ping");
    assert.equal(ping.status, 0, ping.out);
    assert.equal(ping.out.trim(), 'sim-device replied: {"pong":true}');
    const set = tb("attr", "set", "samplingIntervalMs", "5000");
    assert.equal(set.out.trim(), 'sim-device answered: {"config_error":""}');
    const bad = tb("attr", "set", "batchSize", "500");
    assert.equal(bad.out.trim(), 'sim-device answered: {"config_error":"batchSize: must be a whole number from 1 to 50, got 500; ignored"}');
    const config = tb("rpc", "getConfig");
    assert.match(config.out, /"samplingIntervalMs":5000/);
    const telemetry = tb("telemetry", "--last", "2");
    assert.match(telemetry.out, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}\{"temperature":[\d.]+,"humidity":[\d.]+\}$/m);
    // An update in front of the user: npm start builds its image at 9.9.9, the device takes it.
    const update = spawnSync(tsx, ["tools/sim/tb.ts", "ota", "--version", "9.9.9"], { cwd: ROOT, env, encoding: "utf8", timeout: 120000 });
    assert.equal(update.status, 0, update.stdout + update.stderr);
    assert.match(update.stdout, /^assigned .*sim\.js as tb-firmware 9\.9\.9 to sim-device/m);
    assert.match(update.stdout, /DOWNLOADING 0 %/);
    assert.match(update.stdout, /VERIFIED/);
    assert.match(update.stdout, /UPDATED \(now 9\.9\.9\)$/m);
    const seen = Date.now() + 10000;
    while (!/device {2}\| \[I\]\[ota\] running 9\.9\.9 from tb-fw-a\.js: confirmed/.test(output) && Date.now() < seen) await new Promise((r) => setTimeout(r, 200));
    assert.match(output, /device {2}\| \[I\]\[boot\] tb-firmware 9\.9\.9 on sim/);
    assert.match(output, /device {2}\| \[I\]\[ota\] \{"fw_progress":\d+,"fw_state":"DOWNLOADING"\}/);
    const unknown = tb("frobnicate");
    assert.equal(unknown.status, 1);
    assert.match(unknown.out, /^tb: unknown command "frobnicate"/);
  } finally {
    simulator.kill("SIGTERM");
    await new Promise((resolve) => simulator.once("exit", resolve));
  }
  assert.doesNotMatch(output, /sim-device-token/, "the token is not printed");
  const gone = spawnSync(tsx, ["tools/sim/tb.ts", "rpc", "ping"], { cwd: ROOT, env, encoding: "utf8" });
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /no emulator is running/);
});
