// Store-and-forward queue: a reading leaves only when the PUBACK for the message that
// carried it arrives. While offline readings accumulate (each with its own ts) and are
// replayed in batches, a few messages in flight at a time, so a backlog flush stays
// under ThingsBoard's per-device rate limits. When RAM is full (a long outage), or a batch
// is complete while offline, the oldest readings are written to flash as one small file per
// batch instead of being dropped, and come back, oldest first, once the device is online
// again. Flash is written only then, so a device that stays online never wears it. Batches
// in flash survive a restart.
//
// The flash overflow is part of this class rather than a class of its own: on Espruino a
// class, its prototype, constructor and methods cost JsVars for the whole run.

import type { MqttSession } from "../mqtt/session";
import { CONNECTED } from "../mqtt/session";
import type { Logger } from "../util/log";
import { errorText } from "../util/log";
import { utf8Encode } from "../util/utf8";
import { TELEMETRY_TOPIC } from "../thingsboard/topics";

/** The slice of the platform's storage the flash overflow needs. */
export interface KeyValueStore {
  storageRead(key: string): string | null;
  storageWrite(key: string, value: string): void;
  storageRemove(key: string): void;
}

const INDEX_KEY = "tbq-index";
const BATCH_PREFIX = "tbq-";

export class TelemetryQueue {
  private readonly _session: MqttSession;
  private readonly _log: Logger;
  private readonly _capacity: number;
  /** Readings per message: setLimits() sets it before the first reading. */
  private _batchSize = 1;
  /** Characters and data points one message may carry (ThingsBoard's session limits). */
  private _maxChars = 60000;
  private _maxPoints = 1000;
  /** Where batches go when RAM is full or the device is offline, at most _maxBatches of them (0: nowhere). */
  private readonly _store: KeyValueStore;
  private readonly _maxBatches: number;
  /** Flash batches _first.._next-1 are there. */
  private _first = 0;
  private _next = 0;
  /** Batches of readings waiting in flash; read-only outside the class (a field: no method object on Espruino). */
  spilledBatches = 0;
  /** Readings lost: dropped when RAM was full and flash could not take them, or unreadable in flash. Read-only outside the class. */
  droppedCount = 0;
  /** Readings not yet handed to the session, oldest first, as JSON. */
  private _waiting: string[] = [];
  /** How many at the front of _waiting came back from flash: older than the rest, newer than what is still there. */
  private _restored = 0;
  /** Readings handed to the session, which keeps them until their PUBACK across reconnects. */
  private _handed = 0;
  /** The batches of those readings, kept until their PUBACK so a planned restart or deep sleep can move them to flash. */
  private _flight: string[][] = [];
  /** Each batch's message at the same index of _flight: its PUBACK names the batch by it. */
  private _flightPayloads: Uint8Array[] = [];
  /** Readings acknowledged since boot; read-only outside the class. */
  deliveredTotal = 0;
  /** False while readings wait for the next upload (flush); always true without an upload interval. */
  private _released = true;
  private _holdBetweenUploads = false;

  /**
   * `maxBatches`: batches `store` may hold (0: no flash overflow). Batches left there
   * before a restart are found again. Call setLimits() before the first reading.
   */
  constructor(session: MqttSession, log: Logger, capacity: number, store: KeyValueStore, maxBatches: number) {
    this._session = session;
    this._log = log;
    this._capacity = capacity;
    this._store = store;
    this._maxBatches = maxBatches;
    if (maxBatches === 0) return;
    let index: unknown = null;
    try {
      const text = store.storageRead(INDEX_KEY);
      index = text === null ? null : JSON.parse(text);
    } catch (e) {
      log("E", "queue", "flash index unreadable (" + errorText(e) + "); starting empty");
    }
    if (index !== null && typeof index === "object") {
      const first = (index as { first?: unknown }).first;
      const next = (index as { next?: unknown }).next;
      if (typeof first === "number" && typeof next === "number" && first >= 0 && next >= first && next - first <= maxBatches) {
        this._first = first;
        this._next = next;
        this.spilledBatches = next - first;
        if (next > first) log("I", "queue", next - first + " batch(es) in flash from before the restart");
      }
    }
  }

