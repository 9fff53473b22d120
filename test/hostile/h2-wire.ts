// Attacker code: HTTP/2 frames written byte by byte, so the hostile tests
// can send what no well-behaved client library would (floods, malformed
// header blocks, resets at any moment). Nothing here is used to serve.
import * as net from "node:net";

export const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FrameType = {
  data: 0x0,
  headers: 0x1,
  rstStream: 0x3,
  settings: 0x4,
  ping: 0x6,
  goaway: 0x7,
  windowUpdate: 0x8,
  continuation: 0x9,
} as const;

export const Flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4 } as const;

export const ErrorCode = { noError: 0x0, cancel: 0x8 } as const;

export const Setting = {
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
} as const;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const body = payload ?? new Uint8Array(0);
  const head = Buffer.alloc(9);
  head.writeUIntBE(body.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fff_ffff, 5);
  return Buffer.concat([head, body]);
}

export function settings(entries: readonly (readonly [number, number])[] = []): Buffer {
  const payload = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FrameType.settings, 0, 0, payload);
}

export function rstStream(streamId: number, code: number = ErrorCode.cancel): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.rstStream, 0, streamId, payload);
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment);
  return frame(FrameType.windowUpdate, 0, streamId, payload);
}

/** An HPACK integer with an `prefixBits`-bit prefix, the first byte's high bits set to `high`. */
export function hpackInteger(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const bytes = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string | Buffer): Buffer {
  const bytes = typeof text === "string" ? Buffer.from(text, "latin1") : text;
  return Buffer.concat([hpackInteger(bytes.length, 7, 0), bytes]);
}

/** A field as "literal without indexing, new name": no table state on either side. */
export function literalField(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** A field as "literal with incremental indexing, new name": it enters the table at index 62. */
export function indexedLiteralField(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** A reference to table entry `index` (62 is the newest dynamic entry). */
export function indexedField(index: number): Buffer {
  return hpackInteger(index, 7, 0x80);
}

export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.map(([name, value]) => literalField(name, value)));
}

/** The request head of a gRPC call to `method` of Flame's Frontend. */
export function grpcRequestFields(
  method: string,
  authority: string,
  extra: readonly (readonly [string, string])[] = [],
): (readonly [string, string])[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", `/flame.v1.Frontend/${method}`],
    [":authority", authority],
    ["content-type", "application/grpc+proto"],
    ["te", "trailers"],
    ...extra,
  ];
}

/** The header block of a gRPC request to `method` at 127.0.0.1:`port`, with `extra` headers. */
export function grpcRequestHead(
  port: number,
  method: string,
  extra: Readonly<Record<string, string>> = {},
): Buffer {
  return headerBlock(grpcRequestFields(method, `127.0.0.1:${port}`, Object.entries(extra)));
}

/** One gRPC length-prefixed message. */
export function grpcMessage(bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** Splits a stream of bytes into frames. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) break;
      frames.push({
        type: this.pending[3] as number,
        flags: this.pending[4] as number,
        streamId: this.pending.readUInt32BE(5) & 0x7fff_ffff,
        payload: this.pending.subarray(9, 9 + length),
      });
      this.pending = this.pending.subarray(9 + length);
    }
    return frames;
  }
}

export interface Goaway {
  lastStreamId: number;
  errorCode: number;
}

/**
 * A raw HTTP/2 client connection: sends the preface and SETTINGS, ACKs the
 * server's SETTINGS, opens the connection window wide, and records what it
 * reads. Everything else is up to the test.
 */
export class RawH2Connection {
  readonly socket: net.Socket;
  readonly goaways: Goaway[] = [];
  /** Streams the server reset, with their error codes. */
  readonly resets = new Map<number, number>();
  /** Streams the server sent END_STREAM on. */
  readonly ended = new Set<number>();
  serverSettings: Map<number, number> | undefined;
  bytesRead = 0;
  readonly closed: Promise<void>;
  private readonly reader = new FrameReader();
  private readonly listeners = new Set<(frame: Frame) => void>();
  private readonly readListeners = new Set<() => void>();
  private nextId = 1;

  constructor(
    port: number,
    options: { windowUpdates?: boolean; read?: boolean; clientSettings?: Buffer } = {},
  ) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.socket.on("error", () => {});
    this.closed = new Promise((resolve) => this.socket.once("close", () => resolve()));
    const windowUpdates = options.windowUpdates ?? true;
    this.socket.write(
      Buffer.concat([
        preface,
        options.clientSettings ??
          settings(windowUpdates ? [[Setting.initialWindowSize, 0x7fff_ffff]] : []),
        windowUpdates ? windowUpdate(0, 0x7fff_ffff - 65_535) : Buffer.alloc(0),
      ]),
    );
    if (options.read === false) {
      this.socket.pause();
      return;
    }
    this.socket.on("data", (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      for (const f of this.reader.push(chunk)) this.onFrame(f);
      for (const listener of this.readListeners) listener();
    });
  }

  /** A fresh client stream id. */
  streamId(): number {
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  write(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /**
   * Writes, waiting while the socket's buffer is full: until it drains, the
   * connection closes or `patienceMs` passes. Resolves false if the server
   * stopped reading (the buffer did not drain in time).
   */
  async send(bytes: Buffer, patienceMs = 1_000): Promise<boolean> {
    if (this.write(bytes) || this.socket.destroyed) return !this.socket.destroyed;
    return new Promise<boolean>((resolve) => {
      const done = (drained: boolean) => {
        clearTimeout(timer);
        this.socket.off("drain", onDrain);
        this.socket.off("close", onClose);
        resolve(drained);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), patienceMs);
      this.socket.once("drain", onDrain);
      this.socket.once("close", onClose);
    });
  }

  onFrame(f: Frame): void {
    if (f.type === FrameType.settings && (f.flags & Flag.ack) === 0) {
      const values = new Map<number, number>();
      for (let i = 0; i + 6 <= f.payload.length; i += 6) {
        values.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
      }
      this.serverSettings = values;
      this.write(frame(FrameType.settings, Flag.ack, 0));
    } else if (f.type === FrameType.ping && (f.flags & Flag.ack) === 0) {
      this.write(frame(FrameType.ping, Flag.ack, 0, f.payload));
    } else if (f.type === FrameType.goaway) {
      this.goaways.push({
        lastStreamId: f.payload.readUInt32BE(0) & 0x7fff_ffff,
        errorCode: f.payload.readUInt32BE(4),
      });
    } else if (f.type === FrameType.rstStream) {
      this.resets.set(f.streamId, f.payload.readUInt32BE(0));
    }
    if ((f.type === FrameType.data || f.type === FrameType.headers) && f.flags & Flag.endStream) {
      this.ended.add(f.streamId);
    }
    for (const listener of this.listeners) listener(f);
  }

  onEachFrame(listener: (frame: Frame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` after the frames of each read from the socket were handled. */
  onEachRead(listener: () => void): void {
    this.readListeners.add(listener);
  }

  /** Resolves once the server's SETTINGS are in (or the connection is gone). */
  async ready(): Promise<void> {
    while (this.serverSettings === undefined && !this.socket.destroyed) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
