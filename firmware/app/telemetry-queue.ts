// Store-and-forward queue: a reading leaves only when the PUBACK for the message that
// carried it arrives. While offline readings accumulate (each with its own ts) and are
// replayed in batches, a few messages in flight at a time, so a backlog flush stays
// under ThingsBoard's per-device rate limits.

import type { MqttSession } from "../mqtt/session";
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
  private readings: QueuedReading[] = [];
  private delivered = 0;
  private dropped = 0;

  constructor(session: MqttSession, log: Logger, capacity: number, batchSize: number) {
    this.session = session;
    this.log = log;
    this.capacity = capacity;
    this.batchSize = batchSize;
  }

  size(): number {
    return this.readings.length;
  }

  deliveredCount(): number {
    return this.delivered;
  }

  droppedCount(): number {
    return this.dropped;
  }

  add(json: string): void {
    if (this.readings.length >= this.capacity) {
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

  /** Hands waiting readings to the session while it has room. Call on connect and on ack. */
  pump(): void {
    if (!this.session.isConnected()) return;
    for (;;) {
      if (!this.session.canPublish()) return;
      const batch: QueuedReading[] = [];
      const texts: string[] = [];
      for (let i = 0; i < this.readings.length && batch.length < this.batchSize; i++) {
        if (!this.readings[i].handed) {
          batch.push(this.readings[i]);
          texts.push(this.readings[i].json);
        }
      }
      if (batch.length === 0) return;
      const accepted = this.session.publish(TELEMETRY_TOPIC, utf8Encode(telemetryBatch(texts)), 1, () => {
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
