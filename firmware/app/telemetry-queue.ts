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

export interface TelemetryQueue {
  /**
   * Batch limits: readings per message, characters per message (maxPayloadSize) and data
   * points per message (what the rate limits allow), and whether readings wait for flush().
   */
  setLimits(batchSize: number, maxChars: number, maxPoints: number, holdBetweenUploads: boolean): void;
  /** Sends everything waiting now (an upload is due, or the link is back). */
  flush(): void;
  /** Readings in RAM: waiting, or handed to the session and not yet acknowledged (flash batches not counted). */
  size(): number;
  /** Batches of readings waiting in flash. */
  spilledBatches(): number;
  deliveredCount(): number;
  droppedCount(): number;
  add(json: string): void;
  /** Hands waiting readings to the session while it has room. Call on connect and on ack. */
  pump(): void;
}

/**
 * `holdBetweenUploads`: readings are sent only when flush() is called (every upload
 * interval), all that wait at once, in batches of `batchSize`; else each as it comes.
 * A closure, not a class: its state is local variables, shorter in the image than `this._x`.
 */
export function createQueue(session: MqttSession, log: Logger, capacity: number, batchSize: number, spill: SpillStore | null, holdBetweenUploads: boolean): TelemetryQueue {
  /** Characters and data points one message may carry (ThingsBoard's session limits). */
  let maxChars = 60000;
  let maxPoints = 1000;
  /** Readings not yet handed to the session, oldest first, as JSON. */
  const waiting: string[] = [];
  /** Readings handed to the session, which keeps them until their PUBACK across reconnects. */
  let handed = 0;
  let delivered = 0;
  let dropped = 0;
  /** False while readings wait for the next upload (flush); always true without an upload interval. */
  let released = !holdBetweenUploads;

  /** How many of the oldest waiting readings one message may carry (at least one, if any wait). */
  const batchLength = (): number => {
    let chars = 2;
    let points = 0;
    let count = 0;
    for (; count < waiting.length && count < batchSize; count++) {
      // Data points: one per "key": pair, less ts and values themselves. Strings with ": inside count too: errs on the safe side.
      const json = waiting[count];
      let pairs = json.indexOf("{\"ts\"") === 0 ? -2 : 0;
      for (let at = json.indexOf("\":"); at >= 0; at = json.indexOf("\":", at + 2)) pairs++;
      chars += json.length + 1;
      points += pairs;
      if (count > 0 && (chars > maxChars || points > maxPoints)) break;
    }
    return count;
  };

  const pump = (): void => {
    if (!released || !session.isConnected()) return;
    // Online with room to spare: bring back the oldest flash batch first (it is the oldest data).
    while (spill !== null && spill.batches() > 0 && waiting.length + handed + 2 * batchSize <= capacity) {
      const batch = spill.take();
      if (batch === null) break;
      for (let i = batch.length - 1; i >= 0; i--) waiting.unshift(batch[i]);
    }
    for (;;) {
      if (!session.canPublish()) return;
      const count = batchLength();
      if (count === 0) {
        // All handed over: what comes next waits for the next upload.
        if (holdBetweenUploads) released = false;
        return;
      }
      const accepted = session.publish(TELEMETRY_TOPIC, utf8Encode(telemetryBatch(waiting.slice(0, count))), 1, () => {
        handed -= count;
        delivered += count;
        log("D", "queue", "delivered " + count + " reading(s), " + (waiting.length + handed) + " waiting");
        pump();
      });
      if (!accepted) return;
      waiting.splice(0, count);
      handed += count;
    }
  };

  return {
    setLimits: (size, chars, points, hold) => {
      batchSize = size;
      maxChars = chars;
      maxPoints = points;
      if (hold !== holdBetweenUploads) released = !hold;
      holdBetweenUploads = hold;
    },
    flush: () => {
      released = true;
      pump();
    },
    size: () => waiting.length + handed,
    spilledBatches: () => (spill === null ? 0 : spill.batches()),
    deliveredCount: () => delivered,
    droppedCount: () => dropped + (spill === null ? 0 : spill.lostCount()),
    add: (json) => {
      if (waiting.length + handed >= capacity) {
        // RAM full: move the oldest batch not on the wire to flash, else drop the oldest
        // reading not on the wire, and say so: never silently.
        const count = batchLength();
        if (spill !== null && count > 0 && spill.push(waiting.slice(0, count))) {
          waiting.splice(0, count);
          log("I", "queue", "RAM full: moved " + count + " reading(s) to flash (" + spill.batches() + " batch(es) there)");
        } else if (waiting.length > 0) {
          waiting.shift();
          log("W", "queue", "full (" + capacity + " readings): dropped the oldest, " + ++dropped + " dropped so far");
        } else {
          log("W", "queue", "full: dropped the new reading, " + ++dropped + " dropped so far");
          return;
        }
      }
      waiting.push(json);
      pump();
    },
    pump: pump,
  };
}
