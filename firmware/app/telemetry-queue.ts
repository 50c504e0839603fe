// Store-and-forward queue: a reading leaves only when the PUBACK for the message that
// carried it arrives. While offline readings accumulate (each with its own ts) and are
// replayed in batches, a few messages in flight at a time, so a backlog flush stays
// under ThingsBoard's per-device rate limits. When RAM is full the oldest readings go to
// flash (SpillStore) and come back, oldest first, once the device is online again.

import type { MqttSession } from "../mqtt/session";
import type { SpillStore } from "./spill-store";
import type { Logger } from "../util/log";
import { utf8Encode } from "../util/utf8";
import { TELEMETRY_TOPIC, telemetryBatch } from "../thingsboard/telemetry";

interface QueuedReading {
  json: string;
  /** Handed to the session, which keeps it until PUBACK across reconnects. */
  handed: boolean;
}

export class TelemetryQueue {
  private readonly session: MqttSession;
  private readonly log: Logger;
  private readonly capacity: number;
  private readonly batchSize: number;
  private readonly spill: SpillStore | null;
  private readings: QueuedReading[] = [];
  private delivered = 0;
  private dropped = 0;

  constructor(session: MqttSession, log: Logger, capacity: number, batchSize: number, spill: SpillStore | null) {
    this.session = session;
    this.log = log;
    this.capacity = capacity;
    this.batchSize = batchSize;
    this.spill = spill;
  }

  /** Readings waiting in RAM (flash batches not counted). */
  size(): number {
    return this.readings.length;
  }

  /** Batches of readings waiting in flash. */
  spilledBatches(): number {
    return this.spill === null ? 0 : this.spill.batches();
  }

  deliveredCount(): number {
    return this.delivered;
  }

  droppedCount(): number {
    return this.dropped + (this.spill === null ? 0 : this.spill.lostCount());
  }

  add(json: string): void {
    if (this.readings.length >= this.capacity && !this.spillOldest()) {
      // Drop the oldest reading not already on the wire, and say so: never silently.
      for (let i = 0; i < this.readings.length; i++) {
        if (!this.readings[i].handed) {
          this.readings.splice(i, 1);
          this.dropped++;
          this.log.warn("queue", "full (" + this.capacity + " readings): dropped the oldest, " + this.dropped + " dropped so far");
          break;
        }
      }
      if (this.readings.length >= this.capacity) {
        this.dropped++;
        this.log.warn("queue", "full of unacknowledged readings: dropped the new one, " + this.dropped + " dropped so far");
        return;
      }
    }
    this.readings.push({ json: json, handed: false });
    this.pump();
  }

  /** Up to batchSize of the oldest readings not yet on the wire. */
  private oldestWaiting(): QueuedReading[] {
    const batch: QueuedReading[] = [];
    for (let i = 0; i < this.readings.length && batch.length < this.batchSize; i++) {
      if (!this.readings[i].handed) batch.push(this.readings[i]);
    }
    return batch;
  }

  private static texts(batch: QueuedReading[]): string[] {
    const texts: string[] = [];
    for (let i = 0; i < batch.length; i++) texts.push(batch[i].json);
    return texts;
  }

  /** Moves the oldest batch of readings not on the wire to flash; false if it could not. */
  private spillOldest(): boolean {
    if (this.spill === null) return false;
    const batch = this.oldestWaiting();
    if (batch.length === 0 || !this.spill.push(TelemetryQueue.texts(batch))) return false;
    for (let i = 0; i < batch.length; i++) this.readings.splice(this.readings.indexOf(batch[i]), 1);
    this.log.info("queue", "RAM full: moved " + batch.length + " reading(s) to flash (" + this.spill.batches() + " batch(es) there)");
    return true;
  }

  /** Hands waiting readings to the session while it has room. Call on connect and on ack. */
  pump(): void {
    if (!this.session.isConnected()) return;
    // Online with room to spare: bring back the oldest flash batch first (it is the oldest data).
    while (this.spill !== null && this.spill.batches() > 0 && this.readings.length + 2 * this.batchSize <= this.capacity) {
      const batch = this.spill.take();
      if (batch === null) break;
      for (let i = batch.length - 1; i >= 0; i--) this.readings.unshift({ json: batch[i], handed: false });
    }
    for (;;) {
      if (!this.session.canPublish()) return;
      const batch = this.oldestWaiting();
      if (batch.length === 0) return;
      const accepted = this.session.publish(TELEMETRY_TOPIC, utf8Encode(telemetryBatch(TelemetryQueue.texts(batch))), 1, () => {
        this.acknowledge(batch);
      });
      if (!accepted) return;
      for (let i = 0; i < batch.length; i++) batch[i].handed = true;
    }
  }

  private acknowledge(batch: QueuedReading[]): void {
    for (let i = 0; i < batch.length; i++) {
      const index = this.readings.indexOf(batch[i]);
      if (index >= 0) this.readings.splice(index, 1);
    }
    this.delivered += batch.length;
    this.log.debug("queue", "delivered " + batch.length + " reading(s), " + this.readings.length + " waiting");
    this.pump();
  }
}
