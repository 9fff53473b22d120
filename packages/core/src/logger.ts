/** Levels in increasing severity; a logger prints its level and above. */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const noop = () => {};

/** A logger that says nothing (the default). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** A console logger printing `level` and above, prefixed with "flame". */
export function consoleLogger(level: LogLevel = "info"): Logger {
  const logger = { ...silentLogger };
  for (const l of Object.keys(rank) as LogLevel[]) {
    if (rank[l] < rank[level]) continue;
    const print = console[l];
    logger[l] = (message, fields) =>
      fields === undefined
        ? print(`[flame] ${l} ${message}`)
        : print(`[flame] ${l} ${message}`, fields);
  }
  return logger;
}

function isLevel(value: unknown): value is LogLevel {
  return value === "debug" || value === "info" || value === "warn" || value === "error";
}

/** FLAME_LOG from the environment when there is one (Node, Deno, Bun); never in browsers. */
function envLevel(): LogLevel | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  const value = env?.FLAME_LOG?.trim().toLowerCase();
  return isLevel(value) ? value : undefined;
}

/**
 * The flame-rs `init_logger` counterpart. An explicit `Logger` wins; a level
 * makes a console logger; `false` silences; otherwise `FLAME_LOG=debug|info|warn|error`
 * turns logging on, and without it the client is silent.
 */
export function resolveLogger(option?: Logger | LogLevel | false): Logger {
  if (option === false) return silentLogger;
  if (typeof option === "object") return option;
  if (isLevel(option)) return consoleLogger(option);
  const level = envLevel();
  return level ? consoleLogger(level) : silentLogger;
}
