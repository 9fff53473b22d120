import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { type ConnectRouter, createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectionLimits } from "./connection-limits.js";
import { corsHeaders } from "./cors.js";
import { dropUnreachableDeadline } from "./deadline.js";
import type { CorsOrigins, EmulatorProtocols } from "./options.js";
import { routeByPreface } from "./preface-router.js";
import { rawStreamKey } from "./stream-registry.js";

export interface ServerOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  protocols: Required<EmulatorProtocols>;
  corsOrigins: CorsOrigins;
  maxMessageBytes: number;
  tls: { cert: string | Uint8Array; key: string | Uint8Array } | undefined;
  limits: ConnectionLimits;
}

type Request = http2.Http2ServerRequest | import("node:http").IncomingMessage;
type Response = http2.Http2ServerResponse | import("node:http").ServerResponse;

/** Breaks the transport under one request the way a crashed peer would. */
const destroyTransport = (req: Request) => {
  if ("stream" in req && req.stream) {
    req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  } else {
    req.socket.destroy();
  }
};

/**
 * Node's budget for a client's RST_STREAM frames (nghttp2's rate limit).
 * Newer Node releases take it; Node 20 ignores it and keeps nghttp2's own:
 * a burst of 1,000, then 33 a second.
 */
interface ResetBudget {
  streamResetBurst?: number;
  streamResetRate?: number;
}

const toPem = (value: string | Uint8Array) =>
  typeof value === "string" ? value : Buffer.from(value);

/**
 * One port, three protocols: gRPC over HTTP/2 (cleartext or TLS) and
 * gRPC-Web / Connect over HTTP/1.1 or HTTP/2, with CORS for browsers.
 *
 * Every connection is served by Node's own servers with their limits in
 * force. The listening server is Node's HTTP/1.1 server (HTTP/2's with
 * TLS, which falls back to HTTP/1.1 by ALPN), because Node checks
 * `headersTimeout` and `requestTimeout` only on connections of a server
 * that listens. Without TLS, Node's HTTP/2 server cannot fall back to
 * HTTP/1.1, so the HTTP/1.1 server's connection handler is put behind
 * `routeByPreface`: a connection opening with the HTTP/2 preface goes to
 * the h2c server instead.
 */
export class EmulatorServer {
  /** The listening server. */
  private readonly server: http.Server | http2.Http2SecureServer;
  private readonly sockets = new Set<net.Socket>();

  constructor(options: ServerOptions) {
    const handler = connectNodeAdapter({
      routes: options.routes,
      interceptors: options.interceptors,
      grpc: options.protocols.grpc,
      grpcWeb: options.protocols.grpcWeb,
      connect: options.protocols.connect,
      readMaxBytes: options.maxMessageBytes,
      writeMaxBytes: options.maxMessageBytes,
      contextValues: (req) =>
        createContextValues().set(rawStreamKey, { destroy: () => destroyTransport(req) }),
    });
    const onRequest = (req: Request, res: Response) => {
      dropUnreachableDeadline(req.headers);
      const origin = req.headers.origin;
      if (origin !== undefined) {
        const preflight = req.method === "OPTIONS";
        const requested = req.headers["access-control-request-headers"];
        const headers = corsHeaders(
          origin,
          options.corsOrigins,
          preflight,
          Array.isArray(requested) ? requested.join(", ") : requested,
        );
        if (preflight) {
          // No grant for an unlisted origin: the browser refuses the call.
          res.writeHead(headers ? 204 : 403, headers ?? {});
          res.end();
          return;
        }
        if (headers)
          for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      }
      handler(req, res);
    };
    const { limits } = options;
    const http1Limits = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks every 30 s by default; shorter timeouts need shorter turns.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, limits.headersTimeoutMs / 4)),
    };
    const http2Options: http2.ServerOptions & ResetBudget = {
      settings: { maxConcurrentStreams: limits.maxStreamsPerConnection },
      streamResetBurst: limits.streamResetsPerSecond,
      streamResetRate: limits.streamResetsPerSecond,
    };
    if (options.tls) {
      const server = http2.createSecureServer(
        {
          ...http2Options,
          allowHTTP1: true,
          noDelay: true,
          cert: toPem(options.tls.cert),
          key: toPem(options.tls.key),
        },
        onRequest,
      );
      // The HTTP/1.1 fallback reads its limits from the server's fields.
      Object.assign(server, http1Limits);
      server.on("connection", (socket: net.Socket) => this.track(socket));
      // A client that vanishes mid-stream must not take the emulator down.
      server.on("sessionError", () => {});
      this.server = server;
    } else {
      const h1 = http.createServer({ ...http1Limits, noDelay: true }, onRequest);
      const h2 = http2.createServer(http2Options, onRequest);
      h2.on("sessionError", () => {});
      const [serveHttp1, ...others] = h1.listeners("connection") as ((s: net.Socket) => void)[];
      if (serveHttp1 === undefined || others.length > 0) {
        throw new Error("Node's HTTP/1.1 server no longer has exactly one connection handler");
      }
      h1.removeListener("connection", serveHttp1);
      h1.on("connection", (socket: net.Socket) => {
        this.track(socket);
        routeByPreface(socket, limits.headersTimeoutMs, (isHttp2) =>
          isHttp2 ? h2.emit("connection", socket) : serveHttp1.call(h1, socket),
        );
      });
      this.server = h1;
    }
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const address = this.server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /** Stops listening and cuts every connection at once. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        this.destroySockets();
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.destroySockets();
    });
  }

  private destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
