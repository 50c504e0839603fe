// Boot to first PUBACK in the simulator: from starting the sim image (built with debug
// lines) to its "[D][queue] delivered" line, against a local mosquitto.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { runEspruinoImage } from "../espruino-sandbox.ts";

export function bootToFirstPuback(imagePath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    const started = performance.now();
    const timer = setTimeout(() => {
      sandbox.stop();
      reject(new Error("no PUBACK within 30 s:\n" + lines.join("\n")));
    }, 30000);
    const sandbox = runEspruinoImage({
      imagePath,
      storageDir: mkdtempSync(join(tmpdir(), "tbfw-boot-")),
      onSerial: (line) => {
        lines.push(line);
        if (!line.startsWith("[D][queue] delivered")) return;
        clearTimeout(timer);
        sandbox.stop();
        resolve(performance.now() - started);
      },
    });
  });
}
