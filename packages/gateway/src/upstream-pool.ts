import type * as http2 from "node:http2";
import { Http2SessionManager } from "@connectrpc/connect-node";

type SessionOptions = http2.ClientSessionOptions | http2.SecureClientSessionOptions;

interface Connection {
  manager: Http2SessionManager;
  /** Streams reserved or open on this connection. */
  active: number;
  /** The HTTP/2 session of the last stream, to read the upstream's SETTINGS from. */
  session: http2.Http2Session | undefined;
}

/**
 * Assumed until the upstream's SETTINGS arrive: RFC 9113 recommends that
 * servers allow at least 100 concurrent streams.
 */
const assumedLimit = 100;

/** The upstream's SETTINGS_MAX_CONCURRENT_STREAMS for this connection. */
function limitOf(connection: Connection): number {
  const session = connection.session;
  if (session === undefined || session.destroyed) return assumedLimit;
  // Read on every pick: the SETTINGS frame may arrive after the first streams were made.
  const limit = session.remoteSettings?.maxConcurrentStreams;
  return limit !== undefined && limit > 0 ? limit : assumedLimit;
}

/**
 * HTTP/2 connections to the upstream, opened as they are needed. One
 * connection carries only as many streams as the server allows (its
 * SETTINGS_MAX_CONCURRENT_STREAMS, often 100); beyond that Node queues new
 * streams until one ends. Dashboards hold long WatchTask streams, so with a
 * single connection the 101st watch, and every unary call after it, would
 * wait until a watch ends. The pool opens another connection instead, up
 * to `maxConnections`.
 *
 * It has the shape connect-node's gRPC transport expects of a session
 * manager (`authority`, `request`, `notifyResponseByteRead`).
 */
export class UpstreamPool {
  readonly authority: string;
  readonly #connections: Connection[] = [];
  readonly #byStream = new WeakMap<http2.ClientHttp2Stream, Connection>();

  constructor(
    private readonly url: string,
    private readonly sessionOptions: SessionOptions,
    private readonly maxConnections: number,
  ) {
    this.authority = new URL(url).origin;
  }

  /** How many connections exist and how many streams each holds (for tests and stats). */
  connections(): { active: number; limit: number }[] {
    return this.#connections.map((c) => ({ active: c.active, limit: limitOf(c) }));
  }

  async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    const connection = this.#pick();
    connection.active++;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = await connection.manager.request(method, path, headers, options);
    } catch (e) {
      connection.active--;
      throw e;
    }
    connection.session = stream.session;
    this.#byStream.set(stream, connection);
    stream.once("close", () => {
      connection.active--;
    });
    return stream;
  }

  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
    this.#byStream.get(stream)?.manager.notifyResponseByteRead(stream);
  }

  abort(): void {
    for (const connection of this.#connections) connection.manager.abort();
  }

  #pick(): Connection {
    for (const connection of this.#connections) {
      if (connection.active < limitOf(connection)) return connection;
    }
    if (this.#connections.length < this.maxConnections) {
      const connection: Connection = {
        manager: new Http2SessionManager(
          this.url,
          // Keep-alive pings notice a dead upstream; idle connections close.
          { pingIntervalMs: 30_000, idleConnectionTimeoutMs: 60_000 },
          this.sessionOptions,
        ),
        active: 0,
        session: undefined,
      };
      this.#connections.push(connection);
      return connection;
    }
    // Every connection is full: queue on the least busy one.
    return this.#connections.reduce((a, b) => (b.active < a.active ? b : a));
  }
}
