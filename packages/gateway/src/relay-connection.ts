import type { IncomingHttpHeaders } from "node:http";
import type * as net from "node:net";
import { Code } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import { headerReaderOf } from "./call-guard.js";
import { CallLifetime } from "./call-lifetime.js";
import { logCallDone, logClientCancelled } from "./call-log.js";
import type { FastPathRoute } from "./fast-path.js";
import { upstreamRequestFields } from "./forwarded-headers.js";
import {
  FrameSizeGuard,
  requestFrameFlags,
  responseFrameFlags,
  violationCode,
} from "./frame-size-guard.js";
import type { GrpcRelayDeps } from "./grpc-relay.js";
import { encodeGrpcMessage, parseGrpcTimeout, statusOfResetStream } from "./grpc-status.js";
import {
  blockBytes,
  clientPreface,
  dataFragment,
  encodeFrame,
  type Frame,
  FrameFlag,
  FrameReader,
  FrameSizeError,
  FrameType,
  goawayFrame,
  H2Error,
  H2ProtocolError,
  HeaderBlockAssembler,
  type HeaderBlockFrames,
  headersFrames,
  headerTableSizeSetting,
  rstStreamFrame,
  settingsHeaderTableSize,
  windowUpdateFrame,
} from "./h2-frame.js";
import {
  encodeHeaderBlock,
  firstValue,
  HeaderBlockDecoder,
  type HeaderField,
  headerObjectOf,
} from "./header-block.js";
import { Outbox } from "./outbox.js";

/** The largest header block (all HEADERS and CONTINUATION frames of one) the relay assembles. */
const maxHeaderBlockBytes = 256 * 1024;
/** Dynamic table size the relay's decoders accept; far above what HTTP/2 peers use (4096). */
export const maxTableSize = 64 * 1024;
/**
 * The largest frame taken from a client. Peers announce 16 KiB
 * (SETTINGS_MAX_FRAME_SIZE) unless they raise it; Node's server would
 * refuse a larger frame at once, and the relay must not buffer one.
 */
const maxClientFrameBytes = 1024 * 1024;

/** One call on a relayed connection. */
interface RelayStream {
  id: number;
  route: FastPathRoute;
  started: number;
  requestGuard: FrameSizeGuard;
  responseGuard: FrameSizeGuard;
  /** Request header frames held until the first message header passes the size check. */
  held: Buffer | undefined;
  /** Client frames of this stream still go upstream. */
  toUpstream: boolean;
  /** Upstream frames of this stream still go to the client. */
  toClient: boolean;
  clientEnded: boolean;
  /** Response headers reached the client. */
  responded: boolean;
  /** Its open-stream count and deadline timer; set once the stream is registered. */
  lifetime: CallLifetime | undefined;
}

/** What a request header block means for the relay (the same for every repeat of it). */
interface RequestPlan {
  headers: IncomingHttpHeaders;
  /** Undefined: not a call the relay forwards; the gateway answers it. */
  route: FastPathRoute | undefined;
  /** The header block sent upstream, without the dynamic table. */
  upstreamBlock: Buffer | undefined;
}

/** What a response header block means for the relay. */
interface ResponsePlan {
  /** The header block sent to the client, without the dynamic table. */
  clientBlock: Buffer;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

/**
 * One relayed client connection and its own connection to the upstream
 * (see `GrpcRelay`): frames read from either side are handled in order,
 * calls are checked as their request headers arrive, and what a read
 * produces is written to each side at once.
 */
export class RelayConnection {
  readonly #deps: GrpcRelayDeps;
  readonly #onClosed: (connection: RelayConnection) => void;
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #fromClient = new FrameReader(maxClientFrameBytes);
  readonly #fromUpstream = new FrameReader();
  readonly #requestDecoder = new HeaderBlockDecoder<RequestPlan>(maxTableSize);
  readonly #responseDecoder = new HeaderBlockDecoder<ResponsePlan>(maxTableSize);
  readonly #streams = new Map<number, RelayStream>();
  readonly #toClient: Outbox;
  readonly #toUpstream: Outbox;
  readonly #clientBlocks = new HeaderBlockAssembler(maxHeaderBlockBytes);
  readonly #upstreamBlocks = new HeaderBlockAssembler(maxHeaderBlockBytes);
  #lastClientStreamId = 0;
  #closed = false;
  /**
   * Frames for the client waiting for the upstream's SETTINGS: a server's
   * first frame must be SETTINGS, and the gateway may answer a call before
   * the upstream has said anything.
   */
  #beforeSettings: Buffer[] | undefined = [];

