// Moddable's side of firmware updates (firmware/platform/moddable-update.ts): the mod
// partition as the ota feature's flash file, and the boot logic that runs, counts and rolls
// back an update. CI has no Moddable SDK, so the partition here is a stand-in with NOR
// flash's rules (erase sets a block to 0xFF; a write can only clear bits, so a block written
// without being erased first reads back wrong) and Digest is Node's crypto behind Moddable's
// interface; the whole flow ran by hand in mcsim (README, "Firmware updates").

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { MAX_TRIAL_BOOTS, moddableBoot, moddableUpdateFiles, runUpdate } from "../firmware/platform/moddable-update.ts";
import type { DigestConstructor, FlashPartition } from "../firmware/platform/moddable-update.ts";
import { crc32Update } from "../firmware/util/crc32.ts";
import { BOOT_FILE } from "../firmware/thingsboard/ota.ts";
import { MAX_TRIAL_BOOTS as LOADER_MAX_TRIAL_BOOTS } from "../tools/build/boot-loader.mjs";
import { MOD_PARTITION_BYTES } from "../tools/build/moddable-manifest.ts";
import { packageProblem } from "../tools/sim/control.ts";
import { fakePlatform } from "./helpers/fake-platform.ts";
import type { FakePlatform } from "./helpers/fake-platform.ts";

class NorFlash implements FlashPartition {
  readonly erased: number[] = [];
  constructor(readonly data: Buffer = Buffer.alloc(MOD_PARTITION_BYTES, 0x00), readonly blockSize = 4096) {}
  get byteLength(): number {
    return this.data.length;
  }
  erase(sector: number): void {
    this.erased.push(sector);
    this.data.fill(0xff, sector * this.blockSize, (sector + 1) * this.blockSize);
  }
  read(offset: number, byteLength: number): ArrayBuffer {
    assert.ok(offset + byteLength <= this.data.length, "read past the partition");
    return Uint8Array.from(this.data.subarray(offset, offset + byteLength)).buffer;
  }
  write(offset: number, byteLength: number, buffer: ArrayBuffer | Uint8Array): void {
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    assert.ok(bytes.length >= byteLength, "write of " + byteLength + " B from a " + bytes.length + " B buffer");
    for (let i = 0; i < byteLength; i++) this.data[offset + i] &= bytes[i];
  }
}

/** Moddable's crypt Digest, by Node: its names, and a throw for what it lacks. */
const NodeDigest: DigestConstructor = class {
  private hash;
  constructor(algorithm: string) {
    const name = ({ MD5: "md5", SHA1: "sha1", SHA256: "sha256", SHA384: "sha384", SHA512: "sha512" } as Record<string, string>)[algorithm];
    if (!name) throw new Error("crypt: unsupported digest");
    this.hash = createHash(name);
  }
  write(data: ArrayBuffer | Uint8Array): void {
    this.hash.update(data instanceof Uint8Array ? data : new Uint8Array(data));
  }
  close(): ArrayBuffer {
    return Uint8Array.from(this.hash.digest()).buffer;
  }
};

/** A package as mcrun makes one: an XS archive atom (size, "XS_A") around `size` - 8 bytes. */
function modArchive(size: number): Buffer {
  const data = randomBytes(size);
  data.writeUInt32BE(size, 0);
  data.write("XS_A", 4, "latin1");
  return data;
}

function withFiles(flash: NorFlash): FakePlatform {
  const platform = fakePlatform();
  moddableUpdateFiles(platform, () => flash, NodeDigest);
  return platform;
}

function download(platform: FakePlatform, data: Buffer, chunkBytes: number, from = 0, to = Infinity): void {
  for (let offset = from * chunkBytes; offset < data.length && offset / chunkBytes < to; offset += chunkBytes) {
    platform.fileWrite!("tb-fw-a.js", new Uint8Array(data.subarray(offset, offset + chunkBytes)), offset, data.length);
  }
}

