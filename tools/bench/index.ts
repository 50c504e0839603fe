// npm run bench: size, RAM on the real interpreter, heap, flash, wire bytes, throughput
// and latency, boot to first PUBACK. Writes bench/results.json and bench/results.md.
// Every timed figure is the median of --runs runs (default 5) with min and max; every
// comparison is a ratio against a baseline measured in the same run.
//
//   npm run bench [-- --runs 5] [-- --only size,ram,features,wire,...]
//   ESPRUINO_BIN=/path/to/espruino ESPRUINO_MQTT_MODULE=/path/to/EspruinoDocs/modules/MQTT.js npm run bench

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseCommandLine } from "../build/command-line";
import mqttPacket from "mqtt-packet";
import { decodePacket, encodePublish, packetLength } from "../../firmware/mqtt/codec.ts";
import { utf8Encode } from "../../firmware/util/utf8.ts";
import { startMosquitto } from "../../test/helpers/mosquitto.ts";
import { ROOT, buildImages, packageVersion } from "../build/build.ts";
import type { SizeReport } from "../build/build.ts";
import { loadCa } from "../build/ca.ts";
import { CA_FILE } from "../../firmware/platform/types.ts";
import { DEFAULT_SETTINGS, FIRMWARE_DEFAULTS } from "../build/config.ts";
import { DEFAULT_FEATURES } from "../build/boards.ts";
import type { DeviceSettings } from "../build/config.ts";
import { createTlsFiles } from "../sim/dev-ca.ts";
import { bootToFirstPuback } from "./boot.ts";
import { countTelemetry } from "./subscriber.ts";
import { heapAfterPublishes, heapPerQueuedReading } from "./heap.ts";
import { WIFI_STAND_IN, baselineImage, interpreterVersion, measureRam } from "./ram.ts";
import type { RamMode } from "./ram.ts";
import { moduleSizes, mqttModuleSize } from "./size.ts";
import type { Figure } from "./stats.ts";
import { formatFigure, repeat, summarize } from "./stats.ts";
import { flashPerReading } from "./storage.ts";
import { MESSAGES, WINDOW, buildDeviceBench, runDeviceBench, runMqttJsBench } from "./throughput.ts";
import type { Target } from "./throughput.ts";
import { V1_TOPIC, V2_TOPIC, measureTlsOverhead, plainWire } from "./wire.ts";

const SECTIONS = ["size", "ram", "features", "heap", "flash", "wire", "throughput", "boot", "codec"];

const { values } = parseCommandLine("npm run bench", {
  options: {
    runs: { type: "string", default: "5" },
    only: { type: "string", default: SECTIONS.join(",") },
    "ram-seconds": { type: "string", default: "15" },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs takes a whole number, got " + values.runs);
const only = new Set((values.only as string).split(","));
for (const s of only) if (!SECTIONS.includes(s)) throw new Error("--only: unknown section " + s + " (known: " + SECTIONS.join(", ") + ")");
const ramSeconds = Number(values["ram-seconds"]);
/** The reconnect figure's timeline (section "ram"): the broker frozen from, and until, and the run's length. */
const STALL_FROM_MS = 6000;
const STALL_UNTIL_MS = 27000;
const STALL_RUN_S = 40;

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  revision: gitRevision(),
  machine: cpus().length + " x " + (cpus()[0]?.model ?? "cpu") + ", " + Math.round(totalmem() / 2 ** 30) + " GiB, Node " + process.version,
  runs,
};
const md: string[] = [];
const out = mkdtempSync(join(tmpdir(), "tbfw-bench-"));
const tls = createTlsFiles(join(out, "tls"), "tb-firmware bench CA");
const broker = await startMosquitto({ tls });
const caDer = loadCa(tls.caCert).der;

function gitRevision(): string {
  const result = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : "unknown";
}

function table(header: string[], rows: (string | number)[][]): void {
  md.push("| " + header.join(" | ") + " |", "|" + header.map((h, i) => (i === 0 ? "---" : "---:")).join("|") + "|");
  for (const row of rows) md.push("| " + row.join(" | ") + " |");
  md.push("");
}

const ratio = (a: number, b: number) => (a / b).toFixed(2);

/** Markdown of each section run now, by name. */
const sectionMarkdown: Record<string, string[]> = {};

async function section(name: string, run: () => Promise<void>): Promise<void> {
  if (!only.has(name)) return;
  const start = md.length;
  await run();
  sectionMarkdown[name] = md.slice(start);
}

/** What the bench builds with: the local broker (plain unless `settings` say otherwise), placeholders for the secrets, then `settings`. */
function benchSettings(settings: Partial<DeviceSettings>): DeviceSettings {
  return { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: broker.plainPort, tls: false, token: "bench-token", ca: tls.caCert, wifiSsid: "bench", ...settings };
}

/** Builds `boards` for the local broker into a fresh folder; returns the Espruino image paths by board. */
async function buildFor(boards: string[], settings: Partial<DeviceSettings>, debug = false): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(out, "img-"));
  await buildImages({
    boards,
    outDir: dir,
    settings: benchSettings(settings),
    version: packageVersion(),
    quiet: true,
    debug,
  });
  return Object.fromEntries(boards.map((b) => [b, join(dir, "espruino", b + ".js")]));
}

