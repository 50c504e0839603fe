// The device page in a real browser: headless Chromium (Debian's package) drives the page
// that npm start serves while the simulator runs the built sim image against the local
// ThingsBoard emulator. Then the page against an emulator fed by an mqtt.js "device" (for
// gaps, a backlog and sensor_error), and the server's bounds and bad-input answers.
//
// UPDATE_SCREENSHOT=1 writes the README's screenshot (docs/images/dashboard.png).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import type { Browser, Page } from "playwright-core";
import { ROOT } from "../tools/build/build.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import { startDashboard } from "../tools/sim/dashboard.ts";
import { launchChromium } from "./helpers/browser.ts";

const tsx = join(ROOT, "node_modules/.bin/tsx");
const DEVICE = '[data-device="sim-device"]';
let simulator: ChildProcess;
let output = "";
let env: NodeJS.ProcessEnv;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what + "\n--- simulator output (tail) ---\n" + output.slice(-3000));
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tb(...args: string[]): string {
  const result = spawnSync(tsx, ["tools/sim/tb.ts", ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 30000 });
  assert.equal(result.status, 0, result.stdout + result.stderr);
  return result.stdout;
}

/** Text of the element, once it matches. */
async function textMatching(selector: string, pattern: RegExp, timeoutMs = 15000): Promise<string> {
  let text = "";
  await until(selector + " to match " + pattern, async () => {
    text = (await page.locator(selector).first().textContent()) ?? "";
    return pattern.test(text);
  }, timeoutMs);
  return text;
}

before(async () => {
  env = { ...process.env, TBFW_SIM_DIR: mkdtempSync(join(tmpdir(), "tbfw-dash-")) };
  simulator = spawn(tsx, ["tools/sim/simulator.ts", "--plain", "--interval", "1000", "--dashboard-port", "0", "--timeout", "600"], { cwd: ROOT, env });
  simulator.stdout!.on("data", (chunk) => (output += chunk));
  simulator.stderr!.on("data", (chunk) => (output += chunk));
  await until("the simulator and its dashboard", () => /^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/m.test(output) && /sim-device client attributes: \{"config_error"/.test(output), 90000);
  const url = /^dashboard: (http:\S+)$/m.exec(output)![1];
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // The 4xx answers the tests provoke are logged by Chromium as failed loads; anything else is a finding.
  page.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) pageErrors.push(m.text());
  });
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  if (simulator && simulator.exitCode === null) {
    simulator.kill("SIGTERM");
    await new Promise((resolve) => simulator.once("exit", resolve));
  }
});

test("the page shows the simulated device: state, facts, its console, and telemetry points arriving on the chart without a reload", async () => {
  await textMatching(DEVICE + " .badge", /^online$/);
  const facts = await textMatching(DEVICE + " .facts", /firmware tb-firmware 0\.1\.0/);
  assert.match(facts, /runtime espruino/);
  assert.match(facts, /client id tbfw-/);
  assert.match(facts, /last seen \d+ s ago/);
  const chart = page.locator(DEVICE + ' .chart[data-key="temperature"]');
  await until("a temperature point on the chart", async () => Number(await chart.getAttribute("data-points")) >= 1, 15000);
  assert.equal(await chart.locator("canvas").count(), 1, "uPlot drew the chart");
  const before = Number(await chart.getAttribute("data-points"));
  await until("more points, live", async () => Number(await chart.getAttribute("data-points")) >= before + 2, 15000);
  assert.equal(await page.locator(DEVICE + ' .chart[data-key="humidity"]').count(), 1);
  await textMatching("#console", /\[I\]\[boot\] tb-firmware 0\.1\.0 on sim/);
  assert.equal(await page.locator("#console .D").count() > 0, true, "debug lines are styled by level");
});

