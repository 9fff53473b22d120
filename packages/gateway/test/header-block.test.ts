// The relay's HPACK decoding and encoding, checked against hpack.js's own
// compressor and decompressor (RFC 7541): what a peer's dynamic table means
// must be followed exactly, the repeat cache must never answer for a table
// that has moved, and what the relay writes must decode to exactly its input.
import hpack from "hpack.js";
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HeaderBlockDecoder, type HeaderField } from "../src/header-block.js";

/** The part of hpack.js's compressor these tests use (src/hpack.js.d.ts types only what src uses). */
interface Compressor {
  write(fields: { name: string; value: string; huffman?: boolean; neverIndex?: boolean }[]): void;
  read(): Buffer | null;
}
const compressorOf = hpack as unknown as {
  compressor: { create(options: { table: { maxSize: number } }): Compressor };
};

function compressor(maxSize = 4096) {
  const comp = compressorOf.compressor.create({ table: { maxSize } });
  return (fields: readonly HeaderField[], options: { huffman?: boolean } = {}): Buffer => {
    comp.write(fields.map(([name, value]) => ({ name, value, ...options })));
    const chunks: Buffer[] = [];
    for (let chunk = comp.read(); chunk !== null; chunk = comp.read()) chunks.push(chunk);
    return Buffer.concat(chunks);
  };
}

/** Decodes with a fresh hpack.js decompressor, as a peer of the relay would. */
function decodeWithHpackJs(block: Buffer): HeaderField[] {
  const decompressor = hpack.decompressor.create({ table: { maxSize: 4096 } });
  let failure: unknown;
  decompressor.on("error", (e: unknown) => {
    failure = e;
  });
  decompressor.write(block);
  decompressor.execute();
  if (failure !== undefined) throw failure;
  const fields: HeaderField[] = [];
  for (let f = decompressor.read(); f !== null; f = decompressor.read()) {
    // encodeHeaderBlock never marks a field never-indexed.
    expect(f.neverIndex).toBe(false);
    fields.push([f.name, f.value]);
  }
  return fields;
}

