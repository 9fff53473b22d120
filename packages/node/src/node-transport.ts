import type * as http2 from "node:http2";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createGrpcTransport,
  type GrpcTransportOptions,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { configError } from "./config-error.js";
import { parseEndpoint } from "./endpoint.js";
import type { Http2Options } from "./http2-options.js";
import { lostConnectionInterceptor } from "./lost-connection.js";
import { spreadTransport } from "./spread-transport.js";
import { tlsErrorInterceptor } from "./tls-errors.js";
import { loadTlsMaterial, type TlsMaterialOptions } from "./tls-material.js";

/** HTTP/2 connections a transport spreads its calls over, unless `http2.connections` says. */
export const DEFAULT_CONNECTIONS = 2;

/** Default per-message size limit, both ways: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export type { Http2Options } from "./http2-options.js";

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
}

/** A gRPC transport over its HTTP/2 connections (`http2.connections`), and the means to close them. */
export interface NodeTransport {
  /** The Connect transport; give it to `new Connection(transport)`. */
  readonly transport: Transport;
  /** The validated base URL, e.g. `https://flame.example.com:8080`. */
  readonly baseUrl: string;
  /**
   * Close the HTTP/2 connections (cancelling calls still in flight) and refuse
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
  const http2Options = options.http2 ?? {};
  const count = http2Options.connections ?? DEFAULT_CONNECTIONS;
  if (!Number.isInteger(count) || count < 1 || count > 64) {
    throw configError(`http2.connections must be a whole number from 1 to 64, got ${count}`);
  }
  const { connections: _connections, ...sessionOptions } = http2Options;
  // One explicit session manager per connection: it is the only handle on the
  // HTTP/2 session, and without closing it the socket keeps the process alive.
  const managers = Array.from(
    { length: count },
    () =>
      new ClosableSessionManager(
        new Http2SessionManager(endpoint.baseUrl, sessionOptions, nodeOptions),
        endpoint.baseUrl,
      ),
  );
  // The last interceptor is the innermost: TLS failures are rewritten before
  // the caller's interceptors see them.
  const interceptors = [
    ...(options.interceptors ?? []),
    lostConnectionInterceptor,
    ...(endpoint.tls ? [tlsErrorInterceptor(endpoint.baseUrl)] : []),
  ];
  const transport = spreadTransport(
    managers.map((sessionManager) =>
      createGrpcTransport({
        baseUrl: endpoint.baseUrl,
        sessionManager,
        readMaxBytes: maxBytes,
        writeMaxBytes: maxBytes,
        interceptors,
      }),
    ),
  );
  let closed = false;
  return {
    transport,
    baseUrl: endpoint.baseUrl,
    close: () => {
      closed = true;
      for (const manager of managers) manager.close();
    },
    get closed() {
      return closed;
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