test("setting samplingIntervalMs on the page changes the device's sampling interval", async () => {
  const form = page.locator(DEVICE + " .shared-form");
  await form.locator('input[name="key"]').fill("samplingIntervalMs");
  await form.locator('input[name="value"]').fill("2000");
  await form.locator("button").click();
  await textMatching(DEVICE + " .shared-form .result", /^applied by the device$/);
  await textMatching(DEVICE + ' .shared tr[data-key="samplingIntervalMs"]', /samplingIntervalMs2000/);
  // What the emulator received, read by the CLI: readings now 2 s apart.
  await new Promise((r) => setTimeout(r, 7500));
  const times = tb("telemetry", "--last", "3").trim().split("\n").map((line) => Date.parse(line.split(/\s+/)[0]));
  assert.equal(times.length, 3);
  for (let i = 1; i < times.length; i++) assert.ok(Math.abs(times[i] - times[i - 1] - 2000) < 300, "readings 2 s apart: " + times.join(", "));
});

test("bad values on the page get their error and change nothing", async () => {
  const form = page.locator(DEVICE + " .shared-form");
  await form.locator('input[name="key"]').fill("samplingIntervalMs");
  await form.locator('input[name="value"]').fill("fast");
  await form.locator("button").click();
  const notJson = await textMatching(DEVICE + " .shared-form .result", /not valid JSON/);
  assert.match(notJson, /^the value of samplingIntervalMs is not valid JSON \(.*\); nothing was changed/);
  assert.equal(await page.locator(DEVICE + " .shared-form .result.error").count(), 1);
  assert.match(tb("attr", "get"), /"samplingIntervalMs": 2000/);

  // A value the device refuses: its config_error, beside the key too.
  await form.locator('input[name="key"]').fill("batchSize");
  await form.locator('input[name="value"]').fill("500");
  await form.locator("button").click();
  await textMatching(DEVICE + " .shared-form .result", /^the device refused: batchSize: must be a whole number from 1 to 50, got 500; ignored$/);
  await textMatching(DEVICE + ' .shared tr[data-key="batchSize"] td.problem', /^must be a whole number from 1 to 50, got 500; ignored$/);

  // Deleting it from the table: the device falls back to its default and the error goes.
  await page.locator(DEVICE + ' .shared tr[data-key="batchSize"] button').click();
  await until("batchSize deleted", async () => (await page.locator(DEVICE + ' .shared tr[data-key="batchSize"]').count()) === 0, 10000);
  await textMatching(DEVICE + ' .client tr[data-key="config_error"]', /^config_error$/);
});

test("an RPC round trip shows the device's reply; unknown methods, bad params and offline devices say why", async () => {
  const form = page.locator(DEVICE + " .rpc-form");
  await form.locator('input[name="method"]').fill("ping");
  await form.locator("button").click();
  assert.match(await textMatching(DEVICE + " .rpc-form .result", /pong/), /"pong": true/);
  await form.locator('input[name="method"]').fill("frobnicate");
  await form.locator("button").click();
  await textMatching(DEVICE + " .rpc-form .result", /"error": "unknown method: frobnicate"/);
  await form.locator('input[name="method"]').fill("setConfig");
  await form.locator('input[name="params"]').fill("{batchSize: 5}");
  await form.locator("button").click();
  await textMatching(DEVICE + " .rpc-form .result.error", /^params is not valid JSON/);
  await form.locator('input[name="params"]').fill("");

  // A device the emulator knows but that is not connected: the RPC is not sent.
  tb("add-device", "spare-device", "spare-token");
  const spare = '[data-device="spare-device"]';
  await textMatching(spare + " .badge", /^offline$/);
  await page.locator(spare + ' .rpc-form input[name="method"]').fill("getStatus");
  await page.locator(spare + " .rpc-form button").click();
  await textMatching(spare + " .rpc-form .result.error", /^spare-device is offline: the RPC was not sent/);
});

