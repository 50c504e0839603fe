// Firmware updates on Moddable (the "ota" feature; linked only with it). A Moddable image is
// native firmware (XS bytecode linked into the ESP-IDF application), so what can change at
// run time is a mod: an archive of XS bytecode in the "xs" flash partition, which XS maps at
// boot. An update is this firmware's own bundle built as a mod (npm run moddable -- build
// makes <board>.xsa), and the flashed firmware is the host that runs it, or runs itself:
// - moddableUpdateFiles: the ota feature's flash file is the mod partition (Moddable's
//   "flash" module; in the desktop simulator a file). Blocks are erased as the download
//   reaches them; the archive's 8-byte header is written only once the checksum passed
//   (fileSeal), so XS never maps a partly written or unverified archive.
// - moddableBoot: the boot record (BOOT_FILE, in Preference) says, as Espruino's boot loader
//   reads it (tools/build/boot-loader.mjs), whether the update runs: on trial (boots
//   counted, rolled back unless its first PUBACK confirms it within confirmMs) or confirmed.
// - runUpdate: imports the mod, whose copy of the firmware then starts, and rolls back when
//   it throws while starting.
// One partition holds one update: the flashed firmware is the only fallback, and it is
// the flashed firmware that downloads the next update (ota.ts, oneUpdateSlot).
// Moddable's classes come in as arguments (from the entry), so this runs in Node's tests.

import { BOOT_FILE } from "../thingsboard/ota";
import type { BootRecord } from "../thingsboard/ota";
import { crc32Update } from "../util/crc32";
import { errorText } from "../util/log";
import type { Platform } from "./types";

/** The module name the update mod holds the firmware under (its manifest). */
export const UPDATE_MODULE = "tb-update";
/** As Espruino's boot loader: a trial that restarts this often without confirming is rolled back. */
export const MAX_TRIAL_BOOTS = 3;
/** An XS archive begins with its size (big-endian) and "XS_A". */
const HEADER_BYTES = 8;
const READ_BYTES = 1024;

/** Moddable's flash module (modules/files/flash) opened on the mod partition. */
export interface FlashPartition {
  erase(sector: number): void;
  read(offset: number, byteLength: number): ArrayBuffer;
  write(offset: number, byteLength: number, buffer: ArrayBuffer | Uint8Array): void;
  readonly byteLength: number;
  readonly blockSize: number;
}

/** Moddable's crypt Digest (MD5, SHA1, SHA224, SHA256, SHA384, SHA512; throws for others). */
export interface DigestConstructor {
  new (algorithm: string): { write(data: ArrayBuffer | Uint8Array): void; close(): ArrayBuffer };
}

function archiveHeader(size: number): Uint8Array {
  return new Uint8Array([size >>> 24, (size >>> 16) & 255, (size >>> 8) & 255, size & 255, 88, 83, 95, 65]);
}

/** Makes the mod partition (opened by `partition` when first needed) the ota feature's flash file. */
export function moddableUpdateFiles(platform: Platform, partition: () => FlashPartition, Digest: DigestConstructor): void {
  let opened: FlashPartition | null = null;
  const flash = () => opened || (opened = partition());
  platform.oneUpdateSlot = true;
  platform.fileWrite = (_name, bytes, offset, size) => {
    const area = flash();
    if (size > area.byteLength) throw new Error(size + " B do not fit the " + area.byteLength + " B mod partition");
    let skip = 0;
    if (offset === 0) {
      const header = archiveHeader(size);
      for (let i = 0; i < HEADER_BYTES; i++) {
        if (bytes[i] !== header[i]) throw new Error("the package is not a Moddable mod archive of " + size + " B (npm run moddable -- build makes <board>.xsa)");
      }
      // Left erased until fileSeal: without its header the partition holds no archive.
      skip = HEADER_BYTES;
    }
    // Each block is erased when the download first reaches it: a download resumed after a
    // restart keeps what it wrote. Writing a chunk again writes the same bits (NOR flash).
    const block = area.blockSize;
    for (let sector = Math.ceil(offset / block); sector * block < offset + bytes.length; sector++) area.erase(sector);
    area.write(offset + skip, bytes.length - skip, bytes.subarray(skip));
  };
  platform.fileDigest = (_name, algorithm, size) => {
    const area = flash();
    let digest: { write(data: Uint8Array): void; close(): ArrayBuffer } | null = null;
    let crc = 0;
    if (algorithm !== "CRC32") {
      try {
        digest = new Digest(algorithm);
      } catch (e) {
        return "";
      }
    }
    const feed = (part: Uint8Array) => {
      if (digest) digest.write(part);
      else crc = crc32Update(crc, part);
    };
    // The header fileSeal will write, then the rest as it lies in flash.
    feed(archiveHeader(size));
    for (let at = HEADER_BYTES; at < size; at += READ_BYTES) feed(new Uint8Array(area.read(at, Math.min(READ_BYTES, size - at))));
    if (!digest) return ("0000000" + crc.toString(16)).slice(-8);
    const bytes = new Uint8Array(digest.close());
    let hex = "";
    for (let i = 0; i < bytes.length; i++) hex += (bytes[i] + 256).toString(16).substring(1);
    return hex;
  };
  platform.fileSeal = (_name, size) => flash().write(0, HEADER_BYTES, archiveHeader(size));
}