/** A request's fields, as a gRPC client sends them, with `extra` after. */
function request(extra: HeaderField[]): HeaderField[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", "127.0.0.1:8080"],
    [":path", "/flame.v1.Frontend/GetTask"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

describe("HeaderBlockDecoder", () => {
  it("follows a sender's dynamic table over many blocks, with Huffman and without", () => {
    const encode = compressor();
    const decoder = new HeaderBlockDecoder(64 * 1024);
    for (let i = 0; i < 200; i++) {
      const fields = request([
        ["x-request-id", `req-${i}`],
        // Repeats every 7 blocks: later blocks refer to the table for it.
        ["x-tenant", `tenant-${i % 7}`],
        ["user-agent", "grpc-node/1.0"],
      ]);
      const block = encode(fields, { huffman: i % 2 === 0 });
      expect(decoder.decode(block).fields).toEqual(fields);
    }
  });

  it("follows evictions: long values through a 4096-byte table, and a small table", () => {
    for (const tableSize of [4096, 256]) {
      const encode = compressor(tableSize);
      // The relay's decoders allow more than peers use; the sender's table decides.
      const decoder = new HeaderBlockDecoder(64 * 1024);
      // Twenty 1.5 KB values go through: the sender evicts, many times.
      for (let i = 0; i < 60; i++) {
        const fields = request([
          ["x-long", `${String(i).padStart(4, "0")}${"v".repeat(i % 3 === 0 ? 1500 : 90)}`],
          ["x-request-id", `req-${i}`],
          // Old values come back: indexed while still in the table, literals once evicted.
          ["x-back", `back-${i % 5}`],
        ]);
        expect(decoder.decode(encode(fields)).fields, `block ${i}, table ${tableSize}`).toEqual(
          fields,
        );
      }
    }
  });

  it("decodes latin1 bytes 0x80-0xff in values as one character per byte", () => {
    const encode = compressor();
    const decoder = new HeaderBlockDecoder(4096);
    const value = Buffer.from([0x80, 0xa9, 0xe9, 0xff, 0x41]).toString("latin1");
    const fields: HeaderField[] = [["x-bytes", value]];
    expect(decoder.decode(encode(fields)).fields).toEqual(fields);
    expect(decoder.decode(encode(fields)).fields).toEqual(fields);
  });

  it("answers a repeat of a block that leaves the table alone from memory", () => {
    const encode = compressor();
    const decoder = new HeaderBlockDecoder<string>(4096);
    const fields = request([["x-request-id", "same"]]);
    // First time the fields go into the table; the second block only refers to them.
    expect(decoder.decode(encode(fields)).fields).toEqual(fields);
    const repeat = encode(fields);
    expect(encode(fields).equals(repeat)).toBe(true);
    const first = decoder.decode(repeat);
    first.derived = "worked out once";
    const again = decoder.decode(repeat);
    expect(again).toBe(first);
    expect(again.derived).toBe("worked out once");
    expect(again.fields).toEqual(fields);
  });

  it("decodes the same bytes afresh once the dynamic table has changed", () => {
    const decoder = new HeaderBlockDecoder<string>(4096);
    // 0x40: literal with incremental indexing, new name; 0xbe: indexed field 62,
    // the newest dynamic entry.
    const insert = (name: string, value: string) =>
      Buffer.concat([
        Buffer.from([0x40, name.length]),
        Buffer.from(name, "latin1"),
        Buffer.from([value.length]),
        Buffer.from(value, "latin1"),
      ]);
    const newest = Buffer.from([0xbe]);
    const secondNewest = Buffer.from([0xbf]);

    expect(decoder.decode(insert("x-a", "1")).fields).toEqual([["x-a", "1"]]);
    const before = decoder.decode(newest);
    before.derived = "x-a";
    expect(before.fields).toEqual([["x-a", "1"]]);
    expect(decoder.decode(newest)).toBe(before);

    expect(decoder.decode(insert("x-b", "2")).fields).toEqual([["x-b", "2"]]);
    const after = decoder.decode(newest);
    expect(after.fields).toEqual([["x-b", "2"]]);
    expect(after.derived).toBeUndefined();
    expect(decoder.decode(secondNewest).fields).toEqual([["x-a", "1"]]);

    // A table size update changes the table too: 0x3f 0xe1 0x1f sets 4096 after
    // 0x20 emptied it, so entry 62 is gone and the same byte is now malformed.
    expect(decoder.decode(newest).fields).toEqual([["x-b", "2"]]);
    expect(decoder.decode(Buffer.from([0x20, 0x3f, 0xe1, 0x1f])).fields).toEqual([]);
    expect(() => decoder.decode(newest)).toThrow();
  });

  it("decodes afresh after an eviction made by a block from hpack.js's compressor", () => {
    // A 60-byte table holds one 38-byte entry: each insertion evicts the last.
    const encode = compressor(60);
    const decoder = new HeaderBlockDecoder(60);
    const one: HeaderField[] = [["x-k", "one"]];
    const two: HeaderField[] = [["x-k", "two"]];
    decoder.decode(encode(one));
    const refOne = encode(one);
    expect(refOne.equals(Buffer.from([0xbe]))).toBe(true);
    expect(decoder.decode(refOne).fields).toEqual(one);
    decoder.decode(encode(two));
    const refTwo = encode(two);
    // The very same byte, meaning another field now.
    expect(refTwo.equals(refOne)).toBe(true);
    expect(decoder.decode(refTwo).fields).toEqual(two);
  });

  it.each([
    ["an index of 0", [0x80]],
    ["an index past both tables", [0xbe]],
    ["a string longer than the block", [0x40, 0x05, 0x61]],
    ["an integer cut short", [0xff, 0x80]],
    ["a literal name cut short", [0x00, 0x03, 0x61]],
    ["a table size above the decoder's maximum", [0x3f, 0xe1, 0xff, 0x03]],
  ])("throws on a malformed block: %s", (_, bytes) => {
    const decoder = new HeaderBlockDecoder(4096);
    expect(() => decoder.decode(Buffer.from(bytes))).toThrow();
  });
});

describe("encodeHeaderBlock", () => {
  const latin1 = Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)).toString("latin1");
  const fields: HeaderField[] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["x-empty", ""],
    ["x-latin1", latin1],
    ["x-126", "a".repeat(126)],
    ["x-127", "b".repeat(127)],
    ["x-128", "c".repeat(128)],
    ["x-254", "d".repeat(254)],
    ["x-255", "e".repeat(255)],
    ["x-16510", "f".repeat(16_510)],
    ["x-16511", "g".repeat(16_511)],
    [`x-${"n".repeat(200)}`, "a long name"],
    ["grpc-message", "caf%C3%A9 ok"],
  ];

  it("decodes with hpack.js to exactly its input, in order, with multi-byte lengths", () => {
    const block = encodeHeaderBlock(fields);
    expect(decodeWithHpackJs(block)).toEqual(fields);
    // No bytes left over: the size is worked out exactly before writing.
    const exact = 1 + fields.reduce((n, [name, value]) => n + 1 + len(name) + len(value), 0);
    expect(block.length).toBe(exact);
  });

  it("touches no dynamic table: it empties it first and indexes nothing", () => {
    const block = encodeHeaderBlock([["x-a", "1"]]);
    // A table size update to 0, then a literal without indexing and a raw name.
    expect([...block]).toEqual([0x20, 0x00, 3, 0x78, 0x2d, 0x61, 1, 0x31]);

    // A decoder with entries from an earlier block loses them, and gains none.
    const encode = compressor();
    const decoder = new HeaderBlockDecoder(4096);
    decoder.decode(encode([["x-old", "1"]]));
    expect(decoder.decode(Buffer.from([0xbe])).fields).toEqual([["x-old", "1"]]);
    expect(decoder.decode(encodeHeaderBlock(fields)).fields).toEqual(fields);
    expect(() => decoder.decode(Buffer.from([0xbe]))).toThrow();
  });

  it("is read the same by the relay's own decoder, again and again", () => {
    const decoder = new HeaderBlockDecoder(64 * 1024);
    for (let i = 0; i < 3; i++) {
      expect(decoder.decode(encodeHeaderBlock(fields)).fields).toEqual(fields);
    }
    expect(decoder.decode(encodeHeaderBlock([])).fields).toEqual([]);
  });
});

/** Bytes of an HPACK string literal of `text` without Huffman: length prefix and bytes. */
function len(text: string): number {
  let prefix = 1;
  if (text.length >= 127) {
    for (let rest = text.length - 127; ; rest >>= 7) {
      prefix++;
      if (rest < 128) break;
    }
  }
  return prefix + text.length;
}
