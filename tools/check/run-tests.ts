// npm test: makes sure mosquitto and chromium are there (installing them with apt-get when
// running as root), type-checks, builds every board with placeholder test settings into
// build/test, runs the Espruino static check on those images, then the test suites.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../build/build.ts";

function run(what: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  console.log("\n== " + what);
  const result = spawnSync(command, args, { cwd: ROOT, stdio: "inherit", env });
  if (result.status !== 0) {
    console.error("\nnpm test: " + what + " failed");
    process.exit(result.status ?? 1);
  }
}

const installed = (paths: string[], command: string) =>
  paths.some((p) => existsSync(p)) || spawnSync("sh", ["-c", "command -v " + command], { stdio: "ignore" }).status === 0;
// Debian packages the tests use: the broker, and the browser the page tests drive.
const missing = [
  ...(installed(["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"], "mosquitto") ? [] : ["mosquitto"]),
  ...(process.env.CHROMIUM_PATH || installed(["/usr/bin/chromium", "/usr/bin/chromium-browser"], "chromium") ? [] : ["chromium"]),
];
if (missing.length > 0) {
  if (process.getuid && process.getuid() === 0 && spawnSync("sh", ["-c", "command -v apt-get"], { stdio: "ignore" }).status === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    run("installing " + missing.join(" and ") + " (apt-get)", "sh", ["-c", "apt-get update -qq && apt-get install -y -qq " + missing.join(" ")], env);
  } else {
    console.error("npm test needs " + missing.join(" and ") + " (the broker and the browser the tests use). Install, then run npm test again:\n  sudo apt-get install " + missing.join(" "));
    process.exit(1);
  }
}

/** [executable, args] for a tool installed in node_modules/.bin. */
const localBin = (args: string[]) => [join(ROOT, "node_modules/.bin", args[0]), args.slice(1)] as const;
run("type check (firmware)", ...localBin(["tsc", "--noEmit", "-p", "tsconfig.json"]));
run("type check (tools and tests)", ...localBin(["tsc", "--noEmit", "-p", "tsconfig.tools.json"]));
run("type check (the dashboard page)", ...localBin(["tsc", "--noEmit", "-p", "tsconfig.page.json"]));
run("naming check (what the build mangles)", ...localBin(["tsx", "tools/check/check-names.ts"]));
// Placeholders, not secrets: they only let the real boards build for the checks.
const buildEnv = { ...process.env, TB_TOKEN: "test-placeholder-token", WIFI_SSID: "test-network", WIFI_PASSWORD: "test-password" };
run("build every board", ...localBin(["tsx", "tools/build/build.ts", "--out", "build/test", "--config", "none"]), buildEnv);
const images = readdirSync(join(ROOT, "build/test/espruino")).filter((f) => f.endsWith(".js")).map((f) => join("build/test/espruino", f));
run("Espruino static check", ...localBin(["tsx", "tools/check/check-espruino.ts", ...images]));
const tests = readdirSync(join(ROOT, "test")).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join("test", f));
run("tests", process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...tests]);
