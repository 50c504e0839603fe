import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkNames } from "../tools/check/check-names.ts";
import { ROOT } from "../tools/build/build.ts";

test("naming convention: private members are _x, public ones and runtime APIs are not, no _x in strings", () => {
  const source = [
    "export class Queue {",
    "  private _items: string[] = [];",
    "  private count = 0;", // 3: private without _
    "  _peek(): string { return this._items[0]; }", // 4: public with _
    "  size(): number { return this.count; }",
    "  #hidden = 1;", // 6: #private
    "}",
    'const key = "_items";', // 8: string lookup
    "export interface Internal { _id: number; topic: string }",
  ].join("\n");
  const findings = checkNames("queue.ts", source);
  assert.deepEqual(findings.map((f) => f.line), [3, 4, 6, 8]);
  assert.match(findings[0].problem, /private member count must be named _count/);
  assert.match(findings[1].problem, /public member _peek/);
  assert.match(findings[2].problem, /#hidden/);
  assert.match(findings[3].problem, /string "_items"/);
  const runtime = checkNames("globals.d.ts", "declare const I2C1: { _setup(o: object): void; writeTo(a: number): void };");
  assert.deepEqual(runtime.map((f) => f.problem), ["runtime API member _setup starts with _, which the build would mangle"]);
});

test("the built image has its private names mangled and keeps the public ones", () => {
  // build/test is written by npm test's build step before the tests run.
  const image = readFileSync(join(ROOT, "build/test/espruino/sim.js"), "utf8");
  const session = readFileSync(join(ROOT, "firmware/mqtt/session.ts"), "utf8");
  const privateNames = [...session.matchAll(/^ {2}private (?:readonly )?(_\w+)/gm)].map((m) => m[1]);
  assert.ok(privateNames.length > 20, "the session has private members");
  for (const name of privateNames) assert.ok(!image.includes("." + name), name + " is mangled");
  for (const name of ["publish", "canPublish", "isConnected", "onMessage", "storageRead"]) assert.ok(image.includes(name), name + " is kept");
});