  /**
   * Batch limits: readings per message, characters per message (maxPayloadSize) and data
   * points per message (what the rate limits allow), and whether readings wait for flush().
   */
  setLimits(batchSize: number, maxChars: number, maxPoints: number, holdBetweenUploads: boolean): void {
    this._batchSize = batchSize;
    this._maxChars = maxChars;
    this._maxPoints = maxPoints;
    if (holdBetweenUploads !== this._holdBetweenUploads) this._released = !holdBetweenUploads;
    this._holdBetweenUploads = holdBetweenUploads;
  }

  /** Sends everything waiting now (an upload is due, or the link is back). */
  flush(): void {
    this._released = true;
    this.pump();
  }

  /** Readings in RAM: waiting, or handed to the session and not yet acknowledged (flash batches not counted). */
  size(): number {
    return this._waiting.length + this._handed;
  }

  add(json: string): void {
    const waiting = this._waiting;
    const log = this._log;
    // RAM full: move the oldest batch not on the wire to flash, else drop the oldest
    // reading not on the wire, and say so: never silently.
    if (this.size() >= this._capacity && !this._spillOldest("RAM full")) {
      if (waiting.length > 0) {
        // The oldest waiting reading goes (handed over, moved to flash or dropped: the same two lines each time, no method object).
        waiting.splice(0, 1);
        this._restored = this._restored > 1 ? this._restored - 1 : 0;
        log("W", "queue", "full (" + this._capacity + " readings): dropped the oldest, " + ++this.droppedCount + " dropped so far");
      } else {
        log("W", "queue", "full: dropped the new reading, " + ++this.droppedCount + " dropped so far");
        return;
      }
    }
    waiting.push(json);
    // Offline, every full batch (batchSize readings, or fewer when the payload or data point
    // limits end it) goes to flash at once: a restart then loses at most the readings of one
    // unfinished batch. Online the queue drains and flash is not written.
    if (this._session.state !== CONNECTED && (waiting.length >= this._batchSize || this._batchLength(this._batchSize) < waiting.length)) this._spillOldest("offline");
    this.pump();
  }

  /**
   * Moves every reading in RAM to flash before a planned restart or deep sleep: those in
   * flight (sent again if their PUBACK was only lost: at least once), then those waiting.
   */
  persist(): void {
    const flight = this._flight;
    while (flight.length > 0 && this._spill(flight[0])) {
      this._handed -= flight.shift()!.length;
      this._flightPayloads.shift();
    }
    while (this._waiting.length > 0 && this._spillOldest("restarting")) {
      // One batch at a time, oldest first.
    }
  }

  /** Moves the oldest batch not on the wire to flash; false if there is none or it could not. */
  private _spillOldest(why: string): boolean {
    const count = this._batchLength(this._batchSize);
    if (count === 0 || !this._spill(this._waiting.slice(0, count))) return false;
    this._waiting.splice(0, count);
    this._restored = this._restored > count ? this._restored - count : 0;
    this._log("I", "queue", why + ": moved " + count + " reading(s) to flash (" + this.spilledBatches + " batch(es) there)");
    return true;
  }

  /** Writes readings (oldest first) as one flash batch; returns false if it could not. */
  private _spill(readings: string[]): boolean {
    if (this._maxBatches === 0) return false;
    if (this.spilledBatches >= this._maxBatches) {
      const oldest = this._unspill();
      this.droppedCount += oldest === null ? 0 : oldest.length;
      this._log("W", "queue", "flash queue full (" + this._maxBatches + " batches): dropped the oldest batch, " + this.droppedCount + " reading(s) lost so far");
    }
    try {
      this._store.storageWrite(BATCH_PREFIX + this._next, JSON.stringify(readings));
      this._next++;
      this._saveIndex();
      return true;
    } catch (e) {
      this._log("E", "queue", "cannot write to flash: " + errorText(e));
      return false;
    }
  }