/**
 * Peak JsVars of `code` on the interpreter, loaded into RAM and saved to flash, `runs` runs
 * each; a run fails unless the independent subscriber counted its telemetry.
 */
async function measurePeaks(bin: string, name: string, code: string, subscriber: { reset(): void; count(): number }): Promise<{ peaks: Record<RamMode, Figure>; cycles: Record<RamMode, Figure> }> {
  const peaks = {} as Record<RamMode, Figure>;
  const cycles = {} as Record<RamMode, Figure>;
  for (const mode of ["ram", "flash"] as RamMode[]) {
    const freed: number[] = [];
    const figures = await repeat(runs, async () => {
      subscriber.reset();
      const run = await measureRam(bin, code, caDer, mode, ramSeconds);
      if (subscriber.count() < ramSeconds / 3) throw new Error(name + " (" + mode + ") published only " + subscriber.count() + " messages:\n" + run.output.slice(-1500));
      if (run.cycles < 0) throw new Error(name + " (" + mode + "): no BENCH-CYCLES line before the end of the run:\n" + run.output.slice(-1500));
      freed.push(run.cycles);
      return run.peak;
    });
    peaks[mode] = summarize(figures);
    cycles[mode] = summarize(freed);
    console.log(name + " " + mode + " " + formatFigure(peaks[mode]));
  }
  return { peaks, cycles };
}

