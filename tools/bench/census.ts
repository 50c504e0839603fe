// Where an image's JsVars go on the real interpreter: the image runs against a local
// mosquitto over TLS as in the RAM bench (ram.ts), and once it has published for a while
// E.dumpVariables() lists every block in use. The census then says
// - how much is not reachable from the global object (TLS and socket internals, the same
//   for every image, the baseline too);
// - for each global, what only it reaches (a function, a class with its prototype, the
//   device's state through the closures' scopes), and what several share;
// - what functions cost: each function object, its parameter names, its code (saved to
//   flash: one block pointing into flash; loaded into RAM: the text itself, kept for as
//   long as the function lives) and its scope link.
// A diagnostic for the lean-image work, not a figure of the bench: it needs ESPRUINO_BIN
// (README, "Benchmarks") and takes about two minutes (the dump is slow on the console).
//
//   ESPRUINO_BIN=... tsx tools/bench/census.ts [--board esp32-devkitc] [--mode flash|ram]
//       [--readable] [--baseline] [--top 25] [--after 8] [--dump file]
// --readable: the board's readable build (names as in the source, the wrapper function kept),
//   to see what a mangled name of the real image is; its figures differ from the real image's.
// --baseline: the EspruinoDocs MQTT module and its publish loop (ESPRUINO_MQTT_MODULE) instead of a board.
// --dump: also writes the raw dump to `file`.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommandLine } from "../build/command-line";
import { fileURLToPath } from "node:url";

/** One variable of E.dumpVariables(): `id,blocks,flags,name or value,child ids...`. */
export interface DumpedVar {
  id: number;
  blocks: number;
  /** What the dump prints for it: "\"name\"" for a property name, "String \"...\"", "Number 5", "Object", "" ... */
  label: string;
  children: number[];
}

/** The dump's lines between the probe's markers; lines of anything else are skipped. */
export function parseDump(text: string): DumpedVar[] {
  const vars: DumpedVar[] = [];
  for (const line of text.split(/\r?\n/)) {
    const head = /^(\d+),(\d+),(\d+),/.exec(line);
    if (head === null) continue;
    let rest = line.slice(head[0].length);
    let label = "";
    // The label: up to the next comma, or a quoted part (which may hold commas) and what follows it.
    const quote = rest.indexOf("\"");
    const comma = rest.indexOf(",");
    if (quote >= 0 && (comma < 0 || quote < comma)) {
      let end = quote + 1;
      while (end < rest.length && rest[end] !== "\"") end += rest[end] === "\\" ? 2 : 1;
      label = rest.slice(0, end + 1);
      rest = rest.slice(end + 2);
    } else {
      label = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? "" : rest.slice(comma + 1);
    }
    const children = rest.split(",").filter((c) => /^\d+$/.test(c)).map(Number);
    vars.push({ id: Number(head[1]), blocks: Number(head[2]), label, children });
  }
  return vars;
}

export interface GlobalShare {
  name: string;
  /** Blocks only this global reaches (its name included). */
  own: number;
  /** What it is: the start of a function's code, or the kind of value. */
  what: string;
}

export interface RetainedNode {
  /** The property (or variable, or array index) that holds it. */
  name: string;
  /** Blocks freed if this property went: everything reachable only through it. */
  blocks: number;
  depth: number;
}

export interface FunctionCost {
  /** The property or variable that holds it ("?" when none does). */
  name: string;
  /** Its code as the dump prints it (shortened). */
  code: string;
  /** Blocks of its code: 1 when it points into flash. */
  codeBlocks: number;
  params: number;
}

export interface Census {
  total: number;
  /** Not reachable from the global object: runtime internals (TLS, sockets, buffers). */
  unreachable: number;
  reachable: number;
  /** Reached from more than one global (the device's shared state, mostly). */
  shared: number;
  globals: GlobalShare[];
  /** The dominator tree from the global object, by blocks retained: what would go with each property. */
  retained: RetainedNode[];
  functions: { count: number; blocks: number; paramNames: number; codeBlocks: number; scopes: number };
  byCode: FunctionCost[];
}

