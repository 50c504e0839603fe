// Store-and-forward queue: a reading leaves only when the PUBACK for the message that
// carried it arrives. While offline readings accumulate (each with its own ts) and are
// replayed in batches, a few messages in flight at a time, so a backlog flush stays
// under ThingsBoard's per-device rate limits. When RAM is full the oldest readings go to
// flash (SpillStore) and come back, oldest first, once the device is online again.

import type { MqttSession } from "../mqtt/session";
import { CONNECTED } from "../mqtt/session";
import type { SpillStore } from "./spill-store";
import type { Logger } from "../util/log";
import { utf8Encode } from "../util/utf8";
import { TELEMETRY_TOPIC } from "../thingsboard/topics";

export class TelemetryQueue {
  private readonly _session: MqttSession;
  private readonly _log: Logger;
  private readonly _capacity: number;
  private _batchSize: number;
  /** Characters and data points one message may carry (ThingsBoard's session limits). */
  private _maxChars = 60000;
  private _maxPoints = 1000;
  private readonly _spill: SpillStore | null;
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
  /** Readings acknowledged since boot; read-only outside the class (a field: no method object on Espruino). */
  deliveredTotal = 0;
  private _dropped = 0;
  /** False while readings wait for the next upload (flush); always true without an upload interval. */
  private _released: boolean;
  private _holdBetweenUploads: boolean;

  /**
   * `holdBetweenUploads`: readings are sent only when flush() is called (every upload
   * interval), all that wait at once, in batches of `batchSize`; else each as it comes.
   */
  constructor(session: MqttSession, log: Logger, capacity: number, batchSize: number, spill: SpillStore | null, holdBetweenUploads: boolean) {
    this._session = session;
    this._log = log;
    this._capacity = capacity;
    this._batchSize = batchSize;
    this._spill = spill;
    this._holdBetweenUploads = holdBetweenUploads;
    this._released = !holdBetweenUploads;
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

  /** Batches of readings waiting in flash. */
  spilledBatches(): number {
    return this._spill === null ? 0 : this._spill.batches();
  }

  droppedCount(): number {
    return this._dropped + (this._spill === null ? 0 : this._spill.lost);
  }

  add(json: string): void {
    const waiting = this._waiting;
    const log = this._log;
    // RAM full: move the oldest batch not on the wire to flash, else drop the oldest
    // reading not on the wire, and say so: never silently.
    if (this.size() >= this._capacity && !this._spillOldest("RAM full")) {
      if (waiting.length > 0) {
        this._takeFront(1);
        log("W", "queue", "full (" + this._capacity + " readings): dropped the oldest, " + ++this._dropped + " dropped so far");
      } else {
        log("W", "queue", "full: dropped the new reading, " + ++this._dropped + " dropped so far");
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
    const spill = this._spill;
    const flight = this._flight;
    while (spill !== null && flight.length > 0 && spill.push(flight[0])) {
      this._handed -= flight.shift()!.length;
      this._flightPayloads.shift();
    }
    while (this._waiting.length > 0 && this._spillOldest("restarting")) {
      // One batch at a time, oldest first.
    }
  }

  /** Removes the oldest `count` waiting readings (handed over, moved to flash or dropped). */
  private _takeFront(count: number): void {
    this._waiting.splice(0, count);
    this._restored = this._restored > count ? this._restored - count : 0;
  }

  /** Moves the oldest batch not on the wire to flash; false if there is none or it could not. */
  private _spillOldest(why: string): boolean {
    const spill = this._spill;
    const count = this._batchLength(this._batchSize);
    if (spill === null || count === 0 || !spill.push(this._waiting.slice(0, count))) return false;
    this._takeFront(count);
    this._log("I", "queue", why + ": moved " + count + " reading(s) to flash (" + spill.batches() + " batch(es) there)");
    return true;
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
    const spill = this._spill;
    let waiting = this._waiting;
    if (!this._released || session.state !== CONNECTED) return;
    // Online with room to spare: bring back flash batches, oldest first, ahead of what is in
    // RAM (flash holds the oldest data).
    while (spill !== null && spill.batches() > 0 && this.size() + 2 * this._batchSize <= this._capacity) {
      const batch = spill.take();
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
      this._takeFront(count);
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
