// Headless Chromium for the page tests: Debian's chromium package (npm test installs it when
// run as root), driven by playwright-core over the DevTools protocol. CHROMIUM_PATH picks
// another binary.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error("the page tests need Chromium: sudo apt-get install chromium (or set CHROMIUM_PATH)");
  return found;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    // As root in a container Chromium's sandbox cannot start; with no internet its background
    // connections only fail, so they are off.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
