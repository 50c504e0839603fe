// npm run moddable: without the SDK it says what to install; with one it makes the board's
// app and runs mcconfig in it with the right platform, target, output folder and port.
// CI has no Moddable SDK, so mcconfig and mcsim here are recording stand-ins (shell
// scripts); the real SDK was tried by hand (README, "Moddable").

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../tools/build/build.ts";
import { findModdable, mcconfigArgs } from "../tools/device/moddable.ts";
import { SIM_MOD_PARTITION, SIM_RESTART_LINE } from "../tools/build/moddable-manifest.ts";

const tsx = join(ROOT, "node_modules/.bin/tsx");

/** A folder that looks like a built SDK: mcconfig records its arguments, folder and UPLOAD_PORT, and exits with $FAKE_EXIT. */
function fakeSdk(): { root: string; log: string } {
  const root = mkdtempSync(join(tmpdir(), "tbfw-moddable-"));
  const log = join(root, "calls.log");
  mkdirSync(join(root, "tools"));
  writeFileSync(join(root, "tools", "mcconfig.js"), "");
  const bin = join(root, "build", "bin", "lin", "release");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, "mcconfig"),
    `#!/bin/sh
echo "mcconfig $* | cwd=$PWD | port=$UPLOAD_PORT | manifest=$(test -f manifest.json && echo yes)" >> "${log}"
# -o DIR: make the simulator library where mcconfig puts it.
out=""; prev=""; for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
mkdir -p "$out/bin/lin/release/app" && touch "$out/bin/lin/release/app/mc.so"
exit \${FAKE_EXIT:-0}
`
  );
  // mcrun: records, and makes a mod archive (size 16, "XS_A") where mcrun puts one for the ESP32.
  writeFileSync(
    join(bin, "mcrun"),
    `#!/bin/sh
echo "mcrun $* | cwd=$PWD | manifest=$(test -f manifest.json && echo yes) | main=$(test -f main.js && echo yes)" >> "${log}"
out=""; prev=""; for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
mkdir -p "$out/bin/esp32/release/mod" && printf '\\000\\000\\000\\020XS_Aabcdefgh' > "$out/bin/esp32/release/mod/mod.xsa"
`
  );
  // mcsim: the first start stands in for a device that writes an update to its mod
  // partition (a file in its working folder) and restarts; the second prints a line and exits.
  writeFileSync(
    join(bin, "mcsim"),
    `#!/bin/sh
echo "mcsim $* | cwd=$PWD" >> "${log}"
if [ "$FAKE_CRASH" -gt 0 ] 2>/dev/null && [ "$(ls crashed.* 2>/dev/null | wc -l)" -lt "$FAKE_CRASH" ]; then
  touch crashed.$$
  exit 139
fi
if [ "$FAKE_RESTART" = 1 ] && [ ! -f restarted ]; then
  touch restarted
  printf '\\000\\000\\000\\020XS_Aabcdefgh' > ${SIM_MOD_PARTITION}
  echo ${JSON.stringify(SIM_RESTART_LINE)}
  sleep 60
fi
echo "[I][boot] tb-firmware in the stand-in simulator"
`
  );
  chmodSync(join(bin, "mcconfig"), 0o755);
  chmodSync(join(bin, "mcrun"), 0o755);
  chmodSync(join(bin, "mcsim"), 0o755);
  return { root, log };
}

