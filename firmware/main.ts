// The image's start. The build generates the entry (tools/build/build.ts) that calls main()
// with a board's configuration, a runtime's platform, the board's sensor driver and its
// features, inside a try at the image's top level that logs a start-up failure. No wrapper
// function here: the device's closures would sit one level deeper, and on Espruino every
// level of nesting costs each function more JsVars (README, "Why classes").

export { startDevice as main } from "./app/device";