try {
  await section("size", async () => {
    // Production settings (the committed CA); placeholders where a real board needs a secret.
    const reports: SizeReport[] = await buildImages({
      boards: [],
      outDir: join(out, "size"),
      settings: { ...DEFAULT_SETTINGS, token: "bench-placeholder", wifiSsid: "bench" },
      version: packageVersion(),
      quiet: true,
    });
    const budgets = JSON.parse(readFileSync(join(ROOT, "budgets.json"), "utf8")) as { imageBytes: Record<string, { limit: number; target: number }> };
    const baseline = await mqttModuleSize(process.env.ESPRUINO_MQTT_MODULE);
    const modules = await moduleSizes();
    // The root CA is flashed beside each Espruino image (a Storage file), not inside it.
    const caFileBytes = loadCa(join(ROOT, DEFAULT_SETTINGS.ca)).der.length;
    results.size = { images: reports.map(({ file: _file, ...r }) => r), baseline, modules, caFileBytes };
    md.push("### Size (bytes, exact)", "");
    table(
      ["image", "raw", "minified", "gzip", "minified / MQTT module", "budget (limit / target)"],
      reports.map((r) => {
        const budget = budgets.imageBytes[r.runtime + "/" + r.board];
        return [r.runtime + "/" + r.board, r.raw, r.minified, r.gzip, ratio(r.minified, baseline.minified), budget ? budget.limit + " / " + budget.target : "none"];
      })
    );
    md.push("Not in these sizes: the root CA, " + caFileBytes + " B of DER flashed beside each image (Storage `" + CA_FILE + "` on Espruino, a resource on Moddable); the RAM figures below read it from there, the baseline too.", "");
    md.push("Baseline: EspruinoDocs `MQTT` module, " + baseline.raw + " B raw, " + baseline.minified + " B minified (" + baseline.source + ").", "");
    md.push("Per module, minified alone: " + modules.map((m) => "`" + m.module + "` " + m.minified).join(", ") + ".", "");
  });

  await section("ram", async () => {
    const bin = process.env.ESPRUINO_BIN;
    if (!bin) {
      results.ram = { skipped: "ESPRUINO_BIN is not set" };
      md.push("### RAM on the real interpreter", "", "Skipped: set `ESPRUINO_BIN` to an Espruino Linux build (see the README).", "");
    } else {
      const images = await buildFor(["esp32-devkitc", "esp32-devkitc-telemetry"], { port: broker.tlsPort!, tls: true, telemetryIntervalMs: 1000 });
      const codes: [string, string][] = [
        ["espruino/esp32-devkitc", WIFI_STAND_IN + readFileSync(images["esp32-devkitc"], "utf8")],
        ["espruino/esp32-devkitc-telemetry", WIFI_STAND_IN + readFileSync(images["esp32-devkitc-telemetry"], "utf8")],
      ];
      const mqttModule = process.env.ESPRUINO_MQTT_MODULE;
      if (mqttModule) codes.push(["baseline: EspruinoDocs MQTT + publish loop", WIFI_STAND_IN + (await baselineImage(mqttModule, "127.0.0.1", broker.tlsPort!)).code]);
      // An independent subscriber proves each run really published.
      const subscriber = await countTelemetry(broker.plainPort, "bench-ram");
      const ram: Record<string, Record<RamMode, Figure>> = {};
      const cycles: Record<string, Record<RamMode, Figure>> = {};
      const version = interpreterVersion(bin);
      for (const [name, code] of codes) {
        const measured = await measurePeaks(bin, "ram: " + name, code, subscriber);
        ram[name] = measured.peaks;
        cycles[name] = measured.cycles;
      }
      subscriber.end();

      // The peak a device meets in the field rather than at its first connect: a reconnect with
      // messages waiting for their PUBACK. A broker of its own is frozen while the device
      // publishes, the device declares the link dead (no PUBACK within responseTimeoutMs) and
      // reconnects, and the broker runs again during that TLS handshake: the device then
      // resends what was not acknowledged (at most maxInflight - 1 telemetry messages).
      const stalled = await startMosquitto({ tls });
      const stallImage = await buildFor(["esp32-devkitc"], { port: stalled.tlsPort!, tls: true, telemetryIntervalMs: 1000 });
      const stallCode = WIFI_STAND_IN + readFileSync(stallImage["esp32-devkitc"], "utf8");
      const stall = {} as Record<RamMode, Figure>;
      try {
        for (const mode of ["ram", "flash"] as RamMode[]) {
          const peaks = await repeat(runs, async () => {
            const pause = setTimeout(() => stalled.pause(), STALL_FROM_MS);
            const resume = setTimeout(() => stalled.resume(), STALL_UNTIL_MS);
            try {
              const run = await measureRam(bin, stallCode, caDer, mode, STALL_RUN_S);
              if (!/resending \d+ unacknowledged/.test(run.output)) throw new Error("esp32-devkitc (" + mode + ", broker stalled): no reconnect with messages to resend:\n" + run.output.slice(-1500));
              return run.peak;
            } finally {
              clearTimeout(pause);
              clearTimeout(resume);
              stalled.resume();
            }
          });
          stall[mode] = summarize(peaks);
          console.log("ram: esp32-devkitc reconnecting, " + mode + " " + formatFigure(stall[mode]));
        }
      } finally {
        await stalled.stop();
      }

      const base = ram["baseline: EspruinoDocs MQTT + publish loop"];
      results.ram = { interpreter: "Espruino " + version + " (Linux build)", seconds: ramSeconds, peakJsVars: ram, inCyclesAtEnd: cycles, reconnectWithMessagesInFlight: stall };
      md.push("### RAM on the real interpreter (peak `process.memory().usage`, JsVars)", "");
      md.push("Espruino " + version + " Linux build (ESPRUINO_BIN), publishing every second over TLS to mosquitto for " + ramSeconds + " s; median (min-max) of " + runs + " runs.", "");
      table(
        ["image", "loaded into RAM", "saved to flash", "RAM / baseline", "flash / baseline", "in reference cycles at the end (RAM / flash)"],
        Object.entries(ram).map(([name, r]) => [name, formatFigure(r.ram), formatFigure(r.flash), base ? ratio(r.ram.median, base.ram.median) : "-", base ? ratio(r.flash.median, base.flash.median) : "-", formatFigure(cycles[name].ram) + " / " + formatFigure(cycles[name].flash)])
      );
      md.push("In reference cycles: the blocks a garbage collection frees " + (ramSeconds - 2) + " s into the run (Espruino frees everything else as soon as nothing refers to it, and collects only when memory runs short, so the peak includes them).", "");
      if (!base) md.push("No baseline: set `ESPRUINO_MQTT_MODULE` to EspruinoDocs' `modules/MQTT.js` for the ratios.", "");
      md.push(
        "Reconnecting with messages in flight (espruino/esp32-devkitc; the baseline has no reconnect): the broker is frozen (SIGSTOP) " + STALL_FROM_MS / 1000 + " s into the run and runs again at " + STALL_UNTIL_MS / 1000 + " s, while the device, which declared the link dead after " + FIRMWARE_DEFAULTS.responseTimeoutMs / 1000 + " s without a PUBACK, reconnects; peak over " + STALL_RUN_S + " s: " + formatFigure(stall.ram) + " loaded into RAM, " + formatFigure(stall.flash) + " saved to flash" + (base ? " (" + ratio(stall.ram.median, base.ram.median) + " and " + ratio(stall.flash.median, base.flash.median) + " of the baseline's first-connect peak)" : "") + ". Readings wait in RAM and the unacknowledged messages are resent over the new link: the peak a device meets on a bad network.",
        ""
      );
    }
  });

  await section("features", async () => {
    // What each device-API feature of esp32-devkitc costs: the board built without it,
    // measured as the RAM section measures the board, beside the board with all of them and
    // with none (telemetry only, the same sensor), and the baseline, in this section's run.
    md.push("### What each feature costs (espruino/esp32-devkitc)", "");
    const bin = process.env.ESPRUINO_BIN;
    if (!bin) {
      results.features = { skipped: "ESPRUINO_BIN is not set" };
      md.push("Skipped: set `ESPRUINO_BIN` to an Espruino Linux build (see the README).", "");
      return;
    }
    const boardName = "esp32-devkitc";
    const board = JSON.parse(readFileSync(join(ROOT, "boards", boardName + ".json"), "utf8")) as { features?: string[] };
    const all = board.features ?? DEFAULT_FEATURES;
    const variants: [label: string, left: string, features: string[]][] = [
      ["all features", "", all],
      ...all.map((name): [string, string, string[]] => ["without " + name, name, all.filter((other) => other !== name)]),
      ["none (telemetry only)", all.join(", "), []],
    ];
    const subscriber = await countTelemetry(broker.plainPort, "bench-features");
    const rows: { label: string; left: string; minified: number; peaks: Record<RamMode, Figure> }[] = [];
    let base: Record<RamMode, Figure> | null = null;
    try {
      for (const [label, left, features] of variants) {
        // The board under its own name (the name is in the image), Espruino only.
        const dir = mkdtempSync(join(out, "features-"));
        writeFileSync(join(dir, boardName + ".json"), JSON.stringify({ ...board, runtimes: ["espruino"], features }));
        const [report] = await buildImages({
          boards: [join(dir, boardName + ".json")],
          outDir: join(dir, "out"),
          settings: benchSettings({ port: broker.tlsPort!, tls: true, telemetryIntervalMs: 1000 }),
          version: packageVersion(),
          quiet: true,
        });
        const code = WIFI_STAND_IN + readFileSync(join(dir, "out", "espruino", boardName + ".js"), "utf8");
        rows.push({ label, left, minified: report.minified, peaks: (await measurePeaks(bin, "features: " + label, code, subscriber)).peaks });
      }
      const mqttModule = process.env.ESPRUINO_MQTT_MODULE;
      if (mqttModule) base = (await measurePeaks(bin, "features: baseline", WIFI_STAND_IN + (await baselineImage(mqttModule, "127.0.0.1", broker.tlsPort!)).code, subscriber)).peaks;
    } finally {
      subscriber.end();
    }
    const full = rows[0];
    results.features = {
      board: boardName,
      interpreter: "Espruino " + interpreterVersion(bin) + " (Linux build)",
      seconds: ramSeconds,
      images: rows.map((r) => ({ image: r.label, featuresLeftOut: r.left, minified: r.minified, peakJsVars: r.peaks })),
      baselinePeakJsVars: base,
    };
    md.push(
      "The board built without one feature at a time, and without all of them, measured as above (median of " + runs + " runs each, in one run with the board with every feature" + (base ? " and the baseline" : "") + "). What a feature costs is the board with every feature less the board without it: bytes minified (the bench's settings), peak JsVars saved to flash and loaded into RAM. A board leaves a feature out with `features` in its board file (see *Boards and runtimes*).",
      ""
    );
    const cost = (r: (typeof rows)[number], mode: RamMode) => (r === full ? "" : String(full.peaks[mode].median - r.peaks[mode].median));
    table(
      ["image", "minified", "saved to flash", "loaded into RAM", "cost: bytes", "cost: flash JsVars", "cost: RAM JsVars", "flash / baseline", "RAM / baseline"],
      rows.map((r) => [
        r.label,
        r.minified,
        formatFigure(r.peaks.flash),
        formatFigure(r.peaks.ram),
        r === full ? "" : String(full.minified - r.minified),
        cost(r, "flash"),
        cost(r, "ram"),
        base ? ratio(r.peaks.flash.median, base.flash.median) : "-",
        base ? ratio(r.peaks.ram.median, base.ram.median) : "-",
      ])
    );
    if (base) md.push("Baseline in this run: " + formatFigure(base.ram) + " loaded into RAM, " + formatFigure(base.flash) + " saved to flash. Goals (budgets.json ramRatio): 1.3 loaded into RAM, 1.15 saved to flash.", "");
    else md.push("No baseline: set `ESPRUINO_MQTT_MODULE` to EspruinoDocs' `modules/MQTT.js` for the ratios.", "");
  });

  await section("heap", async () => {
    // Unpaced (no rate limits): the heap after thousands of publishes, not a rate limit, is measured.
    const { sim } = await buildFor(["sim"], { telemetryIntervalMs: 2, rateLimits: "", dataPointLimits: "" });
    const heap = await repeat(runs, () => heapAfterPublishes(sim, broker.plainPort));
    const perQueued = summarize(await repeat(runs, async () => heapPerQueuedReading()));
    const growth = summarize(heap.map((h) => h.growthPerPublish));
    results.heap = { runs: heap, growthPerPublishBytes: growth, v8BytesPerQueuedReading: perQueued };
    md.push("### Heap in the simulator (V8)", "");
    table(
      ["figure", "value"],
      [
        ["bench process heap after 2,000 publishes (KiB)", formatFigure(summarize(heap.map((h) => h.before / 1024)))],
        ["the same after 10,000 more (KiB)", formatFigure(summarize(heap.map((h) => h.after / 1024)))],
        ["retained per publish over those 10,000 (bytes; 0 = flat)", formatFigure(growth, 1)],
        ["heap per reading waiting in the RAM queue (bytes)", formatFigure(perQueued)],
      ]
    );
  });

  await section("flash", async () => {
    const flash = flashPerReading(50, 10);
    results.flash = flash;
    md.push("### Flash per stored reading (exact)", "");
    table(["figure", "bytes"], [["occupied per reading (batches of 10, 32-byte Storage headers)", flash.storedPerReading.toFixed(1)], ["written per reading (index updates included)", flash.writtenPerReading.toFixed(1)]]);
  });

  await section("wire", async () => {
    const rows: (string | number)[][] = [];
    const wire: unknown[] = [];
    const suites = ["ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA256"];
    for (const [topicName, topic] of [["v1", V1_TOPIC], ["v2", V2_TOPIC]]) {
      for (const batch of [1, 10, 30, 50]) {
        const plain = plainWire(topic, batch);
        const overheads = [];
        for (const suite of suites) overheads.push(await measureTlsOverhead(broker.tlsPort!, tls.caCert, suite, plain.publish));
        const plainRatio = (plain.up + plain.down) / plain.floor;
        const cells = overheads.map((o) => (o === null ? "refused" : ratio(plain.up + plain.down + o.up + o.down, plain.floor)));
        wire.push({ topic: topicName, batch, up: plain.up, down: plain.down, floor: plain.floor, tls: overheads });
        rows.push([topicName + (batch === 30 ? " (sampling 10 s, upload 5 min)" : ""), batch, ((plain.up + plain.down) / batch).toFixed(1), (plain.floor / batch).toFixed(1), plainRatio.toFixed(3), ...cells]);
      }
    }
    results.wire = wire;
    md.push("### Wire bytes per reading (exact; both directions, PUBACK included)", "");
    table(["topic", "readings per message", "bytes per reading", "JSON floor per reading", "ratio, plain", ...suites.map((s) => "ratio, TLS 1.2 " + s)], rows);
  });

  await section("throughput", async () => {
    const rows: (string | number)[][] = [];
    const tput: Record<string, unknown> = {};
    for (const useTls of [false, true]) {
      const target: Target = { port: useTls ? broker.tlsPort! : broker.plainPort, tls: useTls, caFile: tls.caCert };
      const image = await buildDeviceBench(target);
      const device = [];
      const mqttjs = [];
      // Alternate so drift in machine load hits both alike.
      for (let run = 0; run < runs; run++) {
        device.push(await runDeviceBench(image));
        mqttjs.push(await runMqttJsBench(target));
      }
      const d = { perSecond: summarize(device.map((r) => r.perSecond)), p50Ms: summarize(device.map((r) => r.p50Ms)), p99Ms: summarize(device.map((r) => r.p99Ms)) };
      const m = { perSecond: summarize(mqttjs.map((r) => r.perSecond)), p50Ms: summarize(mqttjs.map((r) => r.p50Ms)), p99Ms: summarize(mqttjs.map((r) => r.p99Ms)) };
      const name = useTls ? "TLS" : "plain";
      tput[name] = { device: d, mqttjs: m };
      rows.push([name, formatFigure(d.perSecond), formatFigure(m.perSecond), ratio(d.perSecond.median, m.perSecond.median), formatFigure(d.p50Ms, 2), formatFigure(m.p50Ms, 2), formatFigure(d.p99Ms, 2), formatFigure(m.p99Ms, 2)]);
    }
    results.throughput = { messages: MESSAGES, window: WINDOW, ...tput };
    md.push("### Throughput and PUBACK latency, simulated device vs mqtt.js (same broker, same run)", "");
    md.push(MESSAGES + " QoS 1 publishes, " + WINDOW + " in flight, to mosquitto on loopback; median (min-max) of " + runs + " runs.", "");
    table(["link", "device msg/s", "mqtt.js msg/s", "device / mqtt.js", "device p50 ms", "mqtt.js p50 ms", "device p99 ms", "mqtt.js p99 ms"], rows);
  });

  await section("boot", async () => {
    const plain = await buildFor(["sim"], {}, true);
    const secure = await buildFor(["sim"], { port: broker.tlsPort!, tls: true }, true);
    const p = summarize(await repeat(runs, () => bootToFirstPuback(plain.sim)));
    const t = summarize(await repeat(runs, () => bootToFirstPuback(secure.sim)));
    results.boot = { plainMs: p, tlsMs: t };
    md.push("### Boot to first PUBACK in the simulator (ms)", "");
    table(["link", "ms"], [["plain", formatFigure(p)], ["TLS", formatFigure(t)]]);
  });

  await section("codec", async () => {
    const payload = '{"ts":1764300000000,"values":{"temperature":21.53,"humidity":44.1}}';
    const count = 20000;
    const ours = () => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) {
        const bytes = encodePublish(V1_TOPIC, utf8Encode(payload), 1, (i % 65535) + 1, false);
        // As the session frames a read: the packet's length, then the packet.
        decodePacket(bytes, 0, packetLength(bytes, 0, bytes.length, 70000));
      }
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const theirs = () => {
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) parser.parse(mqttPacket.generate({ cmd: "publish", topic: V1_TOPIC, payload, qos: 1, messageId: (i % 65535) + 1, dup: false, retain: false }));
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    ours();
    theirs();
    const o: number[] = [];
    const b: number[] = [];
    for (let run = 0; run < runs; run++) {
      o.push(ours());
      b.push(theirs());
    }
    const os = summarize(o);
    const bs = summarize(b);
    results.codec = { messages: count, firmwareMs: os, mqttPacketMs: bs };
    md.push("### MQTT codec in Node: encode + decode of " + count + " telemetry PUBLISH (ms)", "");
    table(["codec", "ms", "ratio to mqtt-packet"], [["firmware", formatFigure(os, 1), ratio(os.median, bs.median)], ["mqtt-packet", formatFigure(bs, 1), "1.00"]]);
  });
} finally {
  await broker.stop();
}

