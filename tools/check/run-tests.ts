// npm test: makes sure mosquitto is there (installing it with apt-get when running as
// root), type-checks, builds every board with placeholder test settings into
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

function hasMosquitto(): boolean {
  return ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].some((p) => existsSync(p)) ||
    spawnSync("sh", ["-c", "command -v mosquitto"], { stdio: "ignore" }).status === 0;
}

if (!hasMosquitto()) {
  if (process.getuid && process.getuid() === 0 && spawnSync("sh", ["-c", "command -v apt-get"], { stdio: "ignore" }).status === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    run("installing mosquitto (apt-get)", "sh", ["-c", "apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto"], env);
  } else {
    console.error("npm test needs the mosquitto broker. Install it, then run npm test again:\n  sudo apt-get install mosquitto");
    process.exit(1);
  }
}

/** [executable, args] for a tool installed in node_modules/.bin. */
const localBin = (args: string[]) => [join(ROOT, "node_modules/.bin", args[0]), args.slice(1)] as const;
run("type check (firmware)", ...localBin(["tsc", "--noEmit", "-p", "tsconfig.json"]));
run("type check (tools and tests)", ...localBin(["tsc", "--noEmit", "-p", "tsconfig.tools.json"]));
run("naming check (what the build mangles)", ...localBin(["tsx", "tools/check/check-names.ts"]));
// Placeholders, not secrets: they only let the real boards build for the checks.
const buildEnv = { ...process.env, TB_TOKEN: "test-placeholder-token", WIFI_SSID: "test-network", WIFI_PASSWORD: "test-password" };
run("build every board", ...localBin(["tsx", "tools/build/build.ts", "--out", "build/test", "--config", "none"]), buildEnv);
const images = readdirSync(join(ROOT, "build/test/espruino")).filter((f) => f.endsWith(".js")).map((f) => join("build/test/espruino", f));
run("Espruino static check", ...localBin(["tsx", "tools/check/check-espruino.ts", ...images]));
const tests = readdirSync(join(ROOT, "test")).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join("test", f));
run("tests", process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...tests]);
