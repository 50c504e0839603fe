// The rewrites of the minified Espruino image (tools/build/shrink.mjs): shorter, and the
// same program. Every image test runs rewritten images too; these pin the cases down.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { shrinkImage } from "../tools/build/shrink.mjs";
import { LOADER_END, LOADER_START } from "../tools/build/boot-loader.mjs";
import { ESPRUINO_PRETOKENISE } from "../rollup.config.mjs";
import { ROOT } from "../tools/build/build.ts";

/** The globals `code` leaves when run, `out` among them. */
function run(code: string): Record<string, unknown> {
  const context: Record<string, unknown> = { out: [] };
  runInNewContext(code, context);
  return context;
}

/** What `code` leaves in `out` when run. */
function outcome(code: string): string {
  return JSON.stringify(run(code).out);
}

test("shrink: const becomes let, in declarations only", () => {
  const code = 'const a=1;for(const k in {x:1})out.push(k,"const b");{const c=a+1;out.push(c)}';
  const shrunk = shrinkImage(code);
  assert.equal(shrunk, 'let a=1;for(let k in {x:1})out.push(k,"const b");{let c=a+1;out.push(c)}');
  assert.equal(outcome(shrunk), outcome(code));
});

test("shrink: a function that says `this` four times or more says it through a local; arrows share it, nested functions keep their own", () => {
  const code = [
    "class S{constructor(){this.a=1;this.b=2;this.c=3;this.d=[]}",
    "run(t,e){const f=()=>this.a+this.b;this.d.push(f(),t,e);this.d.push(function(){return this&&this.x}.call({x:9}));out.push(this.c,this.d);return this}",
    "few(){return this.a+this.b}}",
    "out.push(new S().run(4,5).few());",
  ].join("");
  const shrunk = shrinkImage(code);
  assert.equal(outcome(shrunk), outcome(code));
  // The constructor and run() alias it, with a letter neither uses (t and e are run's parameters).
  assert.match(shrunk, /constructor\(\)\{let (\w)=this;\1\.a=1;\1\.b=2;\1\.c=3;\1\.d=\[\]\}/);
  const run = /run\(t,e\)\{let (\w)=this;/.exec(shrunk);
  assert.ok(run && run[1] !== "t" && run[1] !== "e" && run[1] !== "f", shrunk);
  // The nested function's own `this` is left alone; few() (two uses) keeps `this`.
  assert.match(shrunk, /function\(\)\{return this&&this\.x\}/);
  assert.match(shrunk, /few\(\)\{return this\.a\+this\.b\}/);
  assert.ok(shrunk.length < code.length);
});

test("shrink: a derived class is left alone (no `this` before super())", () => {
  const code = "class A{constructor(){this.v=1}}class B extends A{constructor(){super();this.a=1;this.b=2;this.c=3;this.d=4}}out.push(new B());";
  const shrunk = shrinkImage(code);
  assert.match(shrunk, /super\(\);this\.a=1/);
  assert.equal(outcome(shrunk), outcome(code));
});

test("shrink: the image's wrapper function goes and its names become globals, with the same program", () => {
  const code = '!function(){let a=1;function t(e){const b=e;return b+a}class K{m(){return t(2)}}const k=()=>{return new K().m()};out.push(k(),t(1))}();';
  const shrunk = shrinkImage(code);
  // Its own let and const are var (a let in the boot loader's block would make that block a scope); nested ones stay let.
  assert.equal(shrunk, 'var a=1;function t(e){let b=e;return b+a}class K{m(){return t(2)}}var k=()=>{return new K().m()};out.push(k(),t(1))');
  const globals = run(shrunk);
  assert.equal(JSON.stringify(globals.out), outcome(code));
  assert.equal(typeof globals.t, "function", "a top-level function is a global");
  // Not one wrapped call: left as it is.
  assert.equal(shrinkImage("!function(a){out.push(a)}(1);"), "!function(a){out.push(a)}(1);");
});

test("shrink: a wrapper whose body needs its function (this, arguments, return) or would overwrite a runtime global stops the build", () => {
  for (const [body, problem] of [
    ["out.push(this)", /has this of its own/],
    ["out.push(arguments.length)", /has arguments of its own/],
    ["if(out)return;out.push(1)", /has return of its own/],
    ["let E=1;out.push(E)", /a variable named E/],
    ["function D2(){}out.push(D2)", /a function named D2/],
  ] as const) {
    assert.throws(() => shrinkImage("!function(){" + body + "}();"), problem);
  }
  // Nested functions and arrows keep their own return; nested functions their own this.
  const fine = "!function(){function f(){return this}const g=()=>{return 1};out.push(typeof f,g())}();";
  assert.equal(outcome(shrinkImage(fine)), outcome(fine));
});

test("every Espruino image turns on pretokenise before anything else of its own (behind the boot loader where there is one)", () => {
  // build/test is written by npm test's build step before the tests run.
  const dir = join(ROOT, "build/test/espruino");
  const images = readdirSync(dir).filter((name) => name.endsWith(".js"));
  assert.ok(images.length >= 4, "the build step wrote the Espruino images");
  for (const name of images) {
    const image = readFileSync(join(dir, name), "utf8");
    const start = image.startsWith(LOADER_START) ? image.indexOf(LOADER_END) + LOADER_END.length : 0;
    assert.ok(start >= LOADER_END.length || !image.startsWith(LOADER_START), name + ": the loader's end was found");
    assert.equal(image.substring(start, start + ESPRUINO_PRETOKENISE.length), ESPRUINO_PRETOKENISE, name + " starts with the flag");
  }
});
