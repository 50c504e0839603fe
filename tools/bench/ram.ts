// RAM on the real interpreter: peak process.memory().usage (JsVar blocks) of an image
// publishing once a second over TLS to a local mosquitto, on an Espruino Linux build
// (ESPRUINO_BIN), once loaded into RAM and once saved to flash (.bootcde), beside the
// same for a baseline built from the EspruinoDocs MQTT module (ESPRUINO_MQTT_MODULE).
// See the README ("Benchmarks") for how to build that interpreter.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { minify } from "terser";
import { CA_FILE } from "../../firmware/platform/types.ts";

/**
 * Added to every image measured (ours and the baseline alike): tracks and prints the peak.
 * Every 10 ms: the TLS handshake's peak lasts a few tens of ms, and sampling every 100 ms
 * caught it for our images (which connect later) but missed it for the baseline (which
 * connects while it loads), 200 JsVars too low.
 */
const PEAK_PROBE =
  'var benchPeak=0;setInterval(function(){var u=process.memory(false).usage;if(u>benchPeak)benchPeak=u;},10);' +
  'setInterval(function(){console.log("BENCH-PEAK "+benchPeak+" "+process.memory(false).total);},1000);';

/**
 * Near the end of a run: the blocks only a garbage collection frees, i.e. held in reference
 * cycles that nothing reaches (reference counting frees everything else at once). Espruino
 * collects only when memory runs short, so on a device with room these stay, and the peak
 * counts them. Last in the run: the collection would change what the peak sees after it.
 */
function cycleProbe(atMs: number): string {
  // Both variables exist before either reading, so the two readings differ only by what the collection freed.
  return 'setTimeout(function(){var a=0,b=0;a=process.memory(false).usage;b=process.memory(true).usage;console.log("BENCH-CYCLES "+(a-b));},' + atMs + ");";
}

/**
 * The Linux build has no Wifi module: a stand-in that joins at once, added in front of
 * the esp32-devkitc image and of the baseline, which both join Wi-Fi through it (on a
 * board both call the native module, which costs neither the stand-in's functions).
 */
export const WIFI_STAND_IN =
  'Modules.addCached("Wifi",function(){var l={};exports.on=function(e,f){l[e]=f;};' +
  'exports.connect=function(s,o,cb){setTimeout(function(){cb(null);if(l.connected)l.connected({ip:"127.0.0.1"});},10);};' +
  "exports.setSNTP=function(){};});";

export type RamMode = "ram" | "flash";

/** The interpreter's version, e.g. "2v29.277". */
export function interpreterVersion(espruinoBin: string): string {
  const run = spawnSync(espruinoBin, ["-e", "console.log('BENCH-VERSION '+process.version)"], { timeout: 10000, encoding: "latin1" });
  return (/BENCH-VERSION (\S+)/.exec(run.stdout ?? "") ?? ["", "unknown"])[1];
}

export interface RamRun {
  peak: number;
  total: number;
  /** Blocks freed by a garbage collection 2 s before the end (reference cycles); -1 when the run ended sooner. */
  cycles: number;
  /** Serial lines, for diagnosing a run that never connected. */
  output: string;
}

/**
 * The baseline: EspruinoDocs' MQTT module (minified, cached as Espruino's IDE uploads
 * modules), joining Wi-Fi, and a loop publishing the same telemetry at QoS 1 every second over TLS.
 */
