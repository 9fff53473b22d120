import { describe, expect, it } from "vitest";
import { countInside, MAX_SAMPLES_PER_TASK, parsePiInput, piHandler } from "../src/pi-service.js";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as unknown;

describe("pi service handler", () => {
  it("counts points inside the quarter circle within statistical bounds", () => {
    const samples = 100_000;
    const output = decode(piHandler({ input: encode(JSON.stringify({ samples })) }));
    expect(output).toEqual({ inside: expect.any(Number) });
    const { inside } = output as { inside: number };
    expect(Number.isInteger(inside)).toBe(true);
    // inside ~ Binomial(n, π/4): 5 sigma is far beyond chance, yet catches a wrong formula
    // (e.g. x²+y² ≤ 0.5 or counting outside points).
    const p = Math.PI / 4;
    const sigma = Math.sqrt(samples * p * (1 - p));
    expect(Math.abs(inside - samples * p)).toBeLessThan(5 * sigma);
  });

  it("counts exactly with a given random source, boundary included", () => {
    // (0,0) in, (1,0) on the circle counts as in, (1,1) out.
    const points = [0, 0, 1, 0, 1, 1];
    let i = 0;
    expect(countInside(3, () => points[i++]!)).toBe(2);
  });

  it("accepts zero samples", () => {
    expect(decode(piHandler({ input: encode('{"samples":0}') }))).toEqual({ inside: 0 });
  });

  it.each([
    ["no input", undefined, /missing/],
    ["empty input", "", /missing/],
    ["not JSON", "samples=10", /not JSON/],
    ["an array", "[10]", /JSON object/],
    ["null", "null", /JSON object/],
    ["no samples field", '{"n":10}', /"samples" must be an integer/],
    ["negative samples", '{"samples":-1}', /"samples" must be an integer.*-1/],
    ["fractional samples", '{"samples":1.5}', /"samples" must be an integer.*1\.5/],
    ["string samples", '{"samples":"10"}', /"samples" must be an integer.*"10"/],
    ["too many samples", `{"samples":${MAX_SAMPLES_PER_TASK + 1}}`, /"samples" must be an integer/],
  ])("rejects %s with a clear error", (_name, text, message) => {
    const input = text === undefined ? undefined : encode(text);
    expect(() => piHandler({ input })).toThrow(message);
    expect(() => parsePiInput(input)).toThrow(/^pi: /);
  });
});
