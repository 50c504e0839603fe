// Remote configuration: the settings ThingsBoard may change (shared attributes, the
// setConfig RPC), each value checked before it is used. Valid values apply at once and
// are kept in flash, so they survive a reboot; a deleted key falls back to the board's
// default. Problems are returned as text for the client attribute config_error.

import type { DeviceContext } from "./device";
import { LOG_LEVELS, errorText } from "../util/log";

/** Flash file with the values ThingsBoard set: {"samplingIntervalMs":5000,...}. */
export const SHARED_CONFIG_FILE = "tb-shared.json";

/** Whole-number settings and their ranges (a table: smaller than code per key). */
const RANGES: { [key: string]: number[] } = {
  samplingIntervalMs: [1000, 86400000],
  uploadIntervalMs: [0, 86400000],
  batchSize: [1, 50],
  statusIntervalMs: [0, 86400000],
};

type Value = number | string | boolean;

/** Why `value` cannot be the setting `key` ("" when it can). */
export function settingProblem(context: DeviceContext, key: string, value: unknown): string {
  const range = RANGES[key];
  if (range) {
    return typeof value === "number" && Math.floor(value) === value && value >= range[0] && value <= range[1] ? "" : "must be a whole number from " + range[0] + " to " + range[1];
  }
  if (key === "logLevel") return LOG_LEVELS.indexOf(value as string) >= 0 ? "" : "must be one of " + LOG_LEVELS.join(", ");
  if (typeof context.defaults[key] === "boolean") return typeof value === "boolean" ? "" : "must be true or false";
  return "not a setting of this device";
}

export class RemoteConfig {
  private readonly _context: DeviceContext;
  /** The values ThingsBoard set, as kept in flash. */
  private _stored: { [key: string]: Value } = {};

  constructor(context: DeviceContext) {
    this._context = context;
    let text: string | null = null;
    try {
      text = context.platform.storageRead(SHARED_CONFIG_FILE);
      if (text !== null) this.update(JSON.parse(text), null, false, false);
    } catch (e) {
      context.log("E", "config", SHARED_CONFIG_FILE + " unreadable (" + errorText(e) + "): board defaults in use");
    }
  }

  /** The keys ThingsBoard may set, for the attribute request. */
  keys(): string[] {
    return Object.keys(this._context.defaults);
  }

  /**
   * Applies `values` (and `deleted` keys fall back to the board default). `complete`:
   * `values` holds every key the server has, so keys missing from it fall back too.
   * `strict`: a key that is no setting is a problem (setConfig); else it is someone
   * else's attribute and skipped. Returns the problems ("" when none), or null when the
   * message held no setting at all.
   */
  update(values: unknown, deleted: unknown, complete: boolean, strict: boolean): string | null {
    const context = this._context;
    const settings = context.settings;
    const problems: string[] = [];
    const incoming = values !== null && typeof values === "object" && !Array.isArray(values) ? (values as { [key: string]: unknown }) : {};
    if (incoming !== values) problems.push("expected a JSON object of settings");
    const gone: string[] = Array.isArray(deleted) ? (deleted as string[]) : [];
    const keys = this.keys();
    if (complete) for (let i = 0; i < keys.length; i++) if (!(keys[i] in incoming)) gone.push(keys[i]);
    let changed = false;
    let relevant = complete || strict;
    for (let i = 0; i < gone.length; i++) {
      const key = gone[i];
      if (key in context.defaults) relevant = true;
      if (key in this._stored) {
        delete this._stored[key];
        settings[key] = context.defaults[key];
        changed = true;
      }
    }
    const names = Object.keys(incoming);
    for (let i = 0; i < names.length; i++) {
      const key = names[i];
      const value = incoming[key];
      if (!strict && !(key in context.defaults)) continue;
      relevant = true;
      const problem = settingProblem(context, key, value);
      if (problem !== "") {
        problems.push(key + ": " + problem + ", got " + JSON.stringify(value) + "; ignored");
      } else if (this._stored[key] !== value) {
        this._stored[key] = value as Value;
        settings[key] = value as Value;
        changed = true;
      }
    }
    if (changed) {
      context.applySettings();
      try {
        context.platform.storageWrite(SHARED_CONFIG_FILE, JSON.stringify(this._stored));
      } catch (e) {
        problems.push("not saved to flash: " + errorText(e));
      }
      context.log("I", "config", "now " + JSON.stringify(settings));
    }
    const text = problems.join("; ");
    if (text !== "") context.log("W", "config", text);
    return relevant || text !== "" ? text : null;
  }
}

/** The one RemoteConfig of a device, shared by the features that use it. */
export function remoteConfig(context: DeviceContext): RemoteConfig {
  const holder = context as DeviceContext & { remoteConfig?: RemoteConfig };
  if (!holder.remoteConfig) holder.remoteConfig = new RemoteConfig(context);
  return holder.remoteConfig;
}
