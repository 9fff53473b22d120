import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { Code } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import { type CallGuard, headerReaderOf } from "./call-guard.js";
import { CallLifetime } from "./call-lifetime.js";
import { logCallDone } from "./call-log.js";
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
import {
  encodeGrpcMessage,
  statusOfResetStream,
  statusOfUnfinishedResponse,
} from "./grpc-status.js";
import { encodeTrailerFrame, upstreamContentTypeForWeb } from "./grpc-web-framing.js";
import type {
  H2ClientConnection,
  H2ClientStream,
  H2StreamListener,
  StreamAbort,
} from "./h2-client-connection.js";
import { H2ClientPool } from "./h2-client-pool.js";
import {
  type DecodedBlock,
  encodeHeaderBlock,
  hasMalformedField,
  headerObjectOf,
} from "./header-block.js";
import type { GatewayLogger } from "./logger.js";

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

/** Request bytes waiting for upstream window before the client is paused. */
const maxQueuedRequestBytes = 256 * 1024;
/** Times a call the upstream left unprocessed is sent again, each time on a connection that takes it. */
const maxResends = 2;

class ProxiedCall implements DownstreamListener, H2StreamListener<UpstreamAnswer> {
  readonly #proxy: ByteProxy;
  readonly #route: FastPathRoute;
  readonly #down: Downstream;
  readonly #requestGuard: FrameSizeGuard;
  readonly #responseGuard: FrameSizeGuard;
  readonly #started = Date.now();
  #upstream: H2ClientStream<UpstreamAnswer> | undefined;
  #opening = false;
  /** Request bytes that arrived before the upstream stream existed. */
  #pending: Buffer[] = [];
  /**
   * Request bytes sent upstream, kept until the response begins: if the
   * upstream turns the stream away unprocessed, the call is sent again.
   */
  #sent: Buffer[] = [];
  #resends = 0;
  #clientEnded = false;
  #done = false;
  #lifetime: CallLifetime | undefined;
  /** HTTP status of the upstream response (0 until it comes); not 200 means no gRPC answer. */
  #status = 0;
  /** The client is paused until the stream's queued request bytes go out. */
  #throttled = false;
  /** Response bytes written while the client was not keeping up, owed to the upstream's window. */
  #owed = 0;

  constructor(proxy: ByteProxy, route: FastPathRoute, down: Downstream) {
    this.#proxy = proxy;
    this.#route = route;
    this.#down = down;
    const max = proxy.deps.maxMessageBytes;
    this.#requestGuard = new FrameSizeGuard(max, requestFrameFlags);
    this.#responseGuard = new FrameSizeGuard(max, responseFrameFlags);
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
    if (bytes.length > 0) this.#send(bytes);
    // The first frame header has passed the size check: now the call may go upstream.
    if (this.#upstream === undefined && !this.#opening && this.#requestGuard.frames > 0) {
      this.#open();
    }
  }

  onClientEnd(): void {
    if (this.#done) return;
    this.#clientEnded = true;
    const held = this.#requestGuard.flush();
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      this.#keep(held);
      upstream.write(held, true);
      this.#throttle(upstream);
    } else {
      if (held.length > 0) this.#pending.push(held);
      if (!this.#opening) this.#open();
    }
  }

  onClientClose(): void {
    if (this.#done) return;
    // The client reset the stream or went away before the response ended.
    this.#done = true;
    this.#upstream?.cancel();
    this.#proxy.deps.logger.debug?.("client cancelled", {
      method: this.#route.method.name,
      ms: Date.now() - this.#started,
    });
    this.#cleanup();
  }

  onClientDrain(): void {
    // The client took what it was sent: the upstream may send more.
    const owed = this.#owed;
    this.#owed = 0;
    this.#upstream?.consumed(owed);
  }

