// The pass before terser that writes the bundle's top-level literal constants where they
// are used (tools/build/inline-constants.mjs): the same program, fewer top-level names.
// Every image test runs images built with it; these pin the cases down.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { inlineConstants } from "../tools/build/inline-constants.mjs";

/** What `code` leaves in `out` when run. */
function outcome(code: string): string {
  const context: Record<string, unknown> = { out: [] };
  runInNewContext(code, context);
  return JSON.stringify(context.out);
}

test("inline constants: strings, numbers and booleans go where they are used, and their declarations go", () => {
  const code = [
    'const TOPIC = "v1/devices/me/telemetry";',
    "const LIMIT = 1000;",
    "const ON = true;",
    "function send(t) { out.push(TOPIC + t, LIMIT.toString(16), ON); }",
    "send(1);",
    "out.push(TOPIC.length, { TOPIC }, { TOPIC: 2 }.TOPIC, [LIMIT][0]);",
  ].join("\n");
  const inlined = inlineConstants(code);
  assert.equal(outcome(inlined), outcome(code));
  assert.doesNotMatch(inlined, /const (TOPIC|LIMIT|ON)\b/);
  // A shorthand property keeps its key; a property named like the constant is no use of it.
  assert.match(inlined, /\{ TOPIC:"v1\/devices\/me\/telemetry" \}/);
  assert.match(inlined, /\{ TOPIC: 2 \}\.TOPIC/);
  // A number in parentheses, so that a method call on it still parses.
  assert.match(inlined, /\(1000\)\.toString\(16\)/);
});

test("inline constants: the top level of rollup's iife is the top level", () => {
  const code = '(function () {\nconst FILE = "tb-boot.json";\nout.push(FILE);\n})();';
  const inlined = inlineConstants(code);
  assert.equal(inlined, '(function () {\n\nout.push("tb-boot.json");\n})();');
  assert.equal(outcome(inlined), outcome(code));
});

test("inline constants: a name declared again anywhere, a let, an object or a constant inside a function is left alone", () => {
  const code = [
    'const A = "top";',
    "function shadow(A) { return A; }",
    'const B = "b";',
    "function other() { const B = 2; return B; }",
    "let C = 1;",
    "const D = [1];",
    "function f() { const E = 5; return E; }",
    "C++;",
    "out.push(A, shadow(3), B, other(), C, D[0], f());",
  ].join("\n");
  const inlined = inlineConstants(code);
  assert.equal(inlined, code);
  assert.equal(outcome(inlined), outcome(code));
});

test("inline constants: a program without such constants is returned as it is", () => {
  const code = "var x = 1; out.push(x);";
  assert.equal(inlineConstants(code), code);
});
