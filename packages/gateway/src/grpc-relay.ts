import type { IncomingHttpHeaders } from "node:http";
import * as net from "node:net";
import * as tls from "node:tls";
import { Code } from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import type { CallGuard, HeaderReader } from "./call-guard.js";
import { logCallDone } from "./call-log.js";
import type { FastPath, FastPathRoute } from "./fast-path.js";
import { upstreamRequestHeaderObject } from "./forwarded-headers.js";
import { FrameSizeGuard } from "./frame-size-guard.js";
import type { GatewayStats } from "./gateway-stats.js";
import { codeFromRstCode, encodeGrpcMessage, parseGrpcTimeout } from "./grpc-status.js";
import {
  clientPreface,
  encodeFrame,
  type Frame,
  FrameFlag,
  FrameReader,
  FrameSizeError,
  FrameType,
  goawayFrame,
  H2Error,
  headersFragment,
  headersFrames,
  headerTableSizeSetting,
  rstStreamFrame,
  settingsHeaderTableSize,
  windowUpdateFrame,
} from "./h2-frame.js";
import { encodeHeaderBlock, HeaderBlockDecoder, type HeaderField } from "./header-block.js";
import type { GatewayLogger } from "./logger.js";

export interface GrpcRelayDeps {
  fastPath: FastPath;
  guard: CallGuard;
  logger: GatewayLogger;
  stats: GatewayStats;
  maxMessageBytes: number;
  /** `http://host:port` or `https://host:port`. */
  upstream: URL;
  /** CA for an https upstream. */
  ca: string | undefined;
}

/** How long a new connection may take to send its first request before Node's server takes it. */
const firstRequestWaitMs = 100;
/** Bytes a connection may send before its first request is whole. */
const maxSniffBytes = 256 * 1024;
/** The largest header block (all HEADERS and CONTINUATION frames of one) the relay assembles. */
const maxHeaderBlockBytes = 256 * 1024;
/** Dynamic table size the relay's decoders accept; far above what HTTP/2 peers use (4096). */
const maxTableSize = 64 * 1024;
const upstreamConnectTimeoutMs = 10_000;
/**
 * The largest frame taken from a client. Peers announce 16 KiB
 * (SETTINGS_MAX_FRAME_SIZE) unless they raise it; Node's server would
 * refuse a larger frame at once, and the relay must not buffer one.
 */
const maxClientFrameBytes = 1024 * 1024;

/** Request frames must be plain messages; response frames may be compressed. */
const requestFlags = [0x00];
const responseFlags = [0x00, 0x01];

/**
 * The gRPC relay: HTTP/2 gRPC clients' connections carried frame by frame
 * to a connection of their own to the upstream, instead of through Node's
 * HTTP/2 server and client (whose two stream lifecycles per call cost
 * several times the hop itself).
 *
 * A new HTTP/2 connection is offered here once its preface is seen. The
 * relay waits for its first request; when that is a binary gRPC call to a
 * Frontend method and the upstream is reachable, the connection is relayed
 * from then on. Otherwise (gRPC-Web or Connect over HTTP/2, no request in
 * time, upstream down) it goes to Node's server with every byte read so
 * far, and is served exactly as without the relay.
 *
 * A relayed connection keeps the gateway's rules: every request's header
 * block is decoded and the origin, bearer token, method allowlist, message
 * size limit and deadline apply to each call as on the other paths. Header
 * blocks are re-encoded without the dynamic table in both directions (so
 * the gateway can drop or answer calls itself without desynchronising
 * HPACK state); DATA, SETTINGS, PING, WINDOW_UPDATE and GOAWAY frames pass
 * through as they are, so flow control stays end to end.
 */
export class GrpcRelay {
  readonly #connections = new Set<RelayConnection>();
  readonly #sniffing = new Set<net.Socket>();

  constructor(readonly deps: GrpcRelayDeps) {}

