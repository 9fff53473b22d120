/**
 * Where the gateway reports what it does. Every method is optional so a
 * caller can pass `console`, a pino/winston logger, or an object that only
 * captures warnings. The gateway never passes a bearer token or TLS material
 * to it.
 */
export interface GatewayLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The default: log nothing. */
export const silentLogger: GatewayLogger = {};

/**
 * A logger that writes one line per event to a stream (stderr by default),
 * dropping events below `level`. Used by the CLI.
 */
export function createStreamLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (line) => process.stderr.write(line),
): GatewayLogger {
  const emit =
    (at: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (levelOrder[at] < levelOrder[level]) return;
      const suffix = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
      write(`${new Date().toISOString()} ${at} ${message}${suffix}\n`);
    };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
