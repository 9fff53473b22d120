import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { GatewayLimits, GatewayOptions } from "./gateway.js";
import type { LogLevel } from "./logger.js";
import type { MethodSelection } from "./method-policy.js";

export const usage = `Usage: flame-gateway --upstream URL [options]

Lets browsers (gRPC-Web, Connect) reach a Flame session manager, which speaks
only gRPC, by forwarding every Frontend call over HTTP/2 gRPC.

  --upstream URL            Flame's session manager: http://host:8080 or https://...
  --port N                  port to listen on (default 8081; 0 picks a free one)
  --host ADDR               address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --ca-file PATH            PEM CA that signed the upstream's certificate (https)
  --tls-cert PATH           serve the gateway itself over TLS with this certificate...
  --tls-key PATH            ...and this key
  --allow-origin ORIGIN     browser origin granted CORS, e.g. https://dash.example.com;
                            repeatable; "localhost" allows any localhost port
  --allow-origin-regex RE   origins matching this regular expression (whole header)
  --allow-header NAME       extra request header browsers may send; repeatable
  --methods SET             all (default), read-only (Get*, List*, Watch*),
                            or a comma list of method names / prefixes (GetTask,List*)
  --token-env NAME          require "Authorization: Bearer <token>" on every call,
                            the token read from environment variable NAME
  --max-message-bytes N     largest message either way (default 4194304)
  --protocols LIST          protocols accepted from clients (default grpc,grpc-web,connect)
  --max-streams-per-connection N
                            concurrent calls on one client HTTP/2 connection (default 100)
  --idle-timeout-ms N       close a client connection with no call open this long (60000)
  --headers-timeout-ms N    an HTTP/1.1 request head must arrive within this (10000)
  --request-timeout-ms N    a whole HTTP/1.1 request must arrive within this (60000)
  --upstream-max-connections N
                            HTTP/2 connections to the upstream at most (default 16)
  --upstream-max-streams N  calls open to the upstream at most; more are refused
                            with RESOURCE_EXHAUSTED (default 2000)
  --log-level LEVEL         debug, info (default, or $FLAME_LOG), warn or error;
                            logs go to stderr
  -h, --help                show this help

The token is taken from the environment, never from the command line, where
every user of the machine could read it in the process list.
`;

/** A usage mistake: the CLI prints it with the usage and exits with 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface CliConfig {
  help: boolean;
  options: GatewayOptions;
  logLevel: LogLevel;
}

/** Turns argv (without node and the script) and the environment into gateway options. */
export function parseCliArgs(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): CliConfig {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    return { help: true, options: { upstream: "" }, logLevel: "info" };
  }
  if (values.upstream === undefined) throw new UsageError("--upstream is required");

  const options: GatewayOptions = {
    upstream: values.upstream,
    port: integer("--port", values.port ?? "8081"),
    host: values.host ?? "127.0.0.1",
  };
  if (values["ca-file"] !== undefined) options.caFile = values["ca-file"];
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (values["tls-cert"] !== undefined && values["tls-key"] !== undefined) {
    options.tls = {
      cert: readFile("--tls-cert", values["tls-cert"]),
      key: readFile("--tls-key", values["tls-key"]),
    };
  }
  const origins: (string | RegExp)[] = [...(values["allow-origin"] ?? [])];
  for (const source of values["allow-origin-regex"] ?? []) {
    try {
      origins.push(new RegExp(source));
    } catch (e) {
      throw new UsageError(`--allow-origin-regex: ${(e as Error).message}`);
    }
  }
  if (origins.length > 0) options.allowedOrigins = origins;
  if (values["allow-header"] !== undefined) options.allowedHeaders = values["allow-header"];
  if (values.methods !== undefined) options.methods = methods(values.methods);
  if (values["token-env"] !== undefined) {
    const name = values["token-env"];
    const token = env[name];
    // Name the variable, never its value.
    if (token === undefined || token === "") {
      throw new UsageError(`--token-env ${name}: environment variable ${name} is not set or empty`);
    }
    options.bearerToken = token;
  }
  if (values["max-message-bytes"] !== undefined) {
    options.maxMessageBytes = integer("--max-message-bytes", values["max-message-bytes"]);
  }
  if (values.protocols !== undefined) options.protocols = protocols(values.protocols);
  for (const [flag, name] of limitFlags) {
    const text = values[flag];
    if (text !== undefined) options[name] = integer(`--${flag}`, text);
  }
  const logLevel = values["log-level"] ?? env.FLAME_LOG ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new UsageError(`--log-level must be debug, info, warn or error, got ${logLevel}`);
  }
  return { help: false, options, logLevel: logLevel as LogLevel };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      upstream: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      "ca-file": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "allow-origin": { type: "string", multiple: true },
      "allow-origin-regex": { type: "string", multiple: true },
      "allow-header": { type: "string", multiple: true },
      methods: { type: "string" },
      "token-env": { type: "string" },
      "max-message-bytes": { type: "string" },
      protocols: { type: "string" },
      "log-level": { type: "string" },
      "max-streams-per-connection": { type: "string" },
      "idle-timeout-ms": { type: "string" },
      "headers-timeout-ms": { type: "string" },
      "request-timeout-ms": { type: "string" },
      "upstream-max-connections": { type: "string" },
      "upstream-max-streams": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/** The limit flags and the options they set. */
const limitFlags = [
  ["max-streams-per-connection", "maxStreamsPerConnection"],
  ["idle-timeout-ms", "idleTimeoutMs"],
  ["headers-timeout-ms", "headersTimeoutMs"],
  ["request-timeout-ms", "requestTimeoutMs"],
  ["upstream-max-connections", "upstreamMaxConnections"],
  ["upstream-max-streams", "upstreamMaxStreams"],
] as const satisfies readonly (readonly [string, keyof GatewayLimits])[];

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got ${text}`);
  return Number(text);
}

function methods(text: string): MethodSelection {
  if (text === "all" || text === "read-only") return text;
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 0) throw new UsageError("--methods needs all, read-only or method names");
  return names;
}

function protocols(text: string): NonNullable<GatewayOptions["protocols"]> {
  const chosen = new Set(text.split(",").map((s) => s.trim()));
  for (const name of chosen) {
    if (!["grpc", "grpc-web", "connect"].includes(name)) {
      throw new UsageError(`--protocols: unknown protocol ${name} (grpc, grpc-web, connect)`);
    }
  }
  return {
    grpc: chosen.has("grpc"),
    grpcWeb: chosen.has("grpc-web"),
    connect: chosen.has("connect"),
  };
}

function readFile(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? "cannot read"}`);
  }
}
