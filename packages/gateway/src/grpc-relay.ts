import type * as net from "node:net";
import type { CallGuard } from "./call-guard.js";
import type { FastPath } from "./fast-path.js";
import type { GatewayStats } from "./gateway-stats.js";
import { clientPreface, FrameFlag, FrameReader, FrameType, headersFragment } from "./h2-frame.js";
import { firstValue, HeaderBlockDecoder, headerObjectOf } from "./header-block.js";
import type { GatewayLogger } from "./logger.js";
import { maxTableSize, RelayConnection } from "./relay-connection.js";
import { connectUpstreamSocket } from "./upstream-socket.js";

export interface GrpcRelayDeps {
  fastPath: FastPath;
  guard: CallGuard;
  logger: GatewayLogger;
  stats: GatewayStats;
  maxMessageBytes: number;
  /** `http://host:port` or `https://host:port`. */
  upstream: URL;
  /** CA for an https upstream. */
  ca: string | undefined;
}

/** How long a new connection may take to send its first request before Node's server takes it. */
const firstRequestWaitMs = 100;
/** Bytes a connection may send before its first request is whole. */
const maxSniffBytes = 256 * 1024;

/**
 * The gRPC relay: HTTP/2 gRPC clients' connections carried frame by frame
 * to a connection of their own to the upstream, instead of through Node's
 * HTTP/2 server and client (whose two stream lifecycles per call cost
 * several times the hop itself).
 *
 * A new HTTP/2 connection is offered here once its preface is seen. The
 * relay waits for its first request; when that is a binary gRPC call to a
 * Frontend method and the upstream is reachable, the connection is relayed
 * from then on. Otherwise (gRPC-Web or Connect over HTTP/2, no request in
 * time, upstream down) it goes to Node's server with every byte read so
 * far, and is served exactly as without the relay.
 *
 * A relayed connection keeps the gateway's rules: every request's header
 * block is decoded and the origin, bearer token, method allowlist, message
 * size limit and deadline apply to each call as on the other paths. Header
 * blocks are re-encoded without the dynamic table in both directions (so
 * the gateway can drop or answer calls itself without desynchronising
 * HPACK state); DATA, PING, WINDOW_UPDATE and GOAWAY frames pass through
 * as they are, and SETTINGS with only the HPACK table size capped, so flow
 * control stays end to end.
 */
export class GrpcRelay {
  readonly #connections = new Set<RelayConnection>();
  readonly #sniffing = new Set<net.Socket>();

  constructor(readonly deps: GrpcRelayDeps) {}

  /** Client connections being relayed right now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Takes an HTTP/2 connection whose first bytes (`head`, the preface or
   * part of it) were already read. `decline` hands it, with every byte read,
   * to Node's HTTP/2 server.
   */
  offer(socket: net.Socket, head: Buffer, decline: (bytes: Buffer) => void): void {
    this.#sniffing.add(socket);
    let seen = head;
    let decided = false;
    const decide = (relay: boolean) => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      const handOver = () => {
        socket.off("error", onGone);
        socket.off("close", onGone);
        this.#sniffing.delete(socket);
        return !socket.destroyed;
      };
      if (!relay) {
        if (handOver()) decline(seen);
        return;
      }
      socket.pause();
      connectUpstreamSocket(this.deps.upstream, this.deps.ca).then(
        (upstream) => {
          if (!handOver()) {
            upstream.destroy();
            return;
          }
          this.#connections.add(
            new RelayConnection(
              this.deps,
              (c) => this.#connections.delete(c),
              socket,
              upstream,
              seen,
            ),
          );
        },
        (e: unknown) => {
          this.deps.logger.debug?.("gRPC relay: upstream unreachable, Node's server takes over", {
            error: e instanceof Error ? e.message : String(e),
          });
          if (handOver()) decline(seen);
        },
      );
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const verdict = this.#firstRequestVerdict(seen);
      if (verdict !== undefined) decide(verdict);
    };
    const onGone = () => {
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      this.#sniffing.delete(socket);
      socket.destroy();
    };
    const timer = setTimeout(() => decide(false), firstRequestWaitMs);
    socket.on("data", onData);
    socket.on("error", onGone);
    socket.on("close", onGone);
    const verdict = this.#firstRequestVerdict(seen);
    if (verdict !== undefined) decide(verdict);
  }

  /** Ends every relayed call with Unavailable and closes its connections. */
  close(): void {
    for (const socket of this.#sniffing) socket.destroy();
    this.#sniffing.clear();
    for (const connection of this.#connections) connection.close("the gateway is closing");
  }

  /**
   * True when the connection's first request is one the relay takes, false
   * when it is not (or the bytes are not HTTP/2 as expected), undefined
   * while the first request is still incomplete.
   */
  #firstRequestVerdict(bytes: Buffer): boolean | undefined {
    if (bytes.length < clientPreface.length) return undefined;
    if (!bytes.subarray(0, clientPreface.length).equals(clientPreface)) return false;
    const frames = new FrameReader().push(bytes.subarray(clientPreface.length));
    const fragments: Buffer[] = [];
    for (const frame of frames) {
      if (fragments.length === 0) {
        if (frame.type !== FrameType.headers) {
          // Only connection-level set-up may come before the first request.
          if (frame.streamId !== 0) return false;
          continue;
        }
        const fragment = headersFragment(frame);
        if (fragment === undefined) return false;
        fragments.push(fragment);
      } else {
        if (frame.type !== FrameType.continuation) return false;
        fragments.push(frame.payload);
      }
      if (frame.flags & FrameFlag.endHeaders) {
        try {
          const { fields } = new HeaderBlockDecoder(maxTableSize).decode(Buffer.concat(fragments));
          const headers = headerObjectOf(fields);
          const route = this.deps.fastPath.route(
            firstValue(headers[":method"]),
            firstValue(headers[":path"]),
            headers,
            false,
          );
          return route !== undefined && !route.web;
        } catch {
          return false;
        }
      }
    }
    return bytes.length > maxSniffBytes ? false : undefined;
  }
}
