import type * as net from "node:net";
import {
  blockBytes,
  clientPreface,
  dataFragment,
  encodeFrame,
  type Frame,
  FrameFlag,
  FrameReader,
  FrameType,
  goawayFrame,
  H2Error,
  H2ProtocolError,
  HeaderBlockAssembler,
  headersFrames,
  rstStreamFrame,
  windowUpdateFrame,
} from "./h2-frame.js";
import { type DecodedBlock, HeaderBlockDecoder } from "./header-block.js";
import { Outbox } from "./outbox.js";

/** What one stream hears from the connection; `Plan` is the caller's per-header-block memo. */
export interface H2StreamListener<Plan> {
  /** A response header block: headers, or trailers when `endStream`. */
  onHeaders(block: DecodedBlock<Plan>, endStream: boolean): void;
  /** Response bytes; hand them back with `consumed()` once passed on. */
  onData(data: Buffer, endStream: boolean): void;
  /** The stream ended without its end: reset by the upstream, or the connection failed. */
  onAbort(reason: StreamAbort): void;
}

/**
 * Why a stream ended early. "unprocessed": the upstream says it never
 * acted on the request (GOAWAY naming an earlier stream as its last, or
 * RST_STREAM with REFUSED_STREAM), so sending it again is safe (RFC 9113,
 * section 8.7).
 */
export type StreamAbort =
  | { kind: "reset"; code: number }
  | { kind: "connection"; message: string }
  | { kind: "unprocessed"; message: string };

/**
 * Keep-alive, checked every `intervalMs`: a connection that read nothing
 * for a whole interval sends a PING, and fails if no byte comes within
 * `timeoutMs`.
 * A connection whose peer vanished (a restart behind a NAT, a dropped
 * route) is otherwise noticed only when TCP gives up, many minutes later,
 * and a quiet stream on it would wait that long.
 */
export interface KeepAlive {
  intervalMs: number;
  timeoutMs: number;
}

/** As connect-node's pool for the byte path is set up. */
export const defaultKeepAlive: KeepAlive = { intervalMs: 30_000, timeoutMs: 15_000 };

export interface H2ConnectionEvents {
  /** The connection is gone (after its open streams heard `onAbort`). */
  onClosed(reason: string): void;
  /** Around each socket read's frames, so the owner can batch its own writes too. */
  beforeRead?(): void;
  afterRead?(): void;
}

/** SETTINGS_* identifiers (RFC 9113, section 6.5.2) the client reads or sends. */
const Setting = {
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
} as const;

/** The receive window of each stream and of the connection. */
const receiveWindow = 1024 * 1024;
/** Credit goes back once this much was consumed: fewer WINDOW_UPDATEs, none for small replies. */
const creditThreshold = receiveWindow / 2;
/** HTTP/2's initial window for both directions until SETTINGS say otherwise. */
const defaultWindow = 65_535;
const maxHeaderBlockBytes = 256 * 1024;
/** Stream ids are 31 bits; a connection is retired before it runs out. */
const lastStreamId = 2 ** 31 - 1;
/** Table size the decoder accepts; the upstream encodes with the default 4096. */
const maxTableSize = 64 * 1024;
/** Time the upstream has to send its SETTINGS once the socket is up. */
const settingsTimeoutMs = 10_000;

/**
 * A client side of one HTTP/2 connection, on frames of our own rather than
 * `node:http2`: the gRPC-Web relay sends each call as a HEADERS frame and
 * DATA frames and reads the response frames straight off the socket, with
 * no stream objects in between. It keeps to HTTP/2's rules for a client:
 * flow control both ways, SETTINGS and PING answered, GOAWAY and resets
 * reported to the streams they end. What one socket read produces is
 * written in one go.
 */
