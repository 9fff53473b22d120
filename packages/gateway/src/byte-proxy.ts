import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { Code } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import { type CallGuard, headerReaderOf } from "./call-guard.js";
import { CallLifetime } from "./call-lifetime.js";
import { logCallDone, logClientCancelled } from "./call-log.js";
import type { CorsPolicy } from "./cors.js";
import type { Downstream, DownstreamListener } from "./downstream.js";
import type { FastPathRoute } from "./fast-path.js";
import { copyResponseHeaders, upstreamRequestFields } from "./forwarded-headers.js";
import {
  FrameSizeGuard,
  requestFrameFlags,
  responseFrameFlags,
  violationCode,
} from "./frame-size-guard.js";
import type { GatewayStats } from "./gateway-stats.js";
import { encodeGrpcMessage, statusOfUnfinishedResponse } from "./grpc-status.js";
import { encodeTrailerFrame, upstreamContentTypeForWeb } from "./grpc-web-framing.js";
import type { StreamAbort } from "./h2-client-connection.js";
import { H2ClientPool } from "./h2-client-pool.js";
import {
  type DecodedBlock,
  encodeHeaderBlock,
  hasMalformedField,
  headerObjectOf,
} from "./header-block.js";
import type { GatewayLogger } from "./logger.js";
import { UpstreamRequest, type UpstreamRequestOwner } from "./upstream-request.js";

export interface ByteProxyDeps {
  /** `http://host:port` or `https://host:port`. */
  upstream: URL;
  /** CA for an https upstream. */
  ca: string | undefined;
  guard: CallGuard;
  cors: CorsPolicy;
  logger: GatewayLogger;
  stats: GatewayStats;
  maxMessageBytes: number;
}

/**
 * Forwards binary gRPC and gRPC-Web calls to the upstream as bytes: the
 * request frames and the response frames pass through untouched (only
 * their 5-byte headers are read, for the size limit), gRPC headers and
 * trailers are relayed, and for gRPC-Web the upstream's trailers become a
 * trailer frame at the end of the body. No message is decoded.
 *
 * The same checks as on the decoding path run first (origin, bearer token,
 * method allowlist), and the first request frame's size is checked, before
 * anything is sent upstream.
 *
 * Each call is a stream on the proxy's own HTTP/2 connections to the
 * upstream (`H2ClientPool`, as the gRPC-Web relay's), not on `node:http2`'s
 * client: a client stream there costs about as much gateway CPU as the
 * server stream the call arrived on.
 */
export class ByteProxy {
  readonly #calls = new Set<ProxiedCall>();
  readonly pool: H2ClientPool<UpstreamAnswer>;

  constructor(readonly deps: ByteProxyDeps) {
    this.pool = new H2ClientPool<UpstreamAnswer>(deps.upstream, deps.ca, {});
  }

  handle(route: FastPathRoute, downstream: Downstream): void {
    const call = new ProxiedCall(this, route, downstream);
    this.#calls.add(call);
    call.start();
  }

  /** Ends every open call and cancels its upstream stream (gateway shutdown). */
  close(): void {
    for (const call of this.#calls) call.fail(Code.Unavailable, "the gateway is closing");
    this.pool.close();
  }

  forget(call: ProxiedCall): void {
    this.#calls.delete(call);
  }
}

/** What an upstream header block means here (worked out once per distinct block). */
interface UpstreamAnswer {
  headers: IncomingHttpHeaders;
  /** A field Node's server would refuse to send on (see `hasMalformedField`). */
  malformed: boolean;
}

class ProxiedCall implements DownstreamListener, UpstreamRequestOwner<UpstreamAnswer> {
  readonly #proxy: ByteProxy;
  readonly #route: FastPathRoute;
  readonly #down: Downstream;
  readonly #requestGuard: FrameSizeGuard;
  readonly #responseGuard: FrameSizeGuard;
  readonly #started = Date.now();
  readonly #upstream: UpstreamRequest<UpstreamAnswer>;
  #done = false;
  #lifetime: CallLifetime | undefined;
  /** HTTP status of the upstream response (0 until it comes); not 200 means no gRPC answer. */
  #status = 0;
  /** Pauses of the client's side in force (the upstream request's). */
  #pauses = 0;

