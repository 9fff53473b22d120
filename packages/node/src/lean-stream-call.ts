import {
  type DescMessage,
  type DescMethodStreaming,
  type DescService,
  fromBinary,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";
import type { HeaderInit } from "./grpc-request-headers.js";
import { toHeaders } from "./grpc-status.js";
import { LeanCall, type LeanCallContext } from "./lean-call.js";
import { codecError } from "./stream-errors.js";

// Past this many unread messages the HTTP/2 stream is paused, so a slow
// reader pushes back on the server through flow control.
const pauseAt = 16;
const resumeAt = 4;

type Message = MessageShape<DescMessage>;
const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A server-streaming gRPC call. It is its own `StreamResponse` and its own
 * single-use async iterator of messages: `opened` resolves once the
 * response headers are valid, messages queue until read, and the status at
 * the end either completes the iteration or rejects the next read.
 */
export class LeanStreamCall
  extends LeanCall
  implements StreamResponse, AsyncIterator<Message>, AsyncIterable<Message>
{
  declare readonly method: DescMethodStreaming;
  readonly stream = true as const;
  readonly service: DescService;
  readonly message: AsyncIterable<Message> = this;
  readonly opened: Promise<StreamResponse>;
  private resolveOpened!: (response: StreamResponse) => void;
  private rejectOpened!: (error: ConnectError) => void;
  private isOpen = false;
  private readonly queue: Message[] = [];
  private paused = false;
  private ended = false;
  private failure: ConnectError | undefined;
  private waiting: ((result: IteratorResult<Message>) => void) | undefined;
  private waitingReject: ((error: ConnectError) => void) | undefined;
  private cachedHeader: Headers | undefined;
  private cachedTrailer: Headers | undefined;
  private trailerFilled = false;

  constructor(
    ctx: LeanCallContext,
    method: DescMethodStreaming,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeaderInit | undefined,
    frame: Uint8Array,
    affinity?: object,
  ) {
    super(ctx, method);
    this.service = method.parent;
    this.opened = new Promise<StreamResponse>((resolve, reject) => {
      this.resolveOpened = resolve;
      this.rejectOpened = reject;
    });
    this.start(signal, timeoutMs, header, frame, affinity);
  }

  get header(): Headers {
    this.cachedHeader ??= toHeaders(this.responseHeaders);
    return this.cachedHeader;
  }

  /** Filled when the trailers arrive (connect-es fills its trailer object the same way). */
  get trailer(): Headers {
    if (this.cachedTrailer === undefined) {
      this.cachedTrailer = toHeaders(this.responseTrailers);
      this.trailerFilled = this.responseTrailers !== undefined;
    }
    return this.cachedTrailer;
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return this;
  }

  next(): Promise<IteratorResult<Message>> {
    const queue = this.queue;
    if (queue.length > 0) {
      const value = queue.shift() as Message;
      if (this.paused && queue.length <= resumeAt) {
        this.paused = false;
        this.h2?.resume();
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.failure !== undefined) {
      const failure = this.failure;
      // Reported once; later reads see the end.
      this.failure = undefined;
      this.ended = true;
      return Promise.reject(failure);
    }
    if (this.ended) return Promise.resolve(done);
    return new Promise<IteratorResult<Message>>((resolve, reject) => {
      this.waiting = resolve;
      this.waitingReject = reject;
    });
  }

  /** The reader stopped early: cancel the stream now rather than when the server ends it. */
  return(): Promise<IteratorResult<Message>> {
    if (!this.over) this.fail(new ConnectError("the stream was abandoned", Code.Canceled), true);
    this.queue.length = 0;
    this.failure = undefined;
    this.ended = true;
    return Promise.resolve(done);
  }

  protected override onResponseHeaders(): void {
    // A trailers-only response resolves (or rejects) once its status is read.
    if (this.responseHeaders?.["grpc-status"] !== undefined) return;
    this.isOpen = true;
    this.resolveOpened(this);
  }

  protected onMessage(bytes: Uint8Array): void {
    let message: Message;
    try {
      message = fromBinary(this.method.output, bytes);
    } catch (err) {
      this.fail(codecError("parse", err));
      return;
    }
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      waiting({ done: false, value: message });
      return;
    }
    this.queue.push(message);
    if (!this.paused && this.queue.length >= pauseAt) {
      this.paused = true;
      this.h2?.pause();
    }
  }

  protected onComplete(): void {
    const trailers = this.responseTrailers;
    const cached = this.cachedTrailer;
    if (cached !== undefined && !this.trailerFilled && trailers !== undefined) {
      this.trailerFilled = true;
      for (const [key, value] of toHeaders(trailers)) cached.append(key, value);
    }
    this.ended = true;
    if (!this.isOpen) {
      this.isOpen = true;
      this.resolveOpened(this);
    }
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      waiting(done);
    }
  }

  protected onFailure(error: ConnectError): void {
    if (!this.isOpen) {
      this.isOpen = true;
      this.ended = true;
      this.rejectOpened(error);
      return;
    }
    // A cancel or deadline ends the stream now; a status after messages
    // is read after them.
    if (error.code === Code.Canceled || error.code === Code.DeadlineExceeded) this.queue.length = 0;
    const reject = this.waitingReject;
    if (reject !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      this.ended = true;
      reject(error);
      return;
    }
    this.failure = error;
  }
}
