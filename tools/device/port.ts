// A device's console port for the tools: a serial port (serialport, loaded only then: its
// native binding is not needed otherwise) or the simulator's console over TCP
// (`tcp://127.0.0.1:PORT`, npm start -- --repl PORT).

import { connect } from "node:net";

/** What the tools need of a port: bytes in, bytes out, an end. */
export interface Link {
  write(bytes: Buffer): void;
  close(): void;
}

/** serialport, loaded only for a serial port: its native binding is not needed for tcp://. */
async function serialPortClass() {
  return (await import("serialport")).SerialPort;
}

export async function listPorts(): Promise<string[]> {
  try {
    return (await (await serialPortClass()).list()).map((p) => p.path);
  } catch {
    return [];
  }
}

export async function openLink(port: string, baud: number, onData: (bytes: Buffer) => void, onOpen: () => void, onClose: (why: string) => void | Promise<void>): Promise<Link> {
  let closed = false;
  const close = (why: string) => {
    if (closed) return;
    closed = true;
    onClose(why);
  };
  if (port.startsWith("tcp://")) {
    const [host, portText] = port.slice(6).split(":");
    const socket = connect({ host, port: Number(portText) }, onOpen);
    socket.on("data", onData);
    socket.on("error", (e) => close(e.message));
    socket.on("close", () => close("connection closed"));
    return { write: (bytes) => socket.write(bytes), close: () => socket.destroy() };
  }
  const SerialPort = await serialPortClass();
  const serial = new SerialPort({ path: port, baudRate: baud });
  serial.on("open", onOpen);
  serial.on("data", onData);
  serial.on("error", (e) => close(e.message));
  serial.on("close", () => close("port closed"));
  return { write: (bytes) => serial.write(bytes), close: () => serial.isOpen && serial.close() };
}

/** Why `port` cannot be opened now ("" when it can): absent, busy, or nothing listening. */
export async function portProblem(port: string, baud: number): Promise<string> {
  let link: Link | null = null;
  const why = await new Promise<string>((resolve) => {
    void openLink(
      port,
      baud,
      () => undefined,
      () => resolve(""),
      (reason) => resolve(reason)
    ).then((made) => {
      link = made;
    });
  });
  // Opened (or failed): let go of it for the tool that uses it next. Espruino's telnet
  // console (Linux build, 2v29) drops a client that comes right after another one left:
  // give it a second.
  await new Promise((r) => setTimeout(r, 0));
  (link as Link | null)?.close();
  if (why === "") await new Promise((r) => setTimeout(r, 1000));
  if (why === "") return "";
  if (port.startsWith("tcp://")) return "cannot connect to " + port + ": " + why + " (is the simulator running with npm start -- --repl PORT?)";
  return "cannot open " + port + ": " + why + " (serial ports found: " + ((await listPorts()).join(", ") || "none") + "; is the board plugged in, and no console open on it?)";
}

/**
 * Sends `command` to the device's REPL and resolves with the first line matching `pattern`
 * within `timeoutMs`, or null.
 */
export async function awaitLine(port: string, baud: number, command: string, pattern: RegExp, timeoutMs: number): Promise<string | null> {
  let text = "";
  let link: Link | null = null;
  let opened = false;
  const line = await new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    void openLink(
      port,
      baud,
      (bytes) => {
        text += bytes.toString("latin1");
        const match = pattern.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve(match[0]);
        }
      },
      () => {
        opened = true;
        if (link) link.write(Buffer.from(command, "latin1"));
      },
      () => undefined
    ).then((made) => {
      link = made;
      if (opened) made.write(Buffer.from(command, "latin1"));
    });
  });
  (link as Link | null)?.close();
  return line;
}
