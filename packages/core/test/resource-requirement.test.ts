import { describe, expect, it } from "vitest";
import { FlameError, ResourceRequirement } from "../src/index.js";

const KiB = 1024n;
const units: [string, bigint][] = [
  ["", 1n],
  ["b", 1n],
  ["k", KiB],
  ["kb", KiB],
  ["ki", KiB],
  ["kib", KiB],
  ["m", KiB ** 2n],
  ["mb", KiB ** 2n],
  ["mi", KiB ** 2n],
  ["mib", KiB ** 2n],
  ["g", KiB ** 3n],
  ["gb", KiB ** 3n],
  ["gi", KiB ** 3n],
  ["gib", KiB ** 3n],
  ["t", KiB ** 4n],
  ["tb", KiB ** 4n],
  ["ti", KiB ** 4n],
  ["tib", KiB ** 4n],
  ["p", KiB ** 5n],
  ["pb", KiB ** 5n],
  ["pi", KiB ** 5n],
  ["pib", KiB ** 5n],
];

describe("ResourceRequirement.parse accepts", () => {
  it("the flame-rs example", () => {
    const r = ResourceRequirement.parse("cpu=4,mem=16g,gpu=1");
    expect(r.cpu).toBe(4);
    expect(r.memory).toBe(16n * KiB ** 3n);
    expect(r.gpu).toBe(1);
  });

  for (const [unit, factor] of units) {
    for (const spelled of new Set([
      unit,
      unit.toUpperCase(),
      unit.charAt(0).toUpperCase() + unit.slice(1),
    ])) {
      it(`memory unit "${spelled}" as ${factor} bytes`, () => {
        expect(ResourceRequirement.parse(`mem=3${spelled}`).memory).toBe(3n * factor);
      });
    }
  }

  it("mem and memory as the same key", () => {
    expect(ResourceRequirement.parse("memory=2g").memory).toBe(
      ResourceRequirement.parse("mem=2g").memory,
    );
  });

  it("whitespace around entries, keys and values", () => {
    const r = ResourceRequirement.parse("  cpu = 2 ,\tmem= 1gib , gpu =0 ");
    expect(r).toEqual(new ResourceRequirement({ cpu: 2, memory: KiB ** 3n, gpu: 0 }));
  });

  it("missing keys as 0 and a repeated key as the last one", () => {
    expect(ResourceRequirement.parse("gpu=2")).toEqual(
      new ResourceRequirement({ cpu: 0, memory: 0n, gpu: 2 }),
    );
    expect(ResourceRequirement.parse("cpu=1,cpu=3").cpu).toBe(3);
  });

  it("memory beyond 2^53 exactly (bigint)", () => {
    expect(ResourceRequirement.parse("mem=15p").memory).toBe(15n * KiB ** 5n);
    expect(ResourceRequirement.parse("mem=18446744073709551615").memory).toBe(2n ** 64n - 1n);
  });

  it("its own string form back", () => {
    const r = ResourceRequirement.parse("cpu=8,memory=5t,gpu=3");
    expect(ResourceRequirement.parse(r.toString()).equals(r)).toBe(true);
    expect(r.toMessage()).toEqual({ cpu: 8n, memory: 5n * KiB ** 4n, gpu: 3 });
  });
});

const rejects: [string, string, string][] = [
  ["empty input", "", "empty"],
  ["blank input", "   ", "empty"],
  ["an empty entry", "cpu=1,,gpu=1", "entry 2"],
  ["a trailing comma", "cpu=1,", "entry 2"],
  ["a missing =", "cpu", '"cpu" has no "="'],
  ["two =", "cpu=1=2", '"cpu=1=2" has more than one "="'],
  ["a missing value", "cpu=", '"cpu" has no value'],
  ["a missing key", "=4", "has no key"],
  ["an unknown key", "disk=1g", 'unknown key "disk"'],
  ["an upper-case key", "CPU=1", 'unknown key "CPU"'],
  ["a non-number cpu", "cpu=four", 'cpu value "four"'],
  ["a negative cpu", "cpu=-1", 'cpu value "-1"'],
  ["a fractional cpu", "cpu=1.5", 'cpu value "1.5"'],
  ["a non-number gpu", "gpu=x", 'gpu value "x"'],
  ["a too large gpu", "gpu=2147483648", "too large"],
  ["a non-number memory", "mem=lots", 'mem value "lots"'],
  ["a fractional memory", "memory=1.5g", 'memory value "1.5g"'],
  ["an unknown unit", "mem=4x", 'unknown unit "x"'],
  ["a decimal unit", "mem=4gig", 'unknown unit "gig"'],
  ["a unit alone", "mem=g", 'mem value "g"'],
  ["space inside a value", "mem=4 g", 'mem value "4 g"'],
  ["memory beyond u64", "mem=16384p", "too large"],
];

describe("ResourceRequirement.parse rejects", () => {
  for (const [what, input, part] of rejects) {
    it(`${what}: ${JSON.stringify(input)}`, () => {
      let caught: unknown;
      try {
        ResourceRequirement.parse(input);
      } catch (err) {
        caught = err;
      }
      expect(FlameError.is(caught, "invalid-input")).toBe(true);
      expect((caught as FlameError).message).toContain(part);
      expect((caught as FlameError).method).toBe("ResourceRequirement.parse");
    });
  }
});
