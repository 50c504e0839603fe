// The simulated device's serial console over TCP, like Espruino's telnet console, well
// enough for the unmodified espruino CLI (`-p tcp://127.0.0.1:PORT`) and for
// `npm run flash` / `npm run console` against the simulator: the device's output goes to
// every client; a client's lines run on the device's REPL. Ctrl-C (0x03) drops the line
// being typed; a line starting with 0x10 is not echoed (the CLI sends its commands so);
// a line that is not a complete statement yet waits for the next one; escape sequences
// (cursor keys) are dropped, there is no line editing.

import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import vm from "node:vm";

export interface ReplDevice {
  /** Runs one line (or statement) typed on the console. */
  typeLine(code: string): void;
}

export interface Repl {
  port: number;
  /** Sends the device's console output to every client. */
  write(text: string): void;
  close(): Promise<void>;
}

/** Whether `code` needs more lines before it is a statement (an open bracket, string or comment). */
export function incomplete(code: string): boolean {
  try {
    new vm.Script(code);
    return false;
  } catch (e) {
    return e instanceof SyntaxError && /Unexpected end of input|Unterminated|missing \) after/.test(e.message);
  }
}

export async function startRepl(port: number, device: ReplDevice): Promise<Repl> {
  const clients = new Set<Socket>();
  const server: Server = createServer((socket) => {
    clients.add(socket);
    let line = "";
    let echo = true;
    /** Inside an ANSI escape sequence (ESC [ ... final byte): cursor keys, or the CLI's ESC[2d; not part of the code. */
    let escape = "";
    socket.on("data", (bytes) => {
      for (const c of bytes.toString("latin1")) {
        if (escape !== "") {
          escape += c;
          if (escape.length > 2 ? c >= "@" && c <= "~" : c !== "[") escape = "";
          continue;
        }
        if (c === "\x1b") escape = c;
        else if (c === "\x03") {
          line = "";
          socket.write("\r\n>");
        } else if (c === "\x10" && line === "") echo = false;
        else if (c === "\r" || c === "\n") {
          if (echo) socket.write("\r\n");
          if (line.trim() !== "" && !incomplete(line)) {
            const code = line;
            line = "";
            echo = true;
            device.typeLine(code);
            socket.write(">");
          } else if (line.trim() !== "") line += "\n";
        } else {
          line += c;
          if (echo) socket.write(c);
        }
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => clients.delete(socket));
  });
  const listening = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
  return {
    port: listening,
    write: (text) => {
      // A console speaks CRLF.
      const out = text.replace(/\r?\n/g, "\r\n");
      for (const c of clients) c.write(out, "latin1");
    },
    close: async () => {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
