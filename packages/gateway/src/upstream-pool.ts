import * as http2 from "node:http2";
import { Http2SessionManager } from "@connectrpc/connect-node";
import { ResetBudget, upstreamResetBudget } from "./reset-budget.js";

type SessionOptions = http2.ClientSessionOptions | http2.SecureClientSessionOptions;

interface Connection {
  manager: Http2SessionManager;
  /** Streams reserved or open on this connection. */
  active: number;
  /** The HTTP/2 session of the last stream, to read the upstream's SETTINGS from. */
  session: http2.Http2Session | undefined;
  /** Resets this connection may still send; see ResetBudget. */
  resets: ResetBudget;
  /** Takes no new calls; closed once its last call ends. */
  retired: boolean;
}

/**
 * A request header the gateway sets to follow one call through the pool;
 * the pool takes it off before the request goes upstream.
 */
export const attemptHeader = "x-flame-gateway-attempt";

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
 * Each connection also has a budget of resets (see ResetBudget): once its
 * calls' cancellations have spent it, it takes no new calls, the next call
 * opens a fresh connection, and it closes when its last call ends.
 *
 * It has the shape connect-node's gRPC transport expects of a session
 * manager (`authority`, `request`, `notifyResponseByteRead`).
 */
export class UpstreamPool {
  readonly authority: string;
  readonly #connections: Connection[] = [];
  readonly #byStream = new WeakMap<http2.ClientHttp2Stream, Connection>();
  /** The last stream id of the GOAWAY each session got, if it got one. */
  readonly #goawayLastStreamId = new WeakMap<http2.Http2Session, number>();
  readonly #watchedSessions = new WeakSet<http2.Http2Session>();
  /** The stream of each attempt, until it is settled. */
  readonly #attemptStreams = new Map<
    string,
    { stream: http2.ClientHttp2Stream; session: http2.Http2Session | undefined }
  >();
  #attempts = 0;

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

  /** A new value for {@link attemptHeader}. */
  nextAttempt(): string {
    return String(++this.#attempts);
  }

  /**
   * Forgets the attempt (call it once the call has ended, whatever the
   * outcome) and says whether its stream ended without the upstream
   * processing it: refused (REFUSED_STREAM) or above the last stream id of
   * a GOAWAY. Such a call may be sent again (RFC 9113, section 8.7).
   */
  settle(attempt: string): boolean {
    const sent = this.#attemptStreams.get(attempt);
    if (sent === undefined) return false;
    this.#attemptStreams.delete(attempt);
    // A stream forgets its session when it closes; the pool remembers it.
    const { stream, session } = sent;
    if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) return true;
    const last = session === undefined ? undefined : this.#goawayLastStreamId.get(session);
    return last !== undefined && stream.id !== undefined && stream.id > last;
  }

  async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    const attempt = headers[attemptHeader];
    delete headers[attemptHeader];
    const connection = this.#pick();
    connection.active++;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = await connection.manager.request(method, path, headers, options);
    } catch (e) {
      connection.active--;
      throw e;
    }
    const session = stream.session;
    connection.session = session;
    if (session !== undefined && !this.#watchedSessions.has(session)) {
      this.#watchedSessions.add(session);
      session.once("goaway", (_code: number, lastStreamId: number) => {
        this.#goawayLastStreamId.set(session, lastStreamId);
      });
    }
    this.#byStream.set(stream, connection);
    if (typeof attempt === "string") this.#attemptStreams.set(attempt, { stream, session });
    stream.once("close", () => {
      connection.active--;
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !connection.resets.spend()) {
        connection.retired = true;
      }
      if (connection.retired && connection.active === 0) this.#close(connection);
    });
    return stream;
  }

  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
    this.#byStream.get(stream)?.manager.notifyResponseByteRead(stream);
  }

  abort(): void {
    for (const connection of this.#connections) connection.manager.abort();
  }

  #close(connection: Connection): void {
    const i = this.#connections.indexOf(connection);
    if (i !== -1) this.#connections.splice(i, 1);
    connection.manager.abort();
  }

  #pick(): Connection {
    for (const connection of this.#connections) {
      if (!connection.retired && connection.active < limitOf(connection)) return connection;
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
        resets: new ResetBudget(upstreamResetBudget.burst, upstreamResetBudget.perSecond),
        retired: false,
      };
      this.#connections.push(connection);
      return connection;
    }
    // Every connection is full: queue on the least busy one that takes calls.
    const open = this.#connections.filter((c) => !c.retired);
    return (open.length > 0 ? open : this.#connections).reduce((a, b) =>
      b.active < a.active ? b : a,
    );
  }
}
