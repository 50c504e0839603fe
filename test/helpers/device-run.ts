// Runs a built Espruino image in the sandbox and records its console and every MQTT
// packet it sends (parsed by mqtt-packet, independently of the firmware's codec).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqttPacket from "mqtt-packet";
import type { Packet } from "mqtt-packet";
import { buildImages } from "../../tools/build/build.ts";
import type { BuildOptions, SizeReport } from "../../tools/build/build.ts";
import { runEspruinoImage } from "../../tools/sim/espruino-sandbox.ts";
import type { RunningSandbox, SandboxOptions } from "../../tools/sim/espruino-sandbox.ts";

export interface DeviceRun {
  serial: string[];
  /** The folder that backs the device's flash (Storage). */
  storageDir: string;
  sent: Packet[];
  sandbox: RunningSandbox;
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
  stop(): void;
}

/** Secrets images under test were built or configured with: no device console may show one. */
const SECRETS = new Set<string>();

/** Registers a token, Wi-Fi password or provisioning secret (short placeholders are skipped). */
export function registerSecrets(...values: (string | undefined)[]): void {
  for (const value of values) if (value && value.length >= 6) SECRETS.add(value);
}

/** The registered secrets that `text` shows. */
export function leakedSecrets(text: string): string[] {
  return [...SECRETS].filter((secret) => text.includes(secret));
}

/** buildImages for tests: the settings' secrets are registered, so every device run checks its console for them. */
export function buildTestImages(options: BuildOptions): Promise<SizeReport[]> {
  registerSecrets(options.settings.token, options.settings.wifiPassword, options.settings.provisionSecret);
  return buildImages(options);
}

export function runDevice(imagePath: string, overrides: object | null, extra: Partial<SandboxOptions> = {}): DeviceRun {
  const storageDir = mkdtempSync(join(tmpdir(), "tbfw-storage-"));
  if (overrides !== null) {
    writeFileSync(join(storageDir, "tb-config.json"), JSON.stringify(overrides));
    registerSecrets((overrides as { token?: string }).token);
  }
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
    storageDir,
    sent,
    sandbox,
    waitFor: async (predicate, timeoutMs, what) => {
      const end = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > end) throw new Error("timed out waiting for " + what + "; device console:\n" + serial.join("\n"));
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: () => {
      sandbox.stop();
      // Every run, whatever the test checks: the token, the Wi-Fi password and the provisioning secret never reach the console.
      const leaked = leakedSecrets(serial.join("\n"));
      if (leaked.length > 0) throw new Error(leaked.length + " secret(s) the image was built or configured with on the device console:\n" + serial.join("\n"));
    },
  };
}