// A partial run (--only) keeps the other sections of the previous results, each with the
// date and revision it was measured at.
const resultsFile = join(ROOT, "bench/results.json");
const previous = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>) : null;
const measuredAt: Record<string, string> = {};
for (const name of SECTIONS) {
  const old = previous?.sections as Record<string, { markdown: string[]; measuredAt: string }> | undefined;
  if (sectionMarkdown[name]) measuredAt[name] = (results.date as string).slice(0, 10) + ", revision " + results.revision;
  else if (old?.[name] && previous?.[name] !== undefined) {
    results[name] = previous[name];
    sectionMarkdown[name] = old[name].markdown;
    measuredAt[name] = old[name].measuredAt;
  }
}
results.sections = Object.fromEntries(Object.keys(sectionMarkdown).map((name) => [name, { markdown: sectionMarkdown[name], measuredAt: measuredAt[name] }]));
const body = SECTIONS.flatMap((name) => {
  const lines = sectionMarkdown[name] ?? [];
  return lines.length > 0 && measuredAt[name] !== (results.date as string).slice(0, 10) + ", revision " + results.revision ? [...lines, "(measured " + measuredAt[name] + ")", ""] : lines;
});
const header = ["## Benchmarks", "", "`npm run bench`, " + (results.date as string).slice(0, 10) + ", revision " + results.revision + ", " + results.machine + ".", ""];
mkdirSync(join(ROOT, "bench"), { recursive: true });
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + "\n");
writeFileSync(join(ROOT, "bench/results.md"), [...header, ...body].join("\n"));
console.log([...header, ...body].join("\n"));
console.log("written: bench/results.json, bench/results.md");
