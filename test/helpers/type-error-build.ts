import { fileURLToPath } from "node:url";
import { bundleSource } from "../../tools/build/build.ts";

const fixture = fileURLToPath(new URL("../fixtures/type-error/broken.ts", import.meta.url));

export async function bundleForTest(): Promise<string> {
  const { image } = await bundleSource(
    "espruino",
    `import { length } from ${JSON.stringify(fixture)}; console.log(length);`,
    [fileURLToPath(new URL("../../firmware/**/*.ts", import.meta.url)), fixture],
    fileURLToPath(new URL("../fixtures/type-error/tsconfig.json", import.meta.url))
  );
  return image;
}
