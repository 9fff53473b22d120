import type { IncomingHttpHeaders } from "node:http2";
import {
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import type { HeaderInit } from "./grpc-request-headers.js";
import { toHeaders } from "./grpc-status.js";
import { LeanCall, type LeanCallContext } from "./lean-call.js";
import { codecError } from "./stream-errors.js";

/**
 * A unary response whose `header` and `trailer` become fetch `Headers`
 * only when someone reads them (the generated client reads them only for
 * `onHeader`/`onTrailer`).
 */
export class LeanUnaryResponse<
  I extends DescMessage = DescMessage,
  O extends DescMessage = DescMessage,
> implements UnaryResponse<I, O>
{
  readonly stream = false as const;
  readonly service: DescService;
  private cachedHeader: Headers | undefined;
  private cachedTrailer: Headers | undefined;

  constructor(
    readonly method: DescMethodUnary<I, O>,
    readonly message: MessageShape<O>,
    private readonly rawHeader: IncomingHttpHeaders | undefined,
    private readonly rawTrailer: IncomingHttpHeaders | undefined,
  ) {
    this.service = method.parent;
  }

  get header(): Headers {
    this.cachedHeader ??= toHeaders(this.rawHeader);
    return this.cachedHeader;
  }

  get trailer(): Headers {
    this.cachedTrailer ??= toHeaders(this.rawTrailer);
    return this.cachedTrailer;
  }
}

/** A unary gRPC call: one request message, exactly one response message. */
export class LeanUnaryCall extends LeanCall {
  readonly promise: Promise<UnaryResponse>;
  private resolve!: (response: UnaryResponse) => void;
  private reject!: (error: ConnectError) => void;
  private payload: Uint8Array | undefined;
  private count = 0;

  constructor(
    ctx: LeanCallContext,
    method: DescMethodUnary,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeaderInit | undefined,
    frame: Uint8Array,
    affinity?: object,
  ) {
    super(ctx, method);
    this.promise = new Promise<UnaryResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.start(signal, timeoutMs, header, frame, affinity);
  }

  protected onMessage(bytes: Uint8Array): void {
    if (++this.count > 1) {
      this.fail(
        new ConnectError(
          "protocol error: received extra output message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    this.payload = bytes;
  }

  protected onComplete(): void {
    const payload = this.payload;
    this.payload = undefined;
    if (payload === undefined) {
      this.onFailure(
        new ConnectError(
          "protocol error: missing output message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    const method = this.method as DescMethodUnary;
    let message: MessageShape<DescMessage>;
    try {
      message = fromBinary(method.output, payload);
    } catch (err) {
      this.onFailure(codecError("parse", err));
      return;
    }
    this.resolve(
      new LeanUnaryResponse(method, message, this.responseHeaders, this.responseTrailers),
    );
  }

  protected onFailure(error: ConnectError): void {
    this.payload = undefined;
    this.reject(error);
  }
}
