// The "sleep" board feature (battery boards, Espruino): every wake is a boot. The device
// reads its sensors, connects, sends what is queued (this reading and any kept in flash
// from earlier wakes), then puts what is still waiting, in flight included, into flash
// and sleeps until the next reading is due. Awake at most awakeMaxMs: without a network
// the readings wait in flash for a wake that has one.

import type { DeviceContext } from "./device";
import { seconds } from "../util/log";
import { CONNECTED } from "../mqtt/session";

/** How often the feature looks whether everything is delivered. */
const CHECK_MS = 250;
/** Connected at least this long before sleeping: the server's replies (shared attributes, RPC) arrive meanwhile. */
const SETTLE_MS = 1500;
/** Never shorter: a wake costs more than this much sleep saves. */
const MIN_SLEEP_MS = 1000;

export function sleepFeature(context: DeviceContext): void {
  const platform = context.platform;
  const queue = context.queue;
  const session = context.session;
  let connectedMs = 0;
  const check = () => {
    // bootAt moves with the clock, so this is time since boot even when SNTP set the clock.
    const awakeMs = platform.now() - context.bootAt;
    connectedMs = session.state === CONNECTED ? connectedMs + CHECK_MS : 0;
    // This wake's reading (and every earlier one) acknowledged, nothing held back.
    const delivered = queue.deliveredTotal > 0 && queue.size() === 0 && queue.spilledBatches === 0 && session.inflight.length === 0;
    if (!(delivered && connectedMs >= SETTLE_MS) && awakeMs < context.config.awakeMaxMs) {
      platform.setTimeout(check, CHECK_MS);
      return;
    }
    // Nothing in RAM survives deep sleep: in-flight and waiting readings go to flash.
    queue.persist();
    const sleepMs = Math.max(MIN_SLEEP_MS, context.settings.samplingIntervalMs - awakeMs);
    context.log("I", "sleep", "awake " + seconds(awakeMs) + (delivered ? ", all delivered" : ", " + queue.spilledBatches + " batch(es) kept in flash") + "; sleeping " + seconds(sleepMs));
    platform.deepSleep!(sleepMs);
  };
  platform.setTimeout(check, CHECK_MS);
}