const CODE = "\"\\xFFcod\"";
const SCOPE = "\"\\xFFsco\"";

export function takeCensus(vars: DumpedVar[]): Census {
  const byId = new Map<number, DumpedVar>();
  for (const v of vars) byId.set(v.id, v);
  const total = vars.reduce((sum, v) => sum + v.blocks, 0);
  const root = vars.find((v) => v.id === 1);
  if (root === undefined) throw new Error("no global object (variable 1) in the dump: is the probe's output complete?");

  // Which globals reach each variable.
  const owners = new Map<number, number>();
  const reachedBy = new Map<number, number[]>();
  for (const nameId of root.children) {
    const seen = new Set<number>([1]);
    const stack = [nameId];
    const reached: number[] = [];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const v = byId.get(id);
      if (v === undefined) continue;
      reached.push(id);
      for (const c of v.children) stack.push(c);
    }
    reachedBy.set(nameId, reached);
    for (const id of reached) owners.set(id, (owners.get(id) ?? 0) + 1);
  }
  let reachable = root.blocks;
  let shared = 0;
  for (const [id, count] of owners) {
    const blocks = byId.get(id)!.blocks;
    reachable += blocks;
    if (count > 1) shared += blocks;
  }

  // Functions: whatever has a code property.
  const holderName = new Map<number, string>();
  for (const v of vars) {
    if (v.label.startsWith("\"") && v.children.length > 0 && !holderName.has(v.children[0])) holderName.set(v.children[0], unquote(v.label));
  }
  const functions = { count: 0, blocks: 0, paramNames: 0, codeBlocks: 0, scopes: 0 };
  const byCode: FunctionCost[] = [];
  const functionCode = new Map<number, string>();
  for (const v of vars) {
    if (!owners.has(v.id)) continue;
    const names = v.children.map((c) => byId.get(c)).filter((c): c is DumpedVar => c !== undefined);
    const codeName = names.find((n) => n.label === CODE);
    if (codeName === undefined) continue;
    const code = byId.get(codeName.children[0]);
    const params = names.filter((n) => n.label.startsWith("\"\\xFF") && n.label !== CODE && n.label !== SCOPE && n.children.length === 0).length;
    functions.count++;
    functions.paramNames += params;
    functions.scopes += names.some((n) => n.label === SCOPE) ? 1 : 0;
    functions.codeBlocks += code ? code.blocks : 0;
    functions.blocks += v.blocks + names.reduce((sum, n) => sum + n.blocks, 0) + (code ? code.blocks : 0);
    const text = code ? code.label.replace(/^String /, "") : "";
    functionCode.set(v.id, text);
    byCode.push({ name: holderName.get(v.id) ?? "?", code: text.slice(0, 60), codeBlocks: code ? code.blocks : 0, params });
  }
  byCode.sort((a, b) => b.codeBlocks - a.codeBlocks);

  const globals: GlobalShare[] = [];
  for (const [nameId, reached] of reachedBy) {
    const name = byId.get(nameId);
    if (name === undefined) continue;
    const own = reached.reduce((sum, id) => sum + (owners.get(id) === 1 ? byId.get(id)!.blocks : 0), 0);
    const value = byId.get(name.children[0]);
    const what = value === undefined ? "" : functionCode.has(value.id) ? "function " + functionCode.get(value.id)!.slice(0, 40) : value.label.slice(0, 40) || "(array or native)";
    globals.push({ name: unquote(name.label), own, what });
  }
  globals.sort((a, b) => b.own - a.own);
  return { total, unreachable: total - reachable, reachable, shared, globals, retained: dominatorTree(byId), functions, byCode };
}

/**
 * Dominators from the global object (Cooper, Harvey and Kennedy's iterative algorithm),
 * then the blocks each name retains: the tree a heap snapshot shows, down to `maxDepth` names.
 */
