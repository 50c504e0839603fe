// Firmware updates end to end: the built `sim` image (1.0.0) runs in the Espruino sandbox
// against the local ThingsBoard emulator, which is assigned a package (the 1.1.0 image
// built the same way, or a broken one) and serves its chunks as ThingsBoard does. The
// device downloads into its flash, verifies, restarts through the boot loader and
// confirms itself; broken updates roll back to the image that was running. Once more
// through mosquitto with an MQTT client in ThingsBoard's place.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";
import { checkSource } from "../tools/check/check-espruino.ts";
import { ThingsBoardEmulator } from "../tools/sim/emulator.ts";
import type { JsonValue } from "../tools/sim/emulator.ts";
import { startControl } from "../tools/sim/control.ts";
import * as loader from "../tools/build/boot-loader.mjs";
import { BOOT_FILE, IMAGE_SLOTS } from "../firmware/thingsboard/ota.ts";
import { requestFor, sendControl } from "../tools/sim/tb.ts";
import mqtt from "mqtt";
import { buildTestImages, runDevice } from "./helpers/device-run.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import type { DeviceRun } from "./helpers/device-run.ts";

const TOKEN = "ota-test-token";
const DEVICE = "ota-device";
const CHUNK = 1500;
let oldImage: string;
let newImage: Buffer;
let packageInfo: { title: string; version: string; size: number; sha256: string; file: string; checksumAlgorithm: string };

async function build(version: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), "tbfw-ota-build-"));
  await buildTestImages({
    boards: ["sim"],
    outDir: out,
    settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: 1, tls: false, token: TOKEN, telemetryIntervalMs: 1000 },
    version,
    quiet: true,
    // Scaled down: 1500-byte chunks, a chunk asked again after 2 s, a silent new image rolled back after 8 s.
    firmware: { responseTimeoutMs: 2000, keepAliveS: 3, backoffMinMs: 300, backoffMaxMs: 1500, otaChunkBytes: CHUNK, otaConfirmMs: 8000 },
  });
  return join(out, "espruino", "sim.js");
}

before(async () => {
  oldImage = await build("1.0.0");
  const newFile = await build("1.1.0");
  newImage = readFileSync(newFile);
  packageInfo = JSON.parse(readFileSync(newFile.replace(/\.js$/, ".ota.json"), "utf8"));
  // The boot loader is checked with the image it fronts.
  assert.deepEqual(checkSource(readFileSync(oldImage, "utf8"), oldImage), []);
});

const running: { emulator: ThingsBoardEmulator; device: DeviceRun }[] = [];
after(async () => {
  for (const r of running.splice(0)) {
    r.device.stop();
    await r.emulator.close();
  }
});

async function start() {
  const emulator = new ThingsBoardEmulator({ devices: [{ name: DEVICE, token: TOKEN }] });
  await emulator.listen();
  const device = runDevice(oldImage, { port: emulator.plainPort });
  const run = { emulator, device };
  running.push(run);
  await device.waitFor(() => emulator.device(DEVICE).client.current_fw_version === "1.0.0", 15000, "1.0.0 online");
  return run;
}

/** Every fw_state the device reported, in order, with its fw_error when it had one. */
function states(emulator: ThingsBoardEmulator): string[] {
  return emulator
    .device(DEVICE)
    .telemetry.filter((p) => "fw_state" in p.values)
    .map((p) => String(p.values.fw_state) + (p.values.fw_error ? ": " + String(p.values.fw_error) : ""));
}

function bootRecord(device: DeviceRun): Record<string, JsonValue> {
  return JSON.parse(readFileSync(join(device.storageDir, "tb-boot.json"), "latin1"));
}

test("the boot loader and the firmware name the same files", () => {
  assert.equal(loader.BOOT_FILE, BOOT_FILE);
  assert.deepEqual(loader.IMAGE_SLOTS, IMAGE_SLOTS);
});

test("the build describes each Espruino image as an OTA package", () => {
  assert.equal(packageInfo.title, "tb-firmware");
  assert.equal(packageInfo.version, "1.1.0");
  assert.equal(packageInfo.size, newImage.length);
  assert.equal(packageInfo.checksumAlgorithm, "SHA256");
  assert.match(packageInfo.sha256, /^[0-9a-f]{64}$/);
});