  constructor(
    deps: GrpcRelayDeps,
    onClosed: (connection: RelayConnection) => void,
    client: net.Socket,
    upstream: net.Socket,
    head: Buffer,
  ) {
    this.#deps = deps;
    this.#onClosed = onClosed;
    this.#client = client;
    this.#upstream = upstream;
    // A peer not keeping up stops the reads that feed it.
    this.#toClient = new Outbox(client, () => upstream.pause());
    this.#toUpstream = new Outbox(upstream, () => client.pause());
    upstream.write(clientPreface);
    this.#onClientBytes(head.subarray(clientPreface.length));

    client.on("data", (chunk: Buffer) => this.#onClientBytes(chunk));
    upstream.on("data", (chunk: Buffer) => this.#onUpstreamBytes(chunk));
    client.on("drain", () => upstream.resume());
    upstream.on("drain", () => client.resume());
    client.on("error", () => {});
    upstream.on("error", (e: Error) => this.#onUpstreamGone(e.message));
    client.on("close", () => this.#onClientGone());
    upstream.on("close", () => this.#onUpstreamGone("connection closed"));
    client.resume();
  }

  /** Fails every open call with Unavailable and ends both connections. */
  close(reason: string): void {
    if (this.#closed) return;
    for (const stream of this.#streams.values()) this.#fail(stream, Code.Unavailable, reason);
    this.#writeClient(goawayFrame(this.#lastClientStreamId, H2Error.noError));
    this.#shutdown();
  }

  // --- client to upstream --------------------------------------------------

  #onClientBytes(chunk: Buffer): void {
    if (this.#closed) return;
    this.#cork();
    try {
      for (const frame of this.#fromClient.push(chunk)) {
        this.#onClientFrame(frame);
        if (this.#closed) return;
      }
    } catch (e) {
      this.#protocolError(e);
    } finally {
      this.#uncork();
    }
  }

  /**
   * What one read produces goes out in one write per socket: a peer woken
   * by a lone HEADERS frame would read again for the DATA right behind it.
   */
  #cork(): void {
    this.#toClient.hold();
    this.#toUpstream.hold();
  }

  #uncork(): void {
    this.#toClient.release();
    this.#toUpstream.release();
  }

  #onClientFrame(frame: Frame): void {
    this.#clientBlocks.checkOrder(frame);
    const stream = this.#streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.data:
        this.#onClientData(stream, frame);
        return;
      case FrameType.headers:
      case FrameType.continuation: {
        const block = this.#clientBlocks.push(frame);
        if (block !== undefined) this.#onClientHeaders(block);
        return;
      }
      case FrameType.rstStream:
        if (stream === undefined) return;
        if (stream.held === undefined && (stream.toUpstream || stream.toClient)) {
          this.#writeUpstream(frame.raw);
        }
        this.#onClientCancel(stream);
        return;
      case FrameType.windowUpdate:
        // Only for streams the upstream knows: one it never saw is idle there.
        if (frame.streamId === 0 || (stream?.toClient && stream.held === undefined)) {
          this.#writeUpstream(frame.raw);
        }
        return;
      case FrameType.settings:
        this.#writeUpstream(withTableSizeCapped(frame));
        return;
      case FrameType.ping:
      case FrameType.goaway:
        this.#writeUpstream(frame.raw);
        return;
      case FrameType.pushPromise:
        throw new H2ProtocolError("a client sent PUSH_PROMISE");
      default:
      // Unknown frame types are ignored (RFC 9113, section 4.1).
    }
  }

  #onClientData(stream: RelayStream | undefined, frame: Frame): void {
    if (stream === undefined || !stream.toUpstream) {
      // A call the gateway answered itself: give the flow-control credit back.
      this.#creditClient(frame);
      return;
    }
    const data = dataOf(frame);
    stream.requestGuard.accept(data);
    const violation = stream.requestGuard.violation;
    if (violation !== undefined) {
      this.#creditClient(frame);
      this.#fail(stream, violationCode(violation), violation);
      return;
    }
    const ends = (frame.flags & FrameFlag.endStream) !== 0;
    if (stream.held !== undefined && (stream.requestGuard.frames > 0 || ends)) {
      this.#writeUpstream(stream.held);
      stream.held = undefined;
    }
    if (stream.held === undefined) this.#writeUpstream(frame.raw);
    // DATA before the first message header is whole waits with the request headers.
    else stream.held = Buffer.concat([stream.held, frame.raw]);
    if (ends) this.#clientEnded(stream);
  }

  #onClientHeaders(block: HeaderBlockFrames): void {
    const decoded = this.#requestDecoder.decode(blockBytes(block));
    const id = block.streamId;
    if (id > this.#lastClientStreamId && id % 2 === 1) {
      this.#lastClientStreamId = id;
      decoded.derived ??= this.#planRequest(decoded.fields);
      this.#onRequest(id, decoded.derived, block.endStream);
      return;
    }
    // Request trailers (gRPC clients send none, but HTTP/2 allows them).
    const stream = this.#streams.get(id);
    if (stream === undefined || !stream.toUpstream || stream.held !== undefined) return;
    this.#writeUpstream(headersFrames(id, encodeHeaderBlock(decoded.fields), block.endStream));
    if (block.endStream) this.#clientEnded(stream);
  }

  /** What a request's headers decide, worked out once per distinct header block. */
  #planRequest(fields: readonly HeaderField[]): RequestPlan {
    const deps = this.#deps;
    const headers = headerObjectOf(fields);
    const route = deps.fastPath.route(
      firstValue(headers[":method"]),
      firstValue(headers[":path"]),
      headers,
      false,
    );
    if (route === undefined || route.web)
      return { headers, route: undefined, upstreamBlock: undefined };
    const forwarded = upstreamRequestFields(headers, {
      upstream: deps.upstream,
      route,
      contentType: route.contentType,
      dropAuthorization: deps.guard.consumesAuthorization,
    });
    return { headers, route, upstreamBlock: encodeHeaderBlock(forwarded) };
  }

  #onRequest(id: number, plan: RequestPlan, endStream: boolean): void {
    const deps = this.#deps;
    const { route, headers } = plan;
    if (route === undefined || plan.upstreamBlock === undefined) {
      this.#refuseUnrouted(id, headers, endStream);
      return;
    }
    // Per call, even for a repeated block: refusals are counted and logged each time.
    const refused = admitCall(deps, route.method.name, headerReaderOf(headers), "grpc");
    if (refused !== undefined) {
      this.#answer(id, endStream, [], refused.code, refused.rawMessage);
      return;
    }
    const stream: RelayStream = {
      id,
      route,
      started: Date.now(),
      requestGuard: new FrameSizeGuard(deps.maxMessageBytes, requestFrameFlags),
      responseGuard: new FrameSizeGuard(deps.maxMessageBytes, responseFrameFlags),
      held: undefined,
      toUpstream: true,
      toClient: true,
      clientEnded: false,
      responded: false,
      lifetime: undefined,
    };
    this.#streams.set(id, stream);
    stream.lifetime = new CallLifetime(deps.stats, route, () =>
      this.#fail(stream, Code.DeadlineExceeded, "the operation timed out"),
    );
    const frames = headersFrames(id, plan.upstreamBlock, endStream);
    if (endStream) {
      // No body: nothing to check, the call goes upstream now.
      this.#writeUpstream(frames);
      this.#clientEnded(stream);
    } else {
      stream.held = frames;
    }
  }

