import { setMaxListeners } from "node:events";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core";
import { BearerTokenCheck } from "./bearer-token.js";
import { BoundedLog } from "./bounded-log.js";
import { CallGuard } from "./call-guard.js";
import { type AllowedOrigins, CorsPolicy } from "./cors.js";
import { holdDeadline } from "./deadline.js";
import { registerForwarding } from "./forward.js";
import type { GatewayStats } from "./gateway-stats.js";
import { type GatewayLogger, silentLogger } from "./logger.js";
import { type MethodSelection, resolveMethodSelection } from "./method-policy.js";
import { listen } from "./server.js";
import { openUpstream } from "./upstream.js";

/** 4 MiB, gRPC's customary default. */
export const defaultMaxMessageBytes = 4 * 1024 * 1024;

/** The defaults of the limits in `GatewayOptions`. */
export const gatewayLimitDefaults = {
  maxMessageBytes: defaultMaxMessageBytes,
  maxStreamsPerConnection: 100,
  idleTimeoutMs: 60_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  upstreamMaxConnections: 16,
  upstreamMaxStreams: 2_000,
  refusalLogsPerSecond: 10,
} as const;

export type GatewayLimits = { -readonly [K in keyof typeof gatewayLimitDefaults]?: number };

export interface GatewayOptions extends GatewayLimits {
  /** Flame's session manager: `http://host:8080` (h2c) or `https://...` (TLS). */
  upstream: string;
  /** PEM file with the CA that signed the upstream's certificate (https only). */
  caFile?: string;
  /** The CA as PEM text or bytes, instead of `caFile`. */
  ca?: string | Uint8Array;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to listen on; default 127.0.0.1. Use 0.0.0.0 to serve other hosts. */
  host?: string;
  /** Serve the gateway itself over TLS (browsers need it for HTTP/2). */
  tls?: { cert: string | Uint8Array; key: string | Uint8Array };
  /**
   * Browser origins granted CORS. Default: none, so browsers on other
   * origins cannot use the gateway; non-browser clients are unaffected.
   */
  allowedOrigins?: AllowedOrigins;
  /** Extra request headers browsers may send (beyond Connect's and Authorization). */
  allowedHeaders?: readonly string[];
  /** Extra response headers browser scripts may read. */
  exposedHeaders?: readonly string[];
  /** Methods let through: "all" (default), "read-only" (Get*, List*, Watch*) or names. */
  methods?: MethodSelection;
  /**
   * When set, every call must carry `Authorization: Bearer <token>`. The
   * header is checked in constant time and not forwarded upstream.
   */
  bearerToken?: string;
  /** Protocols accepted from clients; all on by default. */
  protocols?: { grpc?: boolean; grpcWeb?: boolean; connect?: boolean };
  /** Where to report refusals and failures; silent by default. */
  logger?: GatewayLogger;
}

export interface Gateway {
  /** `http://host:port` (or https with `tls`) to point clients at. */
  readonly url: string;
  readonly port: number;
  /** The upstream URL, for display. */
  readonly upstream: string;
  /** Counters: calls forwarded by method, calls refused by reason, open streams. */
  stats(): GatewayStats;
  /** Stops listening, ends open calls and drops the upstream connections. */
  close(): Promise<void>;
}

/**
 * Starts a gateway that accepts gRPC-Web, Connect and gRPC from clients on
 * Node's own HTTP/1.1 and HTTP/2 servers (connect-node's adapter) and
 * forwards every Frontend call to a Flame session manager through
 * connect-node's gRPC client. Options are checked before anything listens;
 * a bad one rejects with an error that says what is wrong.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? silentLogger;
  const limits = { ...gatewayLimitDefaults };
  for (const name of Object.keys(limits) as (keyof typeof limits)[]) {
    const value = options[name] ?? limits[name];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
    }
    (limits as Record<string, number>)[name] = value;
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  const host = options.host ?? "127.0.0.1";
  const allowedMethods = resolveMethodSelection(options.methods ?? "all");
  const cors = new CorsPolicy(options.allowedOrigins, {
    allowedHeaders: options.allowedHeaders ?? [],
    exposedHeaders: options.exposedHeaders ?? [],
  });
  const token =
    options.bearerToken === undefined ? undefined : new BearerTokenCheck(options.bearerToken);
  const protocols = { grpc: true, grpcWeb: true, connect: true, ...options.protocols };
  if (!protocols.grpc && !protocols.grpcWeb && !protocols.connect) {
    throw new TypeError("protocols: at least one of grpc, grpcWeb and connect must be on");
  }
  const upstream = await openUpstream({
    upstream: options.upstream,
    ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    maxMessageBytes: limits.maxMessageBytes,
    maxConnections: limits.upstreamMaxConnections,
  });

  const stats: GatewayStats = {
    forwarded: {},
    rejected: { origin: 0, unauthenticated: 0, method: 0, busy: 0 },
    openStreams: 0,
    upstreamStreams: 0,
    upstreamConnections: 0,
  };
  const shutdown = new AbortController();
  // Every call in flight listens to this one signal; more than ten is normal,
  // not a leak (connect removes each listener when its call ends).
  setMaxListeners(0, shutdown.signal);
  const handler = connectNodeAdapter({
    ...protocols,
    // No message compression either way: it would cost the gateway CPU on
    // every large message, and a compressed request could expand past what
    // was read.
    acceptCompression: [],
    readMaxBytes: limits.maxMessageBytes,
    writeMaxBytes: limits.maxMessageBytes,
    shutdownSignal: shutdown.signal,
    routes: (router) =>
      registerForwarding(router, {
        service: Frontend,
        upstream: upstream.transport,
        attempts: upstream.pool,
        guard: new CallGuard(cors, token, allowedMethods),
        logger,
        refusals: new BoundedLog(logger, limits.refusalLogsPerSecond),
        failures: new BoundedLog(logger, limits.refusalLogsPerSecond),
        stats,
        maxUpstreamStreams: limits.upstreamMaxStreams,
      }),
  });

  const server = await listen(
    (req, res) => {
      if (req.method === "OPTIONS") {
        cors.answerPreflight(req.headers, res);
        return;
      }
      holdDeadline(req.headers);
      cors.grant(req.headers, res);
      handler(req, res);
    },
    {
      port,
      host,
      limits,
      tls: options.tls && { cert: toPem(options.tls.cert), key: toPem(options.tls.key) },
    },
  ).catch((e: unknown) => {
    upstream.close();
    throw e;
  });
  const scheme = options.tls ? "https" : "http";
  const urlHost = server.family === "IPv6" ? `[${server.address}]` : server.address;
  const url = `${scheme}://${urlHost}:${server.port}`;
  logger.info?.("gateway listening", { url, upstream: upstream.displayUrl });

  let closing: Promise<void> | undefined;
  return {
    url,
    port: server.port,
    upstream: upstream.displayUrl,
    stats: () => ({
      forwarded: { ...stats.forwarded },
      rejected: { ...stats.rejected },
      openStreams: stats.openStreams,
      upstreamStreams: stats.upstreamStreams,
      upstreamConnections: upstream.pool.connections().length,
    }),
    close() {
      closing ??= (async () => {
        // Ends open handlers; their upstream calls are cancelled with them.
        shutdown.abort();
        await server.close();
        upstream.close();
        logger.info?.("gateway closed", { url });
      })();
      return closing;
    },
  };
}

function toPem(value: string | Uint8Array): string | Buffer {
  return typeof value === "string" ? value : Buffer.from(value);
}
