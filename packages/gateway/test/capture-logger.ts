import type { GatewayLogger } from "../src/index.js";

/** A logger that keeps every line, to check what the gateway reveals. */
export function captureLogger(): GatewayLogger & { lines: string[]; text(): string } {
  const lines: string[] = [];
  const keep =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push(`${level} ${message} ${fields === undefined ? "" : JSON.stringify(fields)}`);
    };
  return {
    lines,
    text: () => lines.join("\n"),
    debug: keep("debug"),
    info: keep("info"),
    warn: keep("warn"),
    error: keep("error"),
  };
}
