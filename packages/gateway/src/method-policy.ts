import { Frontend } from "@flame-ts/core";

/**
 * Which Frontend methods the gateway lets through:
 * - `"all"`: every method.
 * - `"read-only"`: Get*, List* and Watch* — enough for a dashboard that only
 *   looks. OpenSession is not in it, since it can create a session.
 * - a list of method names as in the proto (`"GetTask"`), optionally ending
 *   in `*` to match a prefix (`"Get*"`).
 */
export type MethodSelection = "all" | "read-only" | readonly string[];

/** Names of every Frontend method, as in the proto (`"GetTask"`). */
export const frontendMethodNames: readonly string[] = Frontend.methods.map((m) => m.name);

const readOnlyPattern = /^(Get|List|Watch)/;

/** The method names the `"read-only"` preset allows. */
export const readOnlyMethodNames: readonly string[] = frontendMethodNames.filter((name) =>
  readOnlyPattern.test(name),
);

/**
 * Turns a selection into the set of allowed method names. Throws on a name
 * or pattern that matches no Frontend method, so a typo fails at start-up
 * instead of silently denying (or allowing) calls.
 */
export function resolveMethodSelection(selection: MethodSelection): ReadonlySet<string> {
  if (selection === "all") return new Set(frontendMethodNames);
  if (selection === "read-only") return new Set(readOnlyMethodNames);
  if (!Array.isArray(selection)) {
    throw new TypeError(
      `methods must be "all", "read-only" or a list of Frontend method names, got ${String(selection)}`,
    );
  }
  const allowed = new Set<string>();
  const unknown: string[] = [];
  for (const raw of selection) {
    const entry = raw.trim();
    const matches = entry.endsWith("*")
      ? frontendMethodNames.filter((name) => name.startsWith(entry.slice(0, -1)))
      : frontendMethodNames.filter((name) => name === entry);
    if (matches.length === 0) unknown.push(raw);
    for (const name of matches) allowed.add(name);
  }
  if (unknown.length > 0) {
    throw new TypeError(
      `methods: no Frontend method matches ${unknown.map((u) => JSON.stringify(u)).join(", ")}; ` +
        `known methods are ${frontendMethodNames.join(", ")}`,
    );
  }
  return allowed;
}