export class H2ClientConnection<Plan> {
  readonly #socket: net.Socket;
  readonly #out: Outbox;
  readonly #reader = new FrameReader();
  readonly #blocks = new HeaderBlockAssembler(maxHeaderBlockBytes);
  readonly #decoder = new HeaderBlockDecoder<Plan>(maxTableSize);
  readonly #streams = new Map<number, H2ClientStream<Plan>>();
  readonly #events: H2ConnectionEvents;
  #nextStreamId = 1;
  #sendWindow = defaultWindow;
  #initialStreamWindow = defaultWindow;
  #maxFrameSize = 16_384;
  /** The upstream's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says). */
  #maxConcurrentStreams = Number.POSITIVE_INFINITY;
  #unacknowledged = 0;
  /** Set once the connection can take no new stream (GOAWAY, failure, close). */
  #closedReason: string | undefined;
  #holding = 0;
  #failed = false;
  /** Something was read since the keep-alive timer last looked. */
  #heard = true;
  /** Set while a keep-alive PING waits for an answer. */
  #pingDeadline: NodeJS.Timeout | undefined;
  readonly #keepAliveTimer: NodeJS.Timeout;
  /** The upstream's first SETTINGS, or the connection's failure before them. */
  readonly #settled: Promise<void>;
  #onSettled: ((error?: Error) => void) | undefined;

