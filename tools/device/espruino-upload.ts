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

/** Progress lines for uploads of `total` characters: "flash: upload 40% (12.3 of 30.6 KB)", every `stepPercent`. */
export function progressReporter(print: (line: string) => void, stepPercent = 10): EspruinoStatus {
  let total = 0;
  let sent = 0;
  let shown = 0;
  const kb = (n: number) => (n / 1024).toFixed(1);
  return {
    setStatus: (text, length) => {
      if (length !== undefined && length > 0) {
        total = length;
        sent = 0;
        shown = 0;
        print("flash: upload 0% (0.0 of " + kb(total) + " KB)");
      } else if (text !== "Sent" && text !== "") print(text);
    },
    incrementProgress: (amount) => {
      if (total === 0) return;
      sent = Math.min(total, sent + amount);
      const percent = Math.floor((sent * 100) / total);
      if (percent >= shown + stepPercent || (sent === total && shown < 100)) {
        shown = sent === total ? 100 : percent - (percent % stepPercent);
        print("flash: upload " + shown + "% (" + kb(sent) + " of " + kb(total) + " KB)");
      }
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
      Object.assign(espruino.Core.Status, progressReporter((line) => console.log(line)), { hasProgress: () => true });
      callback();
    });
  process.argv = [process.argv[0], cli, ...process.argv.slice(2)];
  require(cli);
}
