// Wire bytes per reading: what one telemetry reading costs on the link, both directions
// (PUBLISH up, PUBACK down), divided by the bytes of the smallest valid ThingsBoard JSON
// for that reading with its ts (the floor is 1.0). Plain MQTT bytes come from the
// firmware's own codec and payload functions; the TLS record overhead is measured on a
// real TLS 1.2 link to mosquitto through a counting proxy.

import { createServer, connect as tcpConnect } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { readFileSync } from "node:fs";
import { encodeConnect, encodePublish } from "../../firmware/mqtt/codec.ts";
import { telemetryJson } from "../../firmware/thingsboard/telemetry.ts";

/** Several readings in one message as TelemetryQueue.pump writes them: a JSON array (one reading: itself). */
const batchJson = (readings: string[]) => (readings.length === 1 ? readings[0] : "[" + readings.join(",") + "]");
import { utf8Encode } from "../../firmware/util/utf8.ts";

export const V1_TOPIC = "v1/devices/me/telemetry";
export const V2_TOPIC = "v2/t";

/** A typical reading: an SHT3x's two values with two decimals at most, and a ts. */
export function reading(index: number): string {
  return telemetryJson(1764300000000 + index * 60000, { temperature: (2153 + (index % 7) * 10) / 100, humidity: (441 + (index % 5) * 10) / 10 });
}

export interface PlainWire {
  /** PUBLISH bytes (device to server) for the batch. */
  up: number;
  /** PUBACK bytes (server to device). */
  down: number;
  /** Bytes of the readings' own JSON: the floor. */
  floor: number;
  /** The PUBLISH itself, for the TLS measurement. */
  publish: Uint8Array;
}

export function plainWire(topic: string, batch: number): PlainWire {
  const readings: string[] = [];
  for (let i = 0; i < batch; i++) readings.push(reading(i));
  const publish = encodePublish(topic, utf8Encode(batchJson(readings)), 1, 1, false);
  return { up: publish.length, down: 4, floor: readings.reduce((sum, r) => sum + Buffer.byteLength(r), 0), publish };
}

interface CountingProxy {
  port: number;
  up: () => number;
  down: () => number;
  reset(): void;
  close(): void;
}

/** A TCP proxy to `targetPort` on loopback that counts the bytes each way. */
function countingProxy(targetPort: number): Promise<CountingProxy> {
  let up = 0;
  let down = 0;
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = tcpConnect({ host: "127.0.0.1", port: targetPort });
    sockets.push(client, upstream);
    client.on("data", (d) => {
      up += d.length;
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      down += d.length;
      client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        up: () => up,
        down: () => down,
        reset: () => {
          up = 0;
          down = 0;
        },
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      })
    );
  });
}

export interface TlsOverhead {
  cipher: string;
  /** Extra bytes TLS adds to the PUBLISH record and to the PUBACK record. */
  up: number;
  down: number;
}

/**
 * Sends one PUBLISH of `publishBytes` over TLS 1.2 with `cipher` and returns what the TLS
 * records added each way (PUBACK included), or null when the broker refuses that suite.
 */
export async function measureTlsOverhead(tlsPort: number, caFile: string, cipher: string, publishBytes: Uint8Array): Promise<TlsOverhead | null> {
  const proxy = await countingProxy(tlsPort);
  try {
    return await new Promise<TlsOverhead | null>((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port: proxy.port, ca: readFileSync(caFile), servername: "localhost", ciphers: cipher, maxVersion: "TLSv1.2" });
      let stage = 0;
      let received = 0;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(null);
      }, 5000);
      socket.on("error", () => {
        clearTimeout(timer);
        resolve(null);
      });
      socket.on("secureConnect", () => socket.write(encodeConnect("bench-wire", null, 60)));
      socket.on("data", (data) => {
        received += data.length;
        if (stage === 0 && received >= 4) {
          // CONNACK in: count only the PUBLISH and its PUBACK from here.
          stage = 1;
          received = 0;
          setTimeout(() => {
            proxy.reset();
            socket.write(publishBytes);
          }, 50);
        } else if (stage === 1 && received >= 4) {
          stage = 2;
          setTimeout(() => {
            clearTimeout(timer);
            const result = { cipher: socket.getCipher().standardName ?? socket.getCipher().name, up: proxy.up() - publishBytes.length, down: proxy.down() - 4 };
            socket.destroy();
            resolve(result);
          }, 50);
        }
      });
    });
  } finally {
    proxy.close();
  }
}
