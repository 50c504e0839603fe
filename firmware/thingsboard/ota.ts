// The "ota" board feature: firmware updates assigned in ThingsBoard, over MQTT.
// - Trigger: the shared attributes fw_title, fw_version, fw_size, fw_checksum and
//   fw_checksum_algorithm, asked for after every connect and pushed when they change.
// - Download: chunk n asked for on v2/fw/request/{id}/chunk/{n} (the chunk size as
//   text, QoS 1, paced like telemetry), answered raw on v2/fw/response/{id}/chunk/{n}; one chunk at a time, each
//   written to a flash file at once (never more than one chunk in RAM), asked for again
//   with backoff when it does not come; a reconnect, and a restart, resume at the first
//   missing chunk (the boot record keeps the next chunk).
// - Verify: the checksum (SHA256, SHA384, SHA512, CRC32; MD5 on Moddable) of the file as
//   it lies in flash, so what boots is what was checked.
// - Switch: the boot record (BOOT_FILE) names the new image as the one to try; the boot
//   loader (Espruino: tools/build/boot-loader.mjs in front of the image; Moddable: the host's
//   firmware/platform/moddable-update.ts, the update being a mod) runs it, counts its boots
//   and rolls back when it fails to start, restarts too often or reaches no PUBACK in
//   time. The new image confirms itself with its first acknowledged message (UPDATED).
// States go out as telemetry fw_state (and fw_progress, fw_error), as ThingsBoard expects.

import type { DeviceContext } from "../app/device";
import { errorText } from "../util/log";
import { utf8Decode, utf8Encode } from "../util/utf8";
import { FIRMWARE_TITLE } from "./attributes";
import { field, parsePayload, publishJson } from "./json";
import { ATTRIBUTES_TOPIC, ATTRIBUTE_REQUEST, ATTRIBUTE_RESPONSE, TELEMETRY_TOPIC } from "./topics";

/** Which image runs, which is on trial, and what failed: read by the boot loader too. */
export const BOOT_FILE = "tb-boot.json";
/** The two flash files an update goes to, in turn: the running one is never overwritten. */
const SLOT_A = "tb-fw-a.js";
const SLOT_B = "tb-fw-b.js";
/** For the tools and tests; the image uses the names, so that it keeps no array of them. */
export const IMAGE_SLOTS = [SLOT_A, SLOT_B];
/** Firmware topics exist only in the v2 form, whichever topics the rest uses. */
const CHUNK_REQUEST = "v2/fw/request/";
const CHUNK_RESPONSE = "v2/fw/response/";
const FW_ERROR = "v2/fw/error";
const FW_KEYS = "fw_title,fw_version,fw_size,fw_checksum,fw_checksum_algorithm";
/** Attribute request ids of this feature: apart from the attributes feature's 1, 2, 3... */
const REQUEST_ID_BASE = 900000;
/** Larger images than this are refused before anything is written. */
export const MAX_IMAGE_BYTES = 262144;
const CHUNK_TRIES = 6;

/** The boot record; keys are shared with the boot loaders, so they are JSON, not mangled. */
export interface BootRecord {
  base?: string;
  /** Confirmed image file ("" : the flashed image). */
  ok?: string;
  /** Image file on trial, until it confirms itself. */
  try?: string;
  boots?: number;
  ver?: string;
  /** Why the last update failed, set by the loader on a rollback; reported once. */
  fail?: string;
  /** The update (title, version, checksum) that failed: not tried again until ThingsBoard assigns another. */
  failed?: string;
  /** The same for the update on trial. */
  key?: string;
  /** A download under way: its key, file, chunk size and next chunk, so a restart goes on from there. */
  dl?: [string, string, number, number] | null;
}

/** The update in progress: title, version, size, checksum, algorithm. */
type Target = [string, string, number, string, string];

/** What the stub asks of the updater; each answers whether the updater still has work. */
interface Updater {
  onConnected(): boolean;
  onMessage(topic: string, payload: Uint8Array): boolean;
  update(title: string, version: string, values: unknown): boolean;
}

/** Chunk request ids: counted across updaters, so a late chunk of an earlier download is never taken. */
let chunkRequestId = 0;

/**
 * The updater, made when there is work for it. Its class is declared in here so that it
 * exists only while called for: saved to flash, Espruino creates a function's inner
 * functions only when it runs. A top-level function, not one inside otaFeature: loaded
 * into RAM, Espruino copies the text of each function it creates, so nested, the class's
 * text would be kept twice.
 */