function dominatorTree(byId: Map<number, DumpedVar>, maxDepth = 4, minBlocks = 8): RetainedNode[] {
  // Reverse postorder from the root.
  const order: number[] = [];
  const index = new Map<number, number>();
  const visited = new Set<number>();
  const stack: [number, number][] = [[1, 0]];
  visited.add(1);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const children = byId.get(top[0])?.children ?? [];
    if (top[1] < children.length) {
      const child = children[top[1]++];
      if (!visited.has(child) && byId.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(top[0]);
    }
  }
  order.reverse();
  order.forEach((id, i) => index.set(id, i));
  const preds = new Map<number, number[]>();
  for (const id of order) for (const c of byId.get(id)!.children) if (index.has(c)) preds.set(c, (preds.get(c) ?? []).concat(id));
  const idom = new Map<number, number>([[1, 1]]);
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (index.get(a)! > index.get(b)!) a = idom.get(a)!;
      while (index.get(b)! > index.get(a)!) b = idom.get(b)!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const id of order.slice(1)) {
      let next: number | undefined;
      for (const p of preds.get(id) ?? []) if (idom.has(p)) next = next === undefined ? p : intersect(p, next);
      if (next !== undefined && idom.get(id) !== next) {
        idom.set(id, next);
        changed = true;
      }
    }
  }
  // Retained blocks: each node's own plus its dominator subtree's, children before parents.
  const size = new Map<number, number>();
  for (const id of order) size.set(id, byId.get(id)!.blocks);
  for (const id of [...order].reverse()) if (id !== 1) size.set(idom.get(id)!, size.get(idom.get(id)!)! + size.get(id)!);
  const kids = new Map<number, number[]>();
  for (const id of order) if (id !== 1) kids.set(idom.get(id)!, (kids.get(idom.get(id)!) ?? []).concat(id));
  const result: RetainedNode[] = [];
  const walk = (id: number, depth: number): void => {
    const children = (kids.get(id) ?? []).filter((c) => size.get(c)! >= minBlocks).sort((a, b) => size.get(b)! - size.get(a)!);
    for (const c of children) {
      const v = byId.get(c)!;
      // Names (properties, variables, array indexes) are the labelled nodes; others are passed through.
      if (v.label.startsWith("\"") || /^\d+$/.test(v.label)) {
        result.push({ name: unquote(v.label), blocks: size.get(c)!, depth: depth });
        if (depth + 1 < maxDepth) walk(c, depth + 1);
      } else if (!byId.get(id)!.label.startsWith("\"")) {
        // Held by several names (an object the closures share): listed under those names.
        const holders = (preds.get(c) ?? []).map((p) => byId.get(p)!).filter((p) => p.label.startsWith("\"")).map((p) => unquote(p.label));
        result.push({ name: "(" + (v.label || "object") + " held as " + [...new Set(holders)].slice(0, 4).join(", ") + ")", blocks: size.get(c)!, depth: depth });
        if (depth + 1 < maxDepth) walk(c, depth + 1);
      } else walk(c, depth);
    }
  };
  walk(1, 0);
  return result;
}

function unquote(label: string): string {
  return label.startsWith("\"") && label.endsWith("\"") ? label.slice(1, -1) : label;
}

/** Added at the end of the image: the dump, between markers, after `afterS` seconds. */
function censusProbe(afterS: number): string {
  return "setTimeout(function(){console.log(\"CENSUS-START \"+process.memory(false).usage);E.dumpVariables();console.log(\"CENSUS-END\");}," + afterS * 1000 + ");";
}

