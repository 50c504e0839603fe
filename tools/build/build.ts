// Builds one image per board and runtime:
//   dist/espruino/<board>.js   one minified, self-contained script for Espruino
//   dist/espruino/<board>.ca.der  its root CA, for Storage (the image reads it from there)
//   dist/moddable/<board>/     manifest.json, main.js (ES module), ca-root.der
// plus a size report (raw, minified, gzip bytes) printed and written as JSON.
//
//   tsx tools/build/build.ts [--board NAME]... [--out DIR] [--config device.local.json]

import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { parseCommandLine } from "./command-line";
import { rollup } from "rollup";
import type { RollupLog } from "rollup";
import { minify } from "terser";
import ts from "typescript";
import type { DeviceConfig } from "../../firmware/config.ts";
import type { Board, Runtime, SensorModel } from "./boards.ts";
import { ConfigError, featureFactories, loadBoard, loadBoards } from "./boards.ts";
import { caFileFor, loadCa } from "./ca.ts";
import type { DeviceSettings } from "./config.ts";
import { FIRMWARE_DEFAULTS, deviceConfigFor, resolveSettings } from "./config.ts";
import { FIRMWARE_TITLE } from "../../firmware/thingsboard/attributes.ts";
import { moddableManifest, MODDABLE_HOST_STUBS, MODDABLE_SENSOR_DRIVERS } from "./moddable-manifest.ts";
import { imageOptions, MODDABLE_TERSER } from "../../rollup.config.mjs";
import { BUILD_ID_PLACEHOLDER } from "./boot-loader.mjs";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface SizeReport {
  board: string;
  runtime: Runtime;
  file: string;
  raw: number;
  minified: number;
  gzip: number;
}

/** Driver module and factory per sensor model: only the board's drivers are linked. */
const SENSOR_FACTORIES: Record<SensorModel, [string, string]> = {
  sht3x: ["sht3x.ts", "createSht3x"],
  sht4x: ["sht4x.ts", "createSht4x"],
  bme280: ["bme280.ts", "createBme280"],
  bmp280: ["bme280.ts", "createBmp280"],
  ds18b20: ["ds18b20.ts", "createDs18b20"],
  ntc: ["ntc.ts", "createNtc"],
  internal: ["internal.ts", "createInternal"],
  simulated: ["simulated.ts", "createSimulated"],
};

/** Platform members only some sensors need: [member, Espruino export, Moddable export (file moddable-io.ts)]. */
const SENSOR_PLATFORM: Partial<Record<SensorModel, [string, string, string | null]>> = {
  ds18b20: ["oneWire", "espruinoOneWire", "moddableOneWire"],
  // Moddable reads the ADC through its own NTC driver (MODDABLE_SENSOR_DRIVERS).
  ntc: ["analogRead", "espruinoAnalogRead", null],
  internal: ["chipTemperature", "espruinoChipTemperature", null],
};

/** The configuration as a source literal. */
function configSource(config: DeviceConfig, features: string[]): string {
  const read = { ...config };
  // Only what the image reads: the boot loader has the confirmation time.
  delete (read as { otaConfirmMs?: number }).otaConfirmMs;
  if (!features.includes("ota")) delete (read as { otaChunkBytes?: number }).otaChunkBytes;
  if (!features.includes("sleep")) delete (read as { awakeMaxMs?: number }).awakeMaxMs;
  return JSON.stringify(read);
}

