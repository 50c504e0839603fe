// Runs a built Espruino image in the sandbox and records its console and every MQTT
// packet it sends (parsed by mqtt-packet, independently of the firmware's codec).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqttPacket from "mqtt-packet";
import type { Packet } from "mqtt-packet";
import { runEspruinoImage } from "../../tools/sim/espruino-sandbox.ts";
import type { RunningSandbox, SandboxOptions } from "../../tools/sim/espruino-sandbox.ts";

export interface DeviceRun {
  serial: string[];
  sent: Packet[];
  sandbox: RunningSandbox;
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
  stop(): void;
}

export function runDevice(imagePath: string, overrides: object | null, extra: Partial<SandboxOptions> = {}): DeviceRun {
  const storageDir = mkdtempSync(join(tmpdir(), "tbfw-storage-"));
  if (overrides !== null) writeFileSync(join(storageDir, "tb-config.json"), JSON.stringify(overrides));
  const serial: string[] = [];
  const sent: Packet[] = [];
  const parsers = new Map<number, ReturnType<typeof mqttPacket.parser>>();
  const sandbox = runEspruinoImage({
    ...extra,
    imagePath,
    storageDir,
    onSerial: (line) => serial.push(line),
    onSocketWrite: (socketId, bytes) => {
      let parser = parsers.get(socketId);
      if (!parser) {
        parser = mqttPacket.parser({ protocolVersion: 4 });
        parser.on("packet", (packet) => sent.push(packet));
        parser.on("error", (e) => serial.push("[test] unparsable bytes from the device: " + e.message));
        parsers.set(socketId, parser);
      }
      parser.parse(bytes);
    },
  });
  return {
    serial,
    sent,
    sandbox,
    waitFor: async (predicate, timeoutMs, what) => {
      const end = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > end) throw new Error("timed out waiting for " + what + "; device console:\n" + serial.join("\n"));
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: () => sandbox.stop(),
  };
}
