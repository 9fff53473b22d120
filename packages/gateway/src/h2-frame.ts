/**
 * HTTP/2 framing (RFC 9113, section 4): what the gRPC relay needs to read
 * frames off a connection and to write the few it makes itself. Every frame
 * is a 9-byte header (24-bit length, type, flags, 31-bit stream id) and
 * `length` payload bytes.
 */

export const FrameType = {
  data: 0x0,
  headers: 0x1,
  priority: 0x2,
  rstStream: 0x3,
  settings: 0x4,
  pushPromise: 0x5,
  ping: 0x6,
  goaway: 0x7,
  windowUpdate: 0x8,
  continuation: 0x9,
} as const;

export const FrameFlag = {
  endStream: 0x1,
  endHeaders: 0x4,
  padded: 0x8,
  priority: 0x20,
} as const;

/** HTTP/2 error codes (RFC 9113, section 7) the relays send or read. */
export const H2Error = {
  noError: 0x0,
  protocolError: 0x1,
  internalError: 0x2,
  refusedStream: 0x7,
  cancel: 0x8,
  frameSizeError: 0x6,
  compressionError: 0x9,
} as const;

/** A frame announced a length above the reader's limit. */
export class FrameSizeError extends Error {
  override name = "FrameSizeError";
}

/** SETTINGS_HEADER_TABLE_SIZE (RFC 9113, section 6.5.2). */
export const settingsHeaderTableSize = 0x1;

/** The client connection preface, before the client's first SETTINGS frame. */
export const clientPreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** Header and payload, exactly as read: what a verbatim relay writes on. */
  raw: Buffer;
}

/** A connection's frames, cut from its bytes as they arrive. */
export class FrameReader {
  #buffered: Buffer | undefined;

  /**
   * `maxFrameBytes` bounds what one frame may make the reader hold; the
   * protocol's own bound is 16 MiB (a 24-bit length).
   */
  constructor(private readonly maxFrameBytes = 0xffffff) {}

  /** Appends `chunk` and returns every frame now complete, in order. */
  push(chunk: Buffer): Frame[] {
    const bytes = this.#buffered === undefined ? chunk : Buffer.concat([this.#buffered, chunk]);
    const frames: Frame[] = [];
    let at = 0;
    while (bytes.length - at >= 9) {
      const length = bytes.readUIntBE(at, 3);
      if (length > this.maxFrameBytes) {
        throw new FrameSizeError(`a frame of ${length} bytes is larger than ${this.maxFrameBytes}`);
      }
      const end = at + 9 + length;
      if (end > bytes.length) break;
      frames.push({
        type: bytes[at + 3] as number,
        flags: bytes[at + 4] as number,
        streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
        payload: bytes.subarray(at + 9, end),
        raw: bytes.subarray(at, end),
      });
      at = end;
    }
    this.#buffered = at === bytes.length ? undefined : bytes.subarray(at);
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pendingBytes(): number {
    return this.#buffered?.length ?? 0;
  }
}

export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer,
): Buffer {
  const frame = Buffer.allocUnsafe(9 + payload.length);
  frame.writeUIntBE(payload.length, 0, 3);
  frame[3] = type;
  frame[4] = flags;
  frame.writeUInt32BE(streamId, 5);
  payload.copy(frame, 9);
  return frame;
}

export function rstStreamFrame(streamId: number, errorCode: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(errorCode, 0);
  return encodeFrame(FrameType.rstStream, 0, streamId, payload);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return encodeFrame(FrameType.windowUpdate, 0, streamId, payload);
}

export function goawayFrame(lastStreamId: number, errorCode: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(errorCode, 4);
  return encodeFrame(FrameType.goaway, 0, 0, payload);
}

/**
 * HEADERS (and CONTINUATION frames when the block is larger than
 * `maxFrameSize`) carrying one whole header block.
 */
