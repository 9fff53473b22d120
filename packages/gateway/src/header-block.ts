import type { IncomingHttpHeaders } from "node:http";
import hpack, { type Decompressor } from "hpack.js";

/** One header field, name in lower case; values are byte strings (latin1). */
export type HeaderField = readonly [name: string, value: string];

/** A decoded header block, with room for what a caller works out from its fields. */
export interface DecodedBlock<Derived> {
  readonly fields: readonly HeaderField[];
  /**
   * Free for the caller: anything computed from `fields` alone. A repeat of
   * the same block returns the same object, so the work is done once.
   */
  derived: Derived | undefined;
}

/** Decoded blocks kept for repeats; cleared when full. */
const maxRemembered = 16;

/**
 * Decodes one direction's HPACK header blocks (RFC 7541). A connection has
 * one decoder per direction, fed every header block in order, even those
 * of calls the relay drops: the sender's dynamic table moves with each one.
 * A malformed block throws; the connection cannot be used after that.
 *
 * Calls on one connection mostly repeat their headers, and a sender then
 * sends the same bytes: references to its tables, and literals it does
 * not index (nghttp2 never indexes `:path`). A block that does not change
 * the dynamic table means the same fields for as long as no other kind of
 * block arrives, so those repeats are answered from memory.
 */
export class HeaderBlockDecoder<Derived = never> {
  readonly #decompressor: Decompressor;
  /** execute() reports a malformed block as an "error" event, synchronously. */
  #failure: unknown;
  readonly #remembered = new Map<string, DecodedBlock<Derived>>();

  constructor(maxTableSize: number) {
    this.#decompressor = hpack.decompressor.create({ table: { maxSize: maxTableSize } });
    this.#decompressor.on("error", (e: unknown) => {
      this.#failure = e;
    });
  }

  decode(block: Buffer): DecodedBlock<Derived> {
    const repeatable = leavesTableAlone(block);
    const key = repeatable ? block.toString("latin1") : "";
    if (repeatable) {
      const known = this.#remembered.get(key);
      if (known !== undefined) return known;
    } else {
      // The table may change: what the same bytes mean may change with it.
      this.#remembered.clear();
    }
    const decompressor = this.#decompressor;
    decompressor.write(block);
    decompressor.execute();
    if (this.#failure !== undefined) throw this.#failure;
    const fields: HeaderField[] = [];
    for (let field = decompressor.read(); field !== null; field = decompressor.read()) {
      fields.push([field.name, field.value]);
    }
    const decoded: DecodedBlock<Derived> = { fields, derived: undefined };
    if (repeatable) {
      if (this.#remembered.size >= maxRemembered) this.#remembered.clear();
      this.#remembered.set(key, decoded);
    }
    return decoded;
  }
}

/**
 * True when a block only reads the dynamic table: indexed fields and
 * literals without indexing or never indexed (RFC 7541, section 6), no
 * literal with incremental indexing and no table size update. Strings are
 * skipped by their length, never decoded. False for anything malformed
 * (the decoder then reports it).
 */
function leavesTableAlone(block: Buffer): boolean {
  let at = 0;
  while (at < block.length) {
    const first = block[at] as number;
    if (first & 0x80) {
      at = skipInteger(block, at, 7);
    } else if (first & 0x60) {
      // 01xxxxxx: literal with incremental indexing; 001xxxxx: size update.
      return false;
    } else {
      const nameIndex = first & 0x0f;
      at = skipInteger(block, at, 4);
      if (nameIndex === 0 && at >= 0) at = skipString(block, at);
      if (at >= 0) at = skipString(block, at);
    }
    if (at < 0) return false;
  }
  return true;
}

/** Where an HPACK integer with a `prefixBits`-bit prefix ends; -1 if it runs past the block. */
function skipInteger(block: Buffer, at: number, prefixBits: number): number {
  const limit = (1 << prefixBits) - 1;
  if (((block[at] as number) & limit) < limit) return at + 1;
  // Continuation bytes have the high bit set, except the last; at most 4 (32 bits).
  for (let i = at + 1; i < block.length && i <= at + 5; i++) {
    if (((block[i] as number) & 0x80) === 0) return i + 1;
  }
  return -1;
}

/** Where a string literal (7-bit-prefix length, then the bytes) ends; -1 if past the block. */
function skipString(block: Buffer, at: number): number {
  if (at >= block.length) return -1;
  let length = (block[at] as number) & 0x7f;
  let next = at + 1;
  if (length === 0x7f) {
    let shift = 0;
    for (;;) {
      if (next >= block.length || shift > 28) return -1;
      const byte = block[next++] as number;
      length += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
    }
  }
  const end = next + length;
  return end <= block.length ? end : -1;
}

/**
 * Encodes a header block that touches no dynamic table: it starts by
 * setting the receiver's table size to 0, then sends every field as a
 * literal without indexing (RFC 7541, sections 6.2.2 and 6.3). Blocks the
 * relay writes are therefore independent of each other and of the blocks
 * it drops, so its two sides never need to agree on table state.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  let size = 1;
  for (const [name, value] of fields) {
    // Names and values are byte strings: one byte per character.
    size += 1 + integerSize(name.length) + name.length + integerSize(value.length) + value.length;
  }
  const block = Buffer.allocUnsafe(size);
  block[0] = 0x20;
  let at = 1;
  for (const [name, value] of fields) {
    block[at++] = 0x00;
    at = writeString(block, at, name);
    at = writeString(block, at, value);
  }
  return block;
}

/** A string literal without Huffman coding: 7-bit-prefix length, then the bytes. */
function writeString(block: Buffer, at: number, text: string): number {
  let length = text.length;
  if (length < 127) {
    block[at++] = length;
  } else {
    // An HPACK integer with a 7-bit prefix (RFC 7541, section 5.1).
    block[at++] = 127;
    length -= 127;
    while (length >= 128) {
      block[at++] = (length % 128) + 128;
      length = Math.floor(length / 128);
    }
    block[at++] = length;
  }
  return at + block.write(text, at, "latin1");
}

/** Bytes of the 7-bit-prefix length of a string of `length` bytes. */
function integerSize(length: number): number {
  if (length < 127) return 1;
  let size = 2;
  for (let rest = length - 127; rest >= 128; rest = Math.floor(rest / 128)) size++;
  return size;
}

/** Header fields as Node's header object (repeated names become arrays, as Node does). */
export function headerObjectOf(fields: readonly HeaderField[]): IncomingHttpHeaders {
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
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** HTTP/2 field names: lower-case tokens, or pseudo-headers (RFC 9113, section 8.2). */
const fieldName = /^:?[!#$%&'*+.^_`|~0-9a-z-]+$/;
/** Field values with no control characters but tab (RFC 9110, section 5.5). */
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * True when a field could not be written on as it is: a name that is not
 * a token, or a CR, LF or NUL in a value, which would split an HTTP/1.1
 * head or a gRPC-Web trailer frame into lines of the sender's choosing,
 * and which Node's servers refuse to send.
 */
export function hasMalformedField(fields: readonly HeaderField[]): boolean {
  return fields.some(([name, value]) => !fieldName.test(name) || !fieldValue.test(value));
}
