import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, base64Decode } from "@bufbuild/protobuf/wire";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";

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
 * use for. For JSON, interceptors or the Connect protocol, use one of
 * connect-web's transports (`transport` option).
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
      const sent = new Headers(header);
      sent.set("content-type", "application/grpc-web+proto");
      sent.set("x-grpc-web", "1");
      if (!sent.has("x-user-agent")) sent.set("x-user-agent", "flame-ts");
      if (deadline !== undefined) sent.set("grpc-timeout", `${deadline}m`);
      const response = await (options.fetch ?? globalThis.fetch)(
        `${options.baseUrl}/${method.parent.typeName}/${method.name}`,
        {
          method: "POST",
          redirect: "error",
          headers: sent,
          signal: sig.signal,
          body: encode(method.input, input),
        },
      );
      const { status, headers } = response;
      if (status < 200 || status > 299) {
        // A proxy's answer, or a server that does not speak gRPC-Web.
        const message = decodeURIComponent(headers.get("grpc-message") ?? `HTTP ${status}`);
        throw new ConnectError(message, httpStatusCodes[status] ?? Code.Unknown, headers);
      }
      // A status among the headers: "trailers-only", an error (or an empty stream).
      const headerError = statusError(headers);
      if (headerError !== undefined) throw headerError;
      const trailer = new Headers();
      const messages = read(response, headers.has("grpc-status"), trailer, output, sig);
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
        if (flags & 128) {
          // The trailer: "name: value" lines.
          ended = true;
          for (const line of new TextDecoder().decode(data).split("\r\n")) {
            const colon = line.indexOf(":");
            if (colon > 0)
              trailer.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
          }
        } else {
          yield decode(output, data);
        }
      }
    }
    // fetch may end the body quietly when the call is aborted.
    call.signal?.throwIfAborted();
    if (!trailersOnly) {
      if (!ended) throw new ConnectError("missing trailer", Code.Unknown);
      const err = statusError(trailer);
      if (err !== undefined) {
        for (const [key, value] of response.headers) err.metadata.append(key, value);
        throw err;
      }
      if (!trailer.has("grpc-status")) {
        throw new ConnectError("protocol error: missing status", Code.Internal);
      }
    }
  } catch (err) {
    throw call.fail(err);
  } finally {
    call.done();
  }
}

// gRPC's mapping of the HTTP statuses a proxy may answer with.
const httpStatusCodes: Record<number, Code> = {
  400: Code.Internal,
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.Unimplemented,
  429: Code.Unavailable,
  502: Code.Unavailable,
  503: Code.Unavailable,
  504: Code.Unavailable,
};

/**
 * The error a status reports (in the headers or the trailer), with the
 * fields as its metadata; undefined for OK or no status. The protobuf
 * `google.rpc.Status` in grpc-status-details-bin wins over grpc-status and
 * grpc-message, and brings the error details.
 */
function statusError(fields: Headers): ConnectError | undefined {
  const bin = fields.get("grpc-status-details-bin");
  const grpcStatus = fields.get("grpc-status");
  let code = Number.parseInt(grpcStatus ?? "0", 10);
  let message = decodeURIComponent(fields.get("grpc-message") ?? "");
  const details: { type: string; value: Uint8Array }[] = [];
  if (bin !== null) {
    // google.rpc.Status: code = 1, message = 2, repeated Any details = 3
    // (Any: type_url = 1, value = 2).
    code = 0;
    message = "";
    for (const [field, value] of fieldsOf(base64Decode(bin))) {
      if (field === 1) code = value.int32();
      else if (field === 2) message = value.string();
      else if (field === 3) {
        const detail: { type: string; value: Uint8Array } = { type: "", value: new Uint8Array(0) };
        for (const [f, any] of fieldsOf(value.bytes())) {
          if (f === 1) detail.type = any.string().replace(/.*\//, "");
          else if (f === 2) detail.value = any.bytes();
        }
        details.push(detail);
      }
    }
  } else if (code !== 0 && !(code in Code)) {
    message = `invalid grpc-status: ${grpcStatus}`;
    code = Code.Internal;
  }
  if (code === 0) return undefined;
  const err = new ConnectError(message, code, fields);
  err.details = details;
  return err;
}

/**
 * The fields of a protobuf message, in order: each number with the reader
 * positioned at its value, which the caller must read (or it is skipped).
 */
function* fieldsOf(bytes: Uint8Array): Generator<[number, BinaryReader]> {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    const start = reader.pos;
    yield [field, reader];
    if (reader.pos === start) reader.skip(wireType, field);
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