test("a full update: 1.0.0 downloads 1.1.0 chunk by chunk, verifies it, restarts into it and confirms it; it stays after a power cycle", async () => {
  const { emulator, device } = await start();
  assert.notEqual(newImage.length % CHUNK, 0, "a short last chunk");
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
  await device.waitFor(() => states(emulator).includes("UPDATED"), 60000, "UPDATED");
  const seen = states(emulator);
  for (const state of ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATING", "UPDATED"]) assert.ok(seen.includes(state), state + " in " + seen.join(", "));
  assert.ok(seen.indexOf("VERIFIED") < seen.indexOf("UPDATED"));
  await device.waitFor(() => emulator.device(DEVICE).client.current_fw_version === "1.1.0", 10000, "current_fw_version 1.1.0");
  assert.equal(device.sandbox.reboots(), 1);
  // One request per chunk, none twice.
  const requested = emulator.chunkRequests.get(DEVICE)!;
  assert.equal(requested.length, Math.ceil(newImage.length / CHUNK));
  assert.equal(readFileSync(join(device.storageDir, "tb-fw-a.js")).compare(newImage), 0);
  await device.waitFor(() => bootRecord(device).ok === "tb-fw-a.js", 5000, "the update confirmed in the boot record");
  assert.equal(bootRecord(device).try, "");

  device.sandbox.reboot();
  await device.waitFor(() => device.serial.filter((l) => l.includes("[I][boot] tb-firmware 1.1.0")).length === 2, 10000, "1.1.0 after a power cycle");
  assert.deepEqual(device.sandbox.uncaught, []);
});

test("a download cut by a lost connection resumes at the first missing chunk; chunk sizes that divide the image work", async () => {
  const { emulator, device } = await start();
  // Padded with spaces (still the same program) to a whole number of chunks.
  const padded = Buffer.concat([newImage, Buffer.alloc(CHUNK - (newImage.length % CHUNK), 0x20)]);
  // The connection lost when chunk 10 is asked for, and chunk 20 never answered the first time.
  emulator.firmwareFaults.disconnect.add(10);
  emulator.firmwareFaults.drop.add(20);
  emulator.assignFirmware(DEVICE, padded, "tb-firmware", "1.1.0");
  await device.waitFor(() => states(emulator).includes("UPDATED"), 90000, "UPDATED");
  const chunks = emulator.chunkRequests.get(DEVICE)!.map((r) => Number(r.split("/")[1]));
  assert.equal(chunks.filter((n) => n === 0).length, 1, "chunk 0 asked for once: " + chunks.join(","));
  assert.equal(Math.max(...chunks), padded.length / CHUNK - 1, "no chunk past the end asked for");
  assert.equal(chunks.filter((n) => n === 10).length, 2, "the chunk cut by the disconnect asked again after the reconnect");
  assert.equal(chunks.filter((n) => n === 20).length, 2, "the unanswered chunk asked again");
  for (let n = 0; n < padded.length / CHUNK; n++) assert.ok(chunks.filter((c) => c === n).length <= 2, "chunk " + n + " asked for at most twice");
  // Readings went on while the download waited.
  const received = emulator.device(DEVICE).telemetry.map((p) => ("fw_state" in p.values ? String(p.values.fw_state) : "reading"));
  const during = received.slice(received.indexOf("DOWNLOADING"), received.indexOf("DOWNLOADED"));
  assert.ok(during.includes("reading"), "readings delivered during the download: " + received.join(","));
  await device.waitFor(() => emulator.device(DEVICE).client.current_fw_version === "1.1.0", 10000, "1.1.0");
});

test("a corrupted chunk fails the checksum: FAILED names the algorithm and both values, 1.0.0 keeps running, and the same package is not tried again", async () => {
  const { emulator, device } = await start();
  emulator.firmwareFaults.corrupt.add(5);
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
  await device.waitFor(() => states(emulator).some((s) => s.startsWith("FAILED")), 60000, "FAILED");
  const failed = states(emulator).find((s) => s.startsWith("FAILED"))!;
  assert.match(failed, new RegExp("SHA256 mismatch: expected " + packageInfo.sha256 + ", got [0-9a-f]{64}"));
  assert.equal(device.sandbox.reboots(), 0);
  assert.ok(!existsSync(join(device.storageDir, "tb-fw-a.js")), "the bad download erased");
  // A reconnect asks for the attributes again: the failed package is not downloaded again.
  const asked = emulator.chunkRequests.get(DEVICE)!.length;
  emulator.disconnect(DEVICE);
  await new Promise((r) => setTimeout(r, 4000));
  assert.equal(emulator.chunkRequests.get(DEVICE)!.length, asked);
  assert.ok(!states(emulator).includes("UPDATING"));
  // Another title is refused before any download.
  emulator.assignFirmware(DEVICE, newImage, "other-product", "2.0.0");
  await device.waitFor(() => states(emulator).some((s) => s.includes("fw_title other-product is not this firmware (tb-firmware)")), 10000, "the refusal");
  assert.equal(emulator.chunkRequests.get(DEVICE)!.length, asked);
});

test("CRC32 packages verify too (ThingsBoard's byte order)", async () => {
  const { emulator, device } = await start();
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0", "CRC32");
  await device.waitFor(() => states(emulator).includes("UPDATED"), 60000, "UPDATED");
  assert.equal(device.sandbox.reboots(), 1);
});

for (const [what, program, reason] of [
  ["fails to start", "throw new Error('broken build');", /failed to start \(Error: broken build\); rolled back/],
  ["never reaches ThingsBoard", "print('a new image that does nothing');", /got no message acknowledged within 8 s; rolled back/],
] as const) {
  test("a new image that " + what + " is rolled back at the next boot, and the old one reports FAILED with the reason", async () => {
    const { emulator, device } = await start();
    emulator.assignFirmware(DEVICE, Buffer.from(program), "tb-firmware", "1.2.0");
    await device.waitFor(() => states(emulator).some((s) => s.startsWith("FAILED")), 60000, "FAILED from the old image");
    assert.match(states(emulator).find((s) => s.startsWith("FAILED"))!, reason);
    assert.equal(device.sandbox.reboots(), 2, "into the new image, and back");
    assert.equal(emulator.device(DEVICE).client.current_fw_version, "1.0.0");
    assert.equal(bootRecord(device).try, "");
    // Not tried again: no third restart, and none after a power cycle either.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(device.sandbox.reboots(), 2);
    const requests = emulator.chunkRequests.get(DEVICE)!.length;
    const connects = () => device.serial.filter((l) => l.includes("[I][mqtt] connected")).length;
    const before = connects();
    device.sandbox.reboot();
    await device.waitFor(() => connects() > before, 10000, "connected after the power cycle");
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(emulator.chunkRequests.get(DEVICE)!.length, requests, "the rolled-back package is not downloaded again");
    assert.equal(device.sandbox.reboots(), 3);
  });
}

for (const step of ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATING", "UPDATED"]) {
  test("a power cut when ThingsBoard sees " + step + " leaves a device that boots and finishes the update", async () => {
    let device: DeviceRun | null = null;
    let cut = false;
    // The cut happens as the server takes the message, before its PUBACK leaves: mid-download
    // for DOWNLOADING (its 20 % report), before the confirmation for UPDATED.
    const emulator = new ThingsBoardEmulator({
      devices: [{ name: DEVICE, token: TOKEN }],
      onTelemetry: (_name, payload) => {
        if (cut || !device || !payload.includes('"fw_state":"' + step + '"') || (step === "DOWNLOADING" && !payload.includes('"fw_progress":2'))) return;
        cut = true;
        device.sandbox.reboot();
      },
    });
    await emulator.listen();
    const run = { emulator, device: runDevice(oldImage, { port: emulator.plainPort }) };
    running.push(run);
    device = run.device;
    await device.waitFor(() => emulator.device(DEVICE).client.current_fw_version === "1.0.0", 15000, "1.0.0 online");
    emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
    await device.waitFor(() => cut, 30000, "the cut at " + step);
    await device.waitFor(() => bootRecord(device!).ok === "tb-fw-a.js", 60000, "1.1.0 confirmed after the cut");
    assert.equal(emulator.device(DEVICE).client.current_fw_version, "1.1.0");
    assert.ok(!states(emulator).some((s) => s.startsWith("FAILED")), states(emulator).join(", "));
    // Cut mid-download, the device goes on where it stopped (the chunk asked for as the
    // power went is asked for again), not from chunk 0.
    const chunks = emulator.chunkRequests.get(DEVICE)!.map((r) => Number(r.split("/")[1]));
    if (step === "DOWNLOADING") {
      assert.ok(device.serial.some((l) => /\[I\]\[ota\] tb-firmware 1\.1\.0, \d+ B, to tb-fw-a\.js from chunk [1-9]\d*$/.test(l)), device.serial.join("\n"));
      assert.equal(chunks.filter((c) => c === 0).length, 1, "chunk 0 once: " + chunks.join(","));
      for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i] >= chunks[i - 1], "never back: " + chunks.join(","));
    }
    device.sandbox.reboot();
    await device.waitFor(() => device!.serial.filter((l) => l.includes("[I][boot] tb-firmware 1.1.0")).length >= 2, 10000, "1.1.0 after one more power cycle");
  });
}

