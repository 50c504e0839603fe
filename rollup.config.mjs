// Bundling of the firmware: one image per board and runtime. tools/build/build.ts builds every
// board with imageOptions(); this file alone builds one the same way:
//
//   BOARD=sim RUNTIME=espruino npx rollup -c      -> dist/espruino/sim.js
//   BOARD=sim RUNTIME=moddable npx rollup -c      -> dist/moddable/sim/main.js (npm run build
//                                                    also writes its manifest and CA)
//
// The entry is generated per board (its settings, its sensor driver, its features), so
// the default export asks tools/build/build.ts for it through tsx.

import typescript from "@rollup/plugin-typescript";
import terser from "@rollup/plugin-terser";
import { withBootLoader, withBuildId } from "./tools/build/boot-loader.mjs";
import { ESPRUINO_GLOBALS, ESPRUINO_KEYWORDS, shrinkImage } from "./tools/build/shrink.mjs";
import { inlineConstants } from "./tools/build/inline-constants.mjs";

export const ENTRY_ID = "\0tb-entry";

/** Modules the Moddable runtime provides; the bundle imports them. */
export const MODDABLE_EXTERNALS = ["socket", "securesocket", "timer", "preference", "wifi", "sntp", "time", "net", "Resource", "embedded:io/i2c", "embedded:io/analog", "onewire", "tb-restart", "flash", "crypt", "modules"];

/** Moddable's own ECMA-419 sensor drivers, imported by the entries of boards that have those sensors. */
export const MODDABLE_SENSOR_DRIVER = /^embedded:sensor\//;

/**
 * Property names that start with "_" are private to the image and are mangled to one or
 * two letters (tools/check/check-names.ts enforces the convention on the firmware's source).
 * Every other property name survives: it may be JSON, a runtime API or a test's handle.
 */
export const PRIVATE_PROPERTIES = /^_/;

/**
 * Members of the firmware's own interfaces and classes (the device context, the platform, the MQTT
 * session, the queue, the configuration), mangled like private ones: each is one to three
 * letters in the image instead of up to 17, which on Espruino is RAM. A name belongs here
 * only if it never leaves the image: tools/check/check-names.ts fails when one is declared
 * by a runtime or the standard library, written in a string, or a key of an untyped object
 * literal (JSON). Not here: keys that tb-config.json, shared attributes or RPC carry, and
 * names that are also such keys or log tags ("config", "queue", "board", "rateLimits"...).
 */
export const INTERNAL_PROPERTIES = [
  // DeviceContext
  "platform", "session", "settings", "defaults", "applySettings", "topics", "onMessage", "onConnect", "sampleNow",
  "queueReading", "clockSet", "bootAt", "startSession", "remoteConfig", "clientRpc",
  // Platform
  "chipId", "clockIsSet", "clearTimeout", "hasWifi", "wifiConnect", "syncClock", "setClock", "facts",
  "storageRead", "storageWrite", "storageRemove", "fileWrite", "fileDigest", "fileSeal", "oneUpdateSlot", "i2c", "restart", "command",
  "oneWire", "analogRead", "chipTemperature", "socketWrite", "socketClose",
  // Socket handlers, session events
  "socketOpened", "socketData", "socketClosed", "onConnected", "onRoom", "onDisconnected",
  // MqttSession, PacketDecoder
  "state", "inflight", "canPublish", "setPace", "retryDelayMs", "subscribe", "publish", "squeeze",
  // TelemetryQueue
  "setLimits", "flush", "spilledBatches", "deliveredTotal", "droppedCount", "pump",
  // Sensors, SensorConfig
  "sample", "bus", "sensors", "prefix", "beta", "ohms", "seriesOhms", "toGround",
  // DeviceConfig, SessionOptions: what the build sets and nothing overrides
  "firmwareVersion", "clientId", "wifiSsid", "wifiPassword", "keepAliveS", "responseTimeoutMs",
  "backoffMinMs", "backoffMaxMs", "queueCapacity", "spillBatches", "maxInflight", "maxPayloadBytes",
  "dataPointLimits", "watchdogMs", "otaChunkBytes", "progress", "restartReason", "provisionKey", "provisionSecret",
  "setTimeout", "topic", "payload", "qos", "id", "type", "persist", "model", "add", "size", "start", "stop", "register", "update",
];

/** What terser mangles: private names and the internal ones. */
export const MANGLED_PROPERTIES = new RegExp("^(_.*|" + INTERNAL_PROPERTIES.join("|") + ")$");

/**
 * Terser settings that keep the output inside what Espruino runs
 * (../shared/reference/espruino-runtime.md, tools/check/check-espruino.ts):
 * - hoist_funs / hoist_vars off: Espruino hoists neither function declarations nor vars,
 *   so moving them changes what exists when.
 * - inline off: inlining functions produced `var`s read before their declaration ran
 *   ("Function not found" at boot on 2v29).
 * - arrows off: keeps `function` where the source has one (`this` and `arguments`).
 * - ecma 2015: let/const, arrows and classes are fine on Espruino; nothing newer.
 * - toplevel false: the IIFE's own names are mangled anyway. The pass after terser
 *   (tools/build/shrink.mjs) then lifts them to the top level, so mangle.reserved keeps
 *   every Espruino global name (ESPRUINO_GLOBALS) out of them.
 * - mangle.properties.builtins: terser otherwise spares names a browser also has
 *   ("platform", "session", "clearTimeout"); the regex lists only the image's own.
 * - ESPRUINO_KEYWORDS reserved for names and properties: terser may otherwise call a
 *   method `in` or a variable `of`, which is valid JavaScript but not to Espruino's parser.
 * @type {import("terser").MinifyOptions}
 */