function run(args: string[], env: NodeJS.ProcessEnv) {
  const clean = { ...process.env };
  delete clean.MODDABLE;
  delete clean.IDF_PATH;
  const result = spawnSync(tsx, ["tools/device/moddable.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 120000, env: { ...clean, ...env } });
  return { status: result.status, output: result.stdout + result.stderr };
}

test("without the SDK: what to install, for every way it can be missing", () => {
  assert.match(findModdable({}) as string, /^MODDABLE is not set\.\nInstall the Moddable SDK .*\n  git clone https:\/\/github.com\/Moddable-OpenSource\/moddable/);
  assert.match(findModdable({ MODDABLE: "/nonexistent" }) as string, /^MODDABLE=\/nonexistent is not a Moddable SDK/);
  const empty = mkdtempSync(join(tmpdir(), "tbfw-moddable-"));
  mkdirSync(join(empty, "tools"));
  writeFileSync(join(empty, "tools", "mcconfig.js"), "");
  assert.match(findModdable({ MODDABLE: empty, PATH: "" }) as string, /^mcconfig is not built/);
  const result = run(["sim"], {});
  assert.equal(result.status, 1, result.output);
  assert.match(result.output, /moddable: MODDABLE is not set\.\nInstall the Moddable SDK/);
  assert.match(result.output, /sudo apt-get install xvfb/);
  assert.doesNotMatch(result.output, /\n\s+at /, "a message, not a stack trace");
  const usage = run(["deploy"], {});
  assert.equal(usage.status, 1);
  assert.match(usage.output, /usage: npm run moddable -- build\|flash\|sim/);
});

test("build and flash: the board's app made, then mcconfig in its folder for the ESP32; flash passes the port; failures are named", () => {
  assert.deepEqual(mcconfigArgs({ platform: "esp32", debug: false, buildOnly: true, outDir: "/o" }), ["-m", "-p", "esp32", "-t", "build", "-o", "/o"]);
  assert.deepEqual(mcconfigArgs({ platform: "esp32/esp32c3", debug: true, buildOnly: false, outDir: "/o" }), ["-m", "-d", "-p", "esp32/esp32c3", "-o", "/o"]);
  const sdk = fakeSdk();
  const out = mkdtempSync(join(tmpdir(), "tbfw-moddable-out-"));
  const env = { MODDABLE: sdk.root, TB_TOKEN: "moddable-test-token", WIFI_SSID: "lab" };
  const noIdf = run(["build", "--out", out], env);
  assert.equal(noIdf.status, 1);
  assert.match(noIdf.output, /moddable: IDF_PATH is not set: building for esp32 needs ESP-IDF/);

  const build = run(["build", "--out", out], { ...env, IDF_PATH: "/opt/esp-idf" });
  assert.equal(build.status, 0, build.output);
  const appDir = join(out, "moddable", "esp32-devkitc");
  assert.ok(existsSync(join(appDir, "main.js")));
  const flash = run(["flash", "--out", out, "--port", "/dev/ttyUSB7"], { ...env, IDF_PATH: "/opt/esp-idf" });
  assert.equal(flash.status, 0, flash.output);
  assert.match(flash.output, /moddable: flashed esp32-devkitc on \/dev\/ttyUSB7/);
  const calls = readFileSync(sdk.log, "utf8").trim().split("\n");
  const outDir = join(appDir, "mc-esp32");
  const modDir = join(appDir, "mod");
  // The board has the ota feature: its update package is the same main.js built as a mod.
  const mcrun = `mcrun -m -p esp32 -t build -o ${join(modDir, "out")} | cwd=${modDir} | manifest=yes | main=yes`;
  assert.deepEqual(calls, [
    `mcconfig -m -p esp32 -t build -o ${outDir} | cwd=${appDir} | port= | manifest=yes`,
    mcrun,
    `mcconfig -m -p esp32 -o ${outDir} | cwd=${appDir} | port=/dev/ttyUSB7 | manifest=yes`,
    mcrun,
  ]);
  assert.deepEqual(JSON.parse(readFileSync(join(modDir, "manifest.json"), "utf8")), { include: "$(MODDABLE)/examples/manifest_mod.json", modules: { "tb-update": "./main" } });
  assert.ok(readFileSync(join(modDir, "main.js")).equals(readFileSync(join(appDir, "main.js"))));
  const archive = readFileSync(join(appDir, "esp32-devkitc.xsa"));
  assert.deepEqual(JSON.parse(readFileSync(join(appDir, "esp32-devkitc.ota.json"), "utf8")), {
    file: "esp32-devkitc.xsa", title: "tb-firmware", version: JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version, size: 16,
    sha256: createHash("sha256").update(archive).digest("hex"), checksumAlgorithm: "SHA256", platform: "esp32",
  });
  assert.match(build.output, /moddable: OTA package .*esp32-devkitc\.xsa {2}title tb-firmware {2}version \S+ {2}16 B {2}SHA256 [0-9a-f]{64}/);
  assert.doesNotMatch(build.output + flash.output, /moddable-test-token/, "the token is not printed");

  // An ESP32-C3 board builds for Moddable's esp32c3 target.
  const c3 = run(["build", "--out", out, "--board", "esp32-c3-devkitm"], { ...env, IDF_PATH: "/opt/esp-idf" });
  assert.equal(c3.status, 0, c3.output);
  const c3Dir = join(out, "moddable", "esp32-c3-devkitm");
  assert.equal(readFileSync(sdk.log, "utf8").trim().split("\n")[4], `mcconfig -m -p esp32/esp32c3 -t build -o ${join(c3Dir, "mc-esp32-esp32c3")} | cwd=${c3Dir} | port= | manifest=yes`);

  const failed = run(["build", "--out", out], { ...env, IDF_PATH: "/opt/esp-idf", FAKE_EXIT: "3" });
  assert.equal(failed.status, 1);
  assert.match(failed.output, /moddable: mcconfig failed \(exit 3\): see its output above/);
  const unknown = run(["build", "--board", "no-such-board"], env);
  assert.equal(unknown.status, 1);
  assert.match(unknown.output, /moddable: boards\/no-such-board\.json: no such board file \(boards here: esp32-c3-devkitm, esp32-devkitc, esp32-devkitc-battery, esp32-devkitc-multi, esp32-devkitc-telemetry, esp32-s3-devkitc, sim\)/);
});

test("sim: the emulator first, the sim app built against it for the host, then mcsim with the app; its lines shown as the device's", () => {
  const sdk = fakeSdk();
  const out = mkdtempSync(join(tmpdir(), "tbfw-moddable-out-"));
  const simDir = mkdtempSync(join(tmpdir(), "tbfw-sim-"));
  const result = run(["sim", "--out", out, "--timeout", "60"], { MODDABLE: sdk.root, DISPLAY: ":99", TBFW_SIM_DIR: simDir });
  // The stand-in mcsim prints one line and exits: the wrapper shows it and stops.
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /moddable: ThingsBoard emulator on 127\.0\.0\.1:\d+ \(plain\) and :(\d+) \(tls, CA /);
  assert.match(result.output, /device {2}\| \[I\]\[boot\] tb-firmware in the stand-in simulator/);
  const appDir = join(out, "moddable", "sim");
  const tlsPort = /\(plain\) and :(\d+) \(tls/.exec(result.output)![1];
  // The app talks to the emulator's TLS port with the development CA as its resource.
  assert.match(readFileSync(join(appDir, "main.js"), "utf8"), new RegExp(`port:${tlsPort}\\b|"port":${tlsPort}\\b`));
  assert.ok(existsSync(join(appDir, "ca-root.der")));
  const calls = readFileSync(sdk.log, "utf8").trim().split("\n");
  assert.equal(calls[0], `mcconfig -m -p lin -t build -o ${join(appDir, "mc-lin")} | cwd=${appDir} | port= | manifest=yes`);
  assert.equal(calls[1], `mcsim ${join(appDir, "mc-lin", "bin", "lin", "release", "app", "mc.so")} | cwd=${join(simDir, "moddable")}`);
});

test("sim: when the device restarts, mcsim is started again, with the mod partition as its mod once it holds an archive", () => {
  const sdk = fakeSdk();
  const out = mkdtempSync(join(tmpdir(), "tbfw-moddable-out-"));
  const simDir = mkdtempSync(join(tmpdir(), "tbfw-sim-"));
  const result = run(["sim", "--out", out, "--timeout", "60"], { MODDABLE: sdk.root, DISPLAY: ":99", TBFW_SIM_DIR: simDir, FAKE_RESTART: "1" });
  assert.equal(result.status, 0, result.output);
  const app = join(out, "moddable", "sim", "mc-lin", "bin", "lin", "release", "app", "mc.so");
  const partition = join(simDir, "moddable", SIM_MOD_PARTITION);
  const calls = readFileSync(sdk.log, "utf8").trim().split("\n");
  assert.deepEqual(calls.slice(1), [`mcsim ${app} | cwd=${join(simDir, "moddable")}`, `mcsim ${app} ${partition} | cwd=${join(simDir, "moddable")}`]);
  assert.ok(result.output.indexOf("device  | " + SIM_RESTART_LINE) < result.output.indexOf("device  | [I][boot] tb-firmware in the stand-in simulator"), result.output);
});

test("sim: mcsim that crashes or is killed (a power cut) is started again, as a board boots after a reset; four times within a minute stops the run", () => {
  const sdk = fakeSdk();
  const out = mkdtempSync(join(tmpdir(), "tbfw-moddable-out-"));
  const simDir = mkdtempSync(join(tmpdir(), "tbfw-sim-"));
  const once = run(["sim", "--out", out, "--timeout", "60"], { MODDABLE: sdk.root, DISPLAY: ":99", TBFW_SIM_DIR: simDir, FAKE_CRASH: "1" });
  assert.equal(once.status, 0, once.output);
  assert.match(once.output, /moddable: mcsim ended \(139\); starting it again, as a board boots after a reset\n/);
  assert.match(once.output, /device {2}\| \[I\]\[boot\] tb-firmware in the stand-in simulator/);
  assert.equal(readFileSync(sdk.log, "utf8").trim().split("\n").filter((l) => l.startsWith("mcsim ")).length, 2);

  const simDir2 = mkdtempSync(join(tmpdir(), "tbfw-sim-"));
  const always = run(["sim", "--out", out, "--timeout", "60"], { MODDABLE: sdk.root, DISPLAY: ":99", TBFW_SIM_DIR: simDir2, FAKE_CRASH: "9" });
  assert.equal(always.status, 1, always.output);
  assert.match(always.output, /moddable: mcsim ended 4 times within a minute; stopping\nmoddable: mcsim exited \(139\)/);
});
