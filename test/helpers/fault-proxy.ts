// A TCP proxy between the simulated device and a real broker that a test drives to make
// the faults real links and ThingsBoard produce: a broker that is down (connections
// refused), a black hole (sockets stay open, bytes vanish both ways, no FIN or RST), a
// server that closes the session on the Nth PUBLISH (ThingsBoard's rate-limit rejection),
// PUBACKs that never come, and segments delayed or split. Over TLS only the first two
// apply: the proxy cannot read the packets inside.

import net from "node:net";

export type ProxyMode = "pass" | "blackhole" | "refuse";

/**
 * Splits an MQTT byte stream into whole packets, raw (fixed header 2.2, remaining length
 * 2.2.3). mqtt-packet parses into objects; the proxy must forward the bytes unchanged.
 */
class MqttFramer {
  private buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const packets: Buffer[] = [];
    for (;;) {
      let length = 0;
      let multiplier = 1;
      let index = 1;
      let complete = false;
      while (index < this.buffer.length && index <= 4) {
        const digit = this.buffer[index++];
        length += (digit & 127) * multiplier;
        multiplier *= 128;
        if ((digit & 128) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || this.buffer.length < index + length) return packets;
      packets.push(this.buffer.subarray(0, index + length));
      this.buffer = this.buffer.subarray(index + length);
    }
  }
}

interface Link {
  device: net.Socket;
  broker: net.Socket;
  /** Black-holed links stay dead: a NAT that forgot the flow does not remember it later. */
  dead: boolean;
  publishes: number;
}

export class FaultProxy {
  private server: net.Server | null = null;
  private links: Link[] = [];
  private mode: ProxyMode = "pass";
  private closeOnPublish = 0;
  private pubacksDropped = false;
  private delayMs = 0;
  private splitBytes = 0;
  /** PUBLISH packets dropped when closing on the Nth, PUBACKs dropped. */
  droppedPublishes = 0;
  droppedPubacks = 0;
  port = 0;

  constructor(private readonly brokerPort: number, private readonly mqttVisible = true) {}

  async listen(port = 0): Promise<number> {
    const server = net.createServer((device) => this.accept(device));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Traffic flows again (after "refuse", the port listens again). */
  async pass(): Promise<void> {
    this.mode = "pass";
    if (this.server === null) await this.listen(this.port);
  }

  /** Every open link and every new one goes silent: bytes dropped both ways, nothing closed. */
  blackhole(): void {
    this.mode = "blackhole";
    for (const link of this.links) link.dead = true;
  }

  /** The broker is down: open links are reset and new connections refused. */
  async refuse(): Promise<void> {
    this.mode = "refuse";
    for (const link of this.links) {
      link.device.destroy();
      link.broker.destroy();
    }
    this.links = [];
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Drops the Nth PUBLISH of every connection and closes it (0: off), as ThingsBoard does past a rate limit. */
  closeOnNthPublish(n: number): void {
    this.requireMqtt();
    this.closeOnPublish = n;
  }

  /** PUBACKs from the broker are dropped while on. */
  dropPubacks(on: boolean): void {
    this.requireMqtt();
    this.pubacksDropped = on;
  }

  /** Every segment waits `delayMs` and goes on in pieces of at most `splitBytes` (0: whole). */
  shape(delayMs: number, splitBytes: number): void {
    this.delayMs = delayMs;
    this.splitBytes = splitBytes;
  }

  async close(): Promise<void> {
    await this.refuse();
  }

  private requireMqtt(): void {
    if (!this.mqttVisible) throw new Error("the proxy cannot see MQTT packets inside TLS");
  }

  private accept(device: net.Socket): void {
    const broker = net.connect(this.brokerPort, "127.0.0.1");
    const link: Link = { device, broker, dead: this.mode === "blackhole", publishes: 0 };
    this.links.push(link);
    const end = () => {
      device.destroy();
      broker.destroy();
      this.links = this.links.filter((l) => l !== link);
    };
    // A black-holed link never closes towards the device, whatever the broker does.
    const brokerGone = () => (link.dead ? broker.destroy() : end());
    device.on("error", end);
    device.on("close", end);
    broker.on("error", brokerGone);
    broker.on("close", brokerGone);
    const up = new MqttFramer();
    const down = new MqttFramer();
    device.on("data", (chunk: Buffer) => {
      if (link.dead) return;
      if (!this.mqttVisible) return this.forward(broker, chunk);
      for (const packet of up.push(chunk)) {
        if (packet[0] >> 4 === 3 && this.closeOnPublish > 0 && ++link.publishes >= this.closeOnPublish) {
          this.droppedPublishes++;
          end();
          return;
        }
        this.forward(broker, packet);
      }
    });
    broker.on("data", (chunk: Buffer) => {
      if (link.dead) return;
      if (!this.mqttVisible) return this.forward(device, chunk);
      for (const packet of down.push(chunk)) {
        if (packet[0] >> 4 === 4 && this.pubacksDropped) this.droppedPubacks++;
        else this.forward(device, packet);
      }
    });
  }

  private forward(to: net.Socket, bytes: Buffer): void {
    const pieces: Buffer[] = [];
    const size = this.splitBytes > 0 ? this.splitBytes : bytes.length;
    for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
    for (const piece of pieces) {
      if (this.delayMs > 0) setTimeout(() => to.destroyed || to.write(piece), this.delayMs);
      else if (!to.destroyed) to.write(piece);
    }
  }
}