test("CRC32 computed in TypeScript matches the standard check value and zlib, fed whole or a part at a time", () => {
  assert.equal(crc32Update(0, new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32Update(0, new Uint8Array(0)), 0);
  assert.equal(crc32Update(0, new TextEncoder().encode("The quick brown fox jumps over the lazy dog")), 0x414fa339);
  const data = randomBytes(10000);
  let crc = 0;
  for (let at = 0; at < data.length; at += 777) crc = crc32Update(crc, new Uint8Array(data.subarray(at, at + 777)));
  assert.equal(crc, crc32(data));
});

test("the mod partition as the update file: chunk by chunk, blocks erased as reached, header written only once sealed; every algorithm checks what lies in flash", () => {
  for (const [size, chunkBytes] of [[20000, 2048], [16384, 4096], [9001, 1000], [4096, 8192]]) {
    const data = modArchive(size);
    const flash = new NorFlash();
    const platform = withFiles(flash);
    assert.equal(platform.oneUpdateSlot, true);
    download(platform, data, chunkBytes);
    // Every block the image covers erased once, in order, and nothing else.
    assert.deepEqual(flash.erased, Array.from({ length: Math.ceil(size / 4096) }, (_, i) => i), size + " B in " + chunkBytes + " B chunks");
    // Until sealed, the partition holds no archive: XS would not map it at a restart.
    assert.deepEqual([...flash.data.subarray(0, 8)], [255, 255, 255, 255, 255, 255, 255, 255]);
    assert.ok(flash.data.subarray(8, size).equals(data.subarray(8)));
    // The checksums are of the package as it will be: header included.
    assert.equal(platform.fileDigest!("tb-fw-a.js", "SHA256", size), createHash("sha256").update(data).digest("hex"));
    assert.equal(platform.fileDigest!("tb-fw-a.js", "SHA512", size), createHash("sha512").update(data).digest("hex"));
    assert.equal(platform.fileDigest!("tb-fw-a.js", "MD5", size), createHash("md5").update(data).digest("hex"));
    assert.equal(platform.fileDigest!("tb-fw-a.js", "CRC32", size), crc32(data).toString(16).padStart(8, "0"));
    assert.equal(platform.fileDigest!("tb-fw-a.js", "MURMUR3_32", size), "", "an algorithm the runtime lacks");
    platform.fileSeal!("tb-fw-a.js", size);
    assert.ok(flash.data.subarray(0, size).equals(data), "the partition holds the package byte for byte");
  }
});

test("a download resumed after a restart keeps what was written; a chunk written twice is harmless; a bad chunk fails the checksum", () => {
  const data = modArchive(30000);
  const flash = new NorFlash();
  download(withFiles(flash), data, 2048, 0, 7);
  // A restart: a new platform over the same flash; the record's next chunk is 7, and the
  // chunk before it comes again (cut between its write and the record's save).
  const again = withFiles(flash);
  download(again, data, 2048, 6);
  // Chunk 6 begins block 3, so its block is erased again: it holds nothing written after it.
  assert.deepEqual(flash.erased, [0, 1, 2, 3, 3, 4, 5, 6, 7]);
  assert.equal(again.fileDigest!("tb-fw-a.js", "SHA256", data.length), createHash("sha256").update(data).digest("hex"));

  const corrupt = Buffer.from(data);
  corrupt[12345] ^= 0xff;
  const other = new NorFlash();
  const platform = withFiles(other);
  download(platform, corrupt, 2048);
  assert.notEqual(platform.fileDigest!("tb-fw-a.js", "SHA256", data.length), createHash("sha256").update(data).digest("hex"));
});

test("what is not a mod archive of the announced size, or does not fit the partition, is refused at the first chunk", () => {
  const platform = withFiles(new NorFlash());
  const espruinoImage = Buffer.from("if(typeof tbImage==\"string\"||!(global.tbImage=(function(S){...");
  assert.throws(() => platform.fileWrite!("tb-fw-a.js", new Uint8Array(espruinoImage), 0, 5000), /the package is not a Moddable mod archive of 5000 B \(npm run moddable -- build makes <board>\.xsa\)/);
  const archive = modArchive(5000);
  assert.throws(() => platform.fileWrite!("tb-fw-a.js", new Uint8Array(archive.subarray(0, 2048)), 0, 6000), /not a Moddable mod archive of 6000 B/);
  const small = withFiles(new NorFlash(Buffer.alloc(8192)));
  assert.throws(() => small.fileWrite!("tb-fw-a.js", new Uint8Array(modArchive(9000).subarray(0, 2048)), 0, 9000), /9000 B do not fit the 8192 B mod partition/);
});

test("boot: another flashed firmware forgets the record; an update on trial runs, its boots counted, until confirmed or rolled back", () => {
  assert.equal(MAX_TRIAL_BOOTS, LOADER_MAX_TRIAL_BOOTS, "as Espruino's boot loader");
  const platform = fakePlatform();
  const record = () => JSON.parse(platform.storage[BOOT_FILE]);
  platform.storage[BOOT_FILE] = JSON.stringify({ base: "old-build", ok: "tb-fw-a.js" });
  assert.equal(moddableBoot(platform, true, "this-build", 300000), "");
  assert.deepEqual(record(), { base: "this-build" });

  // Staged by the ota feature: on trial.
  platform.storage[BOOT_FILE] = JSON.stringify({ base: "this-build", try: "tb-fw-a.js", boots: 0, ver: "1.1.0" });
  assert.equal(moddableBoot(platform, true, "this-build", 300000), "tb-fw-a.js");
  assert.equal(record().boots, 1);
  // Confirmed by its first PUBACK (ota.ts): the confirmation timer then does nothing.
  platform.storage[BOOT_FILE] = JSON.stringify({ ...record(), try: "", ok: "tb-fw-a.js", boots: 0 });
  platform.clock.advance(300000);
  assert.equal(platform.restarts, 0);
  assert.equal(moddableBoot(platform, true, "this-build", 300000), "tb-fw-a.js", "a confirmed update runs at every boot");
  assert.equal(record().boots, 0);
});

test("boot: a trial with no message acknowledged in time, one that restarts too often, one XS cannot map, and one that throws are rolled back with the reason", () => {
  const platform = fakePlatform();
  const record = () => JSON.parse(platform.storage[BOOT_FILE]);
  const trial = { base: "b", try: "tb-fw-a.js", boots: 0, ver: "1.2.0" };

  platform.storage[BOOT_FILE] = JSON.stringify(trial);
  assert.equal(moddableBoot(platform, true, "b", 60000), "tb-fw-a.js");
  platform.clock.advance(59999);
  assert.equal(platform.restarts, 0);
  platform.clock.advance(1);
  assert.equal(platform.restarts, 1);
  assert.equal(record().try, "");
  assert.equal(record().fail, "image 1.2.0 got no message acknowledged within 60 s; rolled back");
  assert.equal(moddableBoot(platform, true, "b", 60000), "", "the flashed firmware runs and reports FAILED");

  platform.storage[BOOT_FILE] = JSON.stringify(trial);
  for (let boot = 1; boot <= MAX_TRIAL_BOOTS; boot++) assert.equal(moddableBoot(platform, true, "b", 60000), "tb-fw-a.js", "boot " + boot);
  assert.equal(moddableBoot(platform, true, "b", 60000), "");
  assert.equal(record().fail, "image 1.2.0 restarted 3 times before it reached ThingsBoard; rolled back");

  platform.storage[BOOT_FILE] = JSON.stringify({ base: "b", ok: "tb-fw-a.js" });
  assert.equal(moddableBoot(platform, false, "b", 60000), "");
  assert.equal(record().ok, "");
  assert.equal(record().fail, "image in tb-fw-a.js is not in the mod partition or XS could not map it; rolled back");

  platform.storage[BOOT_FILE] = JSON.stringify({ ...trial, boots: 1 });
  const restartsBefore = platform.restarts;
  runUpdate(platform, "tb-fw-a.js", () => {
    assert.equal((globalThis as { tbImage?: string }).tbImage, "tb-fw-a.js", "the update's entry sees it runs as the update");
    throw new Error("boom at start");
  });
  assert.equal(platform.restarts, restartsBefore, "imported from a timer, not at once");
  platform.clock.advance(0);
  assert.equal(platform.restarts, restartsBefore + 1);
  assert.equal(record().try, "");
  assert.equal(record().fail, "image in tb-fw-a.js failed to start (boom at start); rolled back");
  assert.ok(platform.logs.includes("[E][boot] tb-fw-a.js failed to start: boom at start"));
  delete (globalThis as { tbImage?: string }).tbImage;
});

test("npm run tb -- ota takes a mod archive as a package, and refuses one cut short", () => {
  assert.equal(packageProblem(modArchive(5000)), "");
  assert.equal(packageProblem(modArchive(5000).subarray(0, 4000)), "the mod archive says 5000 B but the file has 4000 B (cut short?)");
  assert.match(packageProblem(Buffer.from([1, 2, 0, 4])), /not an Espruino image .* nor a Moddable mod archive/);
});
