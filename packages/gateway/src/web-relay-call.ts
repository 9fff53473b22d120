import type { IncomingHttpHeaders } from "node:http";
import { Code } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import { headerReaderOf } from "./call-guard.js";
import { CallLifetime } from "./call-lifetime.js";
import { logCallDone, logClientCancelled } from "./call-log.js";
import type { FastPathRoute } from "./fast-path.js";
import { copyResponseHeaders, upstreamRequestFields } from "./forwarded-headers.js";
import {
  FrameSizeGuard,
  requestFrameFlags,
  responseFrameFlags,
  violationCode,
} from "./frame-size-guard.js";
import { encodeGrpcMessage, statusOfUnfinishedResponse } from "./grpc-status.js";
import { encodeTrailerFrame, headerLines, upstreamContentTypeForWeb } from "./grpc-web-framing.js";
import type { H2ClientConnection, StreamAbort } from "./h2-client-connection.js";
import {
  type DecodedBlock,
  encodeHeaderBlock,
  type HeaderField,
  hasMalformedField,
  headerObjectOf,
} from "./header-block.js";
import type { RequestHead } from "./http1-request-head.js";
import { UpstreamRequest, type UpstreamRequestOwner } from "./upstream-request.js";
import type { GrpcWebRelayDeps } from "./web-relay.js";

/** What an upstream header block means for a gRPC-Web client (worked out once per distinct block). */
export interface ResponsePlan {
  /**
   * A field HTTP/1.1 cannot carry as it is (a CR, LF or NUL in a value, a
   * name that is not a token): written out, it would split the response
   * head or the trailer frame into lines of the upstream's choosing.
   */
  malformed: boolean;
  status: number;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  headers: IncomingHttpHeaders;
  /** Header lines for the client's response head, from the upstream's headers. */
  headLines: string | undefined;
  /** The gRPC-Web trailer frame, from the upstream's trailers. */
  trailerFrame: Buffer | undefined;
}

/** What a request head means for the relay (worked out once per distinct head). */
export interface RequestPlan {
  /** Undefined: not a call the relay serves; Node's server takes the connection. */
  forward: ForwardPlan | undefined;
}

/** How a call the relay serves is forwarded and answered. */
export interface ForwardPlan {
  route: FastPathRoute;
  /** The request's HEADERS for the upstream, without the dynamic table. */
  upstreamBlock: Buffer;
  /** CORS header lines for the response head. */
  corsLines: string;
}

export function planRequest(deps: GrpcWebRelayDeps, head: RequestHead): RequestPlan {
  const route = deps.fastPath.route(head.method, head.target, head.headers, true);
  if (route === undefined || !route.web) return { forward: undefined };
  const fields = upstreamRequestFields(head.headers, {
    upstream: deps.upstream,
    route,
    contentType: upstreamContentTypeForWeb(route.contentType),
    dropAuthorization: deps.guard.consumesAuthorization,
  });
  let corsLines = "";
  deps.cors.grant(head.headers, {
    setHeader(name, value) {
      corsLines += `${name}: ${String(value)}\r\n`;
    },
  });
  return { forward: { route, upstreamBlock: encodeHeaderBlock(fields), corsLines } };
}

/** The connection a call lives on (see `WebRelayConnection`). */
export interface WebCallHost {
  readonly deps: GrpcWebRelayDeps;
  writeClient(bytes: Buffer): void;
  /** The client's socket has more buffered than it wants. */
  readonly clientFull: boolean;
  pauseClient(): void;
  resumeClient(): void;
  /** The upstream connection, or the promise of one being opened. */
  upstream(): H2ClientConnection<ResponsePlan> | Promise<H2ClientConnection<ResponsePlan>>;
  /** The response is complete (or the client is gone); `close` ends the connection after it. */
  callDone(call: WebRelayCall, close: boolean): void;
}

/**
 * One gRPC-Web call of an HTTP/1.1 connection, as one HTTP/2 stream to the
 * upstream. The request body (gRPC-Web's binary framing is gRPC's) goes
 * upstream as it is once its first message header passed the size limit;
 * the response's messages come back as they are, and its trailers become
 * the trailer frame at the end of the body. A unary call's response is sent
 * whole with a Content-Length; a stream's goes out chunk by chunk.
 */
export class WebRelayCall implements UpstreamRequestOwner<ResponsePlan> {
  readonly #host: WebCallHost;
  readonly #route: FastPathRoute;
  readonly #plan: ForwardPlan;
  readonly #head: RequestHead;
  readonly #requestGuard: FrameSizeGuard;
  readonly #responseGuard: FrameSizeGuard;
  readonly #started = Date.now();
  readonly #upstream: UpstreamRequest<ResponsePlan>;
  #done = false;
  #lifetime: CallLifetime | undefined;
  #response: ResponsePlan | undefined;
  /** The response head went to the client (chunked from then on). */
  #responded = false;
  /** A unary response's messages, sent with the trailers in one write. */
  #body: Buffer[] = [];
  #bodyBytes = 0;

