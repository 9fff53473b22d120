import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";
import { connectionAffinity } from "@flame-ts/core";
import { encodeFrame, messageTooLarge } from "./grpc-frame.js";
import {
  encodeTimeout,
  GrpcRequestHeaders,
  type HeaderInit,
  userAgent,
} from "./grpc-request-headers.js";
import type { Http2SessionPool } from "./http2-session-pool.js";
import type { LeanCallContext } from "./lean-call.js";
import { LeanStreamCall } from "./lean-stream-call.js";
import { LeanUnaryCall } from "./lean-unary-call.js";
import { abortError, codecError } from "./stream-errors.js";

/** Options of {@link createLeanGrpcTransport}. */
export interface LeanGrpcTransportOptions {
  /** The validated base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** The HTTP/2 connections to use. */
  pool: Http2SessionPool;
  /** Largest response message, in bytes. */
  readMaxBytes: number;
  /** Largest request message, in bytes. */
  writeMaxBytes: number;
  /** Connect interceptors, run on every call (outermost first). */
  interceptors?: Interceptor[];
}

/**
 * A Connect `Transport` for the gRPC protocol (binary protobuf, no
 * compression) written directly on `node:http2`: unary and
 * server-streaming calls, which is all Flame's Frontend has.
 *
 * It does per call what connect-node's gRPC transport does, minus the
 * async-iterable pipeline, the linked AbortControllers and the errors
 * built on success: one HTTP/2 stream, one request frame, listeners shared
 * by all calls, response headers turned into `Headers` only when read.
 * Interceptors are supported; with them each call also builds the
 * request object and `Headers` interceptors expect.
 *
 * Client- and bidi-streaming methods are refused with `Unimplemented`.
 */
export function createLeanGrpcTransport(options: LeanGrpcTransportOptions): Transport {
  const ctx: LeanCallContext = {
    pool: options.pool,
    baseUrl: options.baseUrl,
    readMaxBytes: options.readMaxBytes,
    writeMaxBytes: options.writeMaxBytes,
    headers: new GrpcRequestHeaders(new URL(options.baseUrl).pathname.replace(/\/+$/, "")),
  };
  const interceptors = options.interceptors?.length ? options.interceptors : undefined;
  if (interceptors === undefined) {
    return {
      unary: (method, signal, timeoutMs, header, input, contextValues) =>
        runUnary(ctx, method, signal, deadlineOf(timeoutMs), header, input, contextValues) as never,
      stream: (method, signal, timeoutMs, header, input, contextValues) =>
        runStream(
          ctx,
          method,
          signal,
          deadlineOf(timeoutMs),
          header,
          input,
          contextValues,
        ) as never,
    };
  }
  return interceptedTransport(ctx, interceptors);
}

/** connect-es semantics: no timeout, or one <= 0, means no deadline. */
function deadlineOf(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
}

function runUnary(
  ctx: LeanCallContext,
  method: DescMethodUnary,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: HeaderInit | undefined,
  input: MessageInitShape<DescMessage>,
  contextValues: ContextValues | undefined,
): Promise<UnaryResponse> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  let frame: Uint8Array;
  try {
    frame = encodeRequest(ctx, method, input);
  } catch (err) {
    return Promise.reject(err);
  }
  const affinity = contextValues?.get(connectionAffinity);
  return new LeanUnaryCall(ctx, method, signal, timeoutMs, header, frame, affinity).promise;
}

async function runStream(
  ctx: LeanCallContext,
  method: DescMethodStreaming,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: HeaderInit | undefined,
  input: AsyncIterable<MessageInitShape<DescMessage>>,
  contextValues: ContextValues | undefined,
): Promise<StreamResponse> {
  if (method.methodKind !== "server_streaming") {
    throw new ConnectError(
      `${method.methodKind} calls are not supported by the lean gRPC transport; use transport: "connect-node"`,
      Code.Unimplemented,
    );
  }
  if (signal?.aborted) throw abortError(signal);
  // A server-streaming call sends exactly one message.
  const first = await input[Symbol.asyncIterator]().next();
  if (first.done === true) {
    throw new ConnectError("protocol error: missing request message", Code.Internal);
  }
  if (signal?.aborted) throw abortError(signal);
  const frame = encodeRequest(ctx, method, first.value);
  const affinity = contextValues?.get(connectionAffinity);
  return new LeanStreamCall(ctx, method, signal, timeoutMs, header, frame, affinity).opened;
}

