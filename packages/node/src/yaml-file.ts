import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { configError, osErrorText } from "./config-error.js";

/**
 * Read `path` and parse every YAML document in it. An unreadable file or a
 * syntax error is an `"invalid-config"` error naming the file (and, for bad
 * YAML, the line and column the yaml library reports).
 *
 * `what` describes the file in messages, e.g. "Flame context file".
 */
export function readYamlDocuments(path: string, what: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw configError(`Cannot read the ${what} "${path}": ${osErrorText(err)}`, err);
  }
  return parseYamlDocuments(text, path, what);
}

/** Parse YAML text that came from `path` (used in error messages only). */
export function parseYamlDocuments(text: string, path: string, what: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const first = docs.flatMap((d) => d.errors)[0];
  if (first !== undefined) {
    // With prettyErrors the first line reads "<problem> at line L, column C:".
    const detail = (first.message.split("\n")[0] ?? first.message).replace(/:$/, "");
    throw configError(`The ${what} "${path}" is not valid YAML: ${detail}`, first);
  }
  const list: readonly { toJS(o: { maxAliasCount: number }): unknown }[] = docs;
  try {
    return list.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown);
  } catch (err) {
    // The parser accepts some documents it cannot build, e.g. an alias
    // with no anchor ("*x") or an alias bomb; toJS throws plain errors.
    const detail = err instanceof Error ? err.message : String(err);
    throw configError(`The ${what} "${path}" is not valid YAML: ${detail}`, err);
  }
}

/** True for a YAML mapping (a plain object). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short description of a YAML value's type for error messages. */
export function yamlType(value: unknown): string {
  if (value === null || value === undefined) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `the ${typeof value} ${JSON.stringify(value)}`;
}
