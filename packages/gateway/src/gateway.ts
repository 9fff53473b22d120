import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core";
import { BearerTokenCheck } from "./bearer-token.js";
import { ByteProxy } from "./byte-proxy.js";
import { CallGuard } from "./call-guard.js";
import { type AllowedOrigins, CorsPolicy } from "./cors.js";
import { Http1Downstream, Http2Downstream } from "./downstream.js";
import { FastPath } from "./fast-path.js";
import { registerForwarding } from "./forward.js";
import type { GatewayStats } from "./gateway-stats.js";
import { GrpcRelay } from "./grpc-relay.js";
import { type GatewayLogger, silentLogger } from "./logger.js";
import { type MethodSelection, resolveMethodSelection } from "./method-policy.js";
import { listen } from "./server.js";
import { openUpstream } from "./upstream.js";
import { GrpcWebRelay } from "./web-relay.js";

/** 4 MiB, gRPC's customary default. */
export const defaultMaxMessageBytes = 4 * 1024 * 1024;

export interface GatewayOptions {
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
  /** Largest message in either direction; default 4 MiB. */
  maxMessageBytes?: number;
  /** Protocols accepted from clients; all on by default. */
  protocols?: { grpc?: boolean; grpcWeb?: boolean; connect?: boolean };
  /** Where to report refusals and failures; silent by default. */
  logger?: GatewayLogger;
  /**
   * Relay the HTTP/2 connections of gRPC clients frame by frame, each to a
   * connection of its own to the upstream (default true). Off, every call
   * goes through Node's HTTP/2 server and client, at about three times the
   * added latency.
   */
  grpcRelay?: boolean;
  /**
   * Translate gRPC-Web calls over HTTP/1.1 (what browsers send to an
   * `http://` gateway) in the gateway's own gRPC-Web relay, on HTTP/2
   * connections to the upstream that its calls share (default true). Off,
   * they go through Node's HTTP/1.1 server and HTTP/2 client, at about
   * twice the added latency.
   */
  grpcWebRelay?: boolean;
}

export interface Gateway {
  /** `http://host:port` (or https with `tls`) to point clients at. */
  readonly url: string;
  readonly port: number;
  /** The upstream URL, for display. */
  readonly upstream: string;
  /** Counters: calls forwarded by method, calls refused by reason, open streams. */
  stats(): GatewayStats;
  /** Stops listening, ends open calls and drops the upstream connection. */
  close(): Promise<void>;
}

/**
 * Starts a gateway that accepts gRPC-Web, Connect and gRPC from clients and
 * forwards every Frontend call to a Flame session manager over HTTP/2 gRPC.
 * Options are checked before anything listens; a bad one rejects with an
 * error that says what is wrong.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? silentLogger;
  const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
    throw new TypeError(
      `maxMessageBytes must be a positive integer, got ${String(maxMessageBytes)}`,
    );
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
    maxMessageBytes,
  });

  const stats: GatewayStats = {
    forwarded: {},
    rejected: { origin: 0, unauthenticated: 0, method: 0 },
    openStreams: 0,
    upstreamConnections: 0,
    relayedConnections: 0,
    webRelayedConnections: 0,
  };
  const shutdown = new AbortController();
  // Every call in flight listens to this one signal; more than ten is normal,
  // not a leak (connect removes each listener when its call ends).
  setMaxListeners(0, shutdown.signal);
  const guard = new CallGuard(cors, token, allowedMethods);
  // Binary gRPC and gRPC-Web are forwarded as bytes; the rest is decoded by Connect.
  const fastPath = new FastPath(Frontend, protocols);
  const proxy = new ByteProxy({
    upstream: new URL(upstream.displayUrl),
    ca: upstream.ca,
    guard,
    cors,
    logger,
    stats,
    maxMessageBytes,
  });
  const relay =
    options.grpcRelay === false || !protocols.grpc
      ? undefined
      : new GrpcRelay({
          fastPath,
          guard,
          logger,
          stats,
          maxMessageBytes,
          upstream: new URL(upstream.displayUrl),
          ca: upstream.ca,
        });
  const webRelay =
    options.grpcWebRelay === false || !protocols.grpcWeb
      ? undefined
      : new GrpcWebRelay({
          fastPath,
          guard,
          cors,
          logger,
          stats,
          maxMessageBytes,
          upstream: new URL(upstream.displayUrl),
          ca: upstream.ca,
        });
  const handler = connectNodeAdapter({
    ...protocols,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    shutdownSignal: shutdown.signal,
    routes: (router) =>
      registerForwarding(router, {
        service: Frontend,
        upstream: upstream.transport,
        guard,
        logger,
        stats,
      }),
  });

  const server = await listen(
    (req, res) => {
      if (req.method === "OPTIONS") {
        cors.answerPreflight(req.headers, res);
        return;
      }
      if (req.httpVersionMajor === 1) {
        const route = fastPath.route(req.method, req.url, req.headers, true);
        if (route !== undefined) {
          proxy.handle(route, new Http1Downstream(req as IncomingMessage, res as ServerResponse));
          return;
        }
      }
      cors.grant(req.headers, res);
      handler(req, res);
    },
    {
      port,
      host,
      ...(relay === undefined ? {} : { onHttp2Connection: relay.offer.bind(relay) }),
      ...(webRelay === undefined ? {} : { onHttp1Connection: webRelay.offer.bind(webRelay) }),
      onStream: (stream, headers) => {
        const route = fastPath.route(headers[":method"], headers[":path"], headers, false);
        if (route === undefined) return false;
        proxy.handle(route, new Http2Downstream(stream, headers, !route.web));
        return true;
      },
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
      upstreamConnections:
        upstream.pool.connections().length +
        proxy.pool.size +
        (relay?.connections ?? 0) +
        (webRelay?.upstreamConnections ?? 0),
      relayedConnections: relay?.connections ?? 0,
      webRelayedConnections: webRelay?.connections ?? 0,
    }),
    close() {
      closing ??= (async () => {
        // Ends open handlers; their upstream calls are cancelled with them.
        shutdown.abort();
        proxy.close();
        relay?.close();
        webRelay?.close();
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
