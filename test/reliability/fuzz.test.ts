// Property tests with fixed seeds: thousands of generated inputs to
// ResourceRequirement.parse and to the YAML loaders (the Flame context file
// and application specs). The only acceptable outcomes are a value or a
// typed FlameError; a TypeError, a RangeError or a hang fails the test.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FlameError, ResourceRequirement } from "@flame-ts/core";
import { loadApplicationSpec, loadFlameContext } from "@flame-ts/node";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";

const RUNS = 3_000;
const dir = mkdtempSync(join(tmpdir(), "flame-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `f`; a FlameError of `kind` is fine, anything else thrown is returned as a failure. */
function outcome<T>(f: () => T, kind: string): { value?: T; error?: FlameError } {
  try {
    return { value: f() };
  } catch (err) {
    if (!FlameError.is(err, kind as never)) {
      throw new Error(`not a FlameError of kind ${kind}: ${String(err)}`, { cause: err });
    }
    return { error: err };
  }
}

// Words a parser is likely to trip on: its own keys and units, and names
// that live on every object's prototype.
const dictionary = [
  "cpu",
  "mem",
  "memory",
  "gpu",
  "g",
  "gi",
  "gib",
  "Mb",
  "k",
  "p",
  "b",
  "constructor",
  "__proto__",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "NaN",
  "Infinity",
  "-1",
  "1e3",
  "0x10",
  "18446744073709551615",
  "18446744073709551616",
  "9007199254740993",
  "2147483648",
  " ",
  "=",
  ",",
  "\u0000",
  "\u00a0",
  "１",
];

const token = fc.oneof(
  fc.constantFrom(...dictionary),
  fc.nat({ max: 100_000 }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
  fc.string({ maxLength: 6 }),
);
const key = fc.constantFrom("cpu", "mem", "memory", "gpu", " mem ", "CPU");
const entry = fc.oneof(
  // Near-valid: a real key, a number, perhaps a unit or a dictionary word.
  {
    weight: 4,
    arbitrary: fc
      .tuple(key, fc.nat({ max: 5000 }), fc.option(token))
      .map(([k, v, u]) => `${k}=${v}${u ?? ""}`),
  },
  fc.tuple(token, token, token).map(([k, v, u]) => `${k}=${v}${u}`),
  fc.tuple(token, token).map(([k, v]) => `${k}=${v}`),
  token,
);
const resreqText = fc.oneof(
  fc.array(entry, { minLength: 1, maxLength: 4 }).map((es) => es.join(",")),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);

describe("ResourceRequirement.parse", () => {
  it(`gives a value or an invalid-input FlameError for ${RUNS} generated strings`, () => {
    let values = 0;
    let errors = 0;
    fc.assert(
      fc.property(resreqText, (text) => {
        const { value, error } = outcome(() => ResourceRequirement.parse(text), "invalid-input");
        if (error) {
          errors++;
          expect(error.method).toBe("ResourceRequirement.parse");
          return;
        }
        values++;
        const r = value as ResourceRequirement;
        expect(Number.isSafeInteger(r.cpu) && r.cpu >= 0).toBe(true);
        expect(Number.isInteger(r.gpu) && r.gpu >= 0 && r.gpu < 2 ** 31).toBe(true);
        expect(r.memory >= 0n && r.memory < 2n ** 64n).toBe(true);
        expect(ResourceRequirement.parse(r.toString()).equals(r)).toBe(true);
      }),
      { seed: 20261125, numRuns: RUNS },
    );
    // The generator reaches both sides.
    expect(values).toBeGreaterThan(50);
    expect(errors).toBeGreaterThan(50);
  });

  it(`round-trips ${RUNS} valid requirements written in every spelling`, () => {
    const units = ["", "b", "k", "KiB", "m", "Mi", "g", "GB", "t", "tib", "p"];
    fc.assert(
      fc.property(
        fc.nat({ max: 1_000_000 }),
        fc.nat({ max: 16383 }), // 16384 PiB is 2^64: one past uint64
        fc.nat({ max: units.length - 1 }),
        fc.nat({ max: 1000 }),
        fc.constantFrom("mem", "memory"),
        fc.constantFrom("", " ", "  "),
        (cpu, mem, unit, gpu, memKey, pad) => {
          const u = units[unit] as string;
          const text = [`cpu=${cpu}`, `${pad}${memKey}${pad}=${pad}${mem}${u}`, `gpu=${gpu}`].join(
            ",",
          );
          const r = ResourceRequirement.parse(text);
          const power = [["", "b"], ["k", "kib"], ["m", "mi"], ["g", "gb"], ["t", "tib"], ["p"]];
          const exp = power.findIndex((p) => p.includes(u.toLowerCase()));
          expect(r.cpu).toBe(cpu);
          expect(r.gpu).toBe(gpu);
          expect(r.memory).toBe(BigInt(mem) * 1024n ** BigInt(exp));
        },
      ),
      { seed: 7, numRuns: RUNS },
    );
  });
});

// A value of any YAML shape, biased towards the keys the loaders look at.
const yamlKey = fc.oneof(
  fc.constantFrom(
    "current-context",
    "contexts",
    "name",
    "cluster",
    "endpoint",
    "tls",
    "ca_file",
    "cert_file",
    "key_file",
    "workspace",
    "cache",
    "package",
    "runner",
    "metadata",
    "spec",
    "shim",
    "command",
    "arguments",
    "environments",
    "working_directory",
    "max_instances",
    "delay_release",
    "schema",
    "labels",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 8 }),
);
const yamlValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(
      "http://127.0.0.1:8080",
      "https://flame:8080",
      "host",
      "~/ca.pem",
      "Host",
      "wasm",
    ),
    fc.string({ maxLength: 12 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(yamlKey, tie("value"), { maxKeys: 4 }),
  ),
})).value;