export function headersFrames(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  maxFrameSize = 16_384,
): Buffer {
  const end = endStream ? FrameFlag.endStream : 0;
  if (block.length <= maxFrameSize) {
    return encodeFrame(FrameType.headers, end | FrameFlag.endHeaders, streamId, block);
  }
  const frames: Buffer[] = [];
  for (let at = 0; at < block.length; at += maxFrameSize) {
    const last = at + maxFrameSize >= block.length;
    const piece = block.subarray(at, at + maxFrameSize);
    const type = at === 0 ? FrameType.headers : FrameType.continuation;
    const flags = (at === 0 ? end : 0) | (last ? FrameFlag.endHeaders : 0);
    frames.push(encodeFrame(type, flags, streamId, piece));
  }
  return Buffer.concat(frames);
}

/**
 * The header block fragment of a HEADERS frame: without its padding and
 * priority fields. Undefined when the padding is longer than the frame.
 */
export function headersFragment(frame: Frame): Buffer | undefined {
  let payload = unpadded(frame);
  if (payload === undefined) return undefined;
  if (frame.flags & FrameFlag.priority) {
    if (payload.length < 5) return undefined;
    payload = payload.subarray(5);
  }
  return payload;
}

/** A DATA frame's data, without its padding. Undefined when the padding is longer than the frame. */
export function dataFragment(frame: Frame): Buffer | undefined {
  return unpadded(frame);
}

/** A frame's payload without its padding (PADDED flag); undefined when malformed. */
function unpadded(frame: Frame): Buffer | undefined {
  const payload = frame.payload;
  if (!(frame.flags & FrameFlag.padded)) return payload;
  const padLength = payload[0];
  if (padLength === undefined || padLength >= payload.length) return undefined;
  return payload.subarray(1, payload.length - padLength);
}

/** The SETTINGS_HEADER_TABLE_SIZE a SETTINGS frame (not an ACK) sets, if it sets one. */
export function headerTableSizeSetting(frame: Frame): number | undefined {
  let size: number | undefined;
  const payload = frame.payload;
  for (let at = 0; at + 6 <= payload.length; at += 6) {
    if (payload.readUInt16BE(at) === settingsHeaderTableSize) size = payload.readUInt32BE(at + 2);
  }
  return size;
}

/** A peer broke a rule of HTTP/2 framing. */
export class H2ProtocolError extends Error {
  override name = "H2ProtocolError";
}

/** One header block: the fragments of its HEADERS and CONTINUATION frames. */
export interface HeaderBlockFrames {
  streamId: number;
  /** The HEADERS frame ended the stream. */
  endStream: boolean;
  fragments: Buffer[];
  bytes: number;
}

/** A header block's fragments as one buffer (most blocks are one fragment). */
export function blockBytes(block: HeaderBlockFrames): Buffer {
  const { fragments } = block;
  return fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
}

/**
 * Puts header blocks together from HEADERS and CONTINUATION frames (RFC
 * 9113, section 6.10): no other frame may come between them, and a block
 * may not grow past `maxBytes`. Errors are H2ProtocolErrors.
 */
export class HeaderBlockAssembler {
  #block: HeaderBlockFrames | undefined;

  constructor(private readonly maxBytes: number) {}

  /** Throws when `frame` would interrupt a block being assembled. */
  checkOrder(frame: Frame): void {
    if (this.#block !== undefined && frame.type !== FrameType.continuation) {
      throw new H2ProtocolError("a header block was interrupted");
    }
  }

  /** Adds a HEADERS or CONTINUATION frame; returns the block once it is whole. */
  push(frame: Frame): HeaderBlockFrames | undefined {
    let block = this.#block;
    if (frame.type === FrameType.headers) {
      const fragment = headersFragment(frame);
      if (fragment === undefined || frame.streamId === 0) {
        throw new H2ProtocolError("malformed HEADERS frame");
      }
      block = {
        streamId: frame.streamId,
        endStream: (frame.flags & FrameFlag.endStream) !== 0,
        fragments: [fragment],
        bytes: fragment.length,
      };
    } else {
      if (block === undefined || block.streamId !== frame.streamId) {
        throw new H2ProtocolError("CONTINUATION without its HEADERS");
      }
      block.fragments.push(frame.payload);
      block.bytes += frame.payload.length;
    }
    if (block.bytes > this.maxBytes) {
      throw new H2ProtocolError(`a header block is larger than ${this.maxBytes} bytes`);
    }
    if (frame.flags & FrameFlag.endHeaders) {
      this.#block = undefined;
      return block;
    }
    this.#block = block;
    return undefined;
  }
}