function wakeUpdater(context: DeviceContext, record: BootRecord, running: string): Updater {
  class FirmwareUpdater {
    private _target: Target | null = null;
    /** The update in progress as "title version checksum", as the server wrote them: what the boot record remembers. */
    private _key = "";
    private _file = "";
    private _chunkBytes = 0;
    private _next = 0;
    private _tries = 0;
    private _timer: unknown = null;
    private _reported = 0;

    /** Whether the updater has anything left to do (else the stub lets it go). */
    private _busy(): boolean {
      return this._target !== null || this._timer !== null;
    }

    private _saveRecord(): void {
      try {
        context.platform.storageWrite(BOOT_FILE, JSON.stringify(record));
      } catch (e) {
        context.log("E", "ota", BOOT_FILE + ": " + errorText(e));
      }
    }

    /** fw_state telemetry, sent ahead of the readings waiting; `onAck` runs on its PUBACK. */
    private _report(state: string, extra: { [key: string]: string | number } | null, onAck: (() => void) | null): void {
      const values: { [key: string]: string | number } = extra || {};
      values.fw_state = state;
      context.log(state === "FAILED" ? "E" : "I", "ota", JSON.stringify(values));
      if (!publishJson(context.session, TELEMETRY_TOPIC, values, onAck)) context.queue.add(JSON.stringify(values));
    }

    onConnected(): boolean {
      const updater = this;
      const version = context.config.firmwareVersion;
      if (record.try && record.try === running) {
        // On trial: the first acknowledged message proves this image works.
        const confirm = () => {
          if (record.try !== running) return;
          record.ok = running;
          record.try = "";
          record.boots = 0;
          updater._saveRecord();
          context.log("I", "ota", "running " + version + " from " + running + ": confirmed");
        };
        if (record.ver === version) this._report("UPDATED", { current_fw_title: FIRMWARE_TITLE, current_fw_version: version }, confirm);
        else {
          // A package labelled with another version would be downloaded again and again.
          record.failed = record.key;
          this._report("FAILED", { fw_error: "the package for " + record.ver + " holds firmware " + version }, confirm);
        }
      } else if (record.fail) {
        // Rolled back by the boot loader: that package is not downloaded again after a restart.
        record.failed = record.key;
        this._report("FAILED", { fw_error: record.fail }, null);
        record.fail = "";
        this._saveRecord();
      }
      // A download cut by the disconnect goes on at the first missing chunk: the session
      // sends an unacknowledged request again; one acknowledged but unanswered is asked soon.
      if (this._target !== null && this._next >= 0) this._arm(3000, false);
      return this._busy();
    }

    /** A chunk or v2/fw/error. */
    onMessage(topic: string, payload: Uint8Array): boolean {
      if (topic === FW_ERROR) {
        if (this._target !== null) this._fail("ThingsBoard: " + utf8Decode(payload, 0, payload.length), false);
      } else {
        const rest = topic.substring(CHUNK_RESPONSE.length);
        const at = rest.indexOf("/chunk/");
        if (Number(rest.substring(0, at)) === chunkRequestId) this._chunk(Number(rest.substring(at + 7)), payload);
      }
      return this._busy();
    }

    /** Shared attributes that name firmware other than this one (an update or a request's answer): starts an update. */
    update(title: string, version: string, values: unknown): boolean {
      const size = field(values, "fw_size");
      const checksum = field(values, "fw_checksum");
      const algorithm = String(field(values, "fw_checksum_algorithm") || "SHA256").toUpperCase();
      const key = title + " " + version + " " + checksum;
      if ((this._target !== null && key === this._key) || key === record.failed) return this._busy();
      this._stop();
      this._target = [title, version, size as number, String(checksum).toLowerCase(), algorithm];
      this._key = key;
      let problem = "";
      if (title !== FIRMWARE_TITLE) problem = "fw_title " + title + " is not this firmware (" + FIRMWARE_TITLE + ")";
      else if (typeof size !== "number" || !(size > 0 && size <= MAX_IMAGE_BYTES)) problem = "fw_size must be 1 to " + MAX_IMAGE_BYTES + " bytes, got " + size;
      else if (typeof checksum !== "string" || checksum === "") problem = "no fw_checksum";
      else if (!context.platform.fileWrite) problem = "updates are not supported on " + context.platform.runtime;
      if (problem !== "") {
        this._fail(problem, true);
        return false;
      }
      if (running !== "" && context.platform.oneUpdateSlot) {
        // This update runs from the only slot, which cannot be written under it: the flashed
        // firmware, which the record now names, downloads the next one after the restart.
        context.log("I", "ota", version + ": restarting into the flashed firmware to download it");
        record.ok = record.try = "";
        this._saveRecord();
        this._target = null;
        context.queue.persist();
        context.platform.restart();
        return false;
      }
      // Only now: each filter the session keeps costs RAM for good. Sent before the first
      // chunk request, on the same connection, so in place when its answer comes.
      context.session.subscribe(CHUNK_RESPONSE + "+/chunk/+");
      context.session.subscribe(FW_ERROR);
      // The slot the running image is not in; the chunk size fixed for the whole download.
      this._file = running === SLOT_A ? SLOT_B : SLOT_A;
      this._chunkBytes = Math.min(context.config.otaChunkBytes, context.limits[2]);
      // Cut by a restart: the same package into the same file in the same chunks goes on
      // where it stopped (written parts of a flash file cannot be written again).
      const cut = record.dl;
      const from = cut && cut[0] === key && cut[1] === this._file && cut[2] === this._chunkBytes ? cut[3] : 0;
      this._next = from;
      this._reported = Math.floor((from * this._chunkBytes * 100) / (size as number));
      chunkRequestId++;
      context.log("I", "ota", title + " " + version + ", " + size + " B, to " + this._file + (from > 0 ? " from chunk " + from : ""));
      this._report("DOWNLOADING", { fw_progress: this._reported }, null);
      // Every chunk was in before the cut: only the check is left.
      if (from * this._chunkBytes >= (size as number)) this._downloaded();
      else this._request();
      return this._busy();
    }

    /**
     * Asks for the next chunk at QoS 1: paced with every other message (ThingsBoard's rate
     * limits count it) and sent again by the session after a reconnect. Asks again with
     * backoff until the chunk comes or the tries run out; soon when there was no room.
     */
    private _request(): void {
      const sent = context.session.publish(CHUNK_REQUEST + chunkRequestId + "/chunk/" + this._next, utf8Encode(String(this._chunkBytes)), 1, null);
      this._arm(sent ? context.config.responseTimeoutMs * (1 << Math.min(this._tries, 3)) : 1000, sent);
    }

    private _arm(ms: number, counted: boolean): void {
      const updater = this;
      const platform = context.platform;
      if (this._timer !== null) platform.clearTimeout(this._timer);
      this._timer = platform.setTimeout(() => {
        updater._timer = null;
        if (counted && ++updater._tries >= CHUNK_TRIES) updater._fail("chunk " + updater._next + ": no answer after " + CHUNK_TRIES + " tries", false);
        else updater._request();
      }, ms);
    }

    private _chunk(n: number, payload: Uint8Array): void {
      const target = this._target;
      if (target === null || n !== this._next) return;
      const size = target[2];
      const offset = n * this._chunkBytes;
      // The last chunk is shorter; past the end the server sends nothing.
      const expected = Math.min(this._chunkBytes, size - offset);
      if (payload.length !== expected) {
        context.log("W", "ota", "chunk " + n + ": " + payload.length + " B, expected " + expected + "; asking again");
        return;
      }
      try {
        context.platform.fileWrite!(this._file, payload, offset, size);
      } catch (e) {
        this._fail("cannot write " + this._file + ": " + errorText(e), false);
        return;
      }
      this._next++;
      this._tries = 0;
      // Saved after the write: a cut between the two asks for a chunk already written, which
      // fails the write and starts the download again; never a hole in the image.
      record.dl = [this._key, this._file, this._chunkBytes, this._next];
      this._saveRecord();
      const done = offset + expected;
      const percent = Math.floor((done * 100) / size);
      if (done >= size) this._downloaded();
      else {
        if (percent >= this._reported + 20) {
          this._reported = percent;
          this._report("DOWNLOADING", { fw_progress: percent }, null);
        }
        this._request();
      }
    }

    private _downloaded(): void {
      const target = this._target!;
      const platform = context.platform;
      if (this._timer !== null) platform.clearTimeout(this._timer);
      this._timer = null;
      this._next = -1;
      record.dl = null;
      this._report("DOWNLOADED", { fw_progress: 100 }, null);
      // What boots is what is checked: the file as it lies in flash.
      const actual = platform.fileDigest!(this._file, target[4], target[2]);
      // ThingsBoard prints a CRC32 with its bytes reversed (Guava's HashCode): both orders pass.
      const swapped = actual.substring(6, 8) + actual.substring(4, 6) + actual.substring(2, 4) + actual.substring(0, 2);
      if (actual === "") this._fail("checksum algorithm " + target[4] + " not available on this device", true);
      else if (actual !== target[3] && (target[4] !== "CRC32" || swapped !== target[3])) this._fail(target[4] + " mismatch: expected " + target[3] + ", got " + actual, true);
      else this._install();
    }

    private _install(): void {
      const target = this._target!;
      const platform = context.platform;
      try {
        if (platform.fileSeal) platform.fileSeal(this._file, target[2]);
      } catch (e) {
        this._fail("cannot write " + this._file + ": " + errorText(e), false);
        return;
      }
      this._report("VERIFIED", null, null);
      record.try = this._file;
      record.boots = 0;
      record.ver = target[1];
      record.key = this._key;
      record.fail = "";
      this._saveRecord();
      const restart = () => {
        context.queue.persist();
        platform.restart();
      };
      platform.setTimeout(restart, 10000);
      this._report("UPDATING", null, restart);
    }

    /**
     * Ends the attempt. `final`: the package itself is at fault (refused, checksum), so it is
     * not tried again until ThingsBoard assigns another; else (no answer, a server error,
     * flash) the next connect tries again.
     */
    private _fail(reason: string, final: boolean): void {
      const target = this._target;
      this._stop();
      this._report("FAILED", { fw_error: reason }, null);
      // The file goes (below), so nothing to resume.
      record.dl = null;
      if (target !== null && final) record.failed = this._key;
      this._saveRecord();
      if (this._file !== "") {
        try {
          context.platform.storageRemove(this._file);
        } catch (e) {
          // Overwritten by the next update anyway.
        }
      }
    }

    private _stop(): void {
      if (this._timer !== null) context.platform.clearTimeout(this._timer);
      this._timer = null;
      this._target = null;
      this._tries = 0;
    }
  }
  return new FirmwareUpdater();
}

