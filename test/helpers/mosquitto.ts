// Starts the Debian mosquitto broker on free loopback ports with its own config: one
// plain listener and, given certificates, one TLS listener.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TlsFiles } from "../../tools/sim/dev-ca.ts";

export interface Mosquitto {
  plainPort: number;
  tlsPort: number | null;
  output: () => string;
  /** Freezes the broker (SIGSTOP): connections stay open and nothing is answered, as on a stalled link. */
  pause(): void;
  /** Lets a paused broker run again (SIGCONT). */
  resume(): void;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error("mosquitto exited (" + child.exitCode + "):\n" + output());
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("mosquitto did not listen on " + port + ":\n" + output());
}

export async function startMosquitto(options: { tls?: TlsFiles; plainPort?: number; tlsPort?: number } = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), "tbfw-mosquitto-"));
  chmodSync(dir, 0o755);
  const plainPort = options.plainPort ?? (await freePort());
  const tlsPort = options.tls ? options.tlsPort ?? (await freePort()) : null;
  const lines = [
    "per_listener_settings false",
    "allow_anonymous true",
    "persistence false",
    "log_dest stdout",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
    // As root mosquitto drops to the mosquitto user, which could not read a private temp folder.
    ...(process.getuid && process.getuid() === 0 ? ["user root"] : []),
    "listener " + plainPort + " 127.0.0.1",
  ];
  if (options.tls && tlsPort !== null) {
    lines.push("listener " + tlsPort + " 127.0.0.1", "cafile " + options.tls.caCert, "certfile " + options.tls.serverCert, "keyfile " + options.tls.serverKey, "tls_version tlsv1.2");
  }
  const configFile = join(dir, "mosquitto.conf");
  writeFileSync(configFile, lines.join("\n") + "\n");
  let log = "";
  const child = spawn("mosquitto", ["-c", configFile], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  const spawnError = new Promise<never>((_, reject) => child.once("error", (e) => reject(new Error("cannot start mosquitto (" + e.message + "): install it with apt-get install mosquitto"))));
  await Promise.race([waitForPort(plainPort, child, () => log), spawnError]);
  if (tlsPort !== null) await waitForPort(tlsPort, child, () => log);
  return {
    plainPort,
    tlsPort,
    output: () => log,
    pause: () => {
      child.kill("SIGSTOP");
    },
    resume: () => {
      child.kill("SIGCONT");
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
