import { Code } from "@connectrpc/connect";

/** Flags a request frame may carry: plain messages only (compressed ones never take the byte paths). */
export const requestFrameFlags: readonly number[] = [0x00];
/**
 * Flags a response frame may carry: plain or compressed messages, relayed
 * as they are; anything else (a forged 0x80 trailer frame) is refused.
 */
export const responseFrameFlags: readonly number[] = [0x00, 0x01];

/** The gRPC code a call ends with when its guard refused the body for `violation`. */
export function violationCode(violation: string): Code {
  return violation.startsWith("protocol") ? Code.Internal : Code.ResourceExhausted;
}

/**
 * Watches a gRPC (or gRPC-Web) body go by as raw bytes and refuses it as
 * soon as a frame announces a message larger than the limit, or carries a
 * flag the direction does not allow. Each frame is one flag byte and a
 * 4-byte big-endian length, then that many bytes: the guard only reads the
 * 5-byte headers, never the messages.
 *
 * `accept(chunk)` returns the bytes that may be forwarded now. A frame
 * header split across chunks is held back until it is whole, so nothing of
 * a frame that turns out to be refused is ever forwarded. After a refusal,
 * `violation` says why and the rest of the body must be dropped.
 */
export class FrameSizeGuard {
  /** Why the body was refused; set once, then every chunk is refused. */
  violation: string | undefined;
  /** Frame headers read so far. */
  frames = 0;
  /** Payload bytes still to come in the current frame. */
  #remaining = 0;
  /** Bytes of a frame header that arrived at the end of a chunk (made on the first split). */
  #header: Buffer | undefined;
  #held = 0;

  constructor(
    private readonly maxMessageBytes: number,
    /** Flag bytes allowed in this direction (0 = uncompressed message). */
    private readonly allowedFlags: readonly number[],
  ) {}

  accept(chunk: Buffer): Buffer {
    if (this.violation !== undefined) return empty;
    const length = chunk.length;
    // Copied out now: the header buffer may take a later partial header.
    const prefix =
      this.#held === 0 ? undefined : Buffer.from((this.#header as Buffer).subarray(0, this.#held));
    let pos = 0;
    // Where the forwardable part of this chunk ends.
    let end = length;
    while (pos < length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, length - pos);
        this.#remaining -= take;
        pos += take;
        continue;
      }
      const start = pos;
      let flags: number;
      let size: number;
      if (this.#held === 0 && length - pos >= 5) {
        flags = chunk[pos] as number;
        size = chunk.readUInt32BE(pos + 1);
        pos += 5;
      } else {
        const take = Math.min(5 - this.#held, length - pos);
        this.#header ??= Buffer.alloc(5);
        const header = this.#header;
        chunk.copy(header, this.#held, pos, pos + take);
        this.#held += take;
        pos += take;
        if (this.#held < 5) {
          // Incomplete header: hold it back with whatever this chunk added
          // (a held prefix stays held too).
          if (start === 0 && prefix !== undefined) return empty;
          end = start;
          break;
        }
        this.#held = 0;
        flags = header[0] as number;
        size = header.readUInt32BE(1);
      }
      this.frames++;
      if (!this.allowedFlags.includes(flags)) {
        this.violation = `protocol error: unexpected frame flags 0x${flags.toString(16)}`;
      } else if (size > this.maxMessageBytes) {
        this.violation = `message size ${size} is larger than the gateway's limit of ${this.maxMessageBytes} bytes`;
      }
      if (this.violation !== undefined) {
        // Forward only the frames before this one; a held header prefix
        // belongs to this frame when the refused frame began in it.
        if (start === 0 && prefix !== undefined) return empty;
        return withPrefix(prefix, chunk.subarray(0, start));
      }
      this.#remaining = size;
    }
    if (prefix === undefined) return end === length ? chunk : chunk.subarray(0, end);
    return withPrefix(prefix, chunk.subarray(0, end));
  }

  /** Bytes held back at the end of the body (a truncated header), to pass on as they are. */
  flush(): Buffer {
    if (this.violation !== undefined) return empty;
    const held = this.#held;
    this.#held = 0;
    return held === 0 ? empty : Buffer.from((this.#header as Buffer).subarray(0, held));
  }
}

const empty = Buffer.alloc(0);

function withPrefix(prefix: Buffer | undefined, rest: Buffer): Buffer {
  return prefix === undefined ? rest : Buffer.concat([prefix, rest]);
}
