// The Espruino boot loader: a few hundred bytes in front of every Espruino image with the
// "ota" feature. The flashed image (.bootcde) stays the fallback that is never
// overwritten; an update goes to a flash file (tb-fw-a.js or tb-fw-b.js, in turn), and
// the boot record tb-boot.json says which file runs:
//   {"base": build id of the flashed image, "ok": confirmed file, "try": file on trial,
//    "boots": boots of the trial, "ver": its version, "fail": why the last one failed}
// At boot the loader
// - forgets the record and the files of an earlier flashing when the build id differs
//   (npm run flash always wins over an old update);
// - runs the file on trial, counting its boots: past MAX_TRIAL_BOOTS it rolls back; a
//   trial that gets no message acknowledged within confirmMs (it then writes "ok"
//   itself, firmware/thingsboard/ota.ts) is rolled back and the device restarts;
// - else runs the confirmed file, else the flashed image;
// - when the file fails to start (an exception out of it), rolls back and restarts.
// The file runs through eval at the top level, so its functions are as cheap as the
// flashed image's; its own copy of the loader sees `tbImage` set and steps aside.
// Espruino-only code (Storage, E.reboot, eval), checked with the image by
// tools/check/check-espruino.ts. Keys and file names: firmware/thingsboard/ota.ts.

import { createHash } from "node:crypto";

export const BOOT_FILE = "tb-boot.json";
export const IMAGE_SLOTS = ["tb-fw-a.js", "tb-fw-b.js"];
export const MAX_TRIAL_BOOTS = 3;
/** How every image with the loader begins: what tells an update package from other files. */
export const LOADER_START = "if(typeof tbImage==\"string\"||";
/** How the loader's condition ends (it is called with Storage): the image follows at once. */
export const LOADER_END = ")(require(\"Storage\")))){";

/**
 * The loader's source for an image with build id `buildId`.
 * @param {string} buildId
 * @param {number} confirmMs
 */
export function bootLoaderSource(buildId, confirmMs) {
  const id = JSON.stringify(buildId);
  const boot = JSON.stringify(BOOT_FILE);
  // Storage.writeJSON writes keys without quotes ({base:"..."}), which JSON.parse in the
  // image refuses: the record is written as JSON.stringify makes it.
  const write = (/** @type {string} */ record) => "S.write(" + boot + ",JSON.stringify(" + record + "))";
  return [
    "function(S){",
    "var R=S.readJSON(" + boot + ",1),f=\"\";",
    "if(!R||R.base!==" + id + "){",
    IMAGE_SLOTS.map((slot) => "S.erase(" + JSON.stringify(slot) + ");").join(""),
    write("{base:" + id + "}") + ";return \"\"}",
    "if(R.try){",
    "if(R.boots>=" + MAX_TRIAL_BOOTS + "){R.fail=\"image \"+R.ver+\" restarted " + MAX_TRIAL_BOOTS + " times before it reached ThingsBoard; rolled back\";R.try=\"\"}",
    "else{f=R.try;R.boots=(R.boots|0)+1;setTimeout(function(){var N=S.readJSON(" + boot + ",1);",
    "if(N&&N.try===f){N.try=\"\";N.fail=\"image \"+N.ver+\" got no message acknowledged within " + Math.round(confirmMs / 1000) + " s; rolled back\";" + write("N") + ";E.reboot()}}," + confirmMs + ")}",
    write("R") + "}",
    "return f||R.ok||\"\"}",
  ].join("");
}

/**
 * The image behind its loader, on one line like the image (the espruino CLI and the
 * console take a line as a unit): `image` runs when no update is to run (or when it is
 * itself the update, evaluated by the flashed image's loader).
 * @param {string} image minified Espruino image
 * @param {number} confirmMs
 */
export function withBootLoader(image, confirmMs) {
  const buildId = createHash("sha256").update(image).digest("hex").slice(0, 12);
  const boot = JSON.stringify(BOOT_FILE);
  return (
    LOADER_START + "!(global.tbImage=(" + bootLoaderSource(buildId, confirmMs) + LOADER_END +
    image.trimEnd() +
    // tbError, not a short name: the image's own names are globals (tools/build/shrink.mjs).
    "}else try{eval(require(\"Storage\").read(tbImage))}catch(tbError){(function(S){var R=S.readJSON(" + boot + ",1)||{};" +
    "R.fail=\"image in \"+tbImage+\" failed to start (\"+tbError+\"); rolled back\";if(R.try===tbImage)R.try=\"\";else R.ok=\"\";" +
    "S.write(" + boot + ",JSON.stringify(R));E.reboot()})(require(\"Storage\"))}"
  );
}

/** Written in a Moddable image's entry where its build id goes (withBuildId). */
export const BUILD_ID_PLACEHOLDER = "tb-build-id";

/**
 * A Moddable image with its build id: what its boot logic (firmware/platform/moddable-update.ts)
 * compares with the boot record's, as this loader does, so that flashing other firmware
 * forgets the updates of the one before.
 * @param {string} code the bundle, with BUILD_ID_PLACEHOLDER in its entry
 */
export function withBuildId(code) {
  const buildId = createHash("sha256").update(code).digest("hex").slice(0, 12);
  return code.split(JSON.stringify(BUILD_ID_PLACEHOLDER)).join(JSON.stringify(buildId));
}
