// npm run bench: throughput of the firmware's MQTT codec against mqtt-packet (the codec
// behind mqtt.js) measured in the same run, reported as a ratio because these machines
// are noisy. Also prints the image sizes from the last build, if any.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import mqttPacket from "mqtt-packet";
import { PacketDecoder, encodePublish } from "../firmware/mqtt/codec.ts";
import { utf8Encode } from "../firmware/util/utf8.ts";
import { ROOT } from "./build.ts";

const TOPIC = "v1/devices/me/telemetry";
const PAYLOAD = '{"ts":1764300000000,"values":{"temperature":21.53,"humidity":44.1}}';
const MESSAGES = 20000;
const ROUNDS = 7;

function ours(): number {
  const decoder = new PacketDecoder(70000);
  let decoded = 0;
  for (let i = 0; i < MESSAGES; i++) {
    decoder.push(encodePublish(TOPIC, utf8Encode(PAYLOAD), 1, (i % 65535) + 1, false));
    while (decoder.next() !== null) decoded++;
  }
  return decoded;
}

function baseline(): number {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let decoded = 0;
  parser.on("packet", () => decoded++);
  for (let i = 0; i < MESSAGES; i++) {
    parser.parse(mqttPacket.generate({ cmd: "publish", topic: TOPIC, payload: PAYLOAD, qos: 1, messageId: (i % 65535) + 1, dup: false, retain: false }));
  }
  return decoded;
}

function timeMs(fn: () => number): number {
  const start = process.hrtime.bigint();
  const count = fn();
  if (count !== MESSAGES) throw new Error("decoded " + count + " of " + MESSAGES);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Warm up both, then alternate rounds so drift in machine load hits both alike.
timeMs(ours);
timeMs(baseline);
const oursMs: number[] = [];
const baselineMs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  oursMs.push(timeMs(ours));
  baselineMs.push(timeMs(baseline));
}
const o = median(oursMs);
const b = median(baselineMs);
console.log("MQTT PUBLISH encode+decode, " + MESSAGES + " telemetry messages, median of " + ROUNDS + " rounds:");
console.log("  firmware codec : " + o.toFixed(1) + " ms");
console.log("  mqtt-packet    : " + b.toFixed(1) + " ms (baseline, same run)");
console.log("  ratio firmware/baseline time: " + (o / b).toFixed(2) + " (below 1 = faster)");

const report = join(ROOT, "dist/size-report.json");
if (existsSync(report)) {
  console.log("\nImage sizes (dist/size-report.json):");
  for (const r of JSON.parse(readFileSync(report, "utf8")) as { runtime: string; board: string; raw: number; minified: number; gzip: number }[]) {
    console.log("  " + (r.runtime + "/" + r.board).padEnd(26) + " minified " + r.minified + " B, gzip " + r.gzip + " B");
  }
}
