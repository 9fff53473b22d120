import { FlameError } from "@flame-ts/core";

/**
 * A `FlameError` of kind `"invalid-config"`: the caller's configuration (URL,
 * files, options) is wrong, found before any call is made.
 */
export function configError(message: string, cause?: unknown): FlameError {
  return new FlameError(message, { kind: "invalid-config", cause });
}

/** The OS error text of a failed file operation, e.g. "ENOENT: no such file or directory". */
export function osErrorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    // Node's message repeats the path; keep only the code and its meaning.
    const text = err.message.replace(/,\s*\w+\s+'[^']*'$/, "");
    return code && !text.startsWith(code) ? `${code}: ${text}` : text;
  }
  return String(err);
}
