import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { type ConnectRouter, createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { corsHeaders } from "./cors.js";
import type { CorsOrigins, EmulatorProtocols } from "./options.js";
import { rawStreamKey } from "./stream-registry.js";

export interface ServerOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  protocols: Required<EmulatorProtocols>;
  corsOrigins: CorsOrigins;
  maxMessageBytes: number;
  tls: { cert: string | Uint8Array; key: string | Uint8Array } | undefined;
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

const PREFACE = "PRI";

/** Hands a cleartext connection to the HTTP/2 or the HTTP/1.1 server by its first bytes. */
const routeByPreface = (socket: net.Socket, h2: http2.Http2Server, h1: http.Server) => {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const head = seen.subarray(0, PREFACE.length).toString("latin1");
    if (head.length < PREFACE.length && PREFACE.startsWith(head)) return;
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(seen);
    if (head === PREFACE) {
      // The HTTP/2 session reads what is buffered on the next tick, then the handle
      // directly; resuming here would drain the preface to nobody.
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  const onError = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", onError);
};

const toPem = (value: string | Uint8Array) =>
  typeof value === "string" ? value : Buffer.from(value);

/**
 * One port, three protocols: gRPC over HTTP/2 (cleartext or TLS) and
 * gRPC-Web / Connect over HTTP/1.1 or HTTP/2, with CORS for browsers.
 */
export class EmulatorServer {
  /** The listening server: TLS picks HTTP/2 or 1.1 by ALPN, cleartext by sniffing. */
  private readonly server: net.Server;
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
    // Nagle off on every accepted socket (http.createServer's default, lost
    // when sockets are accepted by our own net.Server and handed over): a
    // second small write would otherwise wait for the client's delayed ACK.
    const serverOptions = { allowHTTP1: true, maxSessionMemory: 64, noDelay: true };
    if (options.tls) {
      this.server = http2.createSecureServer(
        { ...serverOptions, cert: toPem(options.tls.cert), key: toPem(options.tls.key) },
        onRequest,
      );
    } else {
      // Node's cleartext HTTP/2 server cannot fall back to HTTP/1.1 (allowHTTP1 needs
      // ALPN), so look at the first bytes: the HTTP/2 preface starts with "PRI".
      const h2 = http2.createServer(serverOptions, onRequest);
      const h1 = http.createServer(onRequest);
      h2.on("sessionError", () => {});
      this.server = net.createServer({ noDelay: true }, (socket) => routeByPreface(socket, h2, h1));
    }
    this.server.on("connection", (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    // A client that vanishes mid-stream must not take the emulator down.
    this.server.on("sessionError", () => {});
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