  /** Removes and returns the oldest flash batch, or null when there is none. */
  private _unspill(): string[] | null {
    const store = this._store;
    while (this._first < this._next) {
      const key = BATCH_PREFIX + this._first;
      let readings: unknown = null;
      let text: string | null = null;
      try {
        text = store.storageRead(key);
        readings = text === null ? null : JSON.parse(text);
        store.storageRemove(key);
      } catch (e) {
        this._log("E", "queue", "flash batch " + key + " unreadable (" + errorText(e) + "); skipped");
      }
      this._first++;
      if (this._first === this._next) {
        // Empty again: restart numbering so keys stay short.
        this._first = 0;
        this._next = 0;
      }
      this._saveIndex();
      if (Array.isArray(readings)) return readings as string[];
      // A batch is a JSON array of reading strings: their inner quotes are escaped, so '","'
      // only separates readings, and counts them in a damaged file too (a missing one: 1).
      this.droppedCount += text ? text.split("\",\"").length : 1;
    }
    return null;
  }

  /** Writes where the flash batches are, and counts them. */
  private _saveIndex(): void {
    this.spilledBatches = this._next - this._first;
    try {
      this._store.storageWrite(INDEX_KEY, JSON.stringify({ first: this._first, next: this._next }));
    } catch (e) {
      this._log("E", "queue", "cannot write flash index: " + errorText(e));
    }
  }

  /** How many of the oldest waiting readings one message may carry, at most `max` (at least one, if any wait). */
  private _batchLength(max: number): number {
    const waiting = this._waiting;
    let chars = 2;
    let points = 0;
    let count = 0;
    for (; count < waiting.length && count < max; count++) {
      // Data points: one per "key": pair, less ts and values themselves. Strings with ": inside count too: errs on the safe side.
      const json = waiting[count];
      let pairs = json.indexOf("{\"ts\"") === 0 ? -2 : 0;
      for (let at = json.indexOf("\":"); at >= 0; at = json.indexOf("\":", at + 2)) pairs++;
      chars += json.length + 1;
      points += pairs;
      if (count > 0 && (chars > this._maxChars || points > this._maxPoints)) break;
    }
    return count;
  }

  /** Hands waiting readings to the session while it has room. Call on connect and on ack. */
  pump(): void {
    const session = this._session;
    let waiting = this._waiting;
    if (!this._released || session.state !== CONNECTED) return;
    // Online with room to spare: bring back flash batches, oldest first, ahead of what is in
    // RAM (flash holds the oldest data).
    while (this.spilledBatches > 0 && this.size() + 2 * this._batchSize <= this._capacity) {
      const batch = this._unspill();
      if (batch === null) break;
      // A new array, not splice(at, 0, reading): each element Espruino 2v29's splice inserts
      // leaves JsVars that only a garbage collection frees (about 3.5 per reading, measured).
      const restored = this._restored;
      waiting = this._waiting = waiting.slice(0, restored).concat(batch, waiting.slice(restored));
      this._restored = restored + batch.length;
    }
    for (;;) {
      if (!session.canPublish()) return;
      // Smaller batches while the session suspects a rate limit (MqttSession.squeeze).
      const count = this._batchLength(this._batchSize >> session.squeeze || 1);
      if (count === 0) {
        // All handed over: what comes next waits for the next upload.
        if (this._holdBetweenUploads) this._released = false;
        return;
      }
      const batch = waiting.slice(0, count);
      // Several readings in one message: a JSON array, which ThingsBoard accepts as is.
      const payload = utf8Encode(count === 1 ? batch[0] : "[" + batch.join(",") + "]");
      if (!session.publish(TELEMETRY_TOPIC, payload, 1, TelemetryQueue._acknowledge, this)) return;
      waiting.splice(0, count);
      this._restored = this._restored > count ? this._restored - count : 0;
      this._handed += count;
      this._flight.push(batch);
      this._flightPayloads.push(payload);
    }
  }

  /** A batch's PUBACK. Static, given the queue by the session: no closure per message. */
  private static _acknowledge(queue: TelemetryQueue, payload: Uint8Array): void {
    const flight = queue._flight;
    // Espruino compares typed arrays by content (=== and indexOf alike): an equal payload
    // is an equal batch (the same readings), so taking either keeps the count right.
    const at = queue._flightPayloads.indexOf(payload);
    // Not there: persist() moved it to flash before its PUBACK came, and it goes again from there (at least once).
    if (at < 0) return;
    const count = flight[at].length;
    flight.splice(at, 1);
    queue._flightPayloads.splice(at, 1);
    queue._handed -= count;
    queue.deliveredTotal += count;
    queue._log("D", "queue", "delivered " + count + " reading(s), " + queue.size() + " waiting");
    queue.pump();
  }
}
