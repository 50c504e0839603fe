// Three rewrites of the minified Espruino image that terser has no option for. On Espruino
// an image's bytes are RAM when it is loaded from the console, and flash either way.
// - `const` becomes `let`: two bytes each. Espruino scopes them alike (jsparse.c,
//   jspeStatementVar) and only marks a const's variable read-only, which a program that
//   compiled never relies on.
// - A function that says `this` often says it through a one-letter local instead
//   (`let t=this;`): three bytes a use, eleven for the local. A function body's top-level
//   `let` lives in the function's own scope on Espruino (no block scope object), so the
//   local costs one variable while the call runs.
// - The image's wrapper function (`!function(){...}()`, rollup's iife as terser leaves it)
//   goes, and its names become globals: on Espruino a function made in a function's scope
//   keeps a link to that scope, one JsVar (2v29, saved to flash: 100 functions cost 606
//   JsVars inside a function, 502 at the top level), and the image keeps a few hundred
//   functions for its whole run. Its own let and const become var: a let makes the block
//   the image sits in (the boot loader's `if`) a scope that every function declared after
//   it links to (668 JsVars for the same 100). Terser never gives a name one of
//   ESPRUINO_GLOBALS (rollup.config.mjs reserves them), so the image cannot overwrite a
//   runtime global.
// All are checked by the image tests: every test runs the rewritten image.

import { parse } from "acorn";

/**
 * Espruino's global names (2v29 Linux build: Object.getOwnPropertyNames(global)), the
 * ESP32 port's own and every pin name: what the image's top-level names must not be.
 */
export const ESPRUINO_GLOBALS = [
  "quit", "console", "Function", "Object", "JSON", "AES", "Array", "ArrayBuffer", "ArrayBufferView", "Boolean", "DataView",
  "Date", "E", "Error", "File", "Float32Array", "Float64Array", "Graphics", "HIGH", "I2C", "I2C1", "I2C2", "I2C3", "Infinity",
  "Int16Array", "Int32Array", "Int8Array", "InternalError", "LOW", "LoopbackA", "LoopbackB", "Math", "Modules", "NaN",
  "Number", "OneWire", "Pin", "Promise", "ReferenceError", "RegExp", "SPI", "SPI1", "SPI2", "SPI3", "Serial", "Serial1",
  "Serial2", "Serial3", "Serial4", "Serial5", "Serial6", "Server", "Socket", "StorageFile", "String", "SyntaxError",
  "TFMicroInterpreter", "Telnet", "TypeError", "USB", "Uint16Array", "Uint24Array", "Uint32Array", "Uint8Array",
  "Uint8ClampedArray", "Waveform", "analogRead", "analogWrite", "arguments", "atob", "btoa", "changeInterval",
  "clearInterval", "clearTimeout", "clearWatch", "decodeURIComponent", "dgramSocket", "digitalPulse", "digitalRead",
  "digitalWrite", "dump", "echo", "edit", "encodeURIComponent", "eval", "getPinMode", "getSerial", "getTime", "global",
  "globalThis", "httpCRq", "httpCRs", "httpSRq", "httpSRs", "httpSrv", "isFinite", "isNaN", "load", "parseFloat",
  "parseInt", "peek16", "peek32", "peek8", "pinMode", "poke16", "poke32", "poke8", "print", "process", "require", "reset",
  "save", "setBusyIndicator", "setInterval", "setSleepIndicator", "setTime", "setTimeout", "setWatch", "shiftOut", "trace",
  "url", "undefined",
  // The ESP32 port and other boards.
  "ESP32", "NRF", "Bluetooth", "BluetoothDevice", "BluetoothRemoteGATTServer", "BluetoothRemoteGATTService",
  "BluetoothRemoteGATTCharacteristic", "Wifi", "Flash", "LED", "BTN",
  // The global the boot loader sets.
  "tbImage",
  ...Array.from({ length: 100 }, (_, i) => "D" + i),
  ...Array.from({ length: 100 }, (_, i) => "A" + i),
  ...Array.from({ length: 9 }, (_, i) => "LED" + i),
  ...Array.from({ length: 9 }, (_, i) => "BTN" + i),
];

/**
 * Every word Espruino's lexer reads as a keyword (2v29, src/jslex.c). Espruino fails to
 * parse a class whose method has one as its name (`in(){...}`: "Got in expected '}'",
 * thrown when the class is created) and a variable or parameter named `of` or `static`,
 * so terser must never make such a name (rollup.config.mjs reserves them).
 * Property access (`o.in`) and object literal keys are fine.
 */
export const ESPRUINO_KEYWORDS = [
  "if", "else", "do", "while", "for", "break", "continue", "function", "return", "var", "let", "const", "this",
  "throw", "try", "catch", "finally", "true", "false", "null", "undefined", "new", "in", "instanceof", "switch",
  "case", "default", "delete", "typeof", "void", "debugger", "class", "extends", "super", "static", "of",
];

/** A function that uses `this` fewer times than this keeps it: the local would not pay. */
const MIN_THIS_USES = 4;
const LETTERS = "tesinorlaucfhdpmgbvywkxjqzTESINORLAUCFHDPMGBVYWKXJQZ_$";

/** @typedef {{ type: string, start: number, end: number, [key: string]: any }} Node */

/** @param {Node} node @param {(child: Node) => void} visit called with each child node */
function children(node, visit) {
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (item && typeof item.type === "string") visit(item);
    } else if (value && typeof value.type === "string") visit(value);
  }
}

/** @param {Node} node */
function isOwnThisFunction(node) {
  return node.type === "FunctionExpression" || node.type === "FunctionDeclaration";
}

