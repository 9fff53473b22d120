import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ContextValues, Transport } from "@connectrpc/connect";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import {
  compressedFlag,
  createEnvelopeReadableStream,
  createMethodUrl,
  encodeEnvelope,
  runStreamingCall,
  runUnaryCall,
} from "@connectrpc/connect/protocol";
import {
  headerGrpcStatus,
  requestHeader,
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
 * server-streaming calls over `fetch`, built from connect's protocol
 * helpers. It exists for bundle size: connect-web's transport also carries
 * the JSON format, which pulls @bufbuild/protobuf's JSON reader and writer
 * into every page even when binary is used. For JSON, or the Connect
 * protocol, pass one of connect-web's transports as `transport` instead.
 */
export function createBinaryGrpcWebTransport(options: BinaryGrpcWebTransportOptions): Transport {
  // What runUnaryCall/runStreamingCall need to know about a call; they
  // apply the deadline (sent as grpc-timeout too) and the caller's signal.
  const request = <T extends DescMethod, S extends boolean, M>(
    method: T,
    stream: S,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    contextValues: ContextValues | undefined,
    message: M,
  ) => {
    timeoutMs = timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
    return {
      signal: undefined as AbortSignal | undefined,
      timeoutMs,
      req: {
        stream,
        service: method.parent,
        method,
        requestMethod: "POST",
        url: createMethodUrl(options.baseUrl, method),
        header: requestHeader(true, timeoutMs, header, false),
        contextValues: contextValues ?? createContextValues(),
        message,
      },
    };
  };
  // Sends one request message; the answer's messages are read lazily.
  const post = async <O extends DescMessage>(
    req: { url: string; header: Headers; signal: AbortSignal },
    input: DescMessage,
    message: unknown,
    output: O,
  ) => {
    const fetch = options.fetch ?? globalThis.fetch;
    const response = await fetch(req.url, {
      method: "POST",
      redirect: "error",
      headers: req.header,
      signal: req.signal,
      body: encode(input, message),
    });
    const { foundStatus, headerError } = validateResponse(response.status, response.headers);
    if (headerError !== undefined) throw headerError;
    const trailer = new Headers();
    const messages = read(response, foundStatus, trailer, req.signal, output);
    return { header: response.headers, trailer, messages };
  };

  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const call = request(method, false, timeoutMs, header, contextValues, input);
      return runUnaryCall({
        ...call,
        signal,
        next: async (req) => {
          const answer = await post(req, method.input, req.message, method.output);
          let message: MessageShape<typeof method.output> | undefined;
          for await (const m of answer.messages) {
            if (message !== undefined) throw new ConnectError("extra message", Code.Unimplemented);
            message = m;
          }
          if (message === undefined) throw new ConnectError("missing message", Code.Unimplemented);
          return { ...req, stream: false as const, ...answer, message };
        },
      });
    },

    stream(method, signal, timeoutMs, header, input, contextValues) {
      const call = request(method, true, timeoutMs, header, contextValues, input);
      return runStreamingCall({
        ...call,
        signal,
        next: async (req) => {
          // fetch cannot stream a request body: only server streams go through.
          if (method.methodKind !== "server_streaming") {
            throw new ConnectError(`${method.methodKind} calls need HTTP/2`, Code.Unimplemented);
          }
          const first = await req.message[Symbol.asyncIterator]().next();
          if (first.done) throw new ConnectError("missing request message", Code.Internal);
          const answer = await post(req, method.input, first.value, method.output);
          return { ...req, ...answer, message: answer.messages };
        },
      });
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
  signal: AbortSignal,
  output: O,
): AsyncGenerator<MessageShape<O>> {
  let ended = false;
  if (response.body) {
    const reader = createEnvelopeReadableStream(response.body).getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      const { flags, data } = r.value;
      if (ended || trailersOnly || (flags & compressedFlag) === compressedFlag) {
        throw new ConnectError("protocol error: unexpected frame", Code.Internal);
      }
      if ((flags & trailerFlag) === trailerFlag) {
        ended = true;
        for (const [key, value] of trailerParse(data)) trailer.set(key, value);
      } else {
        yield decode(output, data);
      }
    }
  }
  // fetch may end the body quietly when the call is aborted.
  signal.throwIfAborted();
  if (trailersOnly) return;
  if (!ended) {
    // A grpc-status header without a trailer frame: not a gRPC-Web server.
    const code = response.headers.has(headerGrpcStatus) ? Code.Unimplemented : Code.Unknown;
    throw new ConnectError("missing trailer", code);
  }
  validateTrailer(trailer, response.headers);
}

function encode(schema: DescMessage, message: unknown): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(schema, message as MessageShape<DescMessage>);
  } catch (err) {
    throw new ConnectError(`serialize binary: ${String(err)}`, Code.Internal);
  }
  return encodeEnvelope(0, bytes) as Uint8Array<ArrayBuffer>;
}

function decode<T extends DescMessage>(schema: T, data: Uint8Array): MessageShape<T> {
  try {
    return fromBinary(schema, data);
  } catch (err) {
    throw new ConnectError(`parse binary: ${String(err)}`, Code.Internal);
  }
}
