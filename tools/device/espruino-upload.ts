// The unmodified espruino CLI with a progress line while it uploads: npm run flash runs this
// in place of node_modules/.bin/espruino, with the same arguments. The CLI's status
// callbacks (EspruinoTools' Espruino.Core.Status) are no-ops under Node; here they print
// how much of the upload has gone, every 10 %.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface EspruinoStatus {
  setStatus(text: string, length?: number): void;
  incrementProgress(amount: number): void;
}

/** Uploads shorter than this (the CLI's own commands) get no progress lines. */
const MIN_REPORTED = 1024;

/**
 * Progress lines for uploads of `total` characters: "flash: upload 40% (12.3 of 30.6 KB)",
 * every `stepPercent`, and 100% when the CLI says it has sent everything. The CLI's other
 * status texts ("Minifying", which changes nothing here) are not shown.
 */
export function progressReporter(print: (line: string) => void, stepPercent = 10): EspruinoStatus {
  let total = 0;
  let sent = 0;
  let shown = -1;
  const kb = (n: number) => (n / 1024).toFixed(1);
  const show = (percent: number) => {
    shown = percent;
    print("flash: upload " + percent + "% (" + kb(sent) + " of " + kb(total) + " KB)");
  };
  return {
    setStatus: (text, length) => {
      if (length !== undefined) {
        total = length >= MIN_REPORTED ? length : 0;
        sent = 0;
        shown = -1;
        if (total > 0) show(0);
      } else if (text === "Sent" && total > 0) {
        sent = total;
        if (shown < 100) show(100);
        total = 0;
      }
    },
    incrementProgress: (amount) => {
      if (total === 0) return;
      sent = Math.min(total, sent + amount);
      const percent = Math.floor((sent * 100) / total);
      if (percent >= shown + stepPercent) show(percent - (percent % stepPercent));
    },
  };
}

if (process.argv[1] && process.argv[1].endsWith("espruino-upload.ts")) {
  const cli = require.resolve("espruino/bin/espruino-cli.js");
  const tools = require("espruino/index.js") as { init(callback: () => void): void };
  const init = tools.init;
  // The CLI calls init(main); Espruino.Core.Status exists once init has loaded EspruinoTools.
  tools.init = (callback) =>
    init(() => {
      const espruino = (globalThis as unknown as { Espruino: { Core: { Status: EspruinoStatus } } }).Espruino;
      // Not console.log: the CLI silences it without --verbose.
      Object.assign(espruino.Core.Status, progressReporter((line) => process.stdout.write(line + "\n")), { hasProgress: () => true });
      callback();
    });
  process.argv = [process.argv[0], cli, ...process.argv.slice(2)];
  require(cli);
}