export async function baselineImage(mqttModulePath: string, host: string, port: number): Promise<{ code: string; moduleMinified: number }> {
  const module = (await minify(readFileSync(mqttModulePath, "utf8"), { ecma: 5 })).code ?? "";
  const code =
    // A line break after the module: on one line with what follows, 2v29 threw "Uncaught undefined".
    "Modules.addCached(\"MQTT\",function(){" + module + "});\n" +
    "var mqtt=require(\"MQTT\").create(" + JSON.stringify(host) + ",{port:" + port + ",username:\"bench-token\",client_id:\"bench-baseline\"});" +
    "mqtt.on(\"connected\",function(){setInterval(function(){mqtt.publish(\"v1/devices/me/telemetry\"," +
    "JSON.stringify({ts:Date.now(),values:{temperature:21.5,humidity:40.2}}),{qos:1});},1000);});" +
    // Wi-Fi first, as EspruinoDocs' ESP32 examples do and a board must; then the same CA file
    // as the firmware reads (measureRam writes it): neither image carries it.
    "var sock;require(\"Wifi\").connect(\"bench\",{password:\"\"},function(err){" +
    "sock=require(\"tls\").connect({host:" + JSON.stringify(host) + ",port:" + port + ",ca:require(\"Storage\").read(" + JSON.stringify(CA_FILE) + ")},function(){mqtt.connect(sock);});});";
  return { code, moduleMinified: Buffer.byteLength(module) };
}

/**
 * Runs `code` for `seconds` on the interpreter and returns its peak JsVar usage. The root CA
 * is written to Storage first (CA_FILE), as npm run flash does. `stopWhen`: ends the run
 * as soon as the output matches (the census, whose dump takes a varying time).
 */
export async function measureRam(espruinoBin: string, code: string, caDer: Buffer, mode: RamMode, seconds: number, stopWhen?: RegExp): Promise<RamRun> {
  const dir = mkdtempSync(join(tmpdir(), "tbfw-ram-"));
  const image = code + "\n" + PEAK_PROBE + cycleProbe((seconds - 2) * 1000);
  // BENCH_KEEP_IMAGE=file keeps the code measured, to run it by hand when a run fails.
  if (process.env.BENCH_KEEP_IMAGE) writeFileSync(process.env.BENCH_KEEP_IMAGE, image);
  // Into the interpreter's flash (espruino.flash in its working folder) before the run.
  let setup = "require(\"Storage\").write(" + JSON.stringify(CA_FILE) + ",atob(" + JSON.stringify(caDer.toString("base64")) + "));";
  let args: string[];
  if (mode === "ram") {
    writeFileSync(join(dir, "image.js"), image);
    args = [join(dir, "image.js")];
  } else {
    // The image saved to flash too, then booted from it in REPL mode, as a board does after `npm run flash`.
    setup += "require(\"Storage\").write(\".bootcde\"," + JSON.stringify(image) + ");";
    args = [];
  }
  writeFileSync(join(dir, "setup.js"), setup);
  const saved = spawnSync(espruinoBin, [join(dir, "setup.js")], { cwd: dir, timeout: 20000, encoding: "utf8" });
  if (saved.status !== 0 && saved.signal === null) throw new Error("writing to the interpreter's flash failed:\n" + saved.stdout + saved.stderr);
  return new Promise((resolve, reject) => {
    const child = spawn(espruinoBin, args, { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let peak = 0;
    let total = 0;
    let cycles = -1;
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString("latin1");
      for (const match of output.matchAll(/BENCH-PEAK (\d+) (\d+)/g)) {
        peak = Math.max(peak, Number(match[1]));
        total = Number(match[2]);
      }
      const freed = /BENCH-CYCLES (-?\d+)/.exec(output);
      if (freed !== null) cycles = Number(freed[1]);
      if (stopWhen && stopWhen.test(output)) child.kill("SIGKILL");
    });
    child.stderr.on("data", (d: Buffer) => (output += d.toString("latin1")));
    child.on("error", reject);
    // REPL mode ignores SIGTERM: end it with SIGKILL.
    const timer = setTimeout(() => child.kill("SIGKILL"), seconds * 1000);
    child.on("exit", () => {
      clearTimeout(timer);
      if (peak === 0) reject(new Error("no memory figure from the interpreter (" + mode + "):\n" + output.slice(-2000)));
      else resolve({ peak, total, cycles, output });
    });
  });
}