/**
 * The `this` of `fn` (arrows share it; other functions have their own) and every
 * identifier written anywhere inside it, nested functions included.
 * @param {Node} fn
 */
function thisUses(fn) {
  /** @type {Node[]} */
  const uses = [];
  /** @type {Set<string>} */
  const names = new Set();
  /** @param {Node} node @param {boolean} own */
  const walk = (node, own) => {
    if (node.type === "ThisExpression" && own) uses.push(node);
    if (node.type === "Identifier") names.add(node.name);
    children(node, (child) => walk(child, own && !isOwnThisFunction(child)));
  };
  for (const param of fn.params) walk(param, false);
  walk(fn.body, true);
  return { uses, names };
}

/**
 * The edits that take the wrapper function away, or none when the program is not one
 * wrapped call. Throws when the wrapper's body depends on being a function.
 * @param {Node} program
 * @returns {{ at: number, end: number, text: string, node?: Node }[]}
 */
function unwrapEdits(program) {
  if (program.body.length !== 1 || program.body[0].type !== "ExpressionStatement") return [];
  const statement = program.body[0];
  const call = statement.expression.type === "UnaryExpression" && statement.expression.operator === "!" ? statement.expression.argument : statement.expression;
  if (call.type !== "CallExpression" || call.arguments.length !== 0 || call.callee.type !== "FunctionExpression") return [];
  const wrapper = call.callee;
  if (wrapper.params.length !== 0 || wrapper.id || wrapper.async || wrapper.generator) return [];
  /** @param {Node} node @param {boolean} inArrow */
  const check = (node, inArrow) => {
    const problem =
      node.type === "ThisExpression" ? "this" :
      node.type === "Identifier" && node.name === "arguments" ? "arguments" :
      node.type === "FunctionDeclaration" && ESPRUINO_GLOBALS.includes(node.id.name) ? "a function named " + node.id.name :
      node.type === "ReturnStatement" && !inArrow ? "return" :
      node.type === "VariableDeclarator" && node.id.type === "Identifier" && ESPRUINO_GLOBALS.includes(node.id.name) ? "a variable named " + node.id.name :
      node.type === "ClassDeclaration" && ESPRUINO_GLOBALS.includes(node.id.name) ? "a class named " + node.id.name : "";
    if (problem) {
      throw new Error("shrink: at offset " + node.start + " the image's wrapper function has " + problem + " of its own, which cannot move to the top level (tools/build/shrink.mjs)");
    }
    // A function has its own this, arguments and return: only its name is the wrapper's.
    if (isOwnThisFunction(node)) return;
    children(node, (child) => check(child, inArrow || child.type === "ArrowFunctionExpression"));
  };
  for (const child of wrapper.body.body) check(child, false);
  // Its let and const become var: a let makes the block around it (the boot loader's `if`)
  // a scope, which every function declared after it would link to again.
  const declarations = wrapper.body.body.filter((/** @type {Node} */ s) => s.type === "VariableDeclaration" && s.kind !== "var");
  return [
    { at: statement.start, end: wrapper.body.start + 1, text: "" },
    ...declarations.map((/** @type {Node} */ d) => ({ at: d.start, end: d.start + d.kind.length, text: "var", node: d })),
    { at: wrapper.body.end - 1, end: statement.end, text: "" },
  ];
}

/**
 * @param {string} code a script (the minified image)
 * @returns {string} the same program, shorter
 */
export function shrinkImage(code) {
  const program = /** @type {Node} */ (/** @type {unknown} */ (parse(code, { ecmaVersion: 2020, sourceType: "script" })));
  /** @type {{ at: number, end: number, text: string, node?: Node }[]} */
  const edits = unwrapEdits(program);
  // The wrapper's own const declarations: already made var.
  const madeVar = new Set(edits.flatMap((edit) => (edit.node ? [edit.node] : [])));
  /** @type {Node[]} */
  const superClassMethods = [];
  /** @param {Node} node */
  const visit = (node) => {
    if (node.type === "VariableDeclaration" && node.kind === "const" && !madeVar.has(node)) edits.push({ at: node.start, end: node.start + "const".length, text: "let" });
    if (node.type === "ClassDeclaration" || node.type === "ClassExpression") {
      // A derived constructor cannot touch `this` before super(): leave derived classes alone.
      if (node.superClass) for (const member of node.body.body) superClassMethods.push(member.value);
    }
    if (isOwnThisFunction(node) && !node.generator && node.body.type === "BlockStatement" && !superClassMethods.includes(node)) {
      const { uses, names } = thisUses(node);
      const alias = uses.length >= MIN_THIS_USES ? [...LETTERS].find((letter) => !names.has(letter)) : undefined;
      if (alias !== undefined) {
        edits.push({ at: node.body.start + 1, end: node.body.start + 1, text: "let " + alias + "=this;" });
        for (const use of uses) edits.push({ at: use.start, end: use.end, text: alias });
      }
    }
    children(node, visit);
  };
  visit(program);
  return applyEdits(code, edits);
}

/**
 * `code` with each edit's range [at, end) replaced by its text (ranges do not overlap).
 * @param {string} code
 * @param {{ at: number, end: number, text: string }[]} edits
 * @returns {string}
 */
export function applyEdits(code, edits) {
  edits.sort((a, b) => a.at - b.at || a.end - b.end);
  let result = "";
  let from = 0;
  for (const edit of edits) {
    result += code.slice(from, edit.at) + edit.text;
    from = edit.end;
  }
  return result + code.slice(from);
}
