import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { type ClientHttp2Stream, constants } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import { type CallGuard, headerReaderOf } from "./call-guard.js";
import { CallLifetime } from "./call-lifetime.js";
import { logCallDone } from "./call-log.js";
import type { CorsPolicy } from "./cors.js";
import type { Downstream, DownstreamListener } from "./downstream.js";
import type { FastPathRoute } from "./fast-path.js";
import { copyResponseHeaders, upstreamRequestHeaderObject } from "./forwarded-headers.js";
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
import type { GatewayLogger } from "./logger.js";
import type { UpstreamPool } from "./upstream-pool.js";

export interface ByteProxyDeps {
  pool: UpstreamPool;
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
 */
export class ByteProxy {
  readonly #calls = new Set<ProxiedCall>();

  constructor(readonly deps: ByteProxyDeps) {}

  handle(route: FastPathRoute, downstream: Downstream): void {
    const call = new ProxiedCall(this, route, downstream);
    this.#calls.add(call);
    call.start();
  }

  /** Ends every open call and cancels its upstream stream (gateway shutdown). */
  close(): void {
    for (const call of this.#calls) call.fail(Code.Unavailable, "the gateway is closing");
  }

  forget(call: ProxiedCall): void {
    this.#calls.delete(call);
  }
}

class ProxiedCall implements DownstreamListener {
  readonly #proxy: ByteProxy;
  readonly #route: FastPathRoute;
  readonly #down: Downstream;
  readonly #requestGuard: FrameSizeGuard;
  readonly #responseGuard: FrameSizeGuard;
  readonly #started = Date.now();
  #upstream: ClientHttp2Stream | undefined;
  #opening = false;
  /** Request bytes that arrived before the upstream stream existed. */
  #pending: Buffer[] = [];
  #clientEnded = false;
  #done = false;
  #lifetime: CallLifetime | undefined;
  /** HTTP status of the upstream response; not 200 means no gRPC answer. */
  #status = 0;
  #trailers: IncomingHttpHeaders | undefined;
  #upstreamError: Error | undefined;

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
    if (held.length > 0) this.#send(held);
    if (this.#upstream !== undefined) this.#upstream.end();
    else if (!this.#opening) this.#open();
  }

  onClientClose(): void {
    if (this.#done) return;
    // The client reset the stream or went away before the response ended.
    this.#done = true;
    this.#cancelUpstream();
    this.#proxy.deps.logger.debug?.("client cancelled", {
      method: this.#route.method.name,
      ms: Date.now() - this.#started,
    });
    this.#cleanup();
  }

  onClientDrain(): void {
    this.#upstream?.resume();
  }

  #send(bytes: Buffer): void {
    const upstream = this.#upstream;
    if (upstream === undefined) {
      this.#pending.push(bytes);
    } else if (!upstream.write(bytes)) {
      this.#down.pause();
    }
  }

  // --- upstream side -------------------------------------------------------

