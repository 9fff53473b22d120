// TypeDoc names a module after its path ("core/src"); name each one after
// its package ("@flame-ts/core") instead, which is what users import.
import { Converter, ReflectionKind } from "typedoc";

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (_context, reflection) => {
    if (!reflection.kindOf(ReflectionKind.Module)) return;
    const match = /^([\w-]+)\/src$/.exec(reflection.name);
    if (match) reflection.name = `@flame-ts/${match[1]}`;
  });
}