  /** Answers a request the byte path does not take, as the decoding path would. */
  #refuseUnrouted(id: number, headers: IncomingHttpHeaders, endStream: boolean): void {
    const type = firstValue(headers["content-type"]);
    if (type === undefined || !/^application\/grpc(\+proto)?$/.test(type)) {
      // The connection started as gRPC; other protocols need a connection of their own.
      this.#answerHttp(id, endStream, 415);
      return;
    }
    const encoding = firstValue(headers["grpc-encoding"]);
    if (encoding !== undefined && encoding !== "identity") {
      this.#answer(
        id,
        endStream,
        [["grpc-accept-encoding", "identity"]],
        Code.Unimplemented,
        `the gateway does not accept compressed requests (grpc-encoding ${encoding})`,
      );
      return;
    }
    const timeout = firstValue(headers["grpc-timeout"]);
    if (timeout !== undefined && parseGrpcTimeout(timeout) === undefined) {
      const message = `protocol error: invalid grpc timeout value: ${timeout}`;
      this.#answer(id, endStream, [], Code.InvalidArgument, message);
      return;
    }
    const message = `method not found: ${firstValue(headers[":path"]) ?? ""}`;
    this.#answer(id, endStream, [], Code.Unimplemented, message);
  }

  #onClientCancel(stream: RelayStream): void {
    stream.held = undefined;
    stream.toUpstream = false;
    stream.clientEnded = true;
    if (stream.toClient) {
      stream.toClient = false;
      logClientCancelled(this.#deps.logger, stream.route.method.name, stream.started);
      this.#endCall(stream);
    }
    this.#forgetIfDone(stream);
  }

  #clientEnded(stream: RelayStream): void {
    stream.clientEnded = true;
    stream.toUpstream = false;
    this.#forgetIfDone(stream);
  }

  // --- upstream to client --------------------------------------------------

  #onUpstreamBytes(chunk: Buffer): void {
    if (this.#closed) return;
    this.#cork();
    try {
      for (const frame of this.#fromUpstream.push(chunk)) {
        this.#onUpstreamFrame(frame);
        if (this.#closed) return;
      }
    } catch (e) {
      this.#deps.logger.warn?.("gRPC relay: upstream protocol error", {
        error: e instanceof Error ? e.message : String(e),
      });
      this.close("upstream protocol error");
    } finally {
      this.#uncork();
    }
  }

  #onUpstreamFrame(frame: Frame): void {
    const waiting = this.#beforeSettings;
    if (waiting !== undefined) {
      if (frame.type !== FrameType.settings) {
        throw new H2ProtocolError("the upstream's first frame is not SETTINGS");
      }
      this.#beforeSettings = undefined;
      this.#writeClient(withTableSizeCapped(frame));
      for (const bytes of waiting) this.#writeClient(bytes);
      return;
    }
    this.#upstreamBlocks.checkOrder(frame);
    const stream = this.#streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.data:
        this.#onUpstreamData(stream, frame);
        return;
      case FrameType.headers:
      case FrameType.continuation: {
        const block = this.#upstreamBlocks.push(frame);
        if (block !== undefined) this.#onUpstreamHeaders(block);
        return;
      }
      case FrameType.rstStream:
        if (stream === undefined) return;
        this.#onUpstreamReset(stream, frame);
        return;
      case FrameType.windowUpdate:
        if (frame.streamId === 0 || stream?.toUpstream) this.#writeClient(frame.raw);
        return;
      case FrameType.settings:
        this.#writeClient(withTableSizeCapped(frame));
        return;
      case FrameType.ping:
      case FrameType.goaway:
        this.#writeClient(frame.raw);
        return;
      case FrameType.pushPromise:
        throw new H2ProtocolError("the upstream sent PUSH_PROMISE");
      default:
    }
  }

  #onUpstreamData(stream: RelayStream | undefined, frame: Frame): void {
    if (stream === undefined || !stream.toClient) {
      this.#writeUpstream(creditFor(frame));
      return;
    }
    stream.responseGuard.accept(dataOf(frame));
    const violation = stream.responseGuard.violation;
    if (violation !== undefined) {
      this.#writeUpstream(creditFor(frame));
      this.#fail(stream, violationCode(violation), violation);
      return;
    }
    this.#writeClient(frame.raw);
    if (frame.flags & FrameFlag.endStream) {
      // A body without trailers: the client reports the missing status itself.
      stream.toClient = false;
      this.#logDone(stream, Code.Internal, "protocol error: missing status");
      this.#endCall(stream);
      this.#forgetIfDone(stream);
    }
  }

  #onUpstreamHeaders(block: HeaderBlockFrames): void {
    const decoded = this.#responseDecoder.decode(blockBytes(block));
    const stream = this.#streams.get(block.streamId);
    if (stream === undefined || !stream.toClient) return;
    decoded.derived ??= planResponse(decoded.fields);
    const plan = decoded.derived;
    stream.responded = true;
    this.#writeClient(headersFrames(stream.id, plan.clientBlock, block.endStream));
    if (!block.endStream) return;
    stream.toClient = false;
    const status = plan.grpcStatus;
    this.#logDone(stream, status === undefined ? Code.Internal : Number(status), plan.grpcMessage);
    this.#endCall(stream);
    this.#forgetIfDone(stream);
  }

  #onUpstreamReset(stream: RelayStream, frame: Frame): void {
    const rst = frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) : H2Error.internalError;
    if (!stream.toClient) {
      // The response is complete; the upstream only wants no more request bytes.
      if (stream.toUpstream) this.#writeClient(frame.raw);
      stream.toUpstream = false;
      this.#forgetIfDone(stream);
      return;
    }
    const status = statusOfResetStream(rst);
    this.#fail(stream, status.code, status.message, false);
  }

  // --- answers the gateway makes -------------------------------------------

  /** A trailers-only gRPC answer to a call that never went upstream. */
  #answer(
    id: number,
    clientEnded: boolean,
    extra: HeaderField[],
    code: Code,
    message: string,
  ): void {
    const fields: HeaderField[] = [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ...extra,
      ["grpc-status", String(code)],
      ["grpc-message", encodeGrpcMessage(message)],
    ];
    this.#writeClient(headersFrames(id, encodeHeaderBlock(fields), true));
    if (!clientEnded) this.#writeClient(rstStreamFrame(id, H2Error.noError));
  }

  #answerHttp(id: number, clientEnded: boolean, status: number): void {
    this.#writeClient(headersFrames(id, encodeHeaderBlock([[":status", String(status)]]), true));
    if (!clientEnded) this.#writeClient(rstStreamFrame(id, H2Error.noError));
  }

  /**
   * Ends a forwarded call with an error the gateway makes, cancelling it
   * upstream unless the upstream already ended it.
   */
  #fail(stream: RelayStream, code: Code, message: string, cancelUpstream = true): void {
    if (!stream.toClient) return;
    if (cancelUpstream && stream.held === undefined) {
      this.#writeUpstream(rstStreamFrame(stream.id, H2Error.cancel));
    }
    stream.held = undefined;
    stream.toUpstream = false;
    stream.toClient = false;
    const status: HeaderField[] = [
      ["grpc-status", String(code)],
      ["grpc-message", encodeGrpcMessage(message)],
    ];
    const fields: HeaderField[] = stream.responded
      ? status
      : [[":status", "200"], ["content-type", "application/grpc"], ...status];
    this.#writeClient(headersFrames(stream.id, encodeHeaderBlock(fields), true));
    if (!stream.clientEnded) this.#writeClient(rstStreamFrame(stream.id, H2Error.noError));
    stream.clientEnded = true;
    this.#logDone(stream, code, encodeGrpcMessage(message));
    this.#endCall(stream);
    this.#forgetIfDone(stream);
  }

  // --- bookkeeping ---------------------------------------------------------

  /** The call is over for the client: its timer and stream count go. */
  #endCall(stream: RelayStream): void {
    stream.lifetime?.end();
  }

  #forgetIfDone(stream: RelayStream): void {
    if (!stream.toClient && !stream.toUpstream) this.#streams.delete(stream.id);
  }

  #logDone(stream: RelayStream, code: number, message: unknown): void {
    logCallDone(this.#deps.logger, stream.route.method.name, code, message, stream.started);
  }

  #creditClient(frame: Frame): void {
    if (frame.payload.length > 0) this.#writeClient(windowUpdateFrame(0, frame.payload.length));
  }

  #writeClient(bytes: Buffer): void {
    if (this.#beforeSettings !== undefined) {
      this.#beforeSettings.push(bytes);
      return;
    }
    this.#toClient.write(bytes);
  }

  #writeUpstream(bytes: Buffer): void {
    this.#toUpstream.write(bytes);
  }

  /** The client broke HTTP/2 or HPACK: its calls are cancelled upstream and the connection ends. */
  #protocolError(e: unknown): void {
    this.#deps.logger.warn?.("gRPC relay: client protocol error", {
      error: e instanceof Error ? e.message : String(e),
    });
    // Anything else thrown while reading frames came from the HPACK decoder.
    const errorCode =
      e instanceof H2ProtocolError
        ? H2Error.protocolError
        : e instanceof FrameSizeError
          ? H2Error.frameSizeError
          : H2Error.compressionError;
    for (const stream of this.#streams.values()) {
      if (stream.held === undefined && stream.toUpstream) {
        this.#writeUpstream(rstStreamFrame(stream.id, H2Error.cancel));
      }
      this.#endCall(stream);
    }
    this.#streams.clear();
    this.#writeClient(goawayFrame(this.#lastClientStreamId, errorCode));
    this.#shutdown();
  }

  #onClientGone(): void {
    if (this.#closed) return;
    for (const stream of this.#streams.values()) {
      if (stream.toClient) {
        logClientCancelled(this.#deps.logger, stream.route.method.name, stream.started);
      }
      this.#endCall(stream);
    }
    this.#streams.clear();
    this.#closed = true;
    this.#upstream.destroy();
    this.#onClosed(this);
  }

  #onUpstreamGone(reason: string): void {
    if (this.#closed) return;
    for (const stream of this.#streams.values()) {
      this.#fail(stream, Code.Unavailable, `upstream connection failed: ${reason}`, false);
    }
    this.#writeClient(goawayFrame(this.#lastClientStreamId, H2Error.noError));
    this.#shutdown();
  }

  #shutdown(): void {
    this.#closed = true;
    this.#upstream.destroy();
    const waiting = this.#beforeSettings;
    if (waiting !== undefined) {
      // The upstream never spoke: the client needs a server preface before the rest.
      this.#beforeSettings = undefined;
      this.#toClient.write(encodeFrame(FrameType.settings, 0, 0, Buffer.alloc(0)));
      for (const bytes of waiting) this.#toClient.write(bytes);
    }
    // Inside a read the last frames for the client (GOAWAY, failed calls'
    // trailers) are still held; they must go out before the end.
    this.#toClient.release();
    this.#client.end();
    // A client that does not close its side in time is cut off.
    setTimeout(() => this.#client.destroy(), 1_000).unref();
    this.#onClosed(this);
  }
}

