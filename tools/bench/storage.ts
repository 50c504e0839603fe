// Flash bytes per stored reading: what the telemetry queue's flash overflow writes, by
// running the firmware's SpillStore on a store that records every write. Espruino's
// Storage adds a 32-byte header to every file (src/jsflash.h: size + 28-byte name) and
// never rewrites in place, so each index update is written anew.

import { SpillStore } from "../../firmware/app/spill-store.ts";
import { createLogger } from "../../firmware/util/log.ts";
import { reading } from "./wire.ts";

const FILE_HEADER = 32;

export interface FlashFigures {
  /** Bytes the readings occupy in flash (batch files with headers), per reading. */
  storedPerReading: number;
  /** Bytes written to flash per reading, index updates included. */
  writtenPerReading: number;
}

export function flashPerReading(batches: number, batchSize: number): FlashFigures {
  let written = 0;
  const files: Record<string, string> = {};
  const store = {
    storageRead: (key: string) => (key in files ? files[key] : null),
    storageWrite: (key: string, value: string) => {
      written += FILE_HEADER + Buffer.byteLength(value, "latin1");
      files[key] = value;
    },
    storageRemove: (key: string) => {
      delete files[key];
    },
  };
  const spill = new SpillStore(store, createLogger(() => undefined, { logLevel: "info" }), batches);
  let index = 0;
  for (let b = 0; b < batches; b++) {
    const batch: string[] = [];
    for (let i = 0; i < batchSize; i++) batch.push(reading(index++));
    spill.push(batch);
  }
  let stored = 0;
  for (const [key, value] of Object.entries(files)) if (key !== "tbq-index") stored += FILE_HEADER + Buffer.byteLength(value, "latin1");
  return { storedPerReading: stored / index, writtenPerReading: written / index };
}
