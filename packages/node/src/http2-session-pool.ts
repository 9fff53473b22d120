import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/** HTTP/2 keep-alive and connection settings. */
export interface Http2Options {
  /** Send a PING this often while streams are open (off by default). */
  pingIntervalMs?: number;
  /** Also PING an idle connection (needs `pingIntervalMs`). */
  pingIdleConnection?: boolean;
  /** A PING not answered within this time kills the connection (default 15 s). */
  pingTimeoutMs?: number;
  /** Close the connection after this long without a stream (default 15 min). */
  idleConnectionTimeoutMs?: number;
  /**
   * Most HTTP/2 connections to open when the server's
   * SETTINGS_MAX_CONCURRENT_STREAMS is reached on every one (default 64;
   * the lean transport only). Past that, new streams queue in Node.
   */
  maxConnections?: number;
  /**
   * Streams one connection carries before calls go to another (default 32).
   * Node's HTTP/2 client sends the requests a socket read triggered only
   * after handling the whole read, so on one busy connection client and
   * server take turns; on two they overlap (BENCHMARKS.md, figure 1).
   */
  streamsPerConnection?: number;
  /** Most connections opened for that spreading (default 4; 1 turns it off). */
  spreadConnections?: number;
}

// Before the server's SETTINGS arrive Node assumes 100 concurrent streams
// (and queues beyond); afterwards the server's value, or unlimited.
const unlimited = 0xffff_ffff;
const noRequestOptions: http2.ClientSessionRequestOptions = {};

/**
 * One HTTP/2 connection of a {@link Http2SessionPool} and the streams on
 * it. Calls open streams with {@link PooledSession.open}, say they heard
 * from the server through `heard` (keep-alive then skips its PING), and
 * call {@link PooledSession.release} when their stream closes.
 */
export class PooledSession {
  active = 0;
  /** Set by calls when response bytes arrive; cleared by each keep-alive tick. */
  heard = false;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS arrived. */
  limit = unlimited;
  settled = false;
  /** GOAWAY received (or the pool gave up on it): no new streams here. */
  draining = false;
  private idleSince = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pingDeadline: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly session: http2.ClientHttp2Session,
    readonly pool: Http2SessionPool,
  ) {
    (session as SessionWithEntry)[kEntry] = this;
    // Every session keeps an "error" listener for its whole life: Node
    // throws an error emitted with no listener as an uncaught exception,
    // and a destroyed session (unanswered PING, reset socket) emits one
    // after its calls have failed on their own.
    session.on("error", ignore);
    session.on("close", onSessionClose);
    session.on("goaway", onSessionGoaway);
    session.on("remoteSettings", onRemoteSettings);
    const { pingIntervalMs } = pool.options;
    if (pingIntervalMs > 0 && pingIntervalMs <= maxTimer) {
      this.pingTimer = setInterval(onPingTick, pingIntervalMs, this).unref();
    }
    // Idle until the first stream: nothing keeps the process alive for it.
    session.unref();
    this.idleSince = Date.now();
    this.armIdleTimer(pool.options.idleConnectionTimeoutMs);
  }

  /** Usable for new streams. */
  get usable(): boolean {
    return !this.draining && !this.session.closed && !this.session.destroyed;
  }

  /** Open a stream (Node copies `headers` at once, so callers may reuse the object). */
  open(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const stream = this.session.request(headers, noRequestOptions);
    if (this.active++ === 0) this.session.ref();
    return stream;
  }

  /** A stream opened by {@link PooledSession.open} closed. */
  release(): void {
    if (--this.active > 0) return;
    this.active = 0;
    if (this.session.destroyed) return;
    this.session.unref();
    this.idleSince = Date.now();
    if (this.draining) {
      this.session.close();
      return;
    }
    if (this.idleTimer === undefined) this.armIdleTimer(this.pool.options.idleConnectionTimeoutMs);
  }

  /** Close at once, failing the streams on it with `reason`. */
  destroy(reason: Error): void {
    this.stopTimers();
    if (!this.session.destroyed) this.session.destroy(reason, http2.constants.NGHTTP2_CANCEL);
  }

  /** @internal */
  onIdleTimer(): void {
    this.idleTimer = undefined;
    if (this.active > 0 || this.session.destroyed) return;
    const idleMs = this.pool.options.idleConnectionTimeoutMs;
    const left = idleMs - (Date.now() - this.idleSince);
    if (left > 0) {
      this.armIdleTimer(left);
      return;
    }
    this.draining = true;
    this.session.close();
  }

  /** @internal */
  onPingTick(): void {
    if (this.pingDeadline !== undefined || this.session.connecting || this.session.destroyed) {
      return;
    }
    if (this.active === 0 && !this.pool.options.pingIdleConnection) return;
    if (this.heard) {
      // Bytes arrived during the last interval: the connection is alive.
      this.heard = false;
      return;
    }
    const timeoutMs = this.pool.options.pingTimeoutMs;
    this.pingDeadline = setTimeout(onPingTimeout, timeoutMs, this).unref();
    try {
      this.session.ping(onPingAnswer.bind(this));
    } catch {
      // Too many PINGs outstanding or the session is closing: the deadline stands.
    }
  }

  /** @internal */
  onPingAnswer(err: Error | null): void {
    if (err !== null) return; // cancelled because the session went away
    clearTimeout(this.pingDeadline);
    this.pingDeadline = undefined;
  }

  /** @internal */
  onPingTimeout(): void {
    this.pingDeadline = undefined;
    this.destroy(
      new ConnectError("PING timed out: the server stopped answering", Code.Unavailable),
    );
  }

  /** @internal */
  onClose(): void {
    this.stopTimers();
    this.pool.forget(this);
  }

  /** @internal */
  onGoaway(): void {
    // Node closes the session itself (or destroys it for an error code);
    // streams already open finish, new ones go to a new connection.
    this.draining = true;
  }

  private armIdleTimer(ms: number): void {
    if (!(ms > 0 && ms <= maxTimer)) return;
    this.idleTimer = setTimeout(onIdleTimer, ms, this).unref();
  }

  private stopTimers(): void {
    clearTimeout(this.idleTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pingDeadline);
    this.idleTimer = undefined;
    this.pingTimer = undefined;
    this.pingDeadline = undefined;
  }
}

