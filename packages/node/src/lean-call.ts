import * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { FrameReader } from "./grpc-frame.js";
import type { GrpcRequestHeaders, HeaderInit } from "./grpc-request-headers.js";
import {
  contentTypeError,
  grpcStatusError,
  httpStatusError,
  isGrpcProtoContentType,
  missingStatusError,
} from "./grpc-status.js";
import type { Http2SessionPool, PooledSession } from "./http2-session-pool.js";
import {
  abortError,
  connectionLostError,
  deadlineError,
  rstStreamError,
  streamFailure,
} from "./stream-errors.js";

/** What every call of one lean transport shares. */
export interface LeanCallContext {
  readonly pool: Http2SessionPool;
  readonly baseUrl: string;
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  readonly headers: GrpcRequestHeaders;
}

const maxTimer = 0x7fff_ffff;
const kCall = Symbol("flame.leanCall");
type StreamWithCall = http2.ClientHttp2Stream & { [kCall]?: LeanCall };

/**
 * One gRPC call on one HTTP/2 stream: sends the request, checks the
 * response headers, splits the body into messages, reads the status, and
 * ends the call exactly once — with the status, a broken stream, its
 * deadline or its signal. A call that ends early resets its stream with
 * CANCEL at once, so the server stops work on it.
 *
 * The stream's listeners are module functions shared by all calls (the
 * call hangs off the stream), the abort listener is the call itself
 * (`handleEvent`): no closures per call.
 */