test("npm run tb -- ota: the control endpoint refuses a file that is not an image and assigns one that is; a package labelled with another version than it holds is not downloaded again and again", async () => {
  const { emulator, device } = await start();
  const portFile = join(mkdtempSync(join(tmpdir(), "tbfw-ota-control-")), "control.json");
  const control = await startControl(emulator, portFile);
  try {
    const binary = join(mkdtempSync(join(tmpdir(), "tbfw-ota-")), "image.bin");
    writeFileSync(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1]));
    await assert.rejects(
      sendControl(requestFor(["ota", binary], { title: "tb-firmware", version: "1.1.0" }), portFile),
      /image\.bin: the file is binary, not an Espruino image \(dist\/espruino\/<board>\.js\) nor a Moddable mod archive \(<board>\.xsa from npm run moddable -- build\); nothing was assigned/
    );
    assert.equal(emulator.device(DEVICE).shared.fw_version, undefined);
    assert.throws(() => requestFor(["ota", binary], { title: "tb-firmware" }), /ota needs --version \(the version the package holds, e.g. 1.1.0\)/);
    await assert.rejects(sendControl(requestFor(["ota"], { version: "1.1.0" }), portFile), /ota needs a FILE here: only npm start can build its image at another version/);
    assert.throws(() => requestFor(["ota", binary], { title: "tb-firmware", version: "1", algorithm: "murmur3_32" }), /--algorithm: SHA256, SHA384, SHA512, CRC32 or MD5 \(Moddable only\): what the device can check; got murmur3_32/);

    // The 1.1.0 image assigned as 1.3.0: it runs, says so, and is not downloaded again.
    const mislabelled = join(mkdtempSync(join(tmpdir(), "tbfw-ota-")), "sim.js");
    writeFileSync(mislabelled, newImage);
    const result = (await sendControl(requestFor(["ota", mislabelled], { title: "tb-firmware", version: "1.3.0" }), portFile)) as { online: boolean };
    assert.equal(result.online, true);
    await device.waitFor(() => states(emulator).some((s) => s.startsWith("FAILED")), 60000, "FAILED from the new image");
    assert.match(states(emulator).find((s) => s.startsWith("FAILED"))!, /the package for 1\.3\.0 holds firmware 1\.1\.0/);
    await device.waitFor(() => bootRecord(device).ok === "tb-fw-a.js", 10000, "the image confirmed all the same");
    const asked = emulator.chunkRequests.get(DEVICE)!.length;
    emulator.disconnect(DEVICE);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(emulator.chunkRequests.get(DEVICE)!.length, asked, "not downloaded again after a reconnect");
    assert.equal(device.sandbox.reboots(), 1);
  } finally {
    await control.close();
  }
});

