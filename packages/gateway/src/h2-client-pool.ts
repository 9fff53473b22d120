import {
  defaultKeepAlive,
  H2ClientConnection,
  type H2ConnectionEvents,
  type KeepAlive,
} from "./h2-client-connection.js";
import { connectUpstreamSocket } from "./upstream-socket.js";

/**
 * Streams a connection takes before the next call opens another: the
 * upstream (Node's HTTP/2 server, as in the emulator, and many others)
 * answers one connection's requests a read at a time, so calls in flight
 * overlap better spread over a few connections.
 */
const streamsPerConnection = 32;
/** How often connections beyond the first are checked for idleness, and closed if idle. */
const idleCheckMs = 30_000;

/**
 * Upstream connections that calls share (the gRPC-Web relay has one pool,
 * the byte proxy another): a call takes the first connection with room,
 * and a new one is opened when none has. A connection that fails or
 * receives GOAWAY leaves the pool (its calls are told); later calls go to
 * the others or to a new one.
 */
export class H2ClientPool<Plan> {
  readonly #connections: H2ClientConnection<Plan>[] = [];
  #opening: Promise<H2ClientConnection<Plan>> | undefined;
  #closed = false;
  readonly #idleCheck: NodeJS.Timeout;
  /** Connections that had no stream at the last check. */
  #idleSince = new Set<H2ClientConnection<Plan>>();

  constructor(
    private readonly url: URL,
    private readonly ca: string | undefined,
    private readonly reads: Omit<H2ConnectionEvents, "onClosed">,
    private readonly keepAlive: KeepAlive = defaultKeepAlive,
  ) {
    this.#idleCheck = setInterval(() => this.#closeIdle(), idleCheckMs);
    this.#idleCheck.unref();
  }

  /** Open connections. */
  get size(): number {
    return this.#connections.length;
  }

  /** A connection with room for one more stream now, or the promise of one. */
  connection(): H2ClientConnection<Plan> | Promise<H2ClientConnection<Plan>> {
    for (const connection of this.#connections) {
      if (connection.hasRoomUnder(streamsPerConnection)) return connection;
    }
    if (this.#closed) return Promise.reject(new Error("the gateway is closing"));
    // Calls arriving while a connection opens wait for it, then choose again.
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening.then(() => this.connection());
  }

  /** Gathers each connection's writes until `release()` (a client read's frames go in one write). */
  hold(): void {
    for (const connection of this.#connections) connection.hold();
  }

  release(): void {
    for (const connection of this.#connections) connection.release();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#idleCheck);
    for (const connection of [...this.#connections]) connection.close();
    this.#connections.length = 0;
  }

  async #open(): Promise<H2ClientConnection<Plan>> {
    const socket = await connectUpstreamSocket(this.url, this.ca);
    if (this.#closed) {
      socket.destroy();
      throw new Error("the gateway is closing");
    }
    const connection: H2ClientConnection<Plan> = new H2ClientConnection(
      socket,
      { ...this.reads, onClosed: () => this.#forget(connection) },
      this.keepAlive,
    );
    // Lent only once its SETTINGS are in: before them the upstream's stream
    // limit is unknown, and the calls waiting for the connection would all
    // open streams on it past that limit.
    await connection.settled;
    if (this.#closed || !connection.usable) {
      connection.close();
      throw new Error(this.#closed ? "the gateway is closing" : "the upstream connection closed");
    }
    this.#connections.push(connection);
    return connection;
  }

  #forget(connection: H2ClientConnection<Plan>): void {
    const at = this.#connections.indexOf(connection);
    if (at >= 0) this.#connections.splice(at, 1);
    this.#idleSince.delete(connection);
  }

  /** Closes connections beyond the first that have had no stream for a whole check period. */
  #closeIdle(): void {
    const idle = new Set<H2ClientConnection<Plan>>();
    for (const [index, connection] of this.#connections.entries()) {
      if (index === 0 || connection.openStreams > 0) continue;
      if (this.#idleSince.has(connection)) connection.close();
      else idle.add(connection);
    }
    this.#idleSince = idle;
  }
}