interface PoolOptions {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  pingIdleConnection: boolean;
  idleConnectionTimeoutMs: number;
  maxConnections: number;
  streamsPerConnection: number;
  spreadConnections: number;
}

/**
 * The HTTP/2 connections of one transport: one while calls are few,
 * opened on the first call and again whenever the last one closed, was
 * destroyed or got a GOAWAY. Once every connection carries
 * `streamsPerConnection` streams, calls spread onto another (up to
 * `spreadConnections`), so client and server overlap instead of taking
 * turns; calls with the same affinity stay together. A connection that
 * holds as many streams as the server allows gets a sibling (up to
 * `maxConnections`), so long-lived watches never starve unary calls.
 * `close()` destroys them all and refuses new calls.
 */
export class Http2SessionPool {
  readonly options: PoolOptions;
  private readonly sessions: PooledSession[] = [];
  /** Calls with the same affinity go to the same connection while it has room. */
  private readonly pinned = new WeakMap<object, PooledSession>();
  private closedReason: ConnectError | undefined;
  /**
   * The stream limit the server last announced on any connection: a new
   * connection still connecting is assumed to get the same. Unknown at
   * first, when streams pile onto the first connection and Node queues
   * them until the server's SETTINGS arrive.
   */
  knownLimit = Number.POSITIVE_INFINITY;