export abstract class LeanCall extends FrameReader {
  protected h2: http2.ClientHttp2Stream | undefined;
  private entry: PooledSession | undefined;
  protected responseHeaders: http2.IncomingHttpHeaders | undefined;
  protected responseTrailers: http2.IncomingHttpHeaders | undefined;
  private streamError: unknown;
  /** The call has its outcome; later stream events only clean up. */
  protected over = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    protected readonly ctx: LeanCallContext,
    readonly method: DescMethod,
  ) {
    super(ctx.readMaxBytes);
  }

  /** Messages of the response, in order. */
  protected abstract onMessage(bytes: Uint8Array): void;
  /** The response ended with status OK and every frame complete. */
  protected abstract onComplete(): void;
  /** The call failed (called once; the stream is already being reset). */
  protected abstract onFailure(error: ConnectError): void;

  /**
   * Open the stream and send `frame` as the whole request body, on the
   * connection of earlier calls with the same `affinity` if it still has
   * room. The caller has checked that `signal` is not aborted.
   */
  protected start(
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeaderInit | undefined,
    frame: Uint8Array,
    affinity?: object,
  ): void {
    let stream: StreamWithCall | undefined;
    for (let attempt = 0; stream === undefined; attempt++) {
      let entry: PooledSession | undefined;
      try {
        entry = this.ctx.pool.pick(affinity);
        stream = entry.open(this.ctx.headers.forCall(this.method, timeoutMs, header));
        this.entry = entry;
      } catch (err) {
        // A connection can close between pick() and request() (a GOAWAY just
        // arrived): give it up and try once more on another.
        if (entry !== undefined && attempt === 0 && !(err instanceof ConnectError)) {
          entry.draining = true;
          continue;
        }
        this.fail(err instanceof ConnectError ? err : streamFailure(err, 0, this.ctx.baseUrl));
        return;
      }
    }
    this.h2 = stream;
    stream[kCall] = this;
    stream.on("response", onResponse);
    stream.on("data", onData);
    stream.on("trailers", onTrailers);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
    if (signal !== undefined) {
      this.signal = signal;
      signal.addEventListener("abort", this);
    }
    if (timeoutMs !== undefined && timeoutMs <= maxTimer) {
      this.timer = setTimeout(onDeadline, timeoutMs, this);
    }
    stream.end(frame);
  }

  /** The signal was aborted (EventListenerObject). */
  handleEvent(): void {
    if (this.signal !== undefined) this.fail(abortError(this.signal), true);
  }

  /**
   * End the call with `error`, resetting the stream with CANCEL if it is
   * still open: at once for a cancel or deadline (`resetNow`), else on the
   * next turn of the event loop, outside the stream's own event handlers.
   */
  protected fail(error: ConnectError, resetNow = false): void {
    if (this.over) return;
    this.settle();
    this.stopFrames();
    const stream = this.h2;
    if (stream !== undefined && !stream.closed && !stream.destroyed) {
      if (resetNow) stream.close(http2.constants.NGHTTP2_CANCEL);
      else setImmediate(resetStream, stream);
    }
    this.onFailure(error);
  }

  /** The outcome is known: stop the deadline and the abort listener. */
  protected settle(): void {
    this.over = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.signal !== undefined) {
      this.signal.removeEventListener("abort", this);
      this.signal = undefined;
    }
  }

  protected onFrame(message: Uint8Array): void {
    this.onMessage(message);
  }

  protected onFrameError(error: ConnectError): void {
    this.fail(error);
  }

  /** @internal */
  onH2Response(headers: http2.IncomingHttpHeaders): void {
    if (this.over) return;
    if (this.entry !== undefined) this.entry.heard = true;
    this.responseHeaders = headers;
    const status = (headers as http2.IncomingHttpStatusHeader)[":status"];
    if (status !== 200) {
      this.fail(httpStatusError(status ?? 0, headers));
      return;
    }
    // A trailers-only response carries its status here; its content type
    // matters only when there is a body to read.
    if (headers["grpc-status"] === undefined && !isGrpcProtoContentType(headers["content-type"])) {
      this.fail(contentTypeError(headers["content-type"]));
      return;
    }
    this.onResponseHeaders();
  }

  /** Valid response headers arrived (streams resolve their response here). */
  protected onResponseHeaders(): void {}

  /** @internal */
  onH2Data(chunk: Buffer): void {
    if (this.over) return;
    if (this.entry !== undefined) this.entry.heard = true;
    this.pushChunk(chunk);
  }

  /** @internal */
  onH2Trailers(trailers: http2.IncomingHttpHeaders): void {
    this.responseTrailers = trailers;
  }

  /** @internal */
  onH2Error(err: unknown): void {
    if (this.streamError === undefined) this.streamError = err;
  }

  /**
   * @internal The server ended its side. The call is decided now, even if
   * our request is still being sent (a server may answer, e.g. "too large",
   * before reading it all): the stream is then reset, as the answer is in.
   */
  onH2End(): void {
    // Without response headers this is Node ending a stream it destroyed:
    // the "close" that follows tells why.
    if (this.over || this.responseHeaders === undefined) return;
    this.decide(this.entry?.session.destroyed === true);
    // Only a request still being written needs a reset; otherwise Node
    // closes the stream itself, and resetting every finished stream would
    // look like a rapid-reset flood to the server.
    const stream = this.h2;
    if (stream !== undefined && !stream.writableFinished && !stream.closed && !stream.destroyed) {
      setImmediate(resetStream, stream);
    }
  }

  /** @internal The stream closed: decide the outcome from what arrived, if not yet done. */
  onH2Close(): void {
    const entry = this.entry;
    this.entry = undefined;
    entry?.release();
    if (this.over) return;
    this.decide(entry?.session.destroyed === true);
  }

  /** `connectionLost`: the stream closed because its whole connection went away. */
  private decide(connectionLost = false): void {
    const rstCode = this.h2?.rstCode ?? 0;
    const trailers = this.responseTrailers;
    const headers = this.responseHeaders;
    const statusIn =
      trailers ??
      (headers !== undefined && headers["grpc-status"] !== undefined ? headers : undefined);
    if (statusIn !== undefined) {
      const statusError = grpcStatusError(statusIn, trailers === undefined ? undefined : headers);
      if (statusError !== undefined) {
        this.fail(statusError);
        return;
      }
      if (!this.endOfFrames()) return;
      this.settle();
      this.onComplete();
      return;
    }
    if (this.streamError !== undefined) {
      this.fail(streamFailure(this.streamError, rstCode, this.ctx.baseUrl));
      return;
    }
    if (connectionLost) {
      // The socket closed under the stream (Node reports it as a CANCEL we never sent).
      this.fail(connectionLostError(this.ctx.baseUrl));
      return;
    }
    if (headers !== undefined && !this.endOfFrames()) return;
    if (rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
      this.fail(rstStreamError(rstCode));
      return;
    }
    this.fail(missingStatusError());
  }

  /** @internal */
  onDeadlineReached(): void {
    this.timer = undefined;
    this.fail(deadlineError(), true);
  }
}

// Shared listeners: `this` is the stream, the call hangs off it.
function onResponse(this: StreamWithCall, headers: http2.IncomingHttpHeaders): void {
  this[kCall]?.onH2Response(headers);
}
function onData(this: StreamWithCall, chunk: Buffer): void {
  this[kCall]?.onH2Data(chunk);
}
function onTrailers(this: StreamWithCall, trailers: http2.IncomingHttpHeaders): void {
  this[kCall]?.onH2Trailers(trailers);
}
function onEnd(this: StreamWithCall): void {
  this[kCall]?.onH2End();
}
function onError(this: StreamWithCall, err: unknown): void {
  this[kCall]?.onH2Error(err);
}
function onClose(this: StreamWithCall): void {
  const call = this[kCall];
  this[kCall] = undefined;
  call?.onH2Close();
}
// CANCEL, not NO_ERROR: Node holds a NO_ERROR close until the request is
// written, which a server that stopped reading never lets happen.
function resetStream(stream: http2.ClientHttp2Stream): void {
  if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
}
function onDeadline(call: LeanCall): void {
  call.onDeadlineReached();
}
