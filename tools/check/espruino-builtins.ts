// What Espruino 2v2x lacks, in one place for the static check (which rejects uses) and the
// simulator (which removes them from its sandbox). From ../shared/reference/
// espruino-runtime.md and measured on the 2v29 interpreter (e.g. Math.imul, RangeError).

/** Globals that do not exist. */
export const MISSING_GLOBALS = [
  "Map", "Set", "WeakMap", "WeakSet", "WeakRef", "FinalizationRegistry", "Symbol", "Reflect", "Proxy",
  "BigInt", "BigInt64Array", "BigUint64Array", "TextEncoder", "TextDecoder", "RangeError", "AggregateError",
  "queueMicrotask", "structuredClone", "SharedArrayBuffer", "Atomics", "Intl", "WebAssembly",
];

/** Static members that do not exist, by constructor. */
export const MISSING_STATICS: Record<string, string[]> = {
  Array: ["from", "of"],
  Object: ["freeze", "isFrozen", "seal"],
  Number: ["isInteger", "isNaN", "isFinite", "isSafeInteger", "parseFloat", "parseInt", "EPSILON"],
  Math: ["trunc", "imul", "log2", "log10", "hypot", "fround", "clz32", "cbrt", "expm1", "log1p"],
  Promise: ["race", "allSettled", "any"],
  String: ["raw"],
  Uint8Array: ["from", "of"],
};

/** Instance methods that do not exist, by the constructor whose prototype would hold them. */
export const MISSING_METHODS: Record<string, string[]> = {
  Array: ["flat", "flatMap"],
  String: ["trimStart", "trimEnd", "codePointAt"],
  Promise: ["finally"],
  Number: ["toPrecision"],
};

/** Script that deletes all of the above from a V8 context (run inside it). */
export function removalScript(): string {
  return `(function () {
  var g = globalThis;
  ${JSON.stringify(MISSING_GLOBALS)}.forEach(function (n) { delete g[n]; });
  var statics = ${JSON.stringify(MISSING_STATICS)};
  Object.keys(statics).forEach(function (k) { statics[k].forEach(function (m) {
    delete g[k][m];
    // Typed arrays inherit from/of from %TypedArray%: shadow them too.
    if (g[k][m] !== undefined) g[k][m] = undefined;
  }); });
  var methods = ${JSON.stringify(MISSING_METHODS)};
  Object.keys(methods).forEach(function (k) { methods[k].forEach(function (m) { delete g[k].prototype[m]; }); });
})();`;
}
