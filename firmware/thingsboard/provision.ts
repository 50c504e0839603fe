// The "provision" board feature: one image, many devices. A board built with a
// provisioning key and secret and no token connects as "provision" (a separate, short
// session), asks for credentials named after the board and its chip id, keeps the
// returned token in flash (tb-config.json, where later boots read it) and then starts
// the real session with it. NOT_FOUND or FAILURE: one error line and a long wait before
// the next attempt. Neither the secret nor the token is ever logged.
// Console commands: tbForgetToken() forgets the stored token (the next boot provisions
// again); tbClaim(secretKey, durationMs) lets a user claim the device.

import type { DeviceContext } from "../app/device";
import { backoffDelay, MqttSession } from "../mqtt/session";
import type { SessionOptions } from "../mqtt/session";
import { OVERRIDE_FILE } from "../config";
import { errorText } from "../util/log";
import { CLAIM_TOPIC } from "./topics";
import { field, parsePayload, publishJson } from "./json";

const REQUEST_TOPIC = "/provision/request";
const RESPONSE_TOPIC = "/provision/response";
/** Waits after a refusal: the key or secret must be fixed by a person first. */
const REFUSED_MIN_MS = 600000;
const REFUSED_MAX_MS = 86400000;

/** tb-config.json as an object ({} when absent or unreadable). */
function readOverrides(context: DeviceContext): { [key: string]: unknown } {
  try {
    const text = context.platform.storageRead(OVERRIDE_FILE);
    const parsed = text === null ? null : JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") return parsed;
  } catch (e) {
    // Unreadable: the core already said so at boot.
  }
  return {};
}

/**
 * The console commands, which the build runs before provisionFeature. Apart from it: they
 * live for the whole run, and closures there would keep its variables too (on Espruino,
 * JsVars for every name). In the features list rather than called by provisionFeature:
 * a function called from there would be a global of the Espruino image, its code kept
 * for the whole run.
 */
export function provisionCommands(context: DeviceContext): void {
  context.platform.command("tbForgetToken", () => {
    const overrides = readOverrides(context);
    delete overrides.token;
    context.platform.storageWrite(OVERRIDE_FILE, JSON.stringify(overrides));
    context.log("W", "provision", "stored token forgotten: the next boot provisions again");
  });
  context.platform.command("tbClaim", (secretKey: unknown, durationMs: unknown) => {
    publishJson(context.session, CLAIM_TOPIC, { secretKey: secretKey, durationMs: durationMs }, null);
    context.log("I", "provision", "claim request sent");
  });
}

export function provisionFeature(context: DeviceContext): void {
  const config = context.config;
  if (config.token !== "" || !config.provisionKey) return;
  const platform = context.platform;
  const log = context.log;
  let refusals = 0;
  const deviceName = config.board + "-" + platform.chipId();

  const provision = () => {
    log("I", "provision", "asking for credentials as " + deviceName);
    const session = new MqttSession(
      platform,
      // Same server and timing; "provision" is the user name ThingsBoard expects.
      Object.assign({}, config, { token: "provision", maxInflight: 2 } as Partial<SessionOptions>),
      {
        onConnected: () => {
          publishJson(session, REQUEST_TOPIC, { provisionDeviceKey: config.provisionKey, provisionDeviceSecret: config.provisionSecret, deviceName: deviceName, credentialsType: "ACCESS_TOKEN" }, null);
        },
        onMessage: (topic, payload) => {
          if (topic !== RESPONSE_TOPIC) return;
          session.stop();
          const answer = parsePayload(payload);
          const status = field(answer, "status");
          const token = field(answer, "credentialsValue");
          if (status === "SUCCESS" && typeof token === "string" && token !== "") {
            const overrides = readOverrides(context);
            overrides.token = token;
            try {
              platform.storageWrite(OVERRIDE_FILE, JSON.stringify(overrides));
            } catch (e) {
              log("E", "provision", "token not saved (" + errorText(e) + "): the next boot provisions again");
            }
            config.token = token;
            log("I", "provision", "provisioned as " + deviceName);
            // What the device does without this feature (DeviceContext.startSession).
            context.session.start();
          } else {
            const wait = backoffDelay(refusals++, REFUSED_MIN_MS, REFUSED_MAX_MS, () => 1);
            log("E", "provision", "refused: " + status + " (" + field(answer, "errorMsg") + "); check the provisioning key and secret; next try in " + Math.round(wait / 60000) + " min");
            platform.setTimeout(provision, wait);
          }
        },
      },
      log,
      () => 0.5
    );
    session.subscribe(RESPONSE_TOPIC);
    session.start();
  };
  context.startSession = provision;
}
