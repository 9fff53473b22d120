import type * as http2 from "node:http2";
import { isIP } from "node:net";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createGrpcTransport,
  type GrpcTransportOptions,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { configError } from "./config-error.js";
import { type FlameEndpoint, parseEndpoint } from "./endpoint.js";
import { type Http2Options, Http2SessionPool } from "./http2-session-pool.js";
import { createLeanGrpcTransport } from "./lean-grpc-transport.js";
import { lostConnectionInterceptor } from "./lost-connection.js";
import { tlsErrorInterceptor } from "./tls-errors.js";
import { loadTlsMaterial, type TlsMaterialOptions } from "./tls-material.js";

/** Default per-message size limit, both ways: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export type { Http2Options } from "./http2-session-pool.js";

/**
 * Which gRPC implementation carries the calls: `"lean"` (the default), our
 * own on `node:http2`, or `"connect-node"`, connect-es's Node transport.
 */
export type NodeTransportKind = "lean" | "connect-node";

/** Options of {@link createNodeTransport}. */
export interface NodeTransportOptions extends TlsMaterialOptions {
  /**
   * Largest message sent or received, in bytes (default 64 MiB). A bigger
   * message fails the call with `ResourceExhausted` instead of eating memory.
   */
  maxMessageBytes?: number;
  /** HTTP/2 keep-alive settings. */
  http2?: Http2Options;
  /** Connect interceptors run on every call (e.g. to add an auth header). */
  interceptors?: Interceptor[];
  /**
   * `"lean"` (default): gRPC written directly on `node:http2`, about twice
   * connect-node's rate for small calls and a fraction of its memory per
   * open stream; unary and server-streaming methods (all Flame has).
   * `"connect-node"`: `createGrpcTransport` from `@connectrpc/connect-node`,
   * for anything the lean one lacks (client or bidi streaming, or to rule
   * it out when chasing a problem). Default: the `FLAME_NODE_TRANSPORT`
   * environment variable, else `"lean"`.
   */
  transport?: NodeTransportKind;
}

/** A gRPC transport over one HTTP/2 connection, and the means to close it. */
export interface NodeTransport {
  /** The Connect transport; give it to `new Connection(transport)`. */
  readonly transport: Transport;
  /** The validated base URL, e.g. `https://flame.example.com:8080`. */
  readonly baseUrl: string;
  /**
   * Close the HTTP/2 connection (cancelling calls still in flight) and refuse
   * new calls. Idempotent. Afterwards nothing keeps the process alive.
   */
  close(): void;
  /** True once {@link NodeTransport.close} has been called. */
  readonly closed: boolean;
}

/**
 * Build a gRPC-over-HTTP/2 transport to a Flame session manager, which is what
 * real Flame (Rust tonic) speaks: h2c for `http://`, TLS for `https://`.
 *
 * The URL and any CA/cert/key files are checked here, so mistakes are
 * `"invalid-config"` errors before the first call. TLS material is only read
 * for `https://` URLs. A given CA replaces Node's default trust store (as
 * `tls.connect({ ca })` does); without one the default store applies.
 */
