// Throughput and PUBACK latency: QoS 1 publishes from the simulated device (the firmware's
// Espruino platform, MQTT session and codec, bundled like an image and run in the
// Espruino sandbox) to a local mosquitto, against mqtt.js publishing the same payloads
// with the same in-flight window to the same broker in the same run.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import mqtt from "mqtt";
import { ROOT, bundleSource } from "../build/build.ts";
import { caFileFor, loadCa } from "../build/ca.ts";
import { runUntilLine } from "./boot.ts";
import { percentile } from "./stats.ts";
import { V1_TOPIC, reading } from "./wire.ts";

export const MESSAGES = 1000;
export const WINDOW = 4;

export interface Throughput {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface Target {
  port: number;
  tls: boolean;
  caFile: string;
}

function benchEntry(target: Target): string {
  const firmware = (path: string) => JSON.stringify(join(ROOT, "firmware", path));
  return `
import { espruinoPlatform } from ${firmware("platform/espruino.ts")};
import { MqttSession } from ${firmware("mqtt/session.ts")};
import { createLogger } from ${firmware("util/log.ts")};
import { utf8Encode } from ${firmware("util/utf8.ts")};
const platform = espruinoPlatform;
const payload = utf8Encode(${JSON.stringify(reading(0))});
const latencies = [];
let sent = 0;
let started = 0;
const log = createLogger(function (line) { if (line.charAt(1) !== "I") console.log(line); }, { logLevel: "info" });
const session = new MqttSession(platform, {
  host: "127.0.0.1", port: ${target.port}, tls: ${target.tls},
  clientId: "bench-device", token: "bench", keepAliveS: 60, responseTimeoutMs: 20000,
  backoffMinMs: 1000, backoffMaxMs: 1000, maxInflight: ${WINDOW + 1}, // one slot stays free for RPC replies: WINDOW for telemetry
}, { onConnected: function () { started = getTime(); pump(); }, onDisconnected: function () {}, onMessage: function () {} }, log, function () { return 0.5; });
function pump() {
  while (sent < ${MESSAGES} && session.canPublish()) {
    const t0 = getTime();
    sent++;
    session.publish(${JSON.stringify(V1_TOPIC)}, payload, 1, function () {
      latencies.push((getTime() - t0) * 1000);
      if (latencies.length === ${MESSAGES}) {
        console.log("BENCH " + JSON.stringify({ seconds: getTime() - started, latencies: latencies }));
        session.stop();
      } else pump();
    });
  }
}
session.start();
`;
}

/** Bundles the device-side bench once per target; returns the image's path. */
export async function buildDeviceBench(target: Target): Promise<string> {
  const { image } = await bundleSource("espruino", benchEntry(target));
  const file = join(mkdtempSync(join(tmpdir(), "tbfw-tput-")), "bench.js");
  writeFileSync(file, image);
  // The root CA beside the image, as npm run build writes it: the sandbox puts it in Storage.
  if (target.tls) writeFileSync(caFileFor(file), loadCa(target.caFile).der);
  return file;
}

export async function runDeviceBench(imagePath: string): Promise<Throughput> {
  const { line } = await runUntilLine(imagePath, "BENCH ", 120000);
  const result = JSON.parse(line.slice(6)) as { seconds: number; latencies: number[] };
  return { perSecond: MESSAGES / result.seconds, p50Ms: percentile(result.latencies, 50), p99Ms: percentile(result.latencies, 99) };
}

/** mqtt.js, same broker, payload, QoS and window. */
export async function runMqttJsBench(target: Target): Promise<Throughput> {
  const client = mqtt.connect((target.tls ? "mqtts" : "mqtt") + "://127.0.0.1:" + target.port, {
    clientId: "bench-mqttjs",
    username: "bench",
    protocolVersion: 4,
    reconnectPeriod: 0,
    ca: target.tls ? readFileSync(target.caFile) : undefined,
    servername: "localhost",
  });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  const payload = Buffer.from(reading(0));
  const latencies: number[] = [];
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    const pump = () => {
      while (sent < MESSAGES && sent - latencies.length < WINDOW) {
        const t0 = performance.now();
        sent++;
        client.publish(V1_TOPIC, payload, { qos: 1 }, () => {
          latencies.push(performance.now() - t0);
          if (latencies.length === MESSAGES) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const seconds = (performance.now() - started) / 1000;
  await client.endAsync();
  return { perSecond: MESSAGES / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}