function readRecord(platform: Platform): BootRecord | null {
  try {
    return JSON.parse(platform.storageRead(BOOT_FILE) || "null");
  } catch (e) {
    return null;
  }
}

function saveRecord(platform: Platform, record: BootRecord): void {
  platform.storageWrite(BOOT_FILE, JSON.stringify(record));
}

/**
 * At boot, in the flashed firmware: the file whose update is to run ("" : run the flashed
 * firmware). `hasUpdate`: whether XS mapped a mod with the firmware (Modules.has). Counts
 * the boots of an update on trial and arms its confirmation time.
 */
export function moddableBoot(platform: Platform, hasUpdate: boolean, buildId: string, confirmMs: number): string {
  const record = readRecord(platform);
  // Another flashed firmware (or none recorded): updates of the one before do not count.
  if (!record || record.base !== buildId) {
    saveRecord(platform, { base: buildId });
    return "";
  }
  let file = "";
  if (record.try) {
    const boots = record.boots || 0;
    if (boots >= MAX_TRIAL_BOOTS) {
      record.fail = "image " + record.ver + " restarted " + MAX_TRIAL_BOOTS + " times before it reached ThingsBoard; rolled back";
      record.try = "";
    } else {
      file = record.try;
      record.boots = boots + 1;
      platform.setTimeout(() => {
        const now = readRecord(platform);
        if (!now || now.try !== file) return;
        rollBack(platform, file, "image " + now.ver + " got no message acknowledged within " + Math.round(confirmMs / 1000) + " s; rolled back");
        platform.restart();
      }, confirmMs);
    }
    saveRecord(platform, record);
  }
  file = file || record.ok || "";
  if (file !== "" && !hasUpdate) {
    // Erased, or XS could not map it (cut while XS rewrote it for this host at the first boot).
    rollBack(platform, file, "image in " + file + " is not in the mod partition or XS could not map it; rolled back");
    return "";
  }
  return file;
}

function rollBack(platform: Platform, file: string, reason: string): void {
  const record = readRecord(platform) || {};
  record.fail = reason;
  if (record.try === file) record.try = "";
  else record.ok = "";
  saveRecord(platform, record);
}

/**
 * Runs the update in `file` (moddableBoot's answer) through `importUpdate`
 * (Modules.importNow of UPDATE_MODULE): its firmware sees `tbImage` and starts instead of
 * looking for an update. One that throws while starting is rolled back and the device restarts.
 */
export function runUpdate(platform: Platform, file: string, importUpdate: () => void): void {
  (globalThis as unknown as { tbImage: string }).tbImage = file;
  // From a timer: imported inside the host's own module body, the firmware overflowed XS's
  // stack (mcsim, 8.2.3).
  platform.setTimeout(() => {
    try {
      importUpdate();
    } catch (e) {
      platform.log("[E][boot] " + file + " failed to start: " + errorText(e));
      rollBack(platform, file, "image in " + file + " failed to start (" + errorText(e) + "); rolled back");
      platform.restart();
    }
  }, 0);
}