test("an OTA file that is not an image is refused on the page; the device's own image built at 9.9.9 is followed to UPDATED", async () => {
  const form = page.locator(DEVICE + " .ota-form");
  await form.locator("select").selectOption("upload");
  await form.locator('input[name="version"]').fill("2.0.0");
  await form.locator('input[type="file"]').setInputFiles({ name: "photo.png", mimeType: "image/png", buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]) });
  await form.locator("button").click();
  await textMatching(DEVICE + " .ota-form .result.error", /^photo\.png: the file is binary, not an Espruino image \(dist\/espruino\/<board>\.js\) nor a Moddable mod archive \(<board>\.xsa from npm run moddable -- build\); nothing was assigned$/);
  await form.locator('input[type="file"]').setInputFiles({ name: "notes.js", mimeType: "text/javascript", buffer: Buffer.from("console.log('hello')") });
  await form.locator("button").click();
  await textMatching(DEVICE + " .ota-form .result.error", /^notes\.js: the file is not an Espruino image of this firmware/);
  assert.equal(await page.locator(DEVICE + ' .shared tr[data-key="fw_version"]').count(), 0, "nothing was assigned");
  // Images under dist/ are offered with the version they hold.
  assert.ok((await form.locator("select option").allTextContents()).some((t) => /^dist\/espruino\/sim\.js \(0\.1\.0, \d+ KB\)$/.test(t)));

  await form.locator("select").selectOption("build");
  await form.locator('input[name="version"]').fill("9.9.9");
  await form.locator("button").click();
  await textMatching(DEVICE + " .ota-form .result", /^assigned 9\.9\.9; the device starts the download$/, 60000);
  await until("UPDATED on the page", async () => (await page.locator(DEVICE + ' .ota-status[data-state="UPDATED"]').count()) === 1, 120000);
  assert.equal(await page.locator(DEVICE + " progress").getAttribute("data-value"), "100");
  await textMatching(DEVICE + " .facts", /firmware tb-firmware 9\.9\.9/);
  const events = (await page.locator(DEVICE + " .events li").allTextContents()).join("\n");
  for (const state of ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATING", "UPDATED"]) assert.match(events, new RegExp("fw_state: " + state + "$", "m"));
  await textMatching("#console", /\[I\]\[boot\] tb-firmware 9\.9\.9 on sim/);
});

