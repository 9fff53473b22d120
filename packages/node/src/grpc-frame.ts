import { Code, ConnectError } from "@connectrpc/connect";

/** Bytes before each gRPC message: a flag byte and a 4-byte big-endian length. */
export const FRAME_HEADER_BYTES = 5;

/**
 * One gRPC length-prefixed message: `0x00` (not compressed), the length as
 * 4 bytes big-endian, then the bytes. One allocation, one copy.
 */
export function encodeFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, FRAME_HEADER_BYTES);
  return frame;
}

/** The error for a message bigger than the configured limit (the wording connect-es uses). */
export function messageTooLarge(size: number, limit: number, which: "read" | "write") {
  return new ConnectError(
    `message size ${size} is larger than configured ${which}MaxBytes ${limit}`,
    Code.ResourceExhausted,
  );
}

/**
 * Splits a response body, as it arrives in DATA chunks of any size, into
 * gRPC messages. A message inside one chunk is handed on as a view of that
 * chunk (no copy); only a message split across chunks is reassembled.
 *
 * A subclass (the call) receives each message in `onFrame` and the first
 * problem in `onFrameError`; after an error the reader ignores further input.
 * Fields are plain (no per-reader closures), since one reader lives per call.
 */
export abstract class FrameReader {
  /** Header bytes of a frame whose 5-byte header was split across chunks. */
  private head: Uint8Array | undefined;
  private headFilled = 0;
  /** The message being reassembled, and how much of it has arrived. */
  private partial: Uint8Array | undefined;
  private partialFilled = 0;
  private broken = false;

  constructor(protected readonly readMaxBytes: number) {}

  protected abstract onFrame(message: Uint8Array): void;
  protected abstract onFrameError(error: ConnectError): void;

  /** Feed one chunk of the body. */
  protected pushChunk(chunk: Uint8Array): void {
    if (this.broken) return;
    let offset = 0;
    const end = chunk.byteLength;
    while (offset < end) {
      const partial = this.partial;
      if (partial !== undefined) {
        const take = Math.min(partial.byteLength - this.partialFilled, end - offset);
        partial.set(chunk.subarray(offset, offset + take), this.partialFilled);
        this.partialFilled += take;
        offset += take;
        if (this.partialFilled === partial.byteLength) {
          this.partial = undefined;
          this.partialFilled = 0;
          this.onFrame(partial);
          if (this.broken) return;
        }
        continue;
      }
      let flags: number;
      let length: number;
      if (this.headFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        flags = chunk[offset] as number;
        length =
          (((chunk[offset + 1] as number) << 24) >>> 0) +
          ((chunk[offset + 2] as number) << 16) +
          ((chunk[offset + 3] as number) << 8) +
          (chunk[offset + 4] as number);
        offset += FRAME_HEADER_BYTES;
      } else {
        // The header itself is split: collect its 5 bytes first.
        const head = this.head ?? new Uint8Array(FRAME_HEADER_BYTES);
        this.head = head;
        while (this.headFilled < FRAME_HEADER_BYTES && offset < end) {
          head[this.headFilled++] = chunk[offset++] as number;
        }
        if (this.headFilled < FRAME_HEADER_BYTES) return;
        this.headFilled = 0;
        flags = head[0] as number;
        length =
          (((head[1] as number) << 24) >>> 0) +
          ((head[2] as number) << 16) +
          ((head[3] as number) << 8) +
          (head[4] as number);
      }
      if (!this.checkHeader(flags, length)) return;
      if (end - offset >= length) {
        const message = chunk.subarray(offset, offset + length);
        offset += length;
        this.onFrame(message);
        if (this.broken) return;
      } else {
        this.partial = new Uint8Array(length);
        this.partialFilled = 0;
      }
    }
  }

  /**
   * The body ended. A frame cut short is a protocol error; returns false
   * (after reporting it) in that case.
   */
  protected endOfFrames(): boolean {
    if (this.broken) return false;
    if (this.partial !== undefined) {
      this.frameFail(
        new ConnectError(
          `protocol error: incomplete message, promised ${this.partial.byteLength} bytes, received ${this.partialFilled}`,
          Code.Internal,
        ),
      );
      return false;
    }
    if (this.headFilled > 0) {
      this.frameFail(new ConnectError("protocol error: incomplete message header", Code.Internal));
      return false;
    }
    return true;
  }

  /** Stop reading frames (the call ended some other way). */
  protected stopFrames(): void {
    this.broken = true;
    this.partial = undefined;
  }

  private checkHeader(flags: number, length: number): boolean {
    if (flags !== 0) {
      // We never offer compression (no grpc-accept-encoding), so a
      // compressed message, or any other flag, is the server's mistake.
      this.frameFail(
        new ConnectError(
          (flags & 1) === 1
            ? "protocol error: received a compressed message, but no compression was negotiated"
            : `protocol error: invalid message flags 0x${flags.toString(16)}`,
          Code.Internal,
        ),
      );
      return false;
    }
    if (length > this.readMaxBytes) {
      this.frameFail(messageTooLarge(length, this.readMaxBytes, "read"));
      return false;
    }
    return true;
  }

  private frameFail(error: ConnectError): void {
    this.stopFrames();
    this.onFrameError(error);
  }
}