  #send(bytes: Buffer): void {
    const upstream = this.#upstream;
    if (upstream === undefined) {
      this.#pending.push(bytes);
    } else {
      this.#keep(bytes);
      upstream.write(bytes, false);
      this.#throttle(upstream);
    }
  }

  /** Keeps request bytes that went upstream while a resend may still need them. */
  #keep(bytes: Buffer): void {
    if (this.#status === 0 && bytes.length > 0) this.#sent.push(bytes);
  }

  /** Pauses the client while request bytes wait for the upstream's window. */
  #throttle(upstream: H2ClientStream<UpstreamAnswer>): void {
    if (this.#throttled || upstream.queuedBytes <= maxQueuedRequestBytes) return;
    this.#throttled = true;
    this.#down.pause();
    upstream.whenFlushed(() => this.#unthrottle());
  }

  /** Lets the client be read again: the bytes went out, or the stream they waited for is gone. */
  #unthrottle(): void {
    if (!this.#throttled) return;
    this.#throttled = false;
    this.#down.resume();
  }

  // --- upstream side -------------------------------------------------------

  #open(): void {
    this.#opening = true;
    // The body waits in the client's stream, not here, until the upstream stream is open.
    this.#down.pause();
    const connection = this.#proxy.pool.connection();
    if (connection instanceof Promise) {
      connection.then(
        (c) => this.#attach(c),
        (e: unknown) => {
          const message = e instanceof Error ? e.message : String(e);
          this.fail(Code.Unavailable, `upstream unreachable: ${message}`);
        },
      );
    } else {
      this.#attach(connection);
    }
  }

  #attach(connection: H2ClientConnection<UpstreamAnswer>): void {
    this.#opening = false;
    if (this.#done) return;
    const deps = this.#proxy.deps;
    const { web, contentType } = this.#route;
    const fields = upstreamRequestFields(this.#down.headers, {
      upstream: deps.upstream,
      route: this.#route,
      contentType: web ? upstreamContentTypeForWeb(contentType) : contentType,
      dropAuthorization: deps.guard.consumesAuthorization,
    });
    const pending = this.#pending;
    this.#pending = [];
    const bodyDone = this.#clientEnded && pending.length === 0;
    // The headers and the body read so far go in one write, and so does the
    // request's end when it comes in the same turn of the event loop (Node's
    // servers report a small request's end just after its data).
    connection.hold();
    let stream: H2ClientStream<UpstreamAnswer>;
    try {
      stream = connection.request(encodeHeaderBlock(fields), bodyDone, this);
      if (!bodyDone) {
        const bytes = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
        this.#keep(bytes);
        stream.write(bytes, this.#clientEnded);
      }
    } catch (e) {
      this.fail(Code.Unavailable, `upstream connection failed: ${(e as Error).message}`);
      return;
    } finally {
      if (this.#clientEnded) connection.release();
      else setImmediate(() => connection.release());
    }
    this.#upstream = stream;
    this.#throttle(stream);
    if (!this.#throttled) this.#down.resume();
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
      this.#sent = []; // the upstream took the call: it is not sent again
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
    const upstream = this.#upstream as H2ClientStream<UpstreamAnswer>;
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
    // Credit goes back once the client took the bytes, so a slow client slows the upstream.
    if (bytes.length > 0 && !this.#down.write(bytes)) this.#owed += data.length;
    else upstream.consumed(data.length);
    if (endStream) this.#onUpstreamEnd(undefined);
  }

  onAbort(reason: StreamAbort): void {
    if (reason.kind === "unprocessed" && this.#resendable()) {
      this.#resend();
      return;
    }
    if (reason.kind === "reset") {
      const status = statusOfResetStream(reason.code);
      this.fail(status.code, status.message, false);
    } else {
      this.fail(Code.Unavailable, `upstream connection failed: ${reason.message}`, false);
    }
  }
  #resendable(): boolean {
    return !this.#done && this.#status === 0 && this.#resends < maxResends;
  }

  /**
   * Sends the call again from the start, on a connection the pool chooses
   * anew: the upstream said it never acted on it (RFC 9113, section 8.7).
   */
  #resend(): void {
    this.#resends++;
    this.#proxy.deps.logger.debug?.("upstream left a call unprocessed; sending it again", {
      method: this.#route.method.name,
    });
    this.#upstream = undefined;
    this.#unthrottle();
    // What was sent, then what had not been sent yet, in order.
    this.#pending = [...this.#sent, ...this.#pending];
    this.#sent = [];
    this.#open();
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
    this.#upstream?.cancel();
    this.#finish(trailers);
    this.#logDone(Number(trailers["grpc-status"]), trailers["grpc-message"]);
    this.#cleanup();
  }

  // --- ending --------------------------------------------------------------

  /** Ends the call with an error the gateway makes, cancelling the upstream stream. */
  fail(code: Code, message: string, cancelUpstream = true): void {
    if (this.#done) return;
    this.#done = true;
    if (cancelUpstream) this.#upstream?.cancel();
    this.#finishWithError(code, message);
    this.#logDone(code, message);
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
    this.#pending = [];
    this.#sent = [];
    this.#unthrottle();
    this.#proxy.forget(this);
  }

  #logDone(code: number, message: unknown): void {
    logCallDone(this.#proxy.deps.logger, this.#route.method.name, code, message, this.#started);
  }
}