// Mostly the right shape with the odd wrong value in it, so that both
// loaded contexts and every kind of refusal are reached.
const some = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: yamlValue });
const contextDoc = fc.record(
  {
    "current-context": some(fc.constantFrom("a", "b")),
    contexts: some(
      fc.array(
        fc.record(
          {
            name: some(fc.constantFrom("a", "b")),
            cluster: some(
              fc.record(
                {
                  endpoint: some(
                    fc.constantFrom("http://127.0.0.1:8080", "https://flame:8080", "ftp://x", ""),
                  ),
                  tls: fc.oneof(fc.record({ ca_file: yamlValue }, { requiredKeys: [] }), yamlValue),
                },
                { requiredKeys: ["endpoint"] },
              ),
            ),
            cache: yamlValue,
            package: yamlValue,
          },
          { requiredKeys: ["name", "cluster"] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
    ),
  },
  { requiredKeys: ["contexts"] },
);

/** YAML text: mostly documents of the right shape, some raw text and broken YAML. */
function yamlText(doc: fc.Arbitrary<unknown>) {
  return fc.oneof(
    { weight: 6, arbitrary: doc.map((d) => stringify(d)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          doc.map((d) => stringify(d)),
          fc.nat(),
          fc.string({ maxLength: 4 }),
        )
        .map(([t, at, junk]) => t.slice(0, at % (t.length + 1)) + junk),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom("a: &x [*x]\n", "- - - -\n", "---\n---\n", "!!binary x"),
    },
  );
}

let fileNo = 0;
function writeTemp(text: string): string {
  const path = join(dir, `f${fileNo++ % 16}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe("YAML loaders", () => {
  it(`loadFlameContext gives a context or an invalid-config FlameError for ${RUNS} files`, () => {
    let ok = 0;
    fc.assert(
      fc.property(
        yamlText(contextDoc),
        fc.option(fc.constantFrom("a", "b", "zz")),
        (text, name) => {
          const path = writeTemp(text);
          const { value, error } = outcome(
            () => loadFlameContext({ path, contextName: name ?? undefined, env: { HOME: dir } }),
            "invalid-config",
          );
          if (error) {
            expect(error.message).toContain(path);
            return;
          }
          ok++;
          expect(typeof value?.endpoint).toBe("string");
          expect(value?.endpoint.length).toBeGreaterThan(0);
        },
      ),
      { seed: 424242, numRuns: RUNS },
    );
    expect(ok).toBeGreaterThan(10);
  });

  it(`loadApplicationSpec gives a spec or an invalid-config FlameError for ${RUNS} files`, () => {
    const manifest = fc.record(
      {
        metadata: fc.oneof(fc.record({ name: fc.oneof(fc.constant("app"), yamlValue) }), yamlValue),
        spec: fc.oneof(fc.dictionary(yamlKey, yamlValue, { maxKeys: 5 }), yamlValue),
      },
      { requiredKeys: [] },
    );
    let ok = 0;
    fc.assert(
      fc.property(yamlText(manifest), (text) => {
        const path = writeTemp(text);
        const { value } = outcome(() => loadApplicationSpec(path), "invalid-config");
        if (value !== undefined) {
          ok++;
          expect(typeof value.name).toBe("string");
        }
      }),
      { seed: 99, numRuns: RUNS },
    );
    expect(ok).toBeGreaterThan(10);
  });
});