export async function createNodeTransport(
  url: string,
  options: NodeTransportOptions = {},
): Promise<NodeTransport> {
  const endpoint = parseEndpoint(url);
  const nodeOptions: http2.SecureClientSessionOptions = {};
  if (endpoint.tls) {
    Object.assign(nodeOptions, await loadTlsMaterial(options));
  }
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // connect-node caps both limits at 4 GiB (2^32 - 1).
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > 0xffff_ffff) {
    throw configError(
      `maxMessageBytes must be a whole number of bytes from 1 to 4294967295, got ${maxBytes}`,
    );
  }
  // FLAME_NODE_TRANSPORT switches a whole program without a code change
  // (e.g. to compare the two, or to rule the lean one out).
  const kind = options.transport ?? (globalThis.process?.env?.FLAME_NODE_TRANSPORT || undefined);
  if (kind === "connect-node") {
    return connectNodeTransport(endpoint, options, nodeOptions, maxBytes);
  }
  if (kind !== undefined && kind !== "lean") {
    throw configError(`transport must be "lean" or "connect-node", got ${JSON.stringify(kind)}`);
  }
  if (endpoint.tls) {
    nodeOptions.ALPNProtocols = ["h2"];
    // Node refuses an IP address as SNI; a name is checked against the certificate.
    if (isIP(endpoint.host) === 0) nodeOptions.servername = endpoint.host;
  }
  const pool = new Http2SessionPool(
    new URL(endpoint.baseUrl).origin,
    endpoint.baseUrl,
    options.http2 ?? {},
    nodeOptions,
  );
  const transport = createLeanGrpcTransport({
    baseUrl: endpoint.baseUrl,
    pool,
    readMaxBytes: maxBytes,
    writeMaxBytes: maxBytes,
    interceptors: options.interceptors,
  });
  return {
    transport,
    baseUrl: endpoint.baseUrl,
    close: () => pool.close(),
    get closed() {
      return pool.closed;
    },
  };
}

/** The same transport on connect-node (`transport: "connect-node"`). */
function connectNodeTransport(
  endpoint: FlameEndpoint,
  options: NodeTransportOptions,
  nodeOptions: http2.SecureClientSessionOptions,
  maxBytes: number,
): NodeTransport {
  // One explicit session manager per connection: it is the only handle on the
  // HTTP/2 session, and without closing it the socket keeps the process alive.
  const manager = new Http2SessionManager(endpoint.baseUrl, options.http2 ?? {}, nodeOptions);
  const sessions = new ClosableSessionManager(manager, endpoint.baseUrl);
  const transport = createGrpcTransport({
    baseUrl: endpoint.baseUrl,
    sessionManager: sessions,
    readMaxBytes: maxBytes,
    writeMaxBytes: maxBytes,
    // The last interceptor is the innermost: TLS failures are rewritten before
    // the caller's interceptors see them.
    interceptors: [
      ...(options.interceptors ?? []),
      lostConnectionInterceptor,
      ...(endpoint.tls ? [tlsErrorInterceptor(endpoint.baseUrl)] : []),
    ],
  });
  return {
    transport,
    baseUrl: endpoint.baseUrl,
    close: () => sessions.close(),
    get closed() {
      return sessions.closed;
    },
  };
}

const guarded = new WeakSet<object>();

/**
 * connect-node's keep-alive destroys a connection whose PING went
 * unanswered with an error, and can do so after it has taken its own
 * "error" listeners off that connection: with no listener, Node throws the
 * error as an uncaught exception and the process dies. A listener that
 * ignores errors (calls on the connection still fail on their own) keeps a
 * dead server from crashing the client.
 */
function guardSession(session: http2.Http2Session | undefined): void {
  if (session === undefined || guarded.has(session)) return;
  guarded.add(session);
  session.on("error", () => {});
}

// connect-node does not export this interface by name.
type NodeHttp2ClientSessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

/**
 * Wraps connect-node's session manager: after `close()` a request is refused
 * rather than silently opening a new connection.
 */
class ClosableSessionManager implements NodeHttp2ClientSessionManager {
  closed = false;
  readonly authority: string;

  constructor(
    private readonly inner: Http2SessionManager,
    private readonly baseUrl: string,
  ) {
    this.authority = inner.authority;
  }

  request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    if (this.closed) {
      return Promise.reject(
        new ConnectError(`the connection to ${this.baseUrl} is closed`, Code.FailedPrecondition),
      );
    }
    return this.inner.request(method, path, headers, options).then((stream) => {
      guardSession(stream.session);
      return stream;
    });
  }

  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
    this.inner.notifyResponseByteRead(stream);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inner.abort(
      new ConnectError(`the connection to ${this.baseUrl} was closed`, Code.Canceled),
    );
  }
}
