// Remote configuration: the settings ThingsBoard may change (shared attributes, the
// setConfig RPC), each value checked before it is used. Valid values apply at once and
// are kept in flash, so they survive a reboot; a deleted key falls back to the board's
// default. Problems are returned as text for the client attribute config_error.

import type { DeviceContext } from "./device";
import type { ValueCheck } from "../config";
import { valueProblem } from "../config";
import { errorText, logLevelNames } from "../util/log";

/** Flash file with the values ThingsBoard set: {"samplingIntervalMs":5000,...}. */
export const SHARED_CONFIG_FILE = "tb-shared.json";

/**
 * Applies `values`; `deleted` keys fall back to the board default. `complete`: `values`
 * is every key the server has, so keys missing from it fall back too. `strict`: a key
 * that is no setting is a problem (setConfig); else it is another attribute and skipped.
 * Returns the problems ("" when none), or null when no setting was in the message.
 * A function, not an object with a method: one function object fewer for the whole run.
 */
export type RemoteConfig = (values: unknown, deleted: unknown, complete: boolean, strict: boolean) => string | null;

function createRemoteConfig(context: DeviceContext): RemoteConfig {
  /** The values ThingsBoard set, as kept in flash. */
  const stored: { [key: string]: number | string | boolean } = {};
  const update = (values: unknown, deleted: unknown, complete: boolean, strict: boolean): string | null => {
    const settings = context.settings;
    const defaults = context.defaults!;
    const problems: string[] = [];
    const incoming = (values !== null && typeof values === "object" ? values : {}) as { [key: string]: unknown };
    if (strict && incoming !== values) problems.push("expected {\"key\": value, ...}");
    const gone = Array.isArray(deleted) ? (deleted as string[]) : [];
    let relevant = complete || strict;
    let changed = false;
    for (const key in defaults) {
      if (gone.indexOf(key) >= 0 || (complete && !(key in incoming))) {
        relevant = true;
        if (key in stored) {
          delete stored[key];
          settings[key] = defaults[key];
          changed = true;
        }
      }
    }
    for (const key in incoming) {
      const value = incoming[key];
      if (!strict && !(key in defaults)) continue;
      relevant = true;
      // Why `value` cannot be the setting `key` ("" when it can).
      let problem = "";
      if (key === "logLevel") {
        const names = logLevelNames();
        if (names.indexOf(value as string) < 0) problem = "must be one of " + names.join(", ");
      } else if (!(key in defaults)) problem = "not a setting of this device";
      else {
        // The checks besides logLevel and the sensor switches (true or false); here, not at
        // the top of the module, so that Espruino builds the table only when a setting arrives.
        const checks: { [key: string]: ValueCheck } = {
          samplingIntervalMs: ["number", 1000, 86400000],
          uploadIntervalMs: ["number", 0, 86400000],
          batchSize: ["number", 1, 50],
          statusIntervalMs: ["number", 0, 86400000],
        };
        problem = valueProblem(checks[key] || ["boolean"], value);
      }
      if (problem !== "") problems.push(key + ": " + problem + ", got " + JSON.stringify(value) + "; ignored");
      else if (stored[key] !== value) {
        stored[key] = settings[key] = value as number | string | boolean;
        changed = true;
      }
    }
    if (changed) {
      context.applySettings();
      try {
        context.platform.storageWrite(SHARED_CONFIG_FILE, JSON.stringify(stored));
      } catch (e) {
        problems.push("not saved to flash: " + errorText(e));
      }
      context.log("I", "config", "now " + JSON.stringify(settings));
    }
    const text = problems.join("; ");
    if (text !== "") context.log("W", "config", text);
    return relevant ? text : null;
  };
  try {
    const text = context.platform.storageRead(SHARED_CONFIG_FILE);
    if (text !== null) update(JSON.parse(text), null, false, false);
  } catch (e) {
    context.log("E", "config", SHARED_CONFIG_FILE + ": " + errorText(e) + "; board defaults in use");
  }
  return update;
}

/** Makes the device's one RemoteConfig, for the features that use it (DeviceContext.remoteConfig). */
export function remoteConfigService(context: DeviceContext): void {
  context.remoteConfig = createRemoteConfig(context);
}