function entrySource(runtime: Runtime, board: Board, config: DeviceConfig, bootLoader?: { confirmMs: number }): string {
  const platformFile = runtime === "espruino" ? "espruino.ts" : "moddable.ts";
  const platformObject = runtime === "espruino" ? "espruinoPlatform" : "moddablePlatform";
  const models = [...new Set(board.sensors.map((sensor) => sensor.model))];
  // Moddable's own drivers where it has one: the factory is made in the entry from the driver and IO classes.
  const moddableDrivers = runtime === "moddable" ? models.filter((model) => MODDABLE_SENSOR_DRIVERS[model]) : [];
  const factoryName = (model: SensorModel) => (moddableDrivers.includes(model) ? model + "Factory" : SENSOR_FACTORIES[model][1]);
  const ioClasses = [...new Set(moddableDrivers.map((model) => MODDABLE_SENSOR_DRIVERS[model]![2]))];
  const driverImports = moddableDrivers.length === 0 ? [] : [
    ...ioClasses.map((io, i) => `import Io${i} from ${JSON.stringify(io)};`),
    `import { ${moddableDrivers.map((model) => MODDABLE_SENSOR_DRIVERS[model]![3]).join(", ")} } from ${JSON.stringify(join(ROOT, "firmware/platform/moddable-sensors.ts"))};`,
    ...moddableDrivers.map((model, i) => {
      const [driver, , io, adapter] = MODDABLE_SENSOR_DRIVERS[model]!;
      return `import Driver${i} from ${JSON.stringify(driver)};\nconst ${factoryName(model)} = ${adapter}(Driver${i}, Io${ioClasses.indexOf(io)});`;
    }),
  ];
  // Platform members for the board's OneWire, ADC or chip sensors, from the runtime's adapter.
  const sensorPlatform = models.flatMap((model) => {
    const entry = SENSOR_PLATFORM[model];
    if (!entry || moddableDrivers.includes(model)) return [];
    const name = runtime === "espruino" ? entry[1] : entry[2];
    if (name === null) throw new ConfigError(board.file + ": " + model + " is not available on " + runtime);
    return [[entry[0], name]];
  });
  const sensorPlatformFile = runtime === "espruino" ? platformFile : "moddable-io.ts";
  // Both runtimes have every feature (Moddable's updates are mods).
  const featureNames = board.features;
  const features = featureFactories(featureNames);
  // The runtime's facts (client attributes) are linked only with the attributes feature.
  const facts = board.features.includes("attributes") ? (runtime === "espruino" ? "espruinoFacts" : "moddableFacts") : null;
  // Flash files for updates only where the ota feature is; deep sleep only where the sleep feature is.
  const updates = featureNames.includes("ota");
  const files = updates && runtime === "espruino" ? ["espruinoFileWrite", "espruinoFileDigest"] : [];
  if (featureNames.includes("sleep")) files.push("espruinoDeepSleep");
  // Moddable: the update is a mod in the "xs" partition, run by the flashed firmware as its host.
  const moddableUpdates = updates && runtime === "moddable";
  const moddableUpdate = join(ROOT, "firmware/platform/moddable-update.ts");
  return [
    `import { main } from ${JSON.stringify(join(ROOT, "firmware/main.ts"))};`,
    `import { ${[platformObject, ...(facts ? [facts] : []), ...files].join(", ")} } from ${JSON.stringify(join(ROOT, "firmware/platform", platformFile))};`,
    `${platformObject}.hasWifi = ${board.wifi};`,
    ...(facts ? [`${platformObject}.facts = ${facts};`] : []),
    ...(updates && runtime === "espruino" ? [`${platformObject}.fileWrite = espruinoFileWrite;`, `${platformObject}.fileDigest = espruinoFileDigest;`] : []),
    ...(moddableUpdates
      ? [
          `import { moddableBoot, moddableUpdateFiles, runUpdate, UPDATE_MODULE } from ${JSON.stringify(moddableUpdate)};`,
          `import Flash from "flash";`,
          `import { Digest } from "crypt";`,
          `import Modules from "modules";`,
          `moddableUpdateFiles(${platformObject}, () => new Flash("xs"), Digest);`,
        ]
      : []),
    ...(featureNames.includes("sleep") ? [`${platformObject}.deepSleep = espruinoDeepSleep;`] : []),
    ...(sensorPlatform.length ? [`import { ${sensorPlatform.map(([, name]) => name).join(", ")} } from ${JSON.stringify(join(ROOT, "firmware/platform", sensorPlatformFile))};`] : []),
    ...sensorPlatform.map(([member, name]) => `${platformObject}.${member} = ${name};`),
    ...models.filter((model) => !moddableDrivers.includes(model)).map((model) => `import { ${SENSOR_FACTORIES[model][1]} } from ${JSON.stringify(join(ROOT, "firmware/sensors", SENSOR_FACTORIES[model][0]))};`),
    ...driverImports,
    ...features.map(([file, name]) => `import { ${name} } from ${JSON.stringify(join(ROOT, "firmware", file))};`),
    `import { errorText } from ${JSON.stringify(join(ROOT, "firmware/util/log.ts"))};`,
    // The flashed firmware runs its update, if there is one to run; the update's own copy
    // of this entry sees tbImage set and starts.
    ...(moddableUpdates
      ? [
          `const tbUpdate = typeof tbImage == "string" ? "" : moddableBoot(${platformObject}, Modules.has(UPDATE_MODULE), ${JSON.stringify(BUILD_ID_PLACEHOLDER)}, ${bootLoader!.confirmMs});`,
          `if (tbUpdate) runUpdate(${platformObject}, tbUpdate, () => Modules.importNow(UPDATE_MODULE));`,
          `else try {`,
        ]
      : [`try {`]),
    `  main(${platformObject}, ${configSource(config, featureNames)}, [${board.sensors.map((sensor) => factoryName(sensor.model)).join(", ")}], [${features.map(([, name]) => name).join(", ")}]);`,
    // Members used only while starting (the sensors open their bus, features add console
    // commands), or only by a feature the board has not (setClock: clock): on Espruino each
    // would be JsVars for the whole run.
    ...(runtime === "espruino" ? [`  delete ${platformObject}.i2c;`, `  delete ${platformObject}.command;`] : []),
    ...(runtime === "espruino" && !featureNames.includes("clock") ? [`  delete ${platformObject}.setClock;`] : []),
    `} catch (e) {`,
    `  ${platformObject}.log("[E][boot] start-up failed: " + errorText(e));`,
    // An update that cannot start goes back to the boot loader, which rolls it back.
    ...(updates ? [`  if (typeof tbImage == "string" && tbImage) throw e;`] : []),
    `}`,
    "",
  ].join("\n");
}

