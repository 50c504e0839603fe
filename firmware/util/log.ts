// Console lines carry a level and a tag: "[I][mqtt] connected to host:8883 (tls)".
// Secrets (token, Wi-Fi password, provisioning secret) are never passed in here.

export type LogLevel = "E" | "W" | "I" | "D";

export interface Logger {
  error(tag: string, message: string): void;
  warn(tag: string, message: string): void;
  info(tag: string, message: string): void;
  debug(tag: string, message: string): void;
}

export function createLogger(write: (line: string) => void, debug: boolean): Logger {
  return {
    error: (tag, message) => write("[E][" + tag + "] " + message),
    warn: (tag, message) => write("[W][" + tag + "] " + message),
    info: (tag, message) => write("[I][" + tag + "] " + message),
    debug: (tag, message) => {
      if (debug) write("[D][" + tag + "] " + message);
    },
  };
}

/** Error text without relying on `e.name` or classes, which Espruino lacks. */
export function errorText(error: unknown): string {
  if (error && typeof error === "object" && "message" in error) return String((error as { message: unknown }).message);
  return String(error);
}

/** "12.3 s" for log lines. */
export function seconds(ms: number): string {
  return (Math.round(ms / 100) / 10).toFixed(1) + " s";
}