test("the same update through mosquitto, with an independent MQTT client playing ThingsBoard: the topics work on a real broker", async () => {
  const broker = await startMosquitto();
  const server = await mqtt.connectAsync({ host: "127.0.0.1", port: broker.plainPort, clientId: "ota-server", reconnectPeriod: 0 });
  const device = runDevice(oldImage, { port: broker.plainPort });
  const fwStates: string[] = [];
  const chunks: number[] = [];
  const firmware = { fw_title: "tb-firmware", fw_version: "1.1.0", fw_size: newImage.length, fw_checksum: packageInfo.sha256, fw_checksum_algorithm: "SHA256" };
  try {
    server.on("message", (topic, payload) => {
      const chunk = /^v2\/fw\/request\/(\d+)\/chunk\/(\d+)$/.exec(topic);
      if (chunk) {
        const n = Number(chunk[2]);
        const size = Number(payload.toString());
        chunks.push(n);
        server.publish("v2/fw/response/" + chunk[1] + "/chunk/" + n, newImage.subarray(n * size, (n + 1) * size));
      } else if (topic.startsWith("v2/a/req/")) {
        const wanted = String(JSON.parse(payload.toString()).sharedKeys);
        server.publish("v2/a/res/" + topic.slice(9), JSON.stringify({ shared: wanted.includes("fw_title") ? firmware : {} }));
      } else if (topic === "v2/t") {
        const body = JSON.parse(payload.toString());
        if (body.fw_state) fwStates.push(body.fw_state);
      }
    });
    await server.subscribeAsync(["v2/fw/request/+/chunk/+", "v2/a/req/+", "v2/t"], { qos: 1 });
    await device.waitFor(() => fwStates.includes("UPDATED"), 60000, "UPDATED through mosquitto");
    assert.deepEqual(fwStates.filter((s) => s !== "DOWNLOADING"), ["DOWNLOADED", "VERIFIED", "UPDATING", "UPDATED"]);
    assert.equal(chunks.length, Math.ceil(newImage.length / CHUNK));
    assert.ok(device.serial.some((l) => l.includes("[I][boot] tb-firmware 1.1.0")));
    await device.waitFor(() => bootRecord(device).ok === "tb-fw-a.js", 5000, "confirmed");
  } finally {
    device.stop();
    await server.endAsync();
    await broker.stop();
  }
});

