import type * as net from "node:net";
import type { CallGuard } from "./call-guard.js";
import type { CorsPolicy } from "./cors.js";
import type { FastPath } from "./fast-path.js";
import type { GatewayStats } from "./gateway-stats.js";
import { H2ClientPool } from "./h2-client-pool.js";
import { RequestHeadReader } from "./http1-request-head.js";
import type { GatewayLogger } from "./logger.js";
import { WriteBatch } from "./outbox.js";
import type { RequestPlan, ResponsePlan } from "./web-relay-call.js";
import { WebRelayConnection, type WebRelayShared } from "./web-relay-connection.js";

export interface GrpcWebRelayDeps {
  fastPath: FastPath;
  guard: CallGuard;
  cors: CorsPolicy;
  logger: GatewayLogger;
  stats: GatewayStats;
  maxMessageBytes: number;
  /** `http://host:port` or `https://host:port`. */
  upstream: URL;
  /** CA for an https upstream. */
  ca: string | undefined;
}

/**
 * The gRPC-Web relay: browsers' gRPC-Web calls over HTTP/1.1 translated
 * to HTTP/2 gRPC by the gateway itself, instead of through Node's HTTP/1.1
 * server and HTTP/2 client (whose request, response and stream objects per
 * call cost about twice the hop).
 *
 * Every HTTP/1.1 connection (cleartext, or TLS without h2) is offered here.
 * Its requests are read one by one: binary gRPC-Web calls to a Frontend
 * method become streams on the relay's own HTTP/2 connections to the
 * upstream (shared by all its calls, a few dozen streams each), and CORS
 * preflights are answered. At the first request of any other kind, or in
 * any form but the plainest (see `readRequestHead`), Node's HTTP/1.1 server
 * takes the connection over with every byte not yet served, and serves it
 * exactly as without the relay.
 *
 * The gateway's rules hold as on the other paths: origin, bearer token (not
 * forwarded), method allowlist, deadline, and the message size limit both
 * ways, checked before anything goes upstream.
 */
export class GrpcWebRelay {
  readonly #connections = new Set<WebRelayConnection>();
  readonly #shared: WebRelayShared;

  constructor(readonly deps: GrpcWebRelayDeps) {
    const batch = new WriteBatch();
    this.#shared = {
      // A page's heads repeat across its connections too.
      heads: new RequestHeadReader<RequestPlan>(),
      upstream: new H2ClientPool<ResponsePlan>(deps.upstream, deps.ca, {
        beforeRead: () => batch.begin(),
        afterRead: () => batch.end(),
      }),
      batch,
    };
  }

  /** Client connections served by the relay right now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** The relay's connections to the upstream, shared by its calls. */
  get upstreamConnections(): number {
    return this.#shared.upstream.size;
  }

  /**
   * Takes an HTTP/1.1 connection whose first bytes (`head`) were already
   * read. `decline` hands it, with the bytes not yet served, to Node's
   * HTTP/1.1 server.
   */
  offer(socket: net.Socket, head: Buffer, decline: (bytes: Buffer) => void): void {
    const connection = new WebRelayConnection(this.deps, this.#shared, socket, head, decline, (c) =>
      this.#connections.delete(c),
    );
    if (!connection.gone) this.#connections.add(connection);
  }

  /** Ends every relayed call with Unavailable and closes the connections. */
  close(): void {
    for (const connection of [...this.#connections]) connection.close("the gateway is closing");
    this.#shared.upstream.close();
  }
}
