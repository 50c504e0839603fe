import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkInternalNames, checkNames, firmwareFiles } from "../tools/check/check-names.ts";
import { INTERNAL_PROPERTIES } from "../rollup.config.mjs";
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

test("internal names: only members of firmware interfaces; runtime APIs, strings and untyped literals (JSON) are findings", () => {
  const dir = mkdtempSync(join(tmpdir(), "tb-names-"));
  try {
    writeFileSync(join(dir, "runtime.d.ts"), "declare const radio: { pump(): void };\n");
    const source = [
      "export interface Queue { pump(): void; take(): string }",
      "export function use(queue: Queue, text: string): string {",
      "  queue.pump();", // fine: a Queue member
      "  radio.pump();", // 4: a runtime's member
      "  const lookup = \"take\";", // 5: a string
      "  const reply = JSON.stringify({ take: text });", // 6: JSON
      "  const typed: Queue = { pump: () => undefined, take: () => lookup + reply };", // fine: typed by Queue
      "  return text.concat(typed.take());", // concat is not listed
      "}",
    ].join("\n");
    writeFileSync(join(dir, "queue.ts"), source);
    const findings = checkInternalNames([join(dir, "runtime.d.ts"), join(dir, "queue.ts")], ["pump", "take"]);
    assert.deepEqual(findings.map((f) => [f.file.endsWith("runtime.d.ts") ? "d.ts" : "ts", f.line]), [["d.ts", 1], ["ts", 4], ["ts", 5], ["ts", 6]]);
    assert.match(findings[0].problem, /runtime API member pump/);
    assert.match(findings[1].problem, /\.pump is not a member of a firmware interface/);
    assert.match(findings[2].problem, /string "take"/);
    assert.match(findings[3].problem, /key take of an object literal/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the built image has its private and internal names mangled and keeps the public ones", () => {
  // build/test is written by npm test's build step before the tests run.
  const image = readFileSync(join(ROOT, "build/test/espruino/sim.js"), "utf8");
  const firmware = firmwareFiles(join(ROOT, "firmware")).filter((f) => !f.endsWith(".d.ts")).map((f) => readFileSync(f, "utf8")).join("\n");
  const privateNames = [...new Set([...firmware.matchAll(/\b(_[a-zA-Z]\w*)\b/g)].map((m) => m[1]))];
  for (const name of [...privateNames, ...INTERNAL_PROPERTIES]) {
    // A member access, an object key or a method; `,setTimeout(i,500)` is a call of the global.
    assert.ok(!new RegExp("\\." + name + "\\b|[{,]" + name + ":|[{},]" + name + "\\([\\w$,]*\\)\\{").test(image), name + " is mangled");
  }
  assert.ok(INTERNAL_PROPERTIES.length > 40 && INTERNAL_PROPERTIES.includes("canPublish"), "the internal names are listed");
  // JSON keys and runtime APIs survive.
  for (const name of ["sensor_error", "method", "params", "setSNTP", "toUint8Array", "getIP"]) assert.ok(image.includes(name), name + " is kept");
  // The sensors' bus is Espruino's I2C1 itself: its method names must survive in an image with an I2C sensor.
  const i2cImage = readFileSync(join(ROOT, "build/test/espruino/esp32-devkitc.js"), "utf8");
  for (const name of [".writeTo(", ".readFrom("]) assert.ok(i2cImage.includes(name), name + " is kept");
});
