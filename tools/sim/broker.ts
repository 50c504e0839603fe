// An embedded, in-process broker that behaves like ThingsBoard's MQTT transport for
// the device API used here: it accepts only the configured access token as username
// (CONNACK 5 otherwise), acknowledges QoS 1 publishes, and reports telemetry.

import { createServer as createTcpServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { readFileSync } from "node:fs";
import { Aedes } from "aedes";
import type { TlsFiles } from "./dev-ca.ts";

export interface BrokerOptions {
  token: string;
  plainPort?: number;
  tlsPort?: number;
  tls?: TlsFiles;
  onTelemetry?: (payload: string, clientId: string, topic: string) => void;
  onEvent?: (line: string) => void;
}

export interface RunningBroker {
  plainPort: number;
  tlsPort: number | null;
  close(): Promise<void>;
}

const DEVICE_TOPIC_PREFIX = "v1/devices/me/";

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const broker = await Aedes.createBroker();
  const event = options.onEvent ?? (() => undefined);
  broker.authenticate = (client, username, _password, callback) => {
    if (username === options.token) {
      callback(null, true);
      return;
    }
    event("refused " + client.id + ": unknown access token (CONNACK 5)");
    const error = Object.assign(new Error("not authorized"), { returnCode: 5 });
    callback(error as never, false);
  };
  broker.authorizePublish = (client, packet, callback) => {
    // ThingsBoard accepts device publishes only under v1/devices/me/ (and v2 forms).
    if (client && !packet.topic.startsWith(DEVICE_TOPIC_PREFIX) && !packet.topic.startsWith("v2/")) {
      callback(new Error("topic not allowed: " + packet.topic));
      return;
    }
    callback(null);
  };
  broker.on("client", (client) => event("device connected: " + client.id));
  broker.on("clientDisconnect", (client) => event("device disconnected: " + client.id));
  broker.on("publish", (packet, client) => {
    if (client && packet.topic === DEVICE_TOPIC_PREFIX + "telemetry" && options.onTelemetry) {
      options.onTelemetry(packet.payload.toString(), client.id, packet.topic);
    }
  });
  const plain = createTcpServer(broker.handle);
  const plainPort = await listen(plain, options.plainPort ?? 0);
  let secure: Server | null = null;
  let tlsPort: number | null = null;
  if (options.tls) {
    secure = createTlsServer({ key: readFileSync(options.tls.serverKey), cert: readFileSync(options.tls.serverCert) }, broker.handle);
    tlsPort = await listen(secure, options.tlsPort ?? 0);
  }
  return {
    plainPort,
    tlsPort,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => plain.close(() => resolve()));
      if (secure) await new Promise<void>((resolve) => secure!.close(() => resolve()));
    },
  };
}
