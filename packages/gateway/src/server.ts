import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type * as tls from "node:tls";

export type RequestListener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * Takes an HTTP/2 stream before Node's compatibility layer wraps it in a
 * request and a response; returns false to leave it to the request listener.
 */
export type StreamInterceptor = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => boolean;

/**
 * Takes a connection before Node's server for its protocol does: a
 * cleartext one once its first bytes (`head`) show which protocol it
 * speaks, a TLS one once ALPN chose (`head` empty). `decline` gives it,
 * with the bytes read and not served, to Node's server instead.
 */
export type ConnectionInterceptor = (
  socket: net.Socket,
  head: Buffer,
  decline: (bytes: Buffer) => void,
) => void;

export interface ListeningServer {
  readonly port: number;
  readonly address: string;
  readonly family: string;
  /** Stops accepting, then ends every connection, idle or not. */
  close(): Promise<void>;
}

/** The client preface every HTTP/2 connection without TLS starts with. */
const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n");
/** How long closing waits for HTTP/2 sessions to end their streams before cutting them. */
const sessionCloseGraceMs = 1_000;

/**
 * Serves HTTP/1.1 and HTTP/2 on one port. With TLS, ALPN chooses. Without
 * it, Node 20's `http2.createServer({ allowHTTP1 })` does not actually
 * accept HTTP/1.1, so we look at the first bytes of each connection: the
 * HTTP/2 preface goes to the h2c server, anything else to an HTTP/1.1
 * server. gRPC clients speak h2c; gRPC-Web and Connect from browsers and
 * `httpVersion: "1.1"` transports speak HTTP/1.1.
 */
export async function listen(
  listener: RequestListener,
  options: {
    port: number;
    host: string;
    tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
    onStream?: StreamInterceptor;
    /** HTTP/2 connections (the gRPC relay). */
    onHttp2Connection?: ConnectionInterceptor;
    /** HTTP/1.1 connections (the gRPC-Web relay). */
    onHttp1Connection?: ConnectionInterceptor;
  },
): Promise<ListeningServer> {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const trackSessions = (server: http2.Http2Server | http2.Http2SecureServer) =>
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });

  let outer: net.Server;
  const closers: (() => void)[] = [];
  if (options.tls) {
    const secure = http2.createSecureServer(
      { allowHTTP1: true, noDelay: true, cert: options.tls.cert, key: options.tls.key },
      listener as never,
    );
    trackSessions(secure);
    if (options.onStream) interceptStreams(secure, options.onStream);
    if (options.onHttp2Connection || options.onHttp1Connection) {
      interceptTlsConnections(secure, options.onHttp2Connection, options.onHttp1Connection);
    }
    outer = secure;
  } else {
    const h2 = http2.createServer(listener as never);
    const h1 = http.createServer(listener as never);
    trackSessions(h2);
    if (options.onStream) interceptStreams(h2, options.onStream);
    closers.push(() => h1.closeAllConnections());
    // Nagle off, as http.createServer would do for its own sockets: these are
    // accepted here and handed over, so its default never applies. With Nagle
    // on, gRPC-Web's trailer frame (a second small write) waits for the
    // client's delayed ACK, up to 40 ms per call.
    outer = net.createServer({ noDelay: true }, (socket) =>
      routeByPreface(socket, h1, h2, options.onHttp2Connection, options.onHttp1Connection),
    );
  }
  outer.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen(options.port, options.host, () => {
      outer.off("error", reject);
      resolve();
    });
  });
  const address = outer.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    address: address.address,
    family: address.family,
    close() {
      closing ??= new Promise<void>((resolve) => {
        outer.close(() => resolve());
        for (const close of closers) close();
        // Each HTTP/2 session first sends what it still has (the status of
        // every call the gateway ended as it closes, then GOAWAY) and closes
        // once its streams are done; what is left after that, or after a
        // grace period for a client that keeps a stream open, is cut.
        const sessionsClosed = [...sessions].map(
          (session) =>
            new Promise<void>((done) => {
              session.once("close", done);
              session.close();
            }),
        );
        const cut = () => {
          clearTimeout(grace);
          for (const socket of sockets) socket.destroy();
        };
        const grace = setTimeout(cut, sessionCloseGraceMs);
        void Promise.all(sessionsClosed).then(cut);
      });
      return closing;
    },
  };
}

/**
 * Puts `onStream` in front of the compatibility layer's own "stream"
 * listener (which makes the request/response pair), so that streams the
 * interceptor takes cost no compat objects. If Node's internals ever look
 * different, the interceptor is left out and every stream takes the
 * request listener.
 */
function interceptStreams(
  server: http2.Http2Server | http2.Http2SecureServer,
  onStream: StreamInterceptor,
): void {
  const listeners = server.listeners("stream");
  const compat = listeners[0];
  if (listeners.length !== 1 || typeof compat !== "function") return;
  server.removeListener("stream", compat as never);
  const onServerStream = (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
    rawHeaders: string[],
  ) => {
    if (!onStream(stream, headers)) compat.call(server, stream, headers, flags, rawHeaders);
  };
  server.on("stream", onServerStream);
}

/**
 * Offers TLS connections to the interceptor for the protocol ALPN chose
 * (h2, or HTTP/1.1 otherwise) before Node's server sets them up, in the
 * same way as `interceptStreams`.
 */
function interceptTlsConnections(
  server: http2.Http2SecureServer,
  onHttp2Connection: ConnectionInterceptor | undefined,
  onHttp1Connection: ConnectionInterceptor | undefined,
): void {
  const listeners = server.listeners("secureConnection");
  const node = listeners[0];
  if (listeners.length !== 1 || typeof node !== "function") return;
  server.removeListener("secureConnection", node as never);
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const choseHttp2 = socket.alpnProtocol === "h2";
    const intercept = choseHttp2 ? onHttp2Connection : onHttp1Connection;
    if (intercept === undefined) {
      node.call(server, socket);
      return;
    }
    intercept(socket, Buffer.alloc(0), (bytes) => {
      socket.pause();
      if (bytes.length > 0) socket.unshift(bytes);
      node.call(server, socket);
      // Node's HTTP/2 session reads what is buffered on the next tick, as for
      // h2c; its HTTP/1.1 server reads new bytes straight off the handle, so
      // the unshifted ones must flow now, before any of those.
      if (!choseHttp2) socket.resume();
    });
  });
}

function routeByPreface(
  socket: net.Socket,
  h1: http.Server,
  h2: http2.Http2Server,
  onHttp2Connection: ConnectionInterceptor | undefined,
  onHttp1Connection: ConnectionInterceptor | undefined,
): void {
  const toHttp2 = (bytes: Buffer) => {
    socket.pause();
    socket.unshift(bytes);
    // Http2Session reads what is already buffered on the next tick; resuming
    // here would flow the preface away to no listener.
    h2.emit("connection", socket);
  };
  const toHttp1 = (bytes: Buffer) => {
    socket.pause();
    if (bytes.length > 0) socket.unshift(bytes);
    h1.emit("connection", socket);
    socket.resume();
  };
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, h2Preface.length);
    const isH2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
    // Decide once the bytes so far cannot be the preface, or are all of it.
    if (isH2 && seen.length < h2Preface.length) return;
    socket.off("data", onData);
    socket.off("error", onError);
    if (isH2 && onHttp2Connection !== undefined) {
      onHttp2Connection(socket, seen, toHttp2);
    } else if (isH2) {
      toHttp2(seen);
    } else if (onHttp1Connection !== undefined) {
      onHttp1Connection(socket, seen, toHttp1);
    } else {
      toHttp1(seen);
    }
  };
  const onError = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", onError);
}
