// Image sizes (raw, minified, gzip) of every board's images, and what each firmware
// module costs minified on its own (TypeScript -> ES2019 -> terser with the image's settings).

import { readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { minify } from "terser";
import ts from "typescript";
import { ESPRUINO_TERSER } from "../../rollup.config.mjs";
import { ROOT } from "../build/build.ts";
import { firmwareFiles } from "../check/check-names.ts";

export interface ModuleSize {
  module: string;
  minified: number;
}

/** Every firmware module minified alone, largest first. Module-level names count as in the image. */
export async function moduleSizes(): Promise<ModuleSize[]> {
  const sizes: ModuleSize[] = [];
  for (const file of firmwareFiles(join(ROOT, "firmware")).filter((f) => !f.endsWith(".d.ts"))) {
    const output = ts.transpileModule(readFileSync(file, "utf8"), {
      compilerOptions: { target: ts.ScriptTarget.ES2019, module: ts.ModuleKind.ESNext, useDefineForClassFields: false },
    }).outputText;
    const code = (await minify(output, { ...ESPRUINO_TERSER, module: true, toplevel: true })).code ?? "";
    sizes.push({ module: relative(join(ROOT, "firmware"), file), minified: Buffer.byteLength(code) });
  }
  return sizes.filter((s) => s.minified > 0).sort((a, b) => b.minified - a.minified);
}

export interface BaselineSize {
  raw: number;
  minified: number;
  gzip: number;
  source: string;
}

/** EspruinoDocs' MQTT module: measured when its path is given, else the figure from the reference. */
export async function mqttModuleSize(path: string | undefined): Promise<BaselineSize> {
  if (!path) return { raw: 12830, minified: 5114, gzip: 0, source: "figures from the project's Espruino reference notes; set ESPRUINO_MQTT_MODULE to measure them" };
  const raw = readFileSync(path, "utf8");
  const minified = (await minify(raw, { ecma: 5 })).code ?? "";
  return { raw: Buffer.byteLength(raw), minified: Buffer.byteLength(minified), gzip: gzipSync(minified).length, source: "measured from ESPRUINO_MQTT_MODULE (" + basename(path) + "), minified with terser" };
}
