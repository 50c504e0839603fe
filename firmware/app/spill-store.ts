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

export interface SpillStore {
  batches(): number;
  /** Readings lost because flash was full or a batch could not be read. */
  lostCount(): number;
  /** Writes readings (oldest first) as one batch; returns false if it could not. */
  push(readings: string[]): boolean;
  /** Removes and returns the oldest batch, or null when there is none. */
  take(): string[] | null;
}

/** A closure, not a class: its state is local variables, shorter in the image than `this._x`. */
export function createSpillStore(store: KeyValueStore, log: Logger, maxBatches: number): SpillStore {
  /** Batches first..next-1 are in flash. */
  let first = 0;
  let next = 0;
  let lost = 0;

  const saveIndex = (): void => {
    try {
      store.storageWrite(INDEX_KEY, JSON.stringify({ first: first, next: next }));
    } catch (e) {
      log("E", "queue", "cannot write flash index: " + errorText(e));
    }
  };

  const take = (): string[] | null => {
    while (first < next) {
      const key = BATCH_PREFIX + first;
      let readings: unknown = null;
      try {
        const text = store.storageRead(key);
        readings = text === null ? null : JSON.parse(text);
        store.storageRemove(key);
      } catch (e) {
        log("E", "queue", "flash batch " + key + " unreadable (" + errorText(e) + "); skipped");
      }
      first++;
      if (first === next) {
        // Empty again: restart numbering so keys stay short.
        first = 0;
        next = 0;
      }
      saveIndex();
      if (Array.isArray(readings)) return readings as string[];
      lost++;
    }
    return null;
  };

  let index: unknown = null;
  try {
    const text = store.storageRead(INDEX_KEY);
    index = text === null ? null : JSON.parse(text);
  } catch (e) {
    log("E", "queue", "flash index unreadable (" + errorText(e) + "); starting empty");
  }
  if (index !== null && typeof index === "object") {
    const savedFirst = (index as { first?: unknown }).first;
    const savedNext = (index as { next?: unknown }).next;
    if (typeof savedFirst === "number" && typeof savedNext === "number" && savedFirst >= 0 && savedNext >= savedFirst && savedNext - savedFirst <= maxBatches) {
      first = savedFirst;
      next = savedNext;
    }
  }
  if (next > first) log("I", "queue", next - first + " batch(es) in flash from before the restart");

  return {
    batches: () => next - first,
    lostCount: () => lost,
    push: (readings) => {
      if (next - first >= maxBatches) {
        const oldest = take();
        lost += oldest === null ? 0 : oldest.length;
        log("W", "queue", "flash queue full (" + maxBatches + " batches): dropped the oldest batch, " + lost + " reading(s) lost so far");
      }
      try {
        store.storageWrite(BATCH_PREFIX + next, JSON.stringify(readings));
        next++;
        saveIndex();
        return true;
      } catch (e) {
        log("E", "queue", "cannot write to flash: " + errorText(e));
        return false;
      }
    },
    take: take,
  };
}
