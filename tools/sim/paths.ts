// Where the simulator keeps its state: .sim/ at the top of the repository, or
// $TBFW_SIM_DIR (tests use their own so they never touch a user's running simulator).

import { join } from "node:path";
import { ROOT } from "../build/build.ts";

export const SIM_DIR = process.env.TBFW_SIM_DIR || join(ROOT, ".sim");
/** The emulator's devices, attributes and telemetry. */
export const EMULATOR_STATE = join(SIM_DIR, "tb", "state.json");
/** The running emulator's control port, for npm run tb. */
export const CONTROL_FILE = join(SIM_DIR, "tb", "control.json");

/** The device npm start and npm run moddable -- sim run against the emulator, and its token. */
export const SIM_DEVICE = "sim-device";
export const SIM_TOKEN = "sim-device-token";
