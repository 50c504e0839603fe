// Store-and-forward queue: a reading leaves only when the PUBACK for the message that
// carried it arrives. While offline readings accumulate (each with its own ts) and are
// replayed in batches, a few messages in flight at a time, so a backlog flush stays
// under ThingsBoard's per-device rate limits. When RAM is full the oldest readings go to
// flash (SpillStore) and come back, oldest first, once the device is online again.

import type { MqttSession } from "../mqtt/session";
import type { SpillStore } from "./spill-store";
import type { Logger } from "../util/log";
import { utf8Encode } from "../util/utf8";
import { telemetryBatch } from "../thingsboard/telemetry";
import { TELEMETRY_TOPIC } from "../thingsboard/topics";

interface QueuedReading {
  json: string;
  /** Handed to the session, which keeps it until PUBACK across reconnects. */
  handed: boolean;
}

export class TelemetryQueue {
  private readonly _session: MqttSession;
  private readonly _log: Logger;
  private readonly _capacity: number;
  private _batchSize: number;
  /** Characters and data points one message may carry (ThingsBoard's session limits). */
  private _maxChars = 60000;
  private _maxPoints = 1000;
  private readonly _spill: SpillStore | null;
  private _readings: QueuedReading[] = [];
  private _delivered = 0;
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

  /** Readings waiting in RAM (flash batches not counted). */
  size(): number {
    return this._readings.length;
  }

  /** Batches of readings waiting in flash. */
  spilledBatches(): number {
    return this._spill === null ? 0 : this._spill.batches();
  }

  deliveredCount(): number {
    return this._delivered;
  }

  droppedCount(): number {
    return this._dropped + (this._spill === null ? 0 : this._spill.lostCount());
  }

  add(json: string): void {
    if (this._readings.length >= this._capacity && !this._spillOldest()) {
      // Drop the oldest reading not already on the wire, and say so: never silently.
      for (let i = 0; i < this._readings.length; i++) {
        if (!this._readings[i].handed) {
          this._readings.splice(i, 1);
          this._dropped++;
          this._log("W", "queue", "full (" + this._capacity + " readings): dropped the oldest, " + this._dropped + " dropped so far");
          break;
        }
      }
      if (this._readings.length >= this._capacity) {
        this._dropped++;
        this._log("W", "queue", "full: dropped the new reading, " + this._dropped + " dropped so far");
        return;
      }
    }
    this._readings.push({ json: json, handed: false });
    this.pump();
  }

  /** The oldest readings not yet on the wire, as many as one message may carry (at least one). */
  private _oldestWaiting(): QueuedReading[] {
    const batch: QueuedReading[] = [];
    let chars = 2;
    let points = 0;
    for (let i = 0; i < this._readings.length && batch.length < this._batchSize; i++) {
      const reading = this._readings[i];
      if (reading.handed) continue;
      // Data points: one per "key": pair, less ts and values themselves. Strings with ": inside count too: errs on the safe side.
      const json = reading.json;
      let pairs = json.indexOf("{\"ts\"") === 0 ? -2 : 0;
      for (let at = json.indexOf("\":"); at >= 0; at = json.indexOf("\":", at + 2)) pairs++;
      chars += json.length + 1;
      points += pairs;
      if (batch.length > 0 && (chars > this._maxChars || points > this._maxPoints)) break;
      batch.push(reading);
    }
    return batch;
  }

  private static _texts(batch: QueuedReading[]): string[] {
    const texts: string[] = [];
    for (let i = 0; i < batch.length; i++) texts.push(batch[i].json);
    return texts;
  }

  /** Moves the oldest batch of readings not on the wire to flash; false if it could not. */
  private _spillOldest(): boolean {
    if (this._spill === null) return false;
    const batch = this._oldestWaiting();
    if (batch.length === 0 || !this._spill.push(TelemetryQueue._texts(batch))) return false;
    for (let i = 0; i < batch.length; i++) this._readings.splice(this._readings.indexOf(batch[i]), 1);
    this._log("I", "queue", "RAM full: moved " + batch.length + " reading(s) to flash (" + this._spill.batches() + " batch(es) there)");
    return true;
  }

  /** Hands waiting readings to the session while it has room. Call on connect and on ack. */
  pump(): void {
    // Arrows use this const, not `this`: see "arrow function using this" in tools/check-espruino.ts.
    const queue = this;
    if (!this._released || !this._session.isConnected()) return;
    // Online with room to spare: bring back the oldest flash batch first (it is the oldest data).
    while (this._spill !== null && this._spill.batches() > 0 && this._readings.length + 2 * this._batchSize <= this._capacity) {
      const batch = this._spill.take();
      if (batch === null) break;
      for (let i = batch.length - 1; i >= 0; i--) this._readings.unshift({ json: batch[i], handed: false });
    }
    for (;;) {
      if (!this._session.canPublish()) return;
      const batch = this._oldestWaiting();
      if (batch.length === 0) {
        // All handed over: what comes next waits for the next upload.
        if (this._holdBetweenUploads) this._released = false;
        return;
      }
      const accepted = this._session.publish(TELEMETRY_TOPIC, utf8Encode(telemetryBatch(TelemetryQueue._texts(batch))), 1, () => {
        queue._acknowledge(batch);
      });
      if (!accepted) return;
      for (let i = 0; i < batch.length; i++) batch[i].handed = true;
    }
  }

  private _acknowledge(batch: QueuedReading[]): void {
    for (let i = 0; i < batch.length; i++) {
      const index = this._readings.indexOf(batch[i]);
      if (index >= 0) this._readings.splice(index, 1);
    }
    this._delivered += batch.length;
    this._log("D", "queue", "delivered " + batch.length + " reading(s), " + this._readings.length + " waiting");
    this.pump();
  }
}