const typeChecked = new Set<string>();

/** Type-checks the project of `tsconfig` once per process; throws with every diagnostic. */
export function typeCheck(tsconfig: string): void {
  if (typeChecked.has(tsconfig)) return;
  const parsed = ts.getParsedCommandLineOfConfigFile(tsconfig, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new ConfigError(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  if (!parsed) throw new ConfigError(tsconfig + ": cannot read");
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) {
    const text = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => process.cwd(),
      getNewLine: () => "\n",
    });
    throw new ConfigError("the firmware does not type-check:\n" + text.trim());
  }
  typeChecked.add(tsconfig);
}

/** Rollup's log handler for an image: any warning fails the build. */
function collectProblems(problems: string[]) {
  return (level: string, log: RollupLog) => {
    if (log.plugin === "typescript" || log.code === "PLUGIN_WARNING") problems.push(log.message);
    else if (level === "warn") problems.push((log.code ?? "") + ": " + log.message);
  };
}

/**
 * Bundles `source` (the generated entry) with the TypeScript it imports, with the options
 * of rollup.config.mjs; fails on any type error. Returns the raw bundle and the image
 * (Espruino: minified; Moddable: the raw bundle, with its build id if it updates itself).
 */
export async function bundleSource(
  runtime: Runtime,
  source: string,
  include: string[] = [join(ROOT, "firmware/**/*.ts")],
  tsconfig: string = join(ROOT, "tsconfig.json"),
  readable = false,
  topics: "v1" | "v2" = "v1",
  bootLoader?: { confirmMs: number }
): Promise<{ raw: string; image: string }> {
  typeCheck(tsconfig);
  const problems: string[] = [];
  const options = imageOptions({ runtime, entrySource: source, tsconfig, include, readable, topics, bootLoader, onLog: collectProblems(problems) });
  let build;
  try {
    build = await rollup(options);
  } catch (e) {
    throw new ConfigError("the firmware does not type-check or bundle cleanly:\n  " + [...problems, (e as Error).message].join("\n  "));
  }
  const raw = (await build.generate({ ...options.output, file: undefined, plugins: [] })).output[0].code;
  // Espruino's output plugins minify; Moddable's image is the raw bundle, with its build id when it updates itself.
  const image = runtime === "espruino" || bootLoader ? (await build.generate({ ...options.output, file: undefined })).output[0].code : raw;
  await build.close();
  // TypeScript 6 prints type errors as warnings and still emits: never ship that.
  if (problems.length > 0) throw new ConfigError("the firmware does not type-check or bundle cleanly:\n  " + problems.join("\n  "));
  return { raw, image };
}

