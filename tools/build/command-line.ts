// The tools' command lines: Node's parseArgs, with a one-line error for a wrong option
// instead of its stack trace.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** parseArgs(config); a wrong option or value prints what was wrong and the options there are, and exits with 2. */
export function parseCommandLine<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) throw e;
    const options = Object.keys(config.options ?? {})
      .map((name) => "--" + name)
      .join(", ");
    console.error(command + ": " + (e as Error).message + "\n" + command + " takes " + (options || "no options"));
    process.exit(2);
  }
}