  constructor(proxy: ByteProxy, route: FastPathRoute, down: Downstream) {
    this.#proxy = proxy;
    this.#route = route;
    this.#down = down;
    const max = proxy.deps.maxMessageBytes;
    this.#requestGuard = new FrameSizeGuard(max, requestFrameFlags);
    this.#responseGuard = new FrameSizeGuard(max, responseFrameFlags);
    this.#upstream = new UpstreamRequest<UpstreamAnswer>(() => proxy.pool.connection(), this, {
      logger: proxy.deps.logger,
      method: route.method.name,
    });
  }

  start(): void {
    const deps = this.#proxy.deps;
    const headers = this.#down.headers;
    const refused = admitCall(
      deps,
      this.#route.method.name,
      headerReaderOf(headers),
      this.#route.web ? "grpc_web" : "grpc",
    );
    // Listen even when refusing, so a client gone early is noticed.
    this.#down.listen(this);
    if (refused !== undefined) {
      this.#finishWithError(refused.code, refused.rawMessage);
      this.#cleanup();
      return;
    }
    this.#lifetime = new CallLifetime(deps.stats, this.#route, () =>
      this.fail(Code.DeadlineExceeded, "the operation timed out"),
    );
  }

  // --- client side ---------------------------------------------------------

  onClientData(chunk: Buffer): void {
    if (this.#done) return;
    const bytes = this.#requestGuard.accept(chunk);
    const violation = this.#requestGuard.violation;
    if (violation !== undefined) {
      this.fail(violationCode(violation), violation);
      return;
    }
    this.#upstream.write(bytes, false);
    // The first frame header has passed the size check: now the call may go upstream.
    if (this.#requestGuard.frames > 0) this.#upstream.open();
  }

  onClientEnd(): void {
    if (this.#done) return;
    this.#upstream.write(this.#requestGuard.flush(), true);
    this.#upstream.open();
  }

  onClientClose(): void {
    if (this.#done) return;
    // The client reset the stream or went away before the response ended.
    this.#done = true;
    this.#upstream.cancel();
    logClientCancelled(this.#proxy.deps.logger, this.#route.method.name, this.#started);
    this.#cleanup();
  }

  onClientDrain(): void {
    this.#upstream.clientDrained();
  }

  // --- upstream side -------------------------------------------------------

  headerBlock(): Buffer {
    const deps = this.#proxy.deps;
    const { web, contentType } = this.#route;
    const fields = upstreamRequestFields(this.#down.headers, {
      upstream: deps.upstream,
      route: this.#route,
      contentType: web ? upstreamContentTypeForWeb(contentType) : contentType,
      dropAuthorization: deps.guard.consumesAuthorization,
    });
    return encodeHeaderBlock(fields);
  }

  pauseClient(): void {
    if (this.#pauses++ === 0) this.#down.pause();
  }

  resumeClient(): void {
    if (--this.#pauses === 0) this.#down.resume();
  }

  unavailable(message: string): void {
    this.fail(Code.Unavailable, message, false);
  }

  onHeaders(block: DecodedBlock<UpstreamAnswer>, endStream: boolean): void {
    if (this.#done) return;
    block.derived ??= {
      headers: headerObjectOf(block.fields),
      malformed: hasMalformedField(block.fields),
    };
    const { headers, malformed } = block.derived;
    if (malformed) {
      this.fail(Code.Internal, "protocol error: malformed response header field");
      return;
    }
    const first = this.#status === 0;
    if (first) {
      const status = Number(headers[":status"]);
      if (status >= 100 && status < 200 && !endStream) return; // informational
      this.#status = status;
      this.#upstream.answered();
    }
    if (endStream) {
      // Trailers, or a trailers-only answer (the status in the headers).
      this.#onUpstreamEnd(first || this.#status === 200 ? headers : undefined);
      return;
    }
    // Not a gRPC answer (a proxy's error page): the status comes from the HTTP status at the end.
    if (this.#status !== 200 || !first) return;
    const out: OutgoingHttpHeaders = { ":status": 200 };
    if (this.#route.web) {
      out["content-type"] = this.#route.contentType;
      copyResponseHeaders(headers, out, false);
      this.#grantCors(out);
    } else {
      out["content-type"] = headers["content-type"] ?? "application/grpc";
      copyResponseHeaders(headers, out, true);
    }
    this.#down.respond(out, false);
  }

  onData(data: Buffer, endStream: boolean): void {
    const upstream = this.#upstream;
    if (this.#done || this.#status !== 200) {
      upstream.consumed(data.length);
      if (endStream) this.#onUpstreamEnd(undefined);
      return;
    }
    const bytes = this.#responseGuard.accept(data);
    const violation = this.#responseGuard.violation;
    if (violation !== undefined) {
      upstream.consumed(data.length);
      this.fail(violationCode(violation), violation);
      return;
    }
    const full = bytes.length > 0 && !this.#down.write(bytes);
    upstream.delivered(data.length, full);
    if (endStream) this.#onUpstreamEnd(undefined);
  }

  onAbort(reason: StreamAbort): void {
    if (this.#done) return;
    const status = this.#upstream.afterAbort(reason);
    if (status !== undefined) this.fail(status.code, status.message, false);
  }

  /** The upstream's response ended; `trailers` are what it ended with, if gRPC. */
  #onUpstreamEnd(trailers: IncomingHttpHeaders | undefined): void {
    if (this.#done) return;
    if (trailers === undefined || trailers["grpc-status"] === undefined) {
      const status = statusOfUnfinishedResponse(this.#status);
      this.fail(status.code, status.message);
      return;
    }
    const held = this.#responseGuard.flush();
    if (held.length > 0) this.#down.write(held);
    this.#done = true;
    // An answer before the whole request: the rest of it is not wanted.
    this.#upstream.cancel();
    this.#finish(trailers);
    this.#logDone(Number(trailers["grpc-status"]), trailers["grpc-message"]);
    this.#cleanup();
  }

  // --- ending --------------------------------------------------------------

  /** Ends the call with an error the gateway makes, cancelling the upstream stream. */
  fail(code: Code, message: string, cancelUpstream = true): void {
    if (this.#done) return;
    this.#done = true;
    if (cancelUpstream) this.#upstream.cancel();
    this.#finishWithError(code, message);
    // logCallDone takes the message as grpc-message carries it (percent-encoded).
    this.#logDone(code, encodeGrpcMessage(message));
    this.#cleanup();
  }

  #finishWithError(code: Code, message: string): void {
    this.#done = true;
    this.#finish({ "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) });
  }

  /** Sends the status (and trailers) the way the client's protocol carries them. */
  #finish(trailers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
    const down = this.#down;
    if (down.gone) return;
    if (this.#route.web) {
      if (!down.responded) {
        const out: OutgoingHttpHeaders = {
          ":status": 200,
          "content-type": this.#route.contentType,
        };
        this.#grantCors(out);
        down.respond(out, false);
      }
      down.write(encodeTrailerFrame(copyResponseHeaders(trailers, {}, true)));
      down.end();
    } else if (!down.responded) {
      const out: OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc" };
      down.respond(copyResponseHeaders(trailers, out, true), true);
    } else {
      down.end(copyResponseHeaders(trailers, {}, true));
    }
  }

  #grantCors(out: OutgoingHttpHeaders): void {
    this.#proxy.deps.cors.grant(this.#down.headers, {
      setHeader: (name, value) => {
        out[name.toLowerCase()] = value as string | string[];
      },
    });
  }

  #cleanup(): void {
    this.#lifetime?.end();
    this.#upstream.close();
    this.#proxy.forget(this);
  }

  #logDone(code: number, message: unknown): void {
    logCallDone(this.#proxy.deps.logger, this.#route.method.name, code, message, this.#started);
  }
}
