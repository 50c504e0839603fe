// The rewrites of the minified Espruino image (tools/build/shrink.mjs): shorter, and the
// same program. Every image test runs rewritten images too; these pin the cases down.

import { test } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { shrinkImage } from "../tools/build/shrink.mjs";

/** What `code` leaves in `out` when run. */
function outcome(code: string): string {
  const context = { out: [] as unknown[] };
  runInNewContext(code, context);
  return JSON.stringify(context.out);
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