test("the emulator answers a chunk size over maxPayloadSize as ThingsBoard does, and the device asks for chunks no larger than the session limit", async () => {
  const emulator = new ThingsBoardEmulator({ devices: [{ name: DEVICE, token: TOKEN }, { name: "raw", token: "raw-client-token" }], limits: { maxPayloadSize: 1200 } });
  await emulator.listen();
  const device = runDevice(oldImage, { port: emulator.plainPort });
  running.push({ emulator, device });
  // A client asking for 1300-byte chunks: PAYLOAD_TOO_LARGE on v2/fw/error, then the session is closed.
  const client = await mqtt.connectAsync({ host: "127.0.0.1", port: emulator.plainPort, clientId: "raw", username: "raw-client-token", reconnectPeriod: 0 });
  emulator.assignFirmware("raw", newImage, "tb-firmware", "1.1.0");
  await client.subscribeAsync("v2/fw/error", { qos: 1 });
  const answer = new Promise<string>((resolve) => client.on("message", (_t, payload) => resolve(payload.toString())));
  const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
  client.publish("v2/fw/request/1/chunk/0", "1300");
  assert.equal(await answer, "PAYLOAD_TOO_LARGE");
  await closed;
  client.end(true);
  // The device learns the limit from getSessionLimits and asks for at most 1200 B a chunk (not its 1500).
  await device.waitFor(() => emulator.device(DEVICE).client.current_fw_version === "1.0.0", 15000, "1.0.0 online");
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
  await device.waitFor(() => states(emulator).includes("UPDATED"), 60000, "UPDATED");
  assert.equal(emulator.chunkRequests.get(DEVICE)!.length, Math.ceil(newImage.length / 1200));
  assert.ok(!states(emulator).some((s) => s.startsWith("FAILED")), states(emulator).join(", "));
});

test("a server error (v2/fw/error) ends the attempt with ThingsBoard's reason, and the package is tried again when offered again", async () => {
  const { emulator, device } = await start();
  // The attributes without a package behind them: the emulator answers the first chunk request with an error.
  emulator.setShared(DEVICE, { fw_title: "tb-firmware", fw_version: "1.1.0", fw_size: newImage.length, fw_checksum: packageInfo.sha256, fw_checksum_algorithm: "SHA256" });
  await device.waitFor(() => states(emulator).some((s) => s.startsWith("FAILED")), 30000, "FAILED");
  assert.equal(states(emulator).find((s) => s.startsWith("FAILED")), "FAILED: ThingsBoard: No firmware assigned to the device");
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
  await device.waitFor(() => states(emulator).includes("UPDATED"), 60000, "UPDATED on the second offer");
});

test("a checksum written in upper case is compared without case, and a package that failed is remembered as the server wrote it, so it is not downloaded again", async () => {
  const { emulator, device } = await start();
  // The package, and at once (in the same tick, before any chunk comes) a wrong checksum in
  // upper case for it: the second replaces the first; it fails once, then stays failed across a reconnect.
  emulator.assignFirmware(DEVICE, newImage, "tb-firmware", "1.1.0");
  emulator.setShared(DEVICE, { fw_checksum: "AB".repeat(32) });
  await device.waitFor(() => states(emulator).some((s) => s.startsWith("FAILED: SHA256 mismatch: expected " + "ab".repeat(32))), 60000, "the mismatch");
  assert.ok(!states(emulator).includes("UPDATED"));
  const asked = emulator.chunkRequests.get(DEVICE)!.length;
  emulator.disconnect(DEVICE);
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(emulator.chunkRequests.get(DEVICE)!.length, asked, "the failed package not downloaded again after a reconnect");
});
