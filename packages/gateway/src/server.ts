import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import type * as net from "node:net";
import type * as tls from "node:tls";

export type RequestListener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** Node's limits on client connections, as the gateway sets them. */
export interface ConnectionLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS offered to each HTTP/2 client. */
  maxStreamsPerConnection: number;
  /** A connection with no call open for this long is closed. */
  idleTimeoutMs: number;
  /** An HTTP/1.1 request head (or a connection's first bytes) must arrive within this. */
  headersTimeoutMs: number;
  /** A whole HTTP/1.1 request (head and body) must arrive within this. */
  requestTimeoutMs: number;
}

export interface ListeningServer {
  readonly port: number;
  readonly address: string;
  readonly family: string;
  /** Stops accepting, then ends every connection, idle or not. */
  close(): Promise<void>;
}

/** The start of the preface every cleartext HTTP/2 connection opens with. */
const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n");
/** How long closing waits for HTTP/2 sessions to end their streams before cutting them. */
const sessionCloseGraceMs = 1_000;

/**
 * Serves HTTP/1.1 and HTTP/2 on one port with Node's own servers and limits.
 *
 * The listening server is always Node's HTTP/1.1 server (`https.Server` with
 * TLS), so that its timers run: Node starts the check of `headersTimeout`
 * and `requestTimeout` only on a server that listens, never on one fed
 * sockets by `emit("connection")`. HTTP/2 connections are handed from it to
 * an `http2` server: with TLS, those ALPN chose h2 for; without, those that
 * open with the HTTP/2 preface (Node 20's cleartext `allowHTTP1` does not
 * accept HTTP/1.1). Until the first bytes decide, a connection is held
 * only `headersTimeoutMs`.
 */
export async function listen(
  listener: RequestListener,
  options: {
    port: number;
    host: string;
    tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
    limits: ConnectionLimits;
  },
): Promise<ListeningServer> {
  const { limits } = options;
  const http1Options: http.ServerOptions = {
    noDelay: true,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // Check at least once a second, and often enough for short timeouts.
    connectionsCheckingInterval: Math.min(1_000, Math.max(50, limits.headersTimeoutMs / 4)),
  };
  const http2Options: http2.ServerOptions = {
    settings: { maxConcurrentStreams: limits.maxStreamsPerConnection },
  };
  const h1 = options.tls
    ? https.createServer(
        {
          ...http1Options,
          cert: options.tls.cert,
          key: options.tls.key,
          ALPNProtocols: ["h2", "http/1.1"],
        },
        listener as http.RequestListener,
      )
    : http.createServer(http1Options, listener as http.RequestListener);
  const h2 = options.tls
    ? http2.createSecureServer(http2Options, listener as never)
    : http2.createServer(http2Options, listener as never);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    closeWhenIdle(session, limits.idleTimeoutMs);
  });

  if (options.tls) {
    const [nodeListener] = h1.listeners("secureConnection");
    h1.removeAllListeners("secureConnection");
    h1.on("secureConnection", (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol === "h2") h2.emit("secureConnection", socket);
      else (nodeListener as (s: net.Socket) => void).call(h1, socket);
    });
  } else {
    const [nodeListener] = h1.listeners("connection");
    h1.removeAllListeners("connection");
    h1.on("connection", (socket: net.Socket) =>
      routeByPreface(socket, limits.headersTimeoutMs, (isHttp2) => {
        if (isHttp2) h2.emit("connection", socket);
        else (nodeListener as (s: net.Socket) => void).call(h1, socket);
      }),
    );
  }
  const sockets = new Set<net.Socket>();
  h1.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    h1.once("error", reject);
    h1.listen(options.port, options.host, () => {
      h1.off("error", reject);
      resolve();
    });
  });
  const address = h1.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    address: address.address,
    family: address.family,
    close() {
      closing ??= new Promise<void>((resolve) => {
        h1.close(() => resolve());
        h1.closeAllConnections();
        // Each HTTP/2 session first sends what it still has (the status of
        // every call the gateway ended as it closes, then GOAWAY); what is
        // left after that, or after a grace period, is cut.
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
 * Closes (GOAWAY, then the socket) an HTTP/2 session that has had no
 * stream open for `idleMs`. Node's own session timeout counts only
 * traffic, so it would also end a quiet WatchTask; this counts streams.
 */
function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.close(), idleMs);
    timer.unref();
  };
  arm();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
}

/**
 * Reads a cleartext connection's first bytes until they show whether it
 * opens with the HTTP/2 preface, puts them back and calls `decide`. A
 * client that sends too little within `timeoutMs` is dropped.
 */
function routeByPreface(
  socket: net.Socket,
  timeoutMs: number,
  decide: (isHttp2: boolean) => void,
): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, h2Preface.length);
    const isHttp2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isHttp2 && seen.length < h2Preface.length) return;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(seen);
    decide(isHttp2);
    // An HTTP/2 session reads what is buffered on its own; Node's HTTP/1.1
    // parser reads from the handle, so the bytes put back must flow now.
    if (!isHttp2) socket.resume();
  };
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on("data", onData);
  socket.on("error", onError);
  socket.once("close", () => clearTimeout(timer));
}
