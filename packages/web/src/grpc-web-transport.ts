import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  headerGrpcStatus,
  trailerFlag,
  trailerParse,
  validateResponse,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc-web";

/** Options of {@link createBinaryGrpcWebTransport}. */
export interface BinaryGrpcWebTransportOptions {
  /** e.g. "https://flame.example.com"; "/flame.v1.Frontend/Method" is appended. */
  baseUrl: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
}

/**
 * A gRPC-Web transport that speaks protobuf binary only: unary and
 * server-streaming calls over `fetch`. It exists for bundle size:
 * connect-web's transport also carries the JSON format, which pulls
 * @bufbuild/protobuf's JSON reader and writer into every page even when
 * binary is used, and the interceptor machinery, which `connect()` has no
 * use for. Status codes, trailers and error details are read with
 * connect's own gRPC-Web helpers. For JSON, interceptors or the Connect
 * protocol, use one of connect-web's transports (`transport` option).
 */
export function createBinaryGrpcWebTransport(options: BinaryGrpcWebTransportOptions): Transport {
  /**
   * Sends one request message and returns the answer's header, its
   * trailer (filled once the body is read) and its messages, read lazily.
   * Errors come out as ConnectError: an abort with the signal's reason
   * (code Canceled), a deadline as DeadlineExceeded.
   */
  const send = async <O extends DescMessage>(
    method: DescMethod,
    output: O,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: unknown,
  ) => {
    const deadline = timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : undefined;
    const sig = callSignal(signal, deadline);
    try {
      const headers = new Headers(header);
      headers.set("content-type", "application/grpc-web+proto");
      headers.set("x-grpc-web", "1");
      if (!headers.has("x-user-agent")) headers.set("x-user-agent", "flame-ts");
      if (deadline !== undefined) headers.set("grpc-timeout", `${deadline}m`);
      const response = await (options.fetch ?? globalThis.fetch)(
        `${options.baseUrl}/${method.parent.typeName}/${method.name}`,
        {
          method: "POST",
          redirect: "error",
          headers,
          signal: sig.signal,
          body: encode(method.input, input),
        },
      );
      const { foundStatus, headerError } = validateResponse(response.status, response.headers);
      if (headerError !== undefined) throw headerError;
      const trailer = new Headers();
      const messages = read(response, foundStatus, trailer, output, sig);
      return { header: response.headers, trailer, messages };
    } catch (err) {
      throw sig.fail(err);
    }
  };

  return {
    async unary(method, signal, timeoutMs, header, input) {
      const answer = await send(method, method.output, signal, timeoutMs, header, input);
      let message: MessageShape<typeof method.output> | undefined;
      for await (const m of answer.messages) {
        if (message !== undefined) throw new ConnectError("extra message", Code.Unimplemented);
        message = m;
      }
      if (message === undefined) throw new ConnectError("missing message", Code.Unimplemented);
      return { stream: false, service: method.parent, method, ...answer, message };
    },

    async stream(method, signal, timeoutMs, header, input) {
      // fetch cannot stream a request body: only server streams go through.
      const first = await input[Symbol.asyncIterator]().next();
      if (method.methodKind !== "server_streaming" || first.done) {
        throw new ConnectError(`${method.name}: one request message only`, Code.Unimplemented);
      }
      const answer = await send(method, method.output, signal, timeoutMs, header, first.value);
      return { stream: true, service: method.parent, method, ...answer, message: answer.messages };
    },
  };
}

interface CallSignal {
  signal: AbortSignal | undefined;
  /** The ConnectError for what a call threw; ends the call. */
  fail(err: unknown): ConnectError;
  /** The call is over: stop the deadline timer. */
  done(): void;
}

/** The caller's signal, plus a deadline when there is one. */
function callSignal(signal: AbortSignal | undefined, timeoutMs: number | undefined): CallSignal {
  let controller: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => controller?.abort(signal?.reason);
  if (timeoutMs !== undefined) {
    controller = new AbortController();
    timer = setTimeout(
      () => controller?.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
      timeoutMs,
    );
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort);
  }
  const own = controller?.signal ?? signal;
  const done = () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
  return {
    signal: own,
    done,
    fail(err) {
      done();
      // fetch rejects with its own AbortError: the reason is on the signal.
      return own?.aborted ? ConnectError.from(own.reason, Code.Canceled) : ConnectError.from(err);
    },
  };
}

/**
 * The messages of a gRPC-Web answer, decoded; the trailer frame (one, last)
 * fills `trailer` and is checked for the call's status at the end.
 * `trailersOnly`: the status came in the headers, and no frame may follow.
 */
async function* read<O extends DescMessage>(
  response: Response,
  trailersOnly: boolean,
  trailer: Headers,
  output: O,
  call: CallSignal,
): AsyncGenerator<MessageShape<O>> {
  try {
    let ended = false;
    if (response.body) {
      for await (const [flags, data] of frames(response.body)) {
        // Compressed frames (flag 1) are never asked for.
        if (ended || trailersOnly || flags & 1) {
          throw new ConnectError("protocol error: unexpected frame", Code.Internal);
        }
        if (flags & trailerFlag) {
          ended = true;
          for (const [key, value] of trailerParse(data)) trailer.set(key, value);
        } else {
          yield decode(output, data);
        }
      }
    }
    // fetch may end the body quietly when the call is aborted.
    call.signal?.throwIfAborted();
    if (!trailersOnly) {
      if (!ended) {
        // A grpc-status header without a trailer frame: not a gRPC-Web server.
        const code = response.headers.has(headerGrpcStatus) ? Code.Unimplemented : Code.Unknown;
        throw new ConnectError("missing trailer", code);
      }
      validateTrailer(trailer, response.headers);
    }
  } catch (err) {
    throw call.fail(err);
  } finally {
    call.done();
  }
}

/** The frames of a body: [flags, data] per 5-byte header and its payload. */
async function* frames(body: ReadableStream<Uint8Array>): AsyncGenerator<[number, Uint8Array]> {
  const reader = body.getReader();
  let buffer: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      while (buffer.length >= 5) {
        const size = new DataView(buffer.buffer, buffer.byteOffset).getUint32(1);
        if (buffer.length < 5 + size) break;
        yield [buffer[0] as number, buffer.subarray(5, 5 + size)];
        buffer = buffer.subarray(5 + size);
      }
      const r = await reader.read();
      if (r.done) break;
      if (buffer.length === 0) {
        buffer = r.value;
      } else {
        const joined = new Uint8Array(buffer.length + r.value.length);
        joined.set(buffer);
        joined.set(r.value, buffer.length);
        buffer = joined;
      }
    }
    if (buffer.length > 0) {
      throw new ConnectError("protocol error: incomplete frame", Code.InvalidArgument);
    }
  } finally {
    // A reader stopped early (an error, an extra message) frees the body.
    reader.cancel().catch(() => {});
  }
}

function encode(schema: DescMessage, message: unknown): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(schema, create(schema, message as MessageInitShape<DescMessage>));
  } catch (err) {
    throw new ConnectError(`serialize binary: ${String(err)}`, Code.Internal);
  }
  const frame = new Uint8Array(5 + bytes.length);
  new DataView(frame.buffer).setUint32(1, bytes.length);
  frame.set(bytes, 5);
  return frame;
}

function decode<T extends DescMessage>(schema: T, data: Uint8Array): MessageShape<T> {
  try {
    return fromBinary(schema, data);
  } catch (err) {
    throw new ConnectError(`parse binary: ${String(err)}`, Code.Internal);
  }
}
