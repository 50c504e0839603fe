// Heap in the simulator: the sim image (the very image that is flashed) runs in the
// Espruino sandbox, sampling every 2 ms and publishing to a local mosquitto; the heap
// retained after garbage collection is read after 2,000 publishes (V8 has warmed up by
// then) and after 10,000 more. It should stay flat: growth means a leak. Also the heap one queued reading
// holds, from the firmware's queue filled while offline.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { TelemetryQueue } from "../../firmware/app/telemetry-queue.ts";
import type { MqttSession } from "../../firmware/mqtt/session.ts";
import { createLogger } from "../../firmware/util/log.ts";
import { runEspruinoImage } from "../sim/espruino-sandbox.ts";
import { countTelemetry } from "./subscriber.ts";
import { reading } from "./wire.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export interface HeapFigures {
  /** Heap after 2,000 publishes, bytes. */
  before: number;
  /** After 10,000 more. */
  after: number;
  /** Heap retained per publish between the two points (0 when flat). */
  growthPerPublish: number;
}

/** `image`: a sim image built for mosquitto at `plainPort`, sampling every 2 ms. */
export async function heapAfterPublishes(image: string, plainPort: number): Promise<HeapFigures> {
  const subscriber = await countTelemetry(plainPort, "bench-heap");
  const sandbox = runEspruinoImage({ imagePath: image, storageDir: mkdtempSync(join(tmpdir(), "tbfw-heap-")), onSerial: () => undefined });
  const waitFor = async (count: number) => {
    const end = Date.now() + 120000;
    while (subscriber.count() < count) {
      if (Date.now() > end) throw new Error("heap bench: only " + subscriber.count() + " publishes arrived");
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitFor(2000);
    const before = heapAfterGc();
    await waitFor(12000);
    const after = heapAfterGc();
    return { before, after, growthPerPublish: (after - before) / 10000 };
  } finally {
    sandbox.stop();
    subscriber.end();
  }
}

/**
 * V8 heap per reading waiting in the firmware's RAM queue, offline, its text included (the
 * device makes it when it samples). Measured over 10,000 readings (a queue that large only
 * here) so that one reading's share stands out of the noise.
 */
export function heapPerQueuedReading(): number {
  const count = 10000;
  // Not connected (state is no CONNECTED), no room to publish.
  const offline = { state: -1, canPublish: () => false } as unknown as MqttSession;
  const fill = () => {
    // No flash overflow (0 batches): every reading stays in RAM.
    const queue = new TelemetryQueue(offline, createLogger(() => undefined, { logLevel: "info" }), count, { storageRead: () => null, storageWrite: () => undefined, storageRemove: () => undefined }, 0);
    queue.setLimits(10, 60000, 1000, false);
    for (let i = 0; i < count; i++) queue.add(reading(i));
    return queue;
  };
  fill(); // warm-up: compiles the code and settles the heap
  const before = heapAfterGc();
  const queue = fill();
  const after = heapAfterGc();
  if (queue.size() !== count) throw new Error("queue holds " + queue.size());
  return (after - before) / count;
}