  /** Client connections being relayed right now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Takes an HTTP/2 connection whose first bytes (`head`, the preface or
   * part of it) were already read. `decline` hands it, with every byte read,
   * to Node's HTTP/2 server.
   */
  offer(socket: net.Socket, head: Buffer, decline: (bytes: Buffer) => void): void {
    this.#sniffing.add(socket);
    let seen = head;
    let decided = false;
    const decide = (relay: boolean) => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      const handOver = () => {
        socket.off("error", onGone);
        socket.off("close", onGone);
        this.#sniffing.delete(socket);
        return !socket.destroyed;
      };
      if (!relay) {
        if (handOver()) decline(seen);
        return;
      }
      socket.pause();
      this.#connectUpstream().then(
        (upstream) => {
          if (!handOver()) {
            upstream.destroy();
            return;
          }
          this.#connections.add(new RelayConnection(this, socket, upstream, seen));
        },
        (e: unknown) => {
          this.deps.logger.debug?.("gRPC relay: upstream unreachable, Node's server takes over", {
            error: e instanceof Error ? e.message : String(e),
          });
          if (handOver()) decline(seen);
        },
      );
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const verdict = this.#firstRequestVerdict(seen);
      if (verdict !== undefined) decide(verdict);
    };
    const onGone = () => {
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      this.#sniffing.delete(socket);
      socket.destroy();
    };
    const timer = setTimeout(() => decide(false), firstRequestWaitMs);
    socket.on("data", onData);
    socket.on("error", onGone);
    socket.on("close", onGone);
    const verdict = this.#firstRequestVerdict(seen);
    if (verdict !== undefined) decide(verdict);
  }

  /** Ends every relayed call with Unavailable and closes its connections. */
  close(): void {
    for (const socket of this.#sniffing) socket.destroy();
    this.#sniffing.clear();
    for (const connection of this.#connections) connection.close("the gateway is closing");
  }

  forget(connection: RelayConnection): void {
    this.#connections.delete(connection);
  }

  /**
   * True when the connection's first request is one the relay takes, false
   * when it is not (or the bytes are not HTTP/2 as expected), undefined
   * while the first request is still incomplete.
   */
  #firstRequestVerdict(bytes: Buffer): boolean | undefined {
    if (bytes.length < clientPreface.length) return undefined;
    if (!bytes.subarray(0, clientPreface.length).equals(clientPreface)) return false;
    const frames = new FrameReader().push(bytes.subarray(clientPreface.length));
    const fragments: Buffer[] = [];
    for (const frame of frames) {
      if (fragments.length === 0) {
        if (frame.type !== FrameType.headers) {
          // Only connection-level set-up may come before the first request.
          if (frame.streamId !== 0) return false;
          continue;
        }
        const fragment = headersFragment(frame);
        if (fragment === undefined) return false;
        fragments.push(fragment);
      } else {
        if (frame.type !== FrameType.continuation) return false;
        fragments.push(frame.payload);
      }
      if (frame.flags & FrameFlag.endHeaders) {
        try {
          const { fields } = new HeaderBlockDecoder(maxTableSize).decode(Buffer.concat(fragments));
          const headers = headerObject(fields);
          const route = this.deps.fastPath.route(
            single(headers[":method"]),
            single(headers[":path"]),
            headers,
            false,
          );
          return route !== undefined && !route.web;
        } catch {
          return false;
        }
      }
    }
    return bytes.length > maxSniffBytes ? false : undefined;
  }

  #connectUpstream(): Promise<net.Socket> {
    const url = this.deps.upstream;
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const secure = url.protocol === "https:";
    const port = Number(url.port || (secure ? 443 : 80));
    return new Promise((resolve, reject) => {
      const socket = secure
        ? tls.connect({
            host,
            port,
            servername: net.isIP(host) === 0 ? host : undefined,
            ALPNProtocols: ["h2"],
            ...(this.deps.ca === undefined ? {} : { ca: this.deps.ca }),
          } as tls.ConnectionOptions)
        : net.connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(
        () => fail(new Error("connect timed out")),
        upstreamConnectTimeoutMs,
      );
      const fail = (e: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      socket.once("error", fail);
      socket.once(secure ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        if (secure && (socket as tls.TLSSocket).alpnProtocol !== "h2") {
          fail(new Error("the upstream did not agree to HTTP/2 (ALPN h2)"));
          return;
        }
        resolve(socket);
      });
    });
  }
}

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
  counted: boolean;
  timer: NodeJS.Timeout | undefined;
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

