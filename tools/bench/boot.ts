// Boot to first PUBACK in the simulator: from starting the sim image (built with debug
// lines) to its "[D][queue] delivered" line, against a local mosquitto. Also the helper
// that runs an image in the sandbox until it prints a given line.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { runEspruinoImage } from "../sim/espruino-sandbox.ts";

/** Runs `imagePath` in the sandbox until a console line starts with `prefix`; stops it then. */
export function runUntilLine(imagePath: string, prefix: string, timeoutMs: number): Promise<{ line: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    const started = performance.now();
    const timer = setTimeout(() => {
      sandbox.stop();
      reject(new Error("no line starting with " + JSON.stringify(prefix) + " within " + timeoutMs / 1000 + " s:\n" + lines.join("\n")));
    }, timeoutMs);
    const sandbox = runEspruinoImage({
      imagePath,
      storageDir: mkdtempSync(join(tmpdir(), "tbfw-bench-")),
      onSerial: (line) => {
        lines.push(line);
        if (!line.startsWith(prefix)) return;
        clearTimeout(timer);
        sandbox.stop();
        resolve({ line, elapsedMs: performance.now() - started });
      },
    });
  });
}

export async function bootToFirstPuback(imagePath: string): Promise<number> {
  return (await runUntilLine(imagePath, "[D][queue] delivered", 30000)).elapsedMs;
}