function encodeRequest(
  ctx: LeanCallContext,
  method: DescMethod & { input: DescMessage },
  input: MessageInitShape<DescMessage>,
): Uint8Array {
  let bytes: Uint8Array;
  try {
    const message = isMessage(input, method.input)
      ? input
      : create(method.input, input as MessageInitShape<DescMessage>);
    bytes = toBinary(method.input, message as MessageShape<DescMessage>);
  } catch (err) {
    throw codecError("serialize", err);
  }
  if (bytes.byteLength > ctx.writeMaxBytes) {
    throw messageTooLarge(bytes.byteLength, ctx.writeMaxBytes, "write");
  }
  return encodeFrame(bytes);
}

// --- with interceptors ------------------------------------------------------

// Interceptors get a signal even when the caller gave none; this one never
// aborts and is not passed on (no listeners pile up on it).
const neverAborted = new AbortController().signal;

function interceptedTransport(ctx: LeanCallContext, interceptors: Interceptor[]): Transport {
  const innerUnary = async (req: UnaryRequest): Promise<UnaryResponse> => {
    const res = await runUnary(
      ctx,
      req.method,
      req.signal === neverAborted ? undefined : req.signal,
      timeoutFromHeader(req.header),
      req.header,
      req.message,
      req.contextValues,
    );
    return { stream: false, ...ownFields(res) };
  };
  const innerStream = async (req: StreamRequest): Promise<StreamResponse> => {
    const res = await runStream(
      ctx,
      req.method,
      req.signal === neverAborted ? undefined : req.signal,
      timeoutFromHeader(req.header),
      req.header,
      req.message,
      req.contextValues,
    );
    return { stream: true, ...ownFields(res) };
  };
  const unary = applyInterceptors(innerUnary as never, interceptors) as (
    req: UnaryRequest,
  ) => Promise<UnaryResponse>;
  const stream = applyInterceptors(innerStream as never, interceptors) as (
    req: StreamRequest,
  ) => Promise<StreamResponse>;
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const deadline = deadlineOf(timeoutMs);
      let message: MessageShape<DescMessage>;
      try {
        message = isMessage(input, method.input)
          ? (input as MessageShape<DescMessage>)
          : create(method.input as DescMessage, input as MessageInitShape<DescMessage>);
      } catch (err) {
        return Promise.reject(ConnectError.from(err, Code.Internal));
      }
      return unary({
        stream: false,
        service: method.parent,
        method: method as DescMethodUnary,
        requestMethod: "POST",
        url: new URL(ctx.headers.path(method), ctx.baseUrl).href,
        signal: signal ?? neverAborted,
        header: requestHeader(deadline, header),
        contextValues: contextValues ?? createContextValues(),
        message,
      }) as never;
    },
    stream(method, signal, timeoutMs, header, input, contextValues?: ContextValues) {
      const deadline = deadlineOf(timeoutMs);
      return stream({
        stream: true,
        service: method.parent,
        method: method as DescMethodStreaming,
        requestMethod: "POST",
        url: new URL(ctx.headers.path(method), ctx.baseUrl).href,
        signal: signal ?? neverAborted,
        header: requestHeader(deadline, header),
        contextValues: contextValues ?? createContextValues(),
        message: input as AsyncIterable<MessageShape<DescMessage>>,
      }) as never;
    },
  };
}

/**
 * A response's fields as own properties (ours are getters on a class), so
 * interceptors that spread the response keep them.
 */
function ownFields<R extends UnaryResponse | StreamResponse>(res: R) {
  return {
    service: res.service,
    method: res.method,
    header: res.header,
    trailer: res.trailer,
    message: res.message,
  } as Omit<R, "stream">;
}

type AnyFn = (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;

/** Wrap `next` in `interceptors`: the first is the outermost, as in connect-es. */
function applyInterceptors<T>(next: T, interceptors: Interceptor[]): T {
  let fn = next as unknown as AnyFn;
  for (let i = interceptors.length - 1; i >= 0; i--) fn = (interceptors[i] as Interceptor)(fn);
  return fn as unknown as T;
}

/** The request headers as interceptors see them (what goes on the wire). */
function requestHeader(timeoutMs: number | undefined, extra: HeaderInit | undefined): Headers {
  const header = new Headers(extra ?? {});
  header.set("content-type", "application/grpc+proto");
  if (!header.has("user-agent")) header.set("user-agent", userAgent);
  if (timeoutMs !== undefined) header.set("grpc-timeout", encodeTimeout(timeoutMs));
  header.set("te", "trailers");
  return header;
}

/** The deadline an interceptor left in `grpc-timeout`. */
function timeoutFromHeader(header: Headers): number | undefined {
  const value = header.get("grpc-timeout");
  if (value === null) return undefined;
  return parseTimeout(value, Number.MAX_SAFE_INTEGER).timeoutMs;
}
