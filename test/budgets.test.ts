import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../tools/build/build.ts";

interface Budgets {
  imageBytes: Record<string, { limit: number; target: number }>;
}

test("every image is within its written size budget (budgets.json)", () => {
  const budgets = JSON.parse(readFileSync(join(ROOT, "budgets.json"), "utf8")) as Budgets;
  // Written by npm test's build step, with the production CA: the size a user flashes.
  const report = JSON.parse(readFileSync(join(ROOT, "build/test/size-report.json"), "utf8")) as { runtime: string; board: string; minified: number }[];
  assert.ok(report.length >= 6, "the build reported every board and runtime");
  const over: string[] = [];
  for (const image of report) {
    const name = image.runtime + "/" + image.board;
    const budget = budgets.imageBytes[name];
    assert.ok(budget, name + " has no budget in budgets.json: add one");
    assert.ok(budget.target <= budget.limit, name + ": the target is below the limit");
    if (image.minified > budget.limit) over.push(name + ": " + image.minified + " B minified, budget " + budget.limit + " B (+" + (image.minified - budget.limit) + " B)");
  }
  assert.deepEqual(over, [], "images past their budget; shrink them (see the README's Benchmarks) rather than raising the limit");
});
