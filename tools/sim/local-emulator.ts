// The local ThingsBoard emulator as npm start and npm run moddable -- sim run it: state
// under .sim/ (or $TBFW_SIM_DIR), the development CA, the sim device and its token, every
// event and telemetry message printed as "tb      | ...".

import { join } from "node:path";
import { ThingsBoardEmulator } from "./emulator.ts";
import { ensureTlsFiles } from "./dev-ca.ts";
import type { TlsFiles } from "./dev-ca.ts";
import { EMULATOR_STATE, SIM_DEVICE, SIM_DIR, SIM_TOKEN } from "./paths.ts";

/** Starts it listening; `onTelemetry` gets the running count of telemetry messages. */
export async function startLocalEmulator(onTelemetry: (count: number) => void): Promise<{ emulator: ThingsBoardEmulator; tls: TlsFiles }> {
  const tls = ensureTlsFiles(join(SIM_DIR, "tls"));
  let received = 0;
  const emulator = new ThingsBoardEmulator({
    stateFile: EMULATOR_STATE,
    tls,
    devices: [{ name: SIM_DEVICE, token: SIM_TOKEN }],
    onEvent: (line) => console.log("tb      | " + line),
    onTelemetry: (_device, payload) => {
      received++;
      console.log("tb      | telemetry #" + received + ": " + payload);
      onTelemetry(received);
    },
  });
  await emulator.listen();
  return { emulator, tls };
}
