import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { minify } from "terser";
import { checkSource, formatFinding } from "../tools/check/check-espruino.ts";
import { ESPRUINO_TERSER } from "../rollup.config.mjs";

const fixture = (name: string) => fileURLToPath(new URL("./fixtures/" + name, import.meta.url));

test("every forbidden construct in the fixture is found, on its own line", () => {
  const source = readFileSync(fixture("espruino-forbidden.js"), "utf8");
  const lines = source.split("\n");
  const findings = checkSource(source, "espruino-forbidden.js");
  const expected = lines.flatMap((line, index) => {
    const match = /^\/\/ FORBIDDEN: (.*)$/.exec(line);
    return match ? [{ line: index + 2, construct: match[1] }] : [];
  });
  assert.ok(expected.length >= 30, "fixture lists its constructs");
  for (const { line, construct } of expected) {
    const atLine = findings.filter((f) => f.line === line);
    assert.ok(
      atLine.some((f) => f.construct.startsWith(construct)),
      "line " + line + ": expected \"" + construct + "\", found: " + JSON.stringify(atLine.map((f) => f.construct))
    );
  }
  assert.match(formatFinding(findings[0]), /^espruino-forbidden\.js:\d+:\d+: /);
});

test("constructs Espruino runs are accepted", () => {
  const findings = checkSource(readFileSync(fixture("espruino-allowed.js"), "utf8"), "espruino-allowed.js");
  assert.deepEqual(findings.map(formatFinding), []);
});

test("a syntax error is a finding with its position, not a crash", () => {
  const findings = checkSource("function ok() {}\nfunction broken( {", "broken.js");
  assert.equal(findings.length, 1);
  assert.equal(findings[0].line, 2);
  assert.match(findings[0].construct, /^does not parse/);
});

test("terser's var-before-declaration output (inlined helper) is caught", () => {
  // What terser's default inlining made of createLogger inside startDevice (seen on 2v29:
  // "Function not found" at boot).
  const source = "function start(p){const log=(write=l=>p.log(l),{info:(t,m)=>write(t+m)});var write;log.info('a','b')}";
  const findings = checkSource(source, "inlined.js");
  assert.deepEqual(findings.map((f) => f.construct), ["use of var write before its declaration has run (Espruino does not hoist)"]);
});

test("the image's terser settings never name a class method after an Espruino keyword; without the reservation they do", async () => {
  // Enough private members, and parameters, that two-letter names (in, do, if, of...) come up.
  const count = 400;
  const members = Array.from({ length: count }, (_, i) => "_m" + i + "(){return " + i + "}").join("");
  const params = Array.from({ length: count }, (_, i) => "p" + i);
  const source =
    "var out=[];(function(){class C{" + members + "}" +
    "function f(" + params.join(",") + "){out.push(" + params.join(",") + ");return " + params.join("+") + "}" +
    "out.push(new C()._m" + (count - 1) + "(),f(" + params.map((_, i) => i).join(",") + "));})();";
  const safe = await minify(source, ESPRUINO_TERSER);
  assert.deepEqual(checkSource(safe.code!, "safe.js").map(formatFinding), []);
  const mangle = ESPRUINO_TERSER.mangle as { properties: { reserved?: string[] } };
  const unreserved = await minify(source, { ...ESPRUINO_TERSER, mangle: { properties: { ...mangle.properties, reserved: [] } } });
  assert.ok(checkSource(unreserved.code!, "unreserved.js").some((f) => f.construct.includes("an Espruino keyword")));
});