/** A header block being assembled from HEADERS and CONTINUATION frames. */
interface PartialBlock {
  streamId: number;
  endStream: boolean;
  fragments: Buffer[];
  bytes: number;
}

class RelayConnection {
  readonly #relay: GrpcRelay;
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #fromClient = new FrameReader(maxClientFrameBytes);
  readonly #fromUpstream = new FrameReader();
  readonly #requestDecoder = new HeaderBlockDecoder<RequestPlan>(maxTableSize);
  readonly #responseDecoder = new HeaderBlockDecoder<ResponsePlan>(maxTableSize);
  readonly #streams = new Map<number, RelayStream>();
  readonly #toClient: Outbox;
  readonly #toUpstream: Outbox;
  readonly #authority: string;
  readonly #scheme: string;
  #clientBlock: PartialBlock | undefined;
  #upstreamBlock: PartialBlock | undefined;
  #lastClientStreamId = 0;
  #closed = false;
  /**
   * Frames for the client waiting for the upstream's SETTINGS: a server's
   * first frame must be SETTINGS, and the gateway may answer a call before
   * the upstream has said anything.
   */
  #beforeSettings: Buffer[] | undefined = [];

  constructor(relay: GrpcRelay, client: net.Socket, upstream: net.Socket, head: Buffer) {
    this.#relay = relay;
    this.#client = client;
    this.#upstream = upstream;
    // A peer not keeping up stops the reads that feed it.
    this.#toClient = new Outbox(client, () => upstream.pause());
    this.#toUpstream = new Outbox(upstream, () => client.pause());
    this.#authority = relay.deps.upstream.host;
    this.#scheme = relay.deps.upstream.protocol.replace(/:$/, "");
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
    if (this.#clientBlock !== undefined && frame.type !== FrameType.continuation) {
      throw new RelayProtocolError("a header block was interrupted");
    }
    const stream = this.#streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.data:
        this.#onClientData(stream, frame);
        return;
      case FrameType.headers:
      case FrameType.continuation:
        this.#clientBlock = assemble(this.#clientBlock, frame);
        if (frame.flags & FrameFlag.endHeaders) {
          const block = this.#clientBlock;
          this.#clientBlock = undefined;
          this.#onClientHeaders(block);
        }
        return;
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
        throw new RelayProtocolError("a client sent PUSH_PROMISE");
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

  #onClientHeaders(block: PartialBlock): void {
    const decoded = this.#requestDecoder.decode(joined(block.fragments));
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
    const deps = this.#relay.deps;
    const headers = headerObject(fields);
    const route = deps.fastPath.route(
      single(headers[":method"]),
      single(headers[":path"]),
      headers,
      false,
    );
    if (route === undefined || route.web)
      return { headers, route: undefined, upstreamBlock: undefined };
    const out = upstreamRequestHeaderObject(headers, {
      dropAuthorization: deps.guard.consumesAuthorization,
    });
    const forwarded: HeaderField[] = [
      [":method", "POST"],
      [":scheme", this.#scheme],
      [":authority", this.#authority],
      [":path", route.method.path],
      ["content-type", route.contentType],
      ["te", "trailers"],
    ];
    if (route.grpcTimeout !== undefined) forwarded.push(["grpc-timeout", route.grpcTimeout]);
    for (const name in out) {
      const value = out[name];
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined) forwarded.push([name, String(v)]);
      }
    }
    return { headers, route, upstreamBlock: encodeHeaderBlock(forwarded) };
  }

