// Flash overflow for the telemetry queue. When the RAM queue is full (a long outage),
// its oldest readings are written to flash as one small file per batch instead of being
// dropped, and read back, oldest first, once there is room again. Flash is written only
// then, so a device that stays online never wears it. Spilled batches survive a restart.

import type { Logger } from "../util/log";
import { errorText } from "../util/log";

/** The slice of the platform's storage the spill needs. */
export interface KeyValueStore {
  storageRead(key: string): string | null;
  storageWrite(key: string, value: string): void;
  storageRemove(key: string): void;
}

const INDEX_KEY = "tbq-index";
const BATCH_PREFIX = "tbq-";

export class SpillStore {
  private readonly _store: KeyValueStore;
  private readonly _log: Logger;
  private readonly _maxBatches: number;
  /** Batches first..next-1 are in flash. */
  private _first = 0;
  private _next = 0;
  /** Readings lost because flash was full or a batch could not be read; read-only outside the class. */
  lost = 0;

  constructor(store: KeyValueStore, log: Logger, maxBatches: number) {
    this._store = store;
    this._log = log;
    this._maxBatches = maxBatches;
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
      }
    }
    if (this.batches() > 0) log("I", "queue", this.batches() + " batch(es) in flash from before the restart");
  }

  batches(): number {
    return this._next - this._first;
  }

  /** Writes readings (oldest first) as one batch; returns false if it could not. */
  push(readings: string[]): boolean {
    if (this.batches() >= this._maxBatches) {
      const oldest = this.take();
      this.lost += oldest === null ? 0 : oldest.length;
      this._log("W", "queue", "flash queue full (" + this._maxBatches + " batches): dropped the oldest batch, " + this.lost + " reading(s) lost so far");
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

  /** Removes and returns the oldest batch, or null when there is none. */
  take(): string[] | null {
    while (this._first < this._next) {
      const key = BATCH_PREFIX + this._first;
      let readings: unknown = null;
      let text: string | null = null;
      try {
        text = this._store.storageRead(key);
        readings = text === null ? null : JSON.parse(text);
        this._store.storageRemove(key);
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
      this.lost += text ? text.split("\",\"").length : 1;
    }
    return null;
  }

  private _saveIndex(): void {
    try {
      this._store.storageWrite(INDEX_KEY, JSON.stringify({ first: this._first, next: this._next }));
    } catch (e) {
      this._log("E", "queue", "cannot write flash index: " + errorText(e));
    }
  }
}
