import { describe, expect, it } from "vitest";
import { codecs, FlameError } from "../src/index.js";

describe("codecs", () => {
  it("bytes passes bytes through untouched", () => {
    const b = new Uint8Array([0, 255, 7]);
    expect(codecs.bytes.input.encode(b)).toBe(b);
    expect(codecs.bytes.output.decode(b)).toBe(b);
  });

  it("string is UTF-8 both ways", () => {
    const bytes = codecs.string.input.encode("π ≈ 3.14");
    expect(Array.from(bytes.slice(0, 2))).toEqual([0xcf, 0x80]);
    expect(codecs.string.output.decode(bytes)).toBe("π ≈ 3.14");
  });

  it("string rejects invalid UTF-8 with an invalid-input FlameError", () => {
    expect(() => codecs.string.output.decode(new Uint8Array([0xff, 0xfe]))).toThrow(
      /not valid UTF-8/,
    );
    try {
      codecs.string.output.decode(new Uint8Array([0xc3]));
    } catch (err) {
      expect(FlameError.is(err, "invalid-input")).toBe(true);
    }
  });

  it("json round-trips values as UTF-8 JSON text", () => {
    const codec = codecs.json<{ n: number }, { pi: number }>();
    const bytes = codec.input.encode({ n: 3 });
    expect(new TextDecoder().decode(bytes)).toBe('{"n":3}');
    expect(codec.output.decode(new TextEncoder().encode('{"pi":3.14}'))).toEqual({ pi: 3.14 });
  });

  it("json rejects bytes that are not JSON, and values JSON cannot hold", () => {
    const codec = codecs.json();
    expect(() => codec.output.decode(new TextEncoder().encode("{nope"))).toThrow(/not valid JSON/);
    expect(() => codec.input.encode(undefined)).toThrow(/cannot be encoded/);
  });

  it("json<>() reuses one instance (no allocation per call)", () => {
    expect(codecs.json()).toBe(codecs.json());
  });
});