/**
 * Subscribes, asks for the fw attributes on every connect and answers what does not need
 * the updater. The updater (its class, its state) exists only while an update, a trial or
 * a failure to report is under way: on Espruino, code saved to flash costs RAM only for
 * the functions and objects that exist. An idle "ota" cost about 160 peak JsVars with
 * the updater always there, about 90 without (2v29, saved to flash).
 */
export function otaFeature(context: DeviceContext): void {
  let record: BootRecord = {};
  try {
    record = JSON.parse(context.platform.storageRead(BOOT_FILE) || "{}");
  } catch (e) {
    context.log("E", "ota", BOOT_FILE + ": " + errorText(e));
  }
  /** The file this image runs from ("" : the flashed image). */
  const running = record.try || record.ok || "";
  const session = context.session;
  let attributeId = REQUEST_ID_BASE;

  let updater: Updater | null = null;
  session.subscribe(ATTRIBUTES_TOPIC);
  session.subscribe(ATTRIBUTE_RESPONSE + "+");
  // First, for every topic: attribute messages are the attributes feature's too, so they are passed on.
  context.topics.unshift("");
  context.onMessage.unshift((topic, payload) => {
    let values: unknown;
    if (topic === ATTRIBUTES_TOPIC) values = parsePayload(payload);
    else if (topic.indexOf(ATTRIBUTE_RESPONSE) === 0) {
      if (Number(topic.substring(ATTRIBUTE_RESPONSE.length)) <= REQUEST_ID_BASE) return false;
      values = field(parsePayload(payload), "shared");
    } else {
      if (topic.indexOf(CHUNK_RESPONSE) !== 0 && topic !== FW_ERROR) return false;
      if (updater !== null && !updater.onMessage(topic, payload)) updater = null;
      return true;
    }
    // Firmware other than this one starts an update (written here, not as a closure: one
    // function object fewer for the run).
    const title = field(values, "fw_title");
    const version = field(values, "fw_version");
    if (typeof title === "string" && typeof version === "string" && (title !== FIRMWARE_TITLE || version !== context.config.firmwareVersion)) {
      if (updater === null) updater = wakeUpdater(context, record, running);
      if (!updater.update(title, version, values)) updater = null;
    }
    return topic !== ATTRIBUTES_TOPIC;
  });
  context.onConnect.push(() => {
    // A trial to confirm (until its first PUBACK) or a failure to report.
    if (updater === null && (record.try || record.fail)) updater = wakeUpdater(context, record, running);
    if (updater !== null && !updater.onConnected()) updater = null;
    publishJson(session, ATTRIBUTE_REQUEST + ++attributeId, { sharedKeys: FW_KEYS }, null);
  });
}
