// The "attributes" board feature:
// - client attributes after every connect: firmware title and version, board, runtime
//   and its version, chip id, IP, RSSI and free memory where the runtime tells them;
// - shared attributes as remote configuration: the device's keys are requested after
//   every connect and updates are subscribed to; every value is checked, and the
//   client attribute config_error says what was ignored and why ("" when all is well);
// - uptime and queue counters as telemetry every statusIntervalMs.

import type { DeviceContext } from "../app/device";
import { telemetryJson } from "./telemetry";
import { ATTRIBUTES_TOPIC, ATTRIBUTE_REQUEST, ATTRIBUTE_RESPONSE } from "./topics";
import { deviceStatus, field, parsePayload, publishJson } from "./json";

export const FIRMWARE_TITLE = "tb-firmware";

export function attributesFeature(context: DeviceContext): void {
  const platform = context.platform;
  const session = context.session;
  const config = context.config;
  const settings = context.settings;
  // Made by remoteConfigService, which the build runs before this feature.
  const remote = context.remoteConfig!;
  let requestId = 0;
  /** The id of the attribute request not answered yet ("" when none). */
  let pending = "";

  session.subscribe(ATTRIBUTES_TOPIC);

  context.onConnect.push(() => {
    const attributes = platform.facts ? platform.facts() : {};
    attributes.current_fw_title = FIRMWARE_TITLE;
    attributes.current_fw_version = config.firmwareVersion;
    attributes.board = config.board;
    attributes.runtime = platform.runtime;
    attributes.chip_id = platform.chipId();
    if (context.restartReason !== "") attributes.last_restart_reason = context.restartReason;
    publishJson(session, ATTRIBUTES_TOPIC, attributes, null);
    // Nothing is pushed on connect: ask for the current values (changes made while offline).
    const id = (pending = String(++requestId));
    publishJson(session, ATTRIBUTE_REQUEST + id, { sharedKeys: Object.keys(context.defaults!).join(",") }, null);
    platform.setTimeout(() => {
      if (pending === id) context.log("W", "config", "no answer to attribute request " + id + " within " + config.responseTimeoutMs + " ms: settings from flash kept");
    }, config.responseTimeoutMs);
  });

  session.subscribe(ATTRIBUTE_RESPONSE + "+");
  // Updates and the answers to requests in one entry of the topic table, whose topics
  // start with this one: on Espruino every handler is JsVars for the whole run.
  context.topics.push(ATTRIBUTES_TOPIC);
  context.onMessage.push((rest, payload) => {
    const message = parsePayload(payload);
    let problems: string | null;
    if (rest !== "") {
      // Only the answer to the latest request: an older one may predate a change.
      if (ATTRIBUTES_TOPIC + rest !== ATTRIBUTE_RESPONSE + pending) return;
      pending = "";
      // Garbage is no answer: taken as one, it would reset every setting to the board's.
      if (message === undefined) return context.log("W", "config", "attributes not JSON: ignored");
      const shared = field(message, "shared");
      problems = remote(shared === undefined ? {} : shared, null, true, false);
    } else {
      if (message === undefined) context.log("W", "config", "attributes not JSON: ignored");
      const deleted = field(message, "deleted");
      problems = deleted !== undefined ? remote({}, deleted, false, false) : remote(message, null, false, false);
    }
    if (problems !== null) publishJson(session, ATTRIBUTES_TOPIC, { config_error: problems }, null);
  });

  const sendStatus = () => {
    const every = settings.statusIntervalMs;
    // Re-read each time: a new period takes effect after the current one.
    platform.setTimeout(sendStatus, every > 0 ? every : 60000);
    if (every > 0) context.queue.add(telemetryJson(platform.clockIsSet() ? platform.now() : null, deviceStatus(context)));
  };
  platform.setTimeout(sendStatus, settings.statusIntervalMs > 0 ? settings.statusIntervalMs : 60000);
}