  #onRequest(id: number, plan: RequestPlan, endStream: boolean): void {
    const deps = this.#relay.deps;
    const { route, headers } = plan;
    if (route === undefined || plan.upstreamBlock === undefined) {
      this.#refuseUnrouted(id, headers, endStream);
      return;
    }
    // Per call, even for a repeated block: refusals are counted and logged each time.
    const refused = admitCall(deps, route.method.name, new FieldReader(headers), "grpc");
    if (refused !== undefined) {
      this.#answer(id, endStream, [], refused.code, refused.rawMessage);
      return;
    }
    const stream: RelayStream = {
      id,
      route,
      started: Date.now(),
      requestGuard: new FrameSizeGuard(deps.maxMessageBytes, requestFlags),
      responseGuard: new FrameSizeGuard(deps.maxMessageBytes, responseFlags),
      held: undefined,
      toUpstream: true,
      toClient: true,
      clientEnded: false,
      responded: false,
      counted: false,
      timer: undefined,
    };
    this.#streams.set(id, stream);
    if (route.method.serverStreaming) {
      deps.stats.openStreams++;
      stream.counted = true;
    }
    if (route.timeoutMs !== undefined) {
      // The upstream gets the deadline too; this ends the call here even if it ignores it.
      stream.timer = setTimeout(
        () => this.#fail(stream, Code.DeadlineExceeded, "the operation timed out"),
        route.timeoutMs,
      );
    }
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
    const type = single(headers["content-type"]);
    if (type === undefined || !/^application\/grpc(\+proto)?$/.test(type)) {
      // The connection started as gRPC; other protocols need a connection of their own.
      this.#answerHttp(id, endStream, 415);
      return;
    }
    const encoding = single(headers["grpc-encoding"]);
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
    const timeout = single(headers["grpc-timeout"]);
    if (timeout !== undefined && parseGrpcTimeout(timeout) === undefined) {
      const message = `protocol error: invalid grpc timeout value: ${timeout}`;
      this.#answer(id, endStream, [], Code.InvalidArgument, message);
      return;
    }
    const message = `method not found: ${single(headers[":path"]) ?? ""}`;
    this.#answer(id, endStream, [], Code.Unimplemented, message);
  }

  #onClientCancel(stream: RelayStream): void {
    stream.held = undefined;
    stream.toUpstream = false;
    stream.clientEnded = true;
    if (stream.toClient) {
      stream.toClient = false;
      this.#relay.deps.logger.debug?.("client cancelled", {
        method: stream.route.method.name,
        ms: Date.now() - stream.started,
      });
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
      this.#relay.deps.logger.warn?.("gRPC relay: upstream protocol error", {
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
        throw new RelayProtocolError("the upstream's first frame is not SETTINGS");
      }
      this.#beforeSettings = undefined;
      this.#writeClient(withTableSizeCapped(frame));
      for (const bytes of waiting) this.#writeClient(bytes);
      return;
    }
    if (this.#upstreamBlock !== undefined && frame.type !== FrameType.continuation) {
      throw new RelayProtocolError("a header block was interrupted");
    }
    const stream = this.#streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.data:
        this.#onUpstreamData(stream, frame);
        return;
      case FrameType.headers:
      case FrameType.continuation:
        this.#upstreamBlock = assemble(this.#upstreamBlock, frame);
        if (frame.flags & FrameFlag.endHeaders) {
          const block = this.#upstreamBlock;
          this.#upstreamBlock = undefined;
          this.#onUpstreamHeaders(block);
        }
        return;
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
        throw new RelayProtocolError("the upstream sent PUSH_PROMISE");
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

  #onUpstreamHeaders(block: PartialBlock): void {
    const decoded = this.#responseDecoder.decode(joined(block.fragments));
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
    const [code, message] =
      rst === H2Error.noError
        ? [Code.Unavailable, "upstream stream closed before its status"]
        : [codeFromRstCode(rst), `upstream stream closed with error code 0x${rst.toString(16)}`];
    this.#fail(stream, code, message, false);
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
    if (stream.timer !== undefined) clearTimeout(stream.timer);
    stream.timer = undefined;
    if (stream.counted) {
      stream.counted = false;
      this.#relay.deps.stats.openStreams--;
    }
  }

  #forgetIfDone(stream: RelayStream): void {
    if (!stream.toClient && !stream.toUpstream) this.#streams.delete(stream.id);
  }

  #logDone(stream: RelayStream, code: number, message: unknown): void {
    logCallDone(this.#relay.deps.logger, stream.route.method.name, code, message, stream.started);
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
    this.#relay.deps.logger.warn?.("gRPC relay: client protocol error", {
      error: e instanceof Error ? e.message : String(e),
    });
    // Anything else thrown while reading frames came from the HPACK decoder.
    const errorCode =
      e instanceof RelayProtocolError
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
        this.#relay.deps.logger.debug?.("client cancelled", {
          method: stream.route.method.name,
          ms: Date.now() - stream.started,
        });
      }
      this.#endCall(stream);
    }
    this.#streams.clear();
    this.#closed = true;
    this.#upstream.destroy();
    this.#relay.forget(this);
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
    this.#relay.forget(this);
  }
}