test("the page's screenshot (the README's), and no script error on the page", async () => {
  await page.locator("#log-panel summary").click();
  const file = join(mkdtempSync(join(tmpdir(), "tbfw-dash-shot-")), "dashboard.png");
  await page.screenshot({ path: file, fullPage: true });
  assert.deepEqual([...readFileSync(file).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (process.env.UPDATE_SCREENSHOT) {
    mkdirSync(join(ROOT, "docs/images"), { recursive: true });
    copyFileSync(file, join(ROOT, "docs/images/dashboard.png"));
  }
  assert.deepEqual(pageErrors, []);
  assert.doesNotMatch(output, /sim-device-token|spare-token/, "no token printed");
});

test("backlog readings sit at their own ts, a pause in readings is a gap, sensor_error is on the timeline", async () => {
  const emulator = new ThingsBoardEmulator({ devices: [{ name: "mqtt-device", token: "mqtt-device-token" }] });
  await emulator.listen();
  const dashboard = await startDashboard({ emulator, port: 0, imageDirs: [] });
  const client = await mqtt.connectAsync("mqtt://127.0.0.1:" + emulator.plainPort, { username: "mqtt-device-token", reconnectPeriod: 0 });
  const other = await browser.newPage();
  try {
    await other.goto(dashboard.url);
    const now = Date.now();
    const at = (secondsAgo: number, values: object) => ({ ts: now - secondsAgo * 1000, values });
    // 120..100 s ago every 2 s, nothing for a minute, then 40..20 s ago; the oldest part arrives last, as a backlog does.
    const recent = [40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20].map((s) => at(s, { temperature: 20 + s / 10 }));
    const backlog = [120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100].map((s) => at(s, { temperature: 20 + s / 10 }));
    await client.publishAsync("v1/devices/me/telemetry", JSON.stringify(recent), { qos: 1 });
    await client.publishAsync("v1/devices/me/telemetry", JSON.stringify([at(30, { sensor_error: "sht3x: no ACK from 0x44" })]), { qos: 1 });
    await client.publishAsync("v1/devices/me/telemetry", JSON.stringify(backlog), { qos: 1 });
    const chart = other.locator('[data-device="mqtt-device"] .chart[data-key="temperature"]');
    const end = Date.now() + 10000;
    while (Number(await chart.getAttribute("data-points")) !== 22 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await chart.getAttribute("data-points"), "22");
    assert.equal(await chart.getAttribute("data-gaps"), "1", "one gap: the minute without readings");
    // Sorted by ts although the backlog came last: the latest value is the newest reading's.
    assert.match((await chart.locator(".latest").textContent()) ?? "", /^22 at /);
    assert.deepEqual(await other.locator('[data-device="mqtt-device"] .events li').allTextContents(), [new Date(now - 30000).toLocaleTimeString([], { hourCycle: "h23" }) + "sensor_error: sht3x: no ACK from 0x44"]);
    assert.equal(await other.locator('[data-device="mqtt-device"] .charts .chart').count(), 1, "sensor_error is not charted");
  } finally {
    await other.close();
    await client.endAsync();
    await dashboard.close();
    await emulator.close();
  }
});

test("the dashboard's server: bad requests get clear errors, and a page that stops reading is dropped instead of holding the emulator up", async () => {
  const emulator = new ThingsBoardEmulator({ devices: [{ name: "d1", token: "d1-token" }] });
  await emulator.listen();
  const dashboard = await startDashboard({ emulator, port: 0, imageDirs: [join(ROOT, "dist")] });
  try {
    const call = async (path: string, body: string) => {
      const response = await fetch(dashboard.url + path.slice(1), { method: "POST", body });
      return { status: response.status, body: (await response.json()) as { error?: string } };
    };
    assert.deepEqual(await call("/api/attr", "{not json"), { status: 400, body: { error: "the request body is not a JSON object" } });
    assert.deepEqual(await call("/api/attr", JSON.stringify({ device: "nobody", key: "k", value: "1" })), { status: 404, body: { error: 'no device named "nobody" (known: d1)' } });
    assert.deepEqual(await call("/api/attr", JSON.stringify({ device: "d1", value: "1" })), { status: 400, body: { error: "key is missing" } });
    assert.deepEqual(await call("/api/ota", JSON.stringify({ device: "d1", image: "../etc/passwd", version: "1.0.0" })), { status: 404, body: { error: "no image ../etc/passwd in dist (npm run build makes them)" } });
    assert.deepEqual(await call("/api/ota", JSON.stringify({ device: "d1", build: true, version: "1.0.0" })), { status: 400, body: { error: "only npm start can build its image at another version; pick an image" } });
    const tooBig = await call("/api/ota/upload?device=d1&version=1.0.0", "x".repeat(300 * 1024));
    assert.equal(tooBig.status, 413);
    assert.match(tooBig.body.error!, /^the request is over 262144 B \(the largest update\)$/);
    assert.deepEqual(emulator.device("d1").shared, {}, "nothing was set");

    // A reader that never reads: the server drops it once its unread events pass the bound.
    const stalled = await new Promise<import("node:http").IncomingMessage>((resolve) => get(dashboard.url + "api/events", resolve));
    stalled.pause();
    const big = "x".repeat(100 * 1024);
    for (let i = 0; i < 300; i++) {
      emulator.setShared("d1", { note: big + i });
      await new Promise((r) => setImmediate(r));
    }
    // Reading again: the stream ends (the server dropped it), well short of the 30 MB sent its way.
    let received = 0;
    stalled.on("data", (chunk: Buffer) => (received += chunk.length));
    stalled.resume();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the stalled page was not dropped")), 10000);
      stalled.socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.ok(received < 10 * 1024 * 1024, "received " + received + " B");
    // The emulator still answers: a device connects and publishes.
    const client = await mqtt.connectAsync("mqtt://127.0.0.1:" + emulator.plainPort, { username: "d1-token", reconnectPeriod: 0 });
    await client.publishAsync("v1/devices/me/telemetry", '{"t":1}', { qos: 1 });
    await client.endAsync();
    assert.deepEqual(emulator.device("d1").telemetry.at(-1)!.values, { t: 1 });
  } finally {
    await dashboard.close();
    await emulator.close();
  }
});