  constructor(host: WebCallHost, head: RequestHead, plan: ForwardPlan) {
    this.#host = host;
    this.#route = plan.route;
    this.#plan = plan;
    this.#head = head;
    const max = host.deps.maxMessageBytes;
    this.#requestGuard = new FrameSizeGuard(max, requestFrameFlags);
    this.#responseGuard = new FrameSizeGuard(max, responseFrameFlags);
    this.#upstream = new UpstreamRequest<ResponsePlan>(() => host.upstream(), this, {
      logger: host.deps.logger,
      method: plan.route.method.name,
    });
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    const deps = this.#host.deps;
    const refused = admitCall(
      deps,
      this.#route.method.name,
      headerReaderOf(this.#head.headers),
      "grpc_web",
    );
    if (refused !== undefined) {
      this.#done = true;
      this.#finish(errorTrailers(refused.code, refused.rawMessage));
      return;
    }
    this.#lifetime = new CallLifetime(deps.stats, this.#route, () =>
      this.fail(Code.DeadlineExceeded, "the operation timed out"),
    );
    if (this.#head.contentLength === 0) {
      this.#upstream.write(Buffer.alloc(0), true);
      this.#upstream.open();
    }
  }

  /** Request body bytes; `last` when the body (Content-Length) is complete. */
  body(bytes: Buffer, last: boolean): void {
    if (this.#done) return;
    let out = this.#requestGuard.accept(bytes);
    const violation = this.#requestGuard.violation;
    if (violation !== undefined) {
      this.fail(violationCode(violation), violation);
      return;
    }
    if (last) {
      const held = this.#requestGuard.flush();
      if (held.length > 0) out = out.length === 0 ? held : Buffer.concat([out, held]);
    }
    this.#upstream.write(out, last);
    // The first message header has passed the size check: now the call may go upstream.
    if (this.#requestGuard.frames > 0 || last) this.#upstream.open();
  }

  /** The client went away before the response was complete. */
  clientGone(): void {
    if (this.#done) return;
    this.#done = true;
    this.#upstream.cancel();
    logClientCancelled(this.#host.deps.logger, this.#route.method.name, this.#started);
    this.#cleanup();
  }

  /** The client's socket drained: the response bytes it held go back to the upstream's window. */
  clientDrained(): void {
    this.#upstream.clientDrained();
  }

  /** Ends the call with an error the gateway makes, cancelling it upstream. */
  fail(code: Code, message: string, cancelUpstream = true): void {
    if (this.#done) return;
    this.#done = true;
    if (cancelUpstream) this.#upstream.cancel();
    this.#finish(errorTrailers(code, message));
    this.#logDone(code, encodeGrpcMessage(message));
    this.#cleanup();
  }

  // --- upstream ------------------------------------------------------------

  headerBlock(): Buffer {
    return this.#plan.upstreamBlock;
  }

  pauseClient(): void {
    this.#host.pauseClient();
  }

  resumeClient(): void {
    this.#host.resumeClient();
  }

  unavailable(message: string): void {
    this.fail(Code.Unavailable, message, false);
  }

  onHeaders(block: DecodedBlock<ResponsePlan>, endStream: boolean): void {
    if (this.#done) return;
    block.derived ??= planResponse(block.fields);
    const plan = block.derived;
    if (plan.malformed) {
      this.fail(Code.Internal, "protocol error: malformed response header field");
      return;
    }
    const first = this.#response === undefined;
    if (first && plan.status >= 100 && plan.status < 200 && !endStream) return; // informational
    if (first) {
      this.#response = plan;
      this.#upstream.answered();
    }
    if (!endStream) {
      if (first && plan.status === 200 && this.#route.method.serverStreaming) this.#writeHead(true);
      return;
    }
    const status = (this.#response as ResponsePlan).status;
    if (plan.grpcStatus !== undefined && (status === 200 || first)) {
      this.#done = true;
      // An answer before the whole request: the rest of it is not wanted.
      this.#upstream.cancel();
      const held = this.#responseGuard.flush();
      if (held.length > 0) this.#addBody(held);
      this.#finish(
        plan.trailerFrame ?? encodeTrailerFrame(copyResponseHeaders(plan.headers, {}, true)),
      );
      this.#logDone(Number(plan.grpcStatus), plan.grpcMessage);
      this.#cleanup();
    } else {
      // Cancelled too: the upstream's side is over, but a request still being
      // sent would keep the stream (and its connection's slot) open for good.
      this.#failUnfinished(status);
    }
  }

  /** The upstream ended the response without a gRPC status. */
  #failUnfinished(httpStatus: number): void {
    const status = statusOfUnfinishedResponse(httpStatus);
    this.fail(status.code, status.message);
  }

  onData(data: Buffer, endStream: boolean): void {
    const upstream = this.#upstream;
    if (this.#done || this.#response?.status !== 200) {
      upstream.consumed(data.length);
      if (endStream && !this.#done) this.#failUnfinished(this.#response?.status ?? 0);
      return;
    }
    const bytes = this.#responseGuard.accept(data);
    const violation = this.#responseGuard.violation;
    if (violation !== undefined) {
      upstream.consumed(data.length);
      this.fail(violationCode(violation), violation);
      return;
    }
    if (this.#responded) {
      if (bytes.length > 0) this.#host.writeClient(chunk(bytes));
    } else {
      this.#addBody(bytes);
    }
    upstream.delivered(data.length, this.#host.clientFull);
    if (endStream) this.#failUnfinished(200);
  }

  onAbort(reason: StreamAbort): void {
    if (this.#done) return;
    const status = this.#upstream.afterAbort(reason);
    if (status !== undefined) this.fail(status.code, status.message, false);
  }

  // --- the client's response -----------------------------------------------

  /**
   * Keeps a unary response's bytes for one write at the end. A response
   * larger than one message may be (an upstream not keeping to unary) goes
   * out chunked instead, so nothing grows without bound.
   */
  #addBody(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#responded) {
      this.#host.writeClient(chunk(bytes));
      return;
    }
    this.#body.push(bytes);
    this.#bodyBytes += bytes.length;
    if (this.#bodyBytes > this.#host.deps.maxMessageBytes + 5) this.#writeHead(true);
  }

  /** Writes the response head; `chunked` sends the body held so far as the first chunk. */
  #writeHead(chunked: boolean, contentLength = 0): void {
    this.#responded = true;
    let head = `HTTP/1.1 200 OK\r\ncontent-type: ${this.#route.contentType}\r\n`;
    head += this.#response?.status === 200 ? (this.#response.headLines ?? "") : "";
    head += this.#plan.corsLines;
    head += chunked ? "transfer-encoding: chunked\r\n" : `content-length: ${contentLength}\r\n`;
    if (this.#head.close) head += "connection: close\r\n";
    head += "\r\n";
    const body = this.#body;
    this.#body = [];
    this.#bodyBytes = 0;
    const parts: Buffer[] = [Buffer.from(head, "latin1")];
    if (chunked) {
      for (const bytes of body) parts.push(chunk(bytes));
    }
    this.#host.writeClient(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
  }

  /** Sends the end of the response: the trailer frame, after the head and body if still held. */
  #finish(trailerFrame: Buffer): void {
    if (this.#responded) {
      this.#host.writeClient(Buffer.concat([chunk(trailerFrame), lastChunk]));
    } else {
      const body = this.#body;
      const length = this.#bodyBytes + trailerFrame.length;
      this.#body = [];
      this.#writeHead(false, length);
      this.#host.writeClient(Buffer.concat([...body, trailerFrame]));
    }
    this.#host.callDone(this, this.#head.close);
  }

  #cleanup(): void {
    this.#lifetime?.end();
    this.#upstream.clientDrained();
    this.#upstream.close();
  }

  #logDone(code: number, message: unknown): void {
    logCallDone(this.#host.deps.logger, this.#route.method.name, code, message, this.#started);
  }
}

const lastChunk = Buffer.from("0\r\n\r\n", "latin1");

/** One chunk of a chunked body (RFC 9112, section 7.1). */
function chunk(bytes: Buffer): Buffer {
  const size = `${bytes.length.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(size.length + bytes.length + 2);
  out.write(size, 0, "latin1");
  bytes.copy(out, size.length);
  out.write("\r\n", size.length + bytes.length, "latin1");
  return out;
}

function errorTrailers(code: Code, message: string): Buffer {
  return encodeTrailerFrame({
    "grpc-status": String(code),
    "grpc-message": encodeGrpcMessage(message),
  });
}

function planResponse(fields: readonly HeaderField[]): ResponsePlan {
  const headers = headerObjectOf(fields);
  const grpcStatus = headers["grpc-status"];
  const plan: ResponsePlan = {
    malformed: hasMalformedField(fields),
    status: Number(headers[":status"]),
    grpcStatus: typeof grpcStatus === "string" ? grpcStatus : undefined,
    grpcMessage: typeof headers["grpc-message"] === "string" ? headers["grpc-message"] : undefined,
    headers,
    headLines: undefined,
    trailerFrame: undefined,
  };
  if (plan.grpcStatus !== undefined) {
    plan.trailerFrame = encodeTrailerFrame(copyResponseHeaders(headers, {}, true));
  } else {
    plan.headLines = headerLines(copyResponseHeaders(headers, {}, false));
  }
  return plan;
}
