// Console lines carry a level and a tag: "[I][mqtt] connected to host:8883 (tls)".
// Secrets (token, Wi-Fi password, provisioning secret) are never passed in here.

export type LogLevel = "E" | "W" | "I" | "D";

/** One function, not an object of four: every function object costs JsVars on Espruino. */
export type Logger = (level: LogLevel, tag: string, message: string) => void;

/**
 * Level names as configured (logLevel), most severe first; their initials are the line
 * levels. A function, not a module-level array: on Espruino a table at the top of the
 * image is copied into RAM at boot, while the code of a function saved to flash stays there.
 */
export function logLevelNames(): string[] {
  return ["error", "warn", "info", "debug"];
}

/** A logger writing "[L][tag] message" lines up to `levels.logLevel`, read on every line (it changes at run time). */
export function createLogger(write: (line: string) => void, levels: { logLevel: string }): Logger {
  return (level, tag, message) => {
    // logLevel is always one of logLevelNames() (remote-config checks it): its initial orders it.
    if ("EWID".indexOf(level) <= "ewid".indexOf(levels.logLevel.charAt(0))) write("[" + level + "][" + tag + "] " + message);
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