  constructor(
    socket: net.Socket,
    events: H2ConnectionEvents,
    keepAlive: KeepAlive = defaultKeepAlive,
  ) {
    this.#socket = socket;
    this.#events = events;
    this.#keepAliveTimer = setInterval(() => this.#checkAlive(keepAlive), keepAlive.intervalMs);
    this.#keepAliveTimer.unref();
    this.#settled = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#fail("the upstream sent no SETTINGS"),
        settingsTimeoutMs,
      );
      timer.unref();
      this.#onSettled = (error) => {
        clearTimeout(timer);
        this.#onSettled = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    // Whoever waits for the SETTINGS hears of a failure; a connection nobody waits on must not
    // turn it into an unhandled rejection.
    this.#settled.catch(() => {});
    this.#out = new Outbox(socket, () => {});
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(Setting.enablePush, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(Setting.initialWindowSize, 6);
    settings.writeUInt32BE(receiveWindow, 8);
    this.#out.write(
      Buffer.concat([
        clientPreface,
        encodeFrame(FrameType.settings, 0, 0, settings),
        windowUpdateFrame(0, receiveWindow - defaultWindow),
      ]),
    );
    socket.on("data", (chunk: Buffer) => this.#onBytes(chunk));
    socket.on("drain", () => {
      for (const stream of this.#streams.values()) stream.flush();
    });
    socket.on("error", (e: Error) => this.#fail(e.message));
    socket.on("close", () => this.#fail("connection closed"));
  }

  /**
   * Resolves once the upstream's SETTINGS are read (its stream limit among
   * them); rejects if the connection fails first.
   */
  get settled(): Promise<void> {
    return this.#settled;
  }

  /** False once the connection takes no more streams. */
  get usable(): boolean {
    return this.#closedReason === undefined && !this.#socket.destroyed;
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  /** Whether one more stream fits: usable, under `softLimit` and the upstream's own limit. */
  hasRoomUnder(softLimit: number): boolean {
    const open = this.#streams.size;
    return (
      this.usable &&
      open < softLimit &&
      open < this.#maxConcurrentStreams &&
      this.#nextStreamId < lastStreamId
    );
  }

  /**
   * Opens a stream with `headerBlock` (HPACK, as `encodeHeaderBlock` makes
   * it). `endStream` sends the request with no body.
   */
  request(
    headerBlock: Buffer,
    endStream: boolean,
    listener: H2StreamListener<Plan>,
  ): H2ClientStream<Plan> {
    if (!this.usable) throw new Error(`the upstream connection is closed: ${this.#closedReason}`);
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new H2ClientStream(this, id, this.#initialStreamWindow, listener);
    this.#streams.set(id, stream);
    this.#out.write(headersFrames(id, headerBlock, endStream, this.#maxFrameSize));
    if (endStream) stream.ended = true;
    return stream;
  }

  /** Gathers what is written until `release()` into one socket write. */
  hold(): void {
    if (this.#holding++ === 0) this.#out.hold();
  }

  release(): void {
    if (--this.#holding === 0) this.#out.release();
  }

  /** Ends the connection politely: GOAWAY, then the socket. Open streams are not told. */
  close(): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#closedReason ??= "closed by the gateway";
    this.#streams.clear();
    this.#out.release();
    this.#out.write(goawayFrame(0, H2Error.noError));
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1_000).unref();
  }

  // --- used by H2ClientStream ----------------------------------------------

  /** Sends as much of `data` as the windows allow; returns the bytes sent. */
  sendData(stream: H2ClientStream<Plan>, data: Buffer, end: boolean): number {
    let sent = 0;
    for (;;) {
      // A window can go below zero (SETTINGS lowering the initial window); an
      // empty DATA frame that ends the stream still fits.
      const room = Math.max(0, Math.min(this.#sendWindow, stream.sendWindow, this.#maxFrameSize));
      const size = Math.min(room, data.length - sent);
      const last = sent + size === data.length;
      if (size <= 0 && !(last && end)) return sent;
      const piece = data.subarray(sent, sent + size);
      this.#out.write(
        encodeFrame(FrameType.data, last && end ? FrameFlag.endStream : 0, stream.id, piece),
      );
      this.#sendWindow -= size;
      stream.sendWindow -= size;
      sent += size;
      if (last) return sent;
    }
  }

  /** Stream-level credit, once a stream's bytes were passed on. */
  consumed(stream: H2ClientStream<Plan>, bytes: number): void {
    stream.unacknowledged += bytes;
    if (stream.unacknowledged >= creditThreshold && !stream.remoteEnded) {
      this.#out.write(windowUpdateFrame(stream.id, stream.unacknowledged));
      stream.unacknowledged = 0;
    }
  }

  /**
   * Connection-level credit goes back as DATA arrives: each stream's own
   * window bounds what it can make the gateway hold, and one slow client
   * must not hold up the other calls on the connection.
   */
  #received(bytes: number): void {
    this.#unacknowledged += bytes;
    if (this.#unacknowledged >= creditThreshold) {
      this.#out.write(windowUpdateFrame(0, this.#unacknowledged));
      this.#unacknowledged = 0;
    }
  }

  reset(stream: H2ClientStream<Plan>, code: number): void {
    // Also after GOAWAY: the upstream still processes the streams it kept.
    if (!this.#failed) this.#out.write(rstStreamFrame(stream.id, code));
    this.#drop(stream);
  }

  forget(stream: H2ClientStream<Plan>): void {
    this.#drop(stream);
  }

  /** A stream is over; a connection that takes no new ones closes with its last. */
  #drop(stream: H2ClientStream<Plan>): void {
    this.#streams.delete(stream.id);
    if (this.#closedReason !== undefined && this.#streams.size === 0 && !this.#failed) {
      this.close();
    }
  }

  get socketFull(): boolean {
    return this.#socket.writableNeedDrain;
  }

  // --- reading -------------------------------------------------------------

  #onBytes(chunk: Buffer): void {
    if (this.#failed) return;
    this.#heard = true;
    if (this.#pingDeadline !== undefined) {
      clearTimeout(this.#pingDeadline);
      this.#pingDeadline = undefined;
    }
    this.hold();
    this.#events.beforeRead?.();
    try {
      for (const frame of this.#reader.push(chunk)) this.#onFrame(frame);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#out.write(goawayFrame(0, H2Error.protocolError));
      this.#out.release();
      this.#fail(`upstream protocol error: ${message}`);
    } finally {
      this.release();
      this.#events.afterRead?.();
    }
  }

  #onFrame(frame: Frame): void {
    this.#blocks.checkOrder(frame);
    const stream = this.#streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.data:
        this.#onData(stream, frame);
        return;
      case FrameType.headers:
      case FrameType.continuation: {
        const block = this.#blocks.push(frame);
        if (block === undefined) return;
        // Every block is decoded, even a forgotten stream's: HPACK state moves with each.
        const decoded = this.#decoder.decode(blockBytes(block));
        const target = this.#streams.get(block.streamId);
        if (target === undefined) return;
        if (block.endStream) this.#remoteEnded(target);
        target.listener.onHeaders(decoded, block.endStream);
        return;
      }
      case FrameType.rstStream:
        if (stream === undefined) return;
        this.#drop(stream);
        stream.listener.onAbort(resetReason(frame));
        return;
      case FrameType.windowUpdate: {
        const increment =
          frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) & 0x7fffffff : 0;
        if (frame.streamId === 0) {
          this.#sendWindow += increment;
          for (const s of this.#streams.values()) s.flush();
        } else if (stream !== undefined) {
          stream.sendWindow += increment;
          stream.flush();
        }
        return;
      }
      case FrameType.settings:
        this.#onSettings(frame);
        return;
      case FrameType.ping:
        if (!(frame.flags & 0x1))
          this.#out.write(encodeFrame(FrameType.ping, 0x1, 0, frame.payload));
        return;
      case FrameType.goaway:
        this.#onGoaway(frame);
        return;
      case FrameType.pushPromise:
        throw new H2ProtocolError("the upstream sent PUSH_PROMISE");
      default:
      // Unknown frame types are ignored (RFC 9113, section 4.1).
    }
  }

  #onData(stream: H2ClientStream<Plan> | undefined, frame: Frame): void {
    const data = dataFragment(frame);
    if (data === undefined) throw new H2ProtocolError("malformed DATA frame");
    const ends = (frame.flags & FrameFlag.endStream) !== 0;
    this.#received(frame.payload.length);
    if (stream === undefined) return; // ended or cancelled already
    // Padding counts against the window but is nobody's to consume.
    const padding = frame.payload.length - data.length;
    if (padding > 0) this.consumed(stream, padding);
    if (ends) this.#remoteEnded(stream);
    stream.listener.onData(data, ends);
  }

  #remoteEnded(stream: H2ClientStream<Plan>): void {
    stream.remoteEnded = true;
    if (stream.ended) this.#drop(stream);
  }

  #onSettings(frame: Frame): void {
    if (frame.flags & 0x1) return;
    const payload = frame.payload;
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const value = payload.readUInt32BE(at + 2);
      switch (payload.readUInt16BE(at)) {
        case Setting.initialWindowSize: {
          const change = value - this.#initialStreamWindow;
          this.#initialStreamWindow = value;
          for (const s of this.#streams.values()) s.sendWindow += change;
          break;
        }
        case Setting.maxFrameSize:
          this.#maxFrameSize = value;
          break;
        case Setting.maxConcurrentStreams:
          this.#maxConcurrentStreams = value;
          break;
        default:
      }
    }
    this.#out.write(encodeFrame(FrameType.settings, 0x1, 0, Buffer.alloc(0)));
    for (const s of this.#streams.values()) s.flush();
    this.#onSettled?.();
  }

  #onGoaway(frame: Frame): void {
    const lastStreamId = frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) & 0x7fffffff : 0;
    const code = frame.payload.length >= 8 ? frame.payload.readUInt32BE(4) : H2Error.noError;
    this.#closedReason ??= `the upstream sent GOAWAY (code 0x${code.toString(16)})`;
    // Streams above the last one were never processed: their callers may send them again.
    for (const stream of [...this.#streams.values()]) {
      if (stream.id <= lastStreamId) continue;
      this.#streams.delete(stream.id);
      stream.listener.onAbort({ kind: "unprocessed", message: this.#closedReason });
    }
    if (this.#streams.size === 0) this.close();
  }

  /** Every `intervalMs`: a PING after a silent period, unless one is already out. */
  #checkAlive(keepAlive: KeepAlive): void {
    if (this.#heard || this.#pingDeadline !== undefined || this.#failed) {
      this.#heard = false;
      return;
    }
    this.#pingDeadline = setTimeout(
      () => this.#fail(`the upstream did not answer a PING within ${keepAlive.timeoutMs} ms`),
      keepAlive.timeoutMs,
    );
    this.#pingDeadline.unref();
    this.#out.write(encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8)));
  }

  #fail(reason: string): void {
    if (this.#failed) return;
    this.#failed = true;
    clearInterval(this.#keepAliveTimer);
    if (this.#pingDeadline !== undefined) clearTimeout(this.#pingDeadline);
    this.#closedReason ??= reason;
    this.#onSettled?.(new Error(reason));
    this.#socket.destroy();
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const stream of streams) stream.listener.onAbort({ kind: "connection", message: reason });
    this.#events.onClosed(reason);
  }
}

function resetReason(frame: Frame): StreamAbort {
  const code = frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) : H2Error.internalError;
  return code === H2Error.refusedStream
    ? { kind: "unprocessed", message: "the upstream refused the stream (REFUSED_STREAM)" }
    : { kind: "reset", code };
}

/** One request on an `H2ClientConnection`. */
export class H2ClientStream<Plan> {
  sendWindow: number;
  unacknowledged = 0;
  /** The request's end went out (END_STREAM sent). */
  ended = false;
  /** The response's end came in. */
  remoteEnded = false;
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #endQueued = false;
  #onFlushed: (() => void) | undefined;

  constructor(
    private readonly connection: H2ClientConnection<Plan>,
    readonly id: number,
    initialWindow: number,
    readonly listener: H2StreamListener<Plan>,
  ) {
    this.sendWindow = initialWindow;
  }

  /** Request bytes not yet sent for want of window. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Sends request bytes (as the windows allow; the rest waits). `end` ends the request. */
  write(data: Buffer, end: boolean): void {
    if (this.ended) return;
    if (this.#queuedBytes > 0 || this.#endQueued) {
      this.#queued.push(data);
      this.#queuedBytes += data.length;
      this.#endQueued ||= end;
      return;
    }
    const sent = this.connection.sendData(this, data, end);
    if (sent < data.length) {
      this.#queued.push(data.subarray(sent));
      this.#queuedBytes += data.length - sent;
      this.#endQueued = end;
    } else if (end) {
      this.#finishRequest();
    }
  }

  /** `onFlushed` runs once the queued request bytes have all gone out. */
  whenFlushed(onFlushed: () => void): void {
    this.#onFlushed = onFlushed;
  }

  /** Sends what waited for window. */
  flush(): void {
    if (this.#queuedBytes === 0 && !this.#endQueued) return;
    const data =
      this.#queued.length === 1 ? (this.#queued[0] as Buffer) : Buffer.concat(this.#queued);
    const sent = this.connection.sendData(this, data, this.#endQueued);
    const rest = data.subarray(sent);
    this.#queued = rest.length > 0 ? [rest] : [];
    this.#queuedBytes = rest.length;
    if (rest.length > 0) return;
    if (this.#endQueued) this.#finishRequest();
    const onFlushed = this.#onFlushed;
    this.#onFlushed = undefined;
    onFlushed?.();
  }

  /** Hands response bytes back to the upstream's flow control. */
  consumed(bytes: number): void {
    if (bytes > 0) this.connection.consumed(this, bytes);
  }

  /** Cancels the stream upstream (RST_STREAM CANCEL) unless it is over. */
  cancel(): void {
    this.#queued = [];
    this.#queuedBytes = 0;
    if (this.ended && this.remoteEnded) return;
    this.ended = true;
    this.remoteEnded = true;
    this.connection.reset(this, H2Error.cancel);
  }

  #finishRequest(): void {
    this.#endQueued = false;
    this.ended = true;
    if (this.remoteEnded) this.connection.forget(this);
  }
}
