// npm start's path: the simulator builds the sim image, starts the ThingsBoard emulator
// with its development CA, runs the image and exits after N telemetry messages over TLS.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