export interface BuildOptions {
  /** Board names under boards/, or paths to board files (ending .json); [] for every board. */
  boards: string[];
  outDir: string;
  settings: DeviceSettings;
  version: string;
  quiet?: boolean;
  /** Debug log lines ([D]) in the image, e.g. one per delivered message. */
  debug?: boolean;
  /** Unmangled, indented Espruino output for reading stack traces. */
  readable?: boolean;
  /** Session timing and queue sizes other than the defaults (tests: a short keep-alive and backoff). */
  firmware?: Partial<typeof FIRMWARE_DEFAULTS>;
}

/**
 * Writes a file that may hold the access token, the Wi-Fi password or the provisioning
 * secret (an image, a Moddable manifest) readable by its owner only, also when it existed.
 */
export function writeSecretFile(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export async function buildImages(options: BuildOptions): Promise<SizeReport[]> {
  const boards = options.boards.length === 0 ? loadBoards(join(ROOT, "boards")) : options.boards.map((b) => loadBoard(b.endsWith(".json") ? resolve(b) : join(ROOT, "boards", b + ".json")));
  const caPath = resolve(ROOT, options.settings.ca);
  const ca = loadCa(caPath, options.settings.ca);
  const reports: SizeReport[] = [];
  const otaPackages: OtaPackage[] = [];
  // A board that cannot be configured (no token, say) does not stop the others.
  const problems: string[] = [];
  for (const board of boards) {
    for (const runtime of board.runtimes) {
      let config: DeviceConfig;
      try {
        config = { ...deviceConfigFor(board, options.settings, options.version, options.debug === true), ...options.firmware };
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (!problems.includes(e.message)) problems.push(e.message);
        // Never leave an older image around to be flashed by mistake.
        rmSync(join(options.outDir, "espruino", board.name + ".js"), { force: true });
        rmSync(join(options.outDir, "espruino", board.name + ".ca.der"), { force: true });
        rmSync(join(options.outDir, "moddable", board.name), { recursive: true, force: true });
        continue;
      }
      const updates = board.features.includes("ota");
      const bootLoader = updates ? { confirmMs: options.firmware?.otaConfirmMs ?? FIRMWARE_DEFAULTS.otaConfirmMs } : undefined;
      const { raw, image } = await bundleSource(runtime, entrySource(runtime, board, config, bootLoader), undefined, undefined, options.readable === true, options.settings.topics, bootLoader);
      if (runtime === "espruino") {
        const minified = image.trimEnd();
        const file = join(options.outDir, "espruino", board.name + ".js");
        mkdirSync(dirname(file), { recursive: true });
        writeSecretFile(file, minified + "\n");
        // Not in the image: npm run flash writes it to Storage (CA_FILE), where the image reads it.
        writeFileSync(caFileFor(file), ca.der);
        if (updates) otaPackages.push(writeOtaPackage(file, Buffer.from(minified + "\n"), options.version));
        reports.push({ board: board.name, runtime, file, raw: Buffer.byteLength(raw), minified: Buffer.byteLength(minified), gzip: gzipSync(minified).length });
      } else {
        const dir = join(options.outDir, "moddable", board.name);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        // XS compiles modules to bytecode, so ship readable source for xsbug; report the minified size too.
        writeSecretFile(join(dir, "main.js"), image);
        writeFileSync(join(dir, "ca-root.der"), ca.der);
        for (const [name, source] of Object.entries(MODDABLE_HOST_STUBS)) writeFileSync(join(dir, name + ".js"), source);
        writeSecretFile(join(dir, "manifest.json"), JSON.stringify(moddableManifest(board, options.settings), null, 2) + "\n");
        const minified = (await minify(image, MODDABLE_TERSER)).code ?? "";
        reports.push({ board: board.name, runtime, file: join(dir, "main.js"), raw: Buffer.byteLength(raw), minified: Buffer.byteLength(minified), gzip: gzipSync(minified).length });
      }
    }
  }
  mkdirSync(options.outDir, { recursive: true });
  writeSizeReport(join(options.outDir, "size-report.json"), reports);
  if (!options.quiet) {
    printSizes(reports, ca.subject);
    for (const p of otaPackages) console.log("OTA package: " + relative(process.cwd(), p.file) + "  title " + p.title + "  version " + p.version + "  " + p.size + " B  SHA256 " + p.sha256);
  }
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
  return reports;
}

/** What to upload to ThingsBoard as an OTA package (Advanced features > OTA updates). */
export interface OtaPackage {
  file: string;
  title: string;
  version: string;
  size: number;
  sha256: string;
}

/**
 * Describes a package (an Espruino image, a Moddable mod archive) in `<name>.ota.json`
 * beside it: the file itself is the package; the title and version go in ThingsBoard's
 * form. `extra`: more fields for the description (the mod's platform).
 */
export function writeOtaPackage(file: string, bytes: Buffer, version: string, extra: Record<string, string> = {}): OtaPackage {
  const ota: OtaPackage = { file, title: FIRMWARE_TITLE, version, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
  writeFileSync(file.replace(/\.[^./]+$/, ".ota.json"), JSON.stringify({ ...ota, file: basename(file), checksumAlgorithm: "SHA256", ...extra }, null, 2) + "\n");
  return ota;
}

/** Updates the report in place: a build of some boards keeps the other boards' rows. */
function writeSizeReport(file: string, reports: SizeReport[]): void {
  let rows: SizeReport[] = [];
  if (existsSync(file)) {
    try {
      rows = JSON.parse(readFileSync(file, "utf8")) as SizeReport[];
    } catch {
      rows = [];
    }
  }
  const key = (r: SizeReport) => r.runtime + "/" + r.board;
  const fresh = new Set(reports.map(key));
  rows = rows.filter((r) => !fresh.has(key(r)) && existsSync(r.file)).concat(reports);
  rows.sort((a, b) => a.board.localeCompare(b.board) || a.runtime.localeCompare(b.runtime));
  writeFileSync(file, JSON.stringify(rows, null, 2) + "\n");
}

function printSizes(reports: SizeReport[], caSubject: string): void {
  console.log("CA: " + caSubject);
  console.log("image".padEnd(34) + "raw".padStart(9) + "minified".padStart(10) + "gzip".padStart(8));
  for (const r of reports) {
    console.log((r.runtime + "/" + r.board).padEnd(34) + String(r.raw).padStart(9) + String(r.minified).padStart(10) + String(r.gzip).padStart(8));
  }
}

/** One image's rollup options, for `BOARD=... RUNTIME=... npx rollup -c` (see rollup.config.mjs). */
export function rollupOptionsFor(boardName: string, runtime: string) {
  if (runtime !== "espruino" && runtime !== "moddable") throw new ConfigError("RUNTIME=" + runtime + ": expected espruino or moddable");
  const board = loadBoard(join(ROOT, "boards", boardName + ".json"));
  if (!board.runtimes.includes(runtime)) throw new ConfigError("boards/" + boardName + ".json does not list the runtime " + runtime);
  const settings = resolveSettings(process.env, resolve(ROOT, "device.local.json"));
  const config = deviceConfigFor(board, settings, packageVersion(), false);
  const ca = loadCa(resolve(ROOT, settings.ca), settings.ca);
  const tsconfig = join(ROOT, "tsconfig.json");
  typeCheck(tsconfig);
  const file = runtime === "espruino" ? join(ROOT, "dist/espruino", board.name + ".js") : join(ROOT, "dist/moddable", board.name, "main.js");
  // The CA goes beside the image, as npm run build writes it (npm run flash puts both on the board).
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(runtime === "espruino" ? caFileFor(file) : join(dirname(file), "ca-root.der"), ca.der);
  const bootLoader = board.features.includes("ota") ? { confirmMs: FIRMWARE_DEFAULTS.otaConfirmMs } : undefined;
  return imageOptions({ runtime, entrySource: entrySource(runtime, board, config, bootLoader), tsconfig, include: [join(ROOT, "firmware/**/*.ts")], topics: settings.topics, file, bootLoader });
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
}

async function cli(): Promise<void> {
  const { values } = parseCommandLine("npm run build", {
    options: {
      board: { type: "string", multiple: true, default: [] },
      out: { type: "string", default: "dist" },
      config: { type: "string", default: "device.local.json" },
      readable: { type: "boolean", default: false },
    },
  });
  const outDir = resolve(ROOT, values.out as string);
  try {
    // --config none: environment only (the test build must not pick up a developer's file).
    const settings = resolveSettings(process.env, values.config === "none" ? null : resolve(ROOT, values.config as string));
    await buildImages({ boards: values.board as string[], outDir, settings, version: packageVersion(), readable: values.readable as boolean });
    console.log("size report: " + join(values.out as string, "size-report.json"));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error("build failed: " + e.message);
      process.exit(1);
    }
    throw e;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await cli();
