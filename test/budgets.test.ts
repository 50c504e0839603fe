import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, buildImages, packageVersion } from "../tools/build/build.ts";
import { DEFAULT_FEATURES } from "../tools/build/boards.ts";
import { DEFAULT_SETTINGS } from "../tools/build/config.ts";

interface Budgets {
  imageBytes: Record<string, { limit: number; target: number }>;
  deviceApi: { board: string; without: string[]; limit: number };
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

test("the esp32-devkitc Espruino image with the whole device API and without ota is within the device-API issue's cap (budgets.json deviceApi)", async () => {
  const budgets = JSON.parse(readFileSync(join(ROOT, "budgets.json"), "utf8")) as Budgets;
  const cap = budgets.deviceApi;
  const board = JSON.parse(readFileSync(join(ROOT, "boards", cap.board + ".json"), "utf8")) as { features?: string[]; runtimes: string[] };
  const features = (board.features ?? DEFAULT_FEATURES).filter((name) => !cap.without.includes(name));
  for (const name of ["attributes", "rpc", "clock", "limits", "provision"]) assert.ok(features.includes(name), cap.board + " links " + name);
  // The same board under its own name (the name is in the image), Espruino only, without the features left out.
  const dir = mkdtempSync(join(tmpdir(), "tbfw-cap-"));
  writeFileSync(join(dir, cap.board + ".json"), JSON.stringify({ ...board, runtimes: ["espruino"], features }));
  // The placeholders npm test's build step uses, as the size budgets above are measured.
  const settings = { ...DEFAULT_SETTINGS, token: "test-placeholder-token", wifiSsid: "test-network", wifiPassword: "test-password" };
  const [report] = await buildImages({ boards: [join(dir, cap.board + ".json")], outDir: join(dir, "out"), settings, version: packageVersion(), quiet: true });
  assert.equal(report.runtime + "/" + report.board, "espruino/" + cap.board);
  assert.ok(report.minified <= cap.limit, cap.board + " without " + cap.without.join(", ") + ": " + report.minified + " B minified, over the cap of " + cap.limit + " B by " + (report.minified - cap.limit) + " B");
});