class RelayProtocolError extends Error {}

/**
 * Bytes for one socket. Between `hold()` and `release()` they are
 * gathered and then written at once (one system call instead of one per
 * frame; cheaper than cork's writev for a few small frames).
 */
class Outbox {
  #held: Buffer[] = [];
  #holding = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly onFull: () => void,
  ) {}

  hold(): void {
    this.#holding = true;
  }

  write(bytes: Buffer): void {
    if (this.#holding) this.#held.push(bytes);
    else this.#send(bytes);
  }

  release(): void {
    this.#holding = false;
    const held = this.#held;
    if (held.length === 0) return;
    this.#held = [];
    this.#send(held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held));
  }

  #send(bytes: Buffer): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!socket.write(bytes)) this.onFull();
  }
}

/** Adds a HEADERS or CONTINUATION frame to the header block being assembled. */
function assemble(block: PartialBlock | undefined, frame: Frame): PartialBlock {
  if (frame.type === FrameType.headers) {
    if (block !== undefined) throw new RelayProtocolError("a header block was interrupted");
    const fragment = headersFragment(frame);
    if (fragment === undefined || frame.streamId === 0) {
      throw new RelayProtocolError("malformed HEADERS frame");
    }
    return {
      streamId: frame.streamId,
      endStream: (frame.flags & FrameFlag.endStream) !== 0,
      fragments: [fragment],
      bytes: fragment.length,
    };
  }
  if (block === undefined || block.streamId !== frame.streamId) {
    throw new RelayProtocolError("CONTINUATION without its HEADERS");
  }
  block.fragments.push(frame.payload);
  block.bytes += frame.payload.length;
  if (block.bytes > maxHeaderBlockBytes) {
    throw new RelayProtocolError(`a header block is larger than ${maxHeaderBlockBytes} bytes`);
  }
  return block;
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

/** The fragments of a header block as one buffer (most blocks are one fragment). */
function joined(fragments: readonly Buffer[]): Buffer {
  return fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
}

/** A DATA frame's data, without padding. */
function dataOf(frame: Frame): Buffer {
  if (!(frame.flags & FrameFlag.padded)) return frame.payload;
  const padLength = frame.payload[0] ?? 0;
  return frame.payload.subarray(1, Math.max(1, frame.payload.length - padLength));
}

/** The connection-level window credit for a DATA frame the relay dropped. */
function creditFor(frame: Frame): Buffer {
  return frame.payload.length > 0 ? windowUpdateFrame(0, frame.payload.length) : Buffer.alloc(0);
}

function violationCode(violation: string): Code {
  return violation.startsWith("protocol") ? Code.Internal : Code.ResourceExhausted;
}

/** Header fields as Node's header object (repeated names become arrays, as Node does). */
function headerObject(fields: readonly HeaderField[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of fields) {
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else headers[name] = [seen, value] as never;
  }
  return headers;
}

/** The first value of a header that may repeat. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

class FieldReader implements HeaderReader {
  constructor(private readonly headers: IncomingHttpHeaders) {}
  get(name: string): string | null {
    return single(this.headers[name]) ?? null;
  }
}
