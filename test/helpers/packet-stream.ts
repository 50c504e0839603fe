// Framing for the decoding tests: reads in any split, whole packets out, on the codec's
// packetLength and decodePacket as the session uses them (MqttSession.socketData keeps
// the start of a split packet the same way; test/session.test.ts splits reads to it).

import { decodePacket, packetLength } from "../../firmware/mqtt/codec.ts";
import type { ServerPacket } from "../../firmware/mqtt/codec.ts";

export class PacketStream {
  private bytes = new Uint8Array(0);
  constructor(private readonly maxBytes: number) {}

  push(read: Uint8Array): void {
    const joined = new Uint8Array(this.bytes.length + read.length);
    joined.set(this.bytes, 0);
    joined.set(read, this.bytes.length);
    this.bytes = joined;
  }

  /** The next whole packet, or null; throws what the codec throws. */
  next(): ServerPacket | null {
    const length = packetLength(this.bytes, 0, this.bytes.length, this.maxBytes);
    if (length === 0) return null;
    const packet = decodePacket(this.bytes, 0, length);
    this.bytes = this.bytes.slice(length);
    return packet;
  }

  /** Bytes held that are not yet a packet. */
  pending(): number {
    return this.bytes.length;
  }
}
