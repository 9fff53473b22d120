// TypeDoc names a module after its path ("core/src", "web/src/connect-protocol");
// name each one after what users import instead ("@flame-ts/core",
// "@flame-ts/web/connect-protocol"), read from the package's exports map.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Converter, ReflectionKind } from "typedoc";

const packagesDir = fileURLToPath(new URL("../packages/", import.meta.url));

/** "web/src/connect-protocol" -> "@flame-ts/web/connect-protocol", or undefined. */
function importName(modulePath) {
  const [dir, ...rest] = modulePath.split("/");
  const manifestPath = join(packagesDir, dir, "package.json");
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const inside = rest.join("/");
  const candidates = [`./${inside}.ts`, `./${inside}/index.ts`];
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    const source = typeof target === "object" ? target["@flame-ts/source"] : undefined;
    if (candidates.includes(source)) return manifest.name + subpath.slice(1);
  }
  return undefined;
}

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (_context, reflection) => {
    if (!reflection.kindOf(ReflectionKind.Module)) return;
    const name = importName(reflection.name);
    if (name !== undefined) reflection.name = name;
  });
}
