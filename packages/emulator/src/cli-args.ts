import type { EmulatorOptions } from "./options.js";
import { EMULATOR_STORAGES, isEmulatorStorage } from "./storage.js";

export const USAGE = `Usage: flame-emulator [options]

Options:
  --port <n>              port to listen on (default 8080; 0 picks a free one)
  --host <addr>           interface to bind (default 127.0.0.1)
  --cors-origin <origin>  allow this browser origin (repeatable; default any localhost origin)
  --pending-delay-ms <n>  keep each new task Pending this long
  --running-delay-ms <n>  keep each task Running this long before its handler runs
  --storage <engine>      answer as Flame's sqlite, fs or none storage engine (default fs)
  --list-seed <n>         seed for the (shuffled) order of List replies
  --max-sessions <n>      evict closed sessions beyond n (Flame's limits.max_sessions)
  --fail-to-start <app>   this application's instances cannot start (repeatable)

Limits on each client connection (defaults: Node's where Node has one):
  --max-streams-per-connection <n>  HTTP/2 streams open at once (default 100)
  --headers-timeout-ms <n>          time for an HTTP/1.1 request head or a
                                    connection's first bytes (default 60000)
  --request-timeout-ms <n>          time for a whole HTTP/1.1 request (default 300000)
  --keep-alive-timeout-ms <n>       idle HTTP/1.1 connection closed after (default 5000)
  --help                  show this text`;

export type CliCommand = { help: true } | { help: false; options: EmulatorOptions };

const number = (flag: string, value: string | undefined): number => {
  const n = Number(value);
  if (value === undefined || value === "" || !Number.isInteger(n) || n < 0) {
    throw new Error(`${flag} needs a non-negative integer, got ${value ?? "nothing"}`);
  }
  return n;
};

/** Parses the CLI's arguments (`--flag value` or `--flag=value`). */
export const parseCliArgs = (argv: readonly string[]): CliCommand => {
  const options: EmulatorOptions = { port: 8080 };
  const origins: string[] = [];
  const failing: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case "--help":
      case "-h":
        return { help: true };
      case "--port":
        options.port = number(flag, value());
        break;
      case "--host": {
        const host = value();
        if (!host) throw new Error("--host needs an address");
        options.host = host;
        break;
      }
      case "--cors-origin": {
        const origin = value();
        if (!origin) throw new Error("--cors-origin needs an origin");
        origins.push(origin);
        break;
      }
      case "--pending-delay-ms":
        options.pendingDelayMs = number(flag, value());
        break;
      case "--running-delay-ms":
        options.runningDelayMs = number(flag, value());
        break;
      case "--storage": {
        const storage = value();
        if (!isEmulatorStorage(storage)) {
          throw new Error(
            `--storage needs one of ${EMULATOR_STORAGES.join(", ")}, got ${storage ?? "nothing"}`,
          );
        }
        options.storage = storage;
        break;
      }
      case "--list-seed":
        options.listSeed = number(flag, value());
        break;
      case "--max-sessions": {
        const max = number(flag, value());
        if (max === 0) throw new Error("--max-sessions needs a positive integer, got 0");
        options.maxSessions = max;
        break;
      }
      case "--fail-to-start": {
        const application = value();
        if (!application) throw new Error("--fail-to-start needs an application name");
        failing.push(application);
        break;
      }
      case "--max-streams-per-connection":
        options.maxStreamsPerConnection = number(flag, value());
        break;
      case "--headers-timeout-ms":
        options.headersTimeoutMs = number(flag, value());
        break;
      case "--request-timeout-ms":
        options.requestTimeoutMs = number(flag, value());
        break;
      case "--keep-alive-timeout-ms":
        options.keepAliveTimeoutMs = number(flag, value());
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  if (origins.length > 0) options.corsOrigins = origins;
  if (failing.length > 0) options.failToStart = Object.fromEntries(failing.map((app) => [app, {}]));
  return { help: false, options };
};
