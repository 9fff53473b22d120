import * as net from "node:net";

/**
 * A TCP proxy in front of a server that the tests steer:
 * - `pass` (default): bytes flow both ways;
 * - `hold`: requests still reach the server, but its answers are swallowed,
 *   so every call in flight hangs until the test resets the connection;
 * - `reset()`: every connection is cut with a TCP RST;
 * - `stop()`/`start()`: stop listening (refused) and listen again on the same port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private holding = false;
  port = 0;
  /** Connections accepted since start. */
  accepted = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = "127.0.0.1",
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Swallow the server's answers from now on (true) or let them through again (false). */
  hold(on: boolean): void {
    this.holding = on;
  }

  /** Cuts every open connection with a RST, as a dying middlebox would. */
  reset(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Stops listening and cuts every connection: new calls are refused. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.reset();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.targetPort, this.targetHost);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on("error", drop);
      s.on("close", drop);
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (!this.holding) client.write(chunk);
    });
  }
}

/**
 * A TCP server that accepts connections and never says a word: no HTTP/2
 * preface, no SETTINGS, nothing. A client that waits for an answer from
 * it waits forever unless a deadline fires.
 */
export class SilentServer {
  private readonly server = net.createServer((s) => {
    this.sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => this.sockets.delete(s));
    // Read and discard, so the client's writes never block.
    s.resume();
  });
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get accepted(): number {
    return this.sockets.size;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