  constructor(
    /** The origin, e.g. `https://flame:8080`. */
    readonly authority: string,
    /** The base URL as the user gave it, for messages. */
    private readonly baseUrl: string,
    http2Options: Http2Options,
    private readonly connectOptions: http2.SecureClientSessionOptions,
  ) {
    this.options = {
      pingIntervalMs: http2Options.pingIntervalMs ?? Number.POSITIVE_INFINITY,
      pingTimeoutMs: http2Options.pingTimeoutMs ?? 15_000,
      pingIdleConnection: http2Options.pingIdleConnection ?? false,
      idleConnectionTimeoutMs: http2Options.idleConnectionTimeoutMs ?? 15 * 60_000,
      maxConnections: Math.max(1, http2Options.maxConnections ?? 64),
      streamsPerConnection: Math.max(1, http2Options.streamsPerConnection ?? 32),
      spreadConnections: Math.max(1, http2Options.spreadConnections ?? 4),
    };
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** How many connections are open (for tests). */
  get size(): number {
    return this.sessions.length;
  }

  /**
   * A connection with room for one more stream. Throws a `ConnectError`
   * (FailedPrecondition) once the pool is closed.
   */
  pick(affinity?: object): PooledSession {
    if (this.closedReason !== undefined) {
      throw new ConnectError(
        `the connection to ${this.baseUrl} is closed`,
        Code.FailedPrecondition,
      );
    }
    if (affinity === undefined) return this.choose();
    const pinned = this.pinned.get(affinity);
    if (pinned?.usable && pinned.active < this.limitOf(pinned)) return pinned;
    const entry = this.choose();
    this.pinned.set(affinity, entry);
    return entry;
  }

  /** The server's stream limit on `entry`, or the last one seen while it connects. */
  private limitOf(entry: PooledSession): number {
    return entry.settled ? entry.limit : this.knownLimit;
  }

  private choose(): PooledSession {
    const { streamsPerConnection, spreadConnections, maxConnections } = this.options;
    let usable = 0;
    // The least busy connection with room under the server's limit, and the least busy of all.
    let roomy: PooledSession | undefined;
    let leastBusy: PooledSession | undefined;
    for (const entry of this.sessions) {
      if (!entry.usable) continue;
      usable++;
      const room = entry.active < this.limitOf(entry);
      if (room && entry.active < streamsPerConnection) return entry;
      if (room && (roomy === undefined || entry.active < roomy.active)) roomy = entry;
      if (leastBusy === undefined || entry.active < leastBusy.active) leastBusy = entry;
    }
    // Every connection is past its share: spread onto a new one, a few at most.
    if (usable < Math.min(spreadConnections, maxConnections)) return this.connect();
    if (roomy !== undefined) return roomy;
    if (leastBusy !== undefined && usable >= maxConnections) return leastBusy;
    return this.connect();
  }

  /** Close every connection (failing calls on them with Canceled) and refuse new calls. */
  close(): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = new ConnectError(
      `the connection to ${this.baseUrl} was closed`,
      Code.Canceled,
    );
    for (const entry of this.sessions.slice()) entry.destroy(this.closedReason);
    this.sessions.length = 0;
  }

  /** @internal A connection closed: drop it. */
  forget(entry: PooledSession): void {
    const i = this.sessions.indexOf(entry);
    if (i !== -1) this.sessions.splice(i, 1);
  }

  private connect(): PooledSession {
    const session = http2.connect(this.authority, this.connectOptions);
    const entry = new PooledSession(session, this);
    this.sessions.push(entry);
    return entry;
  }
}

const kEntry = Symbol("flame.pooledSession");
type SessionWithEntry = http2.ClientHttp2Session & { [kEntry]?: PooledSession };
const maxTimer = 0x7fff_ffff;

function ignore(): void {}

// Listeners shared by every session: `this` is the session, so no
// closures are made per connection.
function entryOf(session: http2.ClientHttp2Session): PooledSession | undefined {
  return (session as SessionWithEntry)[kEntry];
}
function onSessionClose(this: http2.ClientHttp2Session): void {
  entryOf(this)?.onClose();
}
function onSessionGoaway(this: http2.ClientHttp2Session): void {
  entryOf(this)?.onGoaway();
}
function onRemoteSettings(this: http2.ClientHttp2Session, settings: http2.Settings): void {
  const entry = entryOf(this);
  if (entry === undefined) return;
  entry.settled = true;
  entry.limit = settings.maxConcurrentStreams ?? unlimited;
  entry.pool.knownLimit = entry.limit;
}
function onPingTick(entry: PooledSession): void {
  entry.onPingTick();
}
function onPingTimeout(entry: PooledSession): void {
  entry.onPingTimeout();
}
function onIdleTimer(entry: PooledSession): void {
  entry.onIdleTimer();
}
function onPingAnswer(this: PooledSession, err: Error | null): void {
  this.onPingAnswer(err);
}