export const ESPRUINO_TERSER = {
  ecma: 2015,
  module: false,
  toplevel: false,
  compress: { ecma: 2015, hoist_funs: false, hoist_vars: false, hoist_props: false, inline: false, passes: 2, unsafe: false, arrows: false },
  mangle: { reserved: [...ESPRUINO_GLOBALS, ...ESPRUINO_KEYWORDS], properties: { regex: MANGLED_PROPERTIES, builtins: true, reserved: ESPRUINO_KEYWORDS } },
  format: { ecma: 2015, comments: false },
};

/** @type {import("terser").MinifyOptions} The same, unmangled and indented, for reading stack traces (`npm run build -- --readable`). */
export const ESPRUINO_TERSER_READABLE = {
  ...ESPRUINO_TERSER,
  mangle: false,
  format: { ecma: 2015, comments: false, beautify: true },
};

/** @type {import("terser").MinifyOptions} Moddable ships readable source (XS compiles it to bytecode; xsbug shows it); this only measures. */
export const MODDABLE_TERSER = { ...ESPRUINO_TERSER, module: true };

/** The first statement of every Espruino image (behind the boot loader where there is one). */
export const ESPRUINO_PRETOKENISE = "E.setFlags({pretokenise:1});";

/** @returns {import("rollup").Plugin} Before terser: tools/build/inline-constants.mjs. */
function inlineConstantsPlugin() {
  return { name: "tb-inline-constants", renderChunk: (code) => ({ code: inlineConstants(code), map: null }) };
}

/** @returns {import("rollup").Plugin} After terser: tools/build/shrink.mjs. */
function shrinkPlugin() {
  return { name: "tb-shrink", renderChunk: (code) => ({ code: shrinkImage(code), map: null }) };
}

/**
 * Has Espruino keep the code of the functions it makes from a RAM copy of the image (code
 * loaded into RAM: sent from the IDE or `espruino image.js`) tokenised, keywords as one
 * byte: about 250 fewer peak JsVars for esp32-devkitc on 2v29. Code saved to flash is not
 * affected (functions point into flash; jsparse.c tokenises only code in RAM).
 * @returns {import("rollup").Plugin}
 */
function pretokenisePlugin() {
  return { name: "tb-pretokenise", renderChunk: (code) => ({ code: ESPRUINO_PRETOKENISE + code, map: null }) };
}

/**
 * Puts the boot loader in front of the minified image.
 * @param {number} confirmMs
 * @returns {import("rollup").Plugin}
 */
function bootLoaderPlugin(confirmMs) {
  return { name: "tb-boot-loader", renderChunk: (code) => ({ code: withBootLoader(code, confirmMs), map: null }) };
}

/**
 * Rollup options for one image.
 * @param {{ runtime: "espruino" | "moddable", entrySource: string, tsconfig: string, include: string[],
 *           readable?: boolean, topics?: "v1" | "v2", file?: string, onLog?: import("rollup").LogHandlerWithDefault,
 *           bootLoader?: { confirmMs: number } }} o
 * @returns {import("rollup").RollupOptions & { output: import("rollup").OutputOptions }}
 */
export function imageOptions(o) {
  return {
    input: ENTRY_ID,
    external: o.runtime === "moddable" ? (id) => MODDABLE_EXTERNALS.includes(id) || MODDABLE_SENSOR_DRIVER.test(id) : [],
    plugins: [
      {
        name: "tb-entry",
        // The generated entry; and ThingsBoard's topic set: firmware/thingsboard/topics.ts (v1)
        // or topics-v2.ts (v2 short topics), chosen per build (the TB_TOPICS setting).
        async resolveId(id, importer) {
          if (id === ENTRY_ID) return id;
          if (o.topics !== "v2" || !importer || !/(^|\/)topics$/.test(id)) return null;
          const resolved = await this.resolve(id, importer, { skipSelf: true });
          return resolved && /thingsboard[\\/]topics\.ts$/.test(resolved.id) ? resolved.id.replace(/topics\.ts$/, "topics-v2.ts") : null;
        },
        load: (id) => (id === ENTRY_ID ? o.entrySource : null),
      },
      typescript({
        tsconfig: o.tsconfig,
        // tools/build/build.ts type-checks with the compiler API first and fails on any error;
        // a plugin error thrown here would leave handles open.
        compilerOptions: { noEmit: false, noEmitOnError: false },
        include: o.include,
      }),
    ],
    onLog: o.onLog,
    output: {
      file: o.file,
      format: o.runtime === "espruino" ? "iife" : "es",
      strict: false,
      // Before terser: the literal constants go where they are used. After it: the shrink
      // pass, the pretokenise flag, then the boot loader (tools/build/boot-loader.mjs) in
      // front of Espruino images that update themselves. Moddable images that update
      // themselves get their build id.
      plugins:
        o.runtime === "espruino"
          ? [inlineConstantsPlugin(), terser(o.readable ? ESPRUINO_TERSER_READABLE : ESPRUINO_TERSER), ...(o.readable ? [] : [shrinkPlugin()]), pretokenisePlugin(), ...(o.bootLoader ? [bootLoaderPlugin(o.bootLoader.confirmMs)] : [])]
          : o.bootLoader
            ? [{ name: "tb-build-id", renderChunk: (code) => ({ code: withBuildId(code), map: null }) }]
            : [],
    },
  };
}

export default async function rollupConfig() {
  const board = process.env.BOARD;
  const runtime = process.env.RUNTIME ?? "espruino";
  if (!board) throw new Error("set BOARD (a file in boards/) and RUNTIME (espruino or moddable), e.g. BOARD=sim RUNTIME=espruino npx rollup -c");
  const { tsImport } = await import("tsx/esm/api");
  const build = await tsImport("./tools/build/build.ts", import.meta.url);
  return build.rollupOptionsFor(board, runtime);
}