export function formatCensus(census: Census, top: number): string {
  const f = census.functions;
  const lines = [
    "blocks in use: " + census.total,
    "  not reachable from the global object (TLS, sockets, runtime): " + census.unreachable,
    "  reachable: " + census.reachable + ", of which reached from more than one global: " + census.shared,
    "functions: " + f.count + ", " + f.blocks + " blocks with their names, parameter names and code; " + f.paramNames + " parameter names, " + f.codeBlocks + " code blocks, " + f.scopes + " scope links",
    "",
    "globals by the blocks only they reach (top " + top + "):",
    ...census.globals.slice(0, top).map((g) => String(g.own).padStart(6) + "  " + g.name.padEnd(16) + " " + g.what),
    "",
    "retained through each name (dominator tree from the global object, 8 blocks or more):",
    ...census.retained.map((r) => String(r.blocks).padStart(6) + "  " + "  ".repeat(r.depth) + r.name),
    "",
    "functions by code blocks (top " + top + "; 1 = code in flash):",
    ...census.byCode.slice(0, top).map((c) => String(c.codeBlocks).padStart(6) + "  " + (c.name + " (" + c.params + ")").padEnd(20) + " " + c.code),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseCommandLine("census", {
    options: {
      board: { type: "string", default: "esp32-devkitc" },
      mode: { type: "string", default: "flash" },
      baseline: { type: "boolean", default: false },
      readable: { type: "boolean", default: false },
      top: { type: "string", default: "25" },
      after: { type: "string", default: "8" },
      dump: { type: "string" },
    },
  });
  const bin = process.env.ESPRUINO_BIN;
  if (!bin) throw new Error("set ESPRUINO_BIN to an Espruino Linux build (README, \"Benchmarks\")");
  if (values.mode !== "flash" && values.mode !== "ram") throw new Error("--mode is flash or ram, got " + values.mode);
  // Loaded here: the parser above is used by the tests without a broker or a build.
  const { startMosquitto } = await import("../../test/helpers/mosquitto.ts");
  const { buildImages, packageVersion } = await import("../build/build.ts");
  const { loadCa } = await import("../build/ca.ts");
  const { DEFAULT_SETTINGS } = await import("../build/config.ts");
  const { createTlsFiles } = await import("../sim/dev-ca.ts");
  const { WIFI_STAND_IN, baselineImage, measureRam } = await import("./ram.ts");
  const out = mkdtempSync(join(tmpdir(), "tbfw-census-"));
  const tls = createTlsFiles(join(out, "tls"), "tb-firmware census CA");
  const broker = await startMosquitto({ tls });
  try {
    let code: string;
    if (values.baseline) {
      const module = process.env.ESPRUINO_MQTT_MODULE;
      if (!module) throw new Error("--baseline needs ESPRUINO_MQTT_MODULE (the EspruinoDocs MQTT.js)");
      code = (await baselineImage(module, "127.0.0.1", broker.tlsPort!)).code;
    } else {
      await buildImages({
        boards: [values.board!],
        outDir: out,
        settings: { ...DEFAULT_SETTINGS, host: "127.0.0.1", port: broker.tlsPort!, tls: true, token: "bench-token", ca: tls.caCert, wifiSsid: "bench", telemetryIntervalMs: 1000 },
        version: packageVersion(),
        quiet: true,
        readable: values.readable,
      });
      code = readFileSync(join(out, "espruino", values.board + ".js"), "utf8");
    }
    const afterS = Number(values.after);
    const run = await measureRam(bin, WIFI_STAND_IN + code + "\n" + censusProbe(afterS), loadCa(tls.caCert).der, values.mode, afterS + 300, /CENSUS-END/);
    const dump = /CENSUS-START (\d+)([^]*?)CENSUS-END/.exec(run.output);
    if (dump === null) throw new Error("no dump from the interpreter:\n" + run.output.slice(-2000));
    if (values.dump) writeFileSync(values.dump, dump[2]);
    console.log((values.baseline ? "baseline (EspruinoDocs MQTT module)" : values.board + (values.readable ? " (readable build)" : "")) + ", " + (values.mode === "ram" ? "loaded into RAM" : "saved to flash") + ", after " + afterS + " s; peak so far " + run.peak);
    console.log(formatCensus(takeCensus(parseDump(dump[2])), Number(values.top)));
  } finally {
    broker.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error("census: " + (e instanceof Error ? e.message : String(e)));
    process.exit(1);
  });
}