  #open(): void {
    this.#opening = true;
    this.#down.pause();
    const deps = this.#proxy.deps;
    const { web, contentType, method, grpcTimeout } = this.#route;
    const out = upstreamRequestHeaderObject(this.#down.headers, {
      dropAuthorization: deps.guard.consumesAuthorization,
    });
    out["content-type"] = web ? upstreamContentTypeForWeb(contentType) : contentType;
    out.te = "trailers";
    if (grpcTimeout !== undefined) out["grpc-timeout"] = grpcTimeout;
    deps.pool.request("POST", method.path, out, {}).then(
      (stream) => this.#attach(stream),
      (e: unknown) => {
        const error = ConnectError.from(e);
        this.fail(Code.Unavailable, `upstream unreachable: ${error.rawMessage}`);
      },
    );
  }

  #attach(stream: ClientHttp2Stream): void {
    this.#opening = false;
    if (this.#done) {
      stream.on("error", () => {});
      stream.close(constants.NGHTTP2_CANCEL);
      return;
    }
    this.#upstream = stream;
    stream.on("response", (headers) => this.#onResponse(headers));
    stream.on("data", (chunk: Buffer) => this.#onUpstreamData(stream, chunk));
    stream.on("trailers", (trailers) => {
      this.#trailers = trailers;
    });
    stream.on("end", () => this.#onUpstreamEnd());
    stream.on("close", () => this.#onUpstreamClose(stream));
    stream.on("error", (e: Error) => {
      this.#upstreamError = e;
    });
    stream.on("drain", () => this.#down.resume());
    const pending = this.#pending;
    this.#pending = [];
    if (this.#clientEnded) {
      if (pending.length === 1) stream.end(pending[0]);
      else {
        for (const bytes of pending) stream.write(bytes);
        stream.end();
      }
      return;
    }
    let flowing = true;
    for (const bytes of pending) flowing = stream.write(bytes) && flowing;
    if (flowing) this.#down.resume();
  }

  #onResponse(headers: IncomingHttpHeaders): void {
    if (this.#done) return;
    this.#status = Number(headers[":status"]);
    if (headers["grpc-status"] !== undefined) {
      // Trailers-only: the status is in the headers and the stream ends here.
      this.#trailers = headers;
      return;
    }
    // Not a gRPC answer (a proxy's error page): the status comes from the HTTP status at the end.
    if (this.#status !== 200) return;
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

  #onUpstreamData(stream: ClientHttp2Stream, chunk: Buffer): void {
    if (this.#done || this.#status !== 200) return;
    this.#proxy.deps.pool.notifyResponseByteRead(stream);
    const bytes = this.#responseGuard.accept(chunk);
    if (bytes.length > 0 && !this.#down.write(bytes)) stream.pause();
    const violation = this.#responseGuard.violation;
    if (violation !== undefined) this.fail(violationCode(violation), violation);
  }

  #onUpstreamEnd(): void {
    if (this.#done) return;
    const trailers = this.#trailers;
    if (trailers === undefined || trailers["grpc-status"] === undefined) {
      const status = statusOfUnfinishedResponse(this.#status);
      this.fail(status.code, status.message);
      return;
    }
    const held = this.#responseGuard.flush();
    if (held.length > 0) this.#down.write(held);
    this.#done = true;
    this.#finish(trailers);
    this.#logDone(Number(trailers["grpc-status"]), trailers["grpc-message"]);
    this.#cleanup();
  }

  #onUpstreamClose(stream: ClientHttp2Stream): void {
    if (this.#done) return;
    // Closed without a clean end: reset by the upstream, GOAWAY, connection lost.
    const error = this.#upstreamError as (Error & { code?: unknown }) | undefined;
    const rst = stream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR;
    if (error !== undefined && isConnectionError(error.code)) {
      this.fail(Code.Unavailable, `upstream connection failed: ${error.message}`);
    } else {
      const status = statusOfResetStream(rst);
      this.fail(status.code, status.message);
    }
  }

  #cancelUpstream(): void {
    const upstream = this.#upstream;
    if (upstream !== undefined && !upstream.closed && !upstream.destroyed) {
      upstream.close(constants.NGHTTP2_CANCEL);
    }
  }

  // --- ending --------------------------------------------------------------

  /** Ends the call with an error the gateway makes, cancelling the upstream stream. */
  fail(code: Code, message: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#cancelUpstream();
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
    this.#proxy.forget(this);
  }

  #logDone(code: number, message: unknown): void {
    logCallDone(this.#proxy.deps.logger, this.#route.method.name, code, message, this.#started);
  }
}

/** Node error codes that mean the connection to the upstream broke, not the stream. */
function isConnectionError(code: unknown): boolean {
  return (
    typeof code === "string" &&
    (code.startsWith("E") ||
      code === "ERR_HTTP2_GOAWAY_SESSION" ||
      code === "ERR_HTTP2_SESSION_ERROR" ||
      code === "ERR_HTTP2_INVALID_SESSION" ||
      code === "ERR_HTTP2_PING_CANCEL")
  );
}
