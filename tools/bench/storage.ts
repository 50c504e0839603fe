// Flash bytes per stored reading: what the telemetry queue's flash overflow writes, by
// running the firmware's TelemetryQueue offline on a store that records every write (offline,
// every full batch goes to flash at once). Espruino's
// Storage adds a 32-byte header to every file (src/jsflash.h: size + 28-byte name) and
// never rewrites in place, so each index update is written anew.

import { TelemetryQueue } from "../../firmware/app/telemetry-queue.ts";
import type { MqttSession } from "../../firmware/mqtt/session.ts";
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
  // A session never connected (state idle): the queue sends nothing and spills each full batch.
  const offline = { state: 0 } as unknown as MqttSession;
  const queue = new TelemetryQueue(offline, createLogger(() => undefined, { logLevel: "info" }), batches * batchSize, store, batches);
  queue.setLimits(batchSize, 60000, 1000, false);
  let index = 0;
  for (let b = 0; b < batches; b++) for (let i = 0; i < batchSize; i++) queue.add(reading(index++));
  if (queue.spilledBatches !== batches) throw new Error("flash bench: " + queue.spilledBatches + " batches in flash, expected " + batches);
  let stored = 0;
  for (const [key, value] of Object.entries(files)) if (key !== "tbq-index") stored += FILE_HEADER + Buffer.byteLength(value, "latin1");
  return { storedPerReading: stored / index, writtenPerReading: written / index };
}