function planResponse(fields: readonly HeaderField[]): ResponsePlan {
  return {
    clientBlock: encodeHeaderBlock(fields),
    grpcStatus: fields.find(([name]) => name === "grpc-status")?.[1],
    grpcMessage: fields.find(([name]) => name === "grpc-message")?.[1],
  };
}

/**
 * A SETTINGS frame as passed on, with SETTINGS_HEADER_TABLE_SIZE at most
 * what the relay's decoders accept: the relay, not the peer, decodes what
 * the other side encodes, so the other side must not use a larger table
 * (a 1 MiB table on both sides ended the connection with COMPRESSION_ERROR).
 */
function withTableSizeCapped(frame: Frame): Buffer {
  // 0x1 on SETTINGS is ACK: an empty frame.
  if (frame.flags & 0x1) return frame.raw;
  const size = headerTableSizeSetting(frame);
  if (size === undefined || size <= maxTableSize) return frame.raw;
  const raw = Buffer.from(frame.raw);
  for (let at = 9; at + 6 <= raw.length; at += 6) {
    if (
      raw.readUInt16BE(at) === settingsHeaderTableSize &&
      raw.readUInt32BE(at + 2) > maxTableSize
    ) {
      raw.writeUInt32BE(maxTableSize, at + 2);
    }
  }
  return raw;
}

/** A DATA frame's data, without padding; nothing when the padding is malformed. */
function dataOf(frame: Frame): Buffer {
  return dataFragment(frame) ?? Buffer.alloc(0);
}

/** The connection-level window credit for a DATA frame the relay dropped. */
function creditFor(frame: Frame): Buffer {
  return frame.payload.length > 0 ? windowUpdateFrame(0, frame.payload.length) : Buffer.alloc(0);
}
