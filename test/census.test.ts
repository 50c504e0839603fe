import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseDump, takeCensus } from "../tools/bench/census.ts";

// E.dumpVariables() of Espruino 2v29.1 (Linux build) after running:
//   var shared={count:1,label:"shared, with a comma"};
//   function makeA(){var big=[1,2,3,4,5,6,7,8];return function(x){return big.length+shared.count+x}}
//   var onlyA=makeA(); var alsoShared=shared;
const dump = readFileSync(new URL("./fixtures/espruino-dump.txt", import.meta.url), "latin1");

test("census: every variable of the dump, a quoted label with a comma kept whole", () => {
  const vars = parseDump(dump);
  assert.equal(vars.length, 58);
  const label = vars.find((v) => v.id === 38)!;
  assert.deepEqual(label, { id: 38, blocks: 2, label: "String \"shared, with a comma\"", children: [] });
  assert.deepEqual(vars.find((v) => v.id === 56)!.children, [65, 68, 69], "a function's parameter, code and scope");
});

test("census: what each global alone holds, what is shared, what functions cost", () => {
  const census = takeCensus(parseDump(dump));
  assert.equal(census.total, 91);
  assert.equal(census.unreachable, 27, "the running source and the interpreter's own");
  const own = Object.fromEntries(census.globals.map((g) => [g.name, g.own]));
  // The closure: its name, function, parameter, code, scope link, the scope with big and its 8 elements.
  assert.equal(own.onlyA, 18);
  assert.equal(own.makeA, 9);
  assert.equal(own.shared, 1, "only its name: the object is held by alsoShared too");
  assert.equal(census.shared, 5, "the object, its two properties and the 2-block string");
  assert.deepEqual(census.functions, { count: 2, blocks: 14, paramNames: 1, codeBlocks: 8, scopes: 1 });
  assert.deepEqual(census.byCode.map((f) => [f.name, f.codeBlocks, f.params]), [["makeA", 6, 0], ["onlyA", 2, 1]]);
  assert.deepEqual(census.retained.slice(0, 3), [
    { name: "onlyA", blocks: 18, depth: 0 },
    { name: "\\xFFsco", blocks: 12, depth: 1 },
    { name: "big", blocks: 10, depth: 2 },
  ]);
});

test("census: a dump without the global object is refused with a reason", () => {
  assert.throws(() => takeCensus(parseDump("5,1,5,Object,\n")), /no global object/);
});
