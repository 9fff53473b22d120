import { inputError } from "./errors.js";
import type { ResourceRequirement as ResourceRequirementMessage } from "./gen/flame/v1/types_pb.js";

// Every unit is a power of 1024, as in flame-rs: "g", "gb", "gi" and "gib"
// all mean GiB. The group is the power's letter (none: bytes).
const unitPattern = /^(?:b|([kmgtp])(?:b|i|ib)?)?$/i;
const U64_MAX = 2n ** 64n - 1n;
const I32_MAX = 2 ** 31 - 1;
const digits = /^[0-9]+$/;
const memoryPattern = /^([0-9]+)([a-z]*)$/i;
const method = "ResourceRequirement.parse";

/**
 * What a session asks of each executor: CPUs, memory in bytes (a `bigint`:
 * the wire type is uint64 and 16 PiB does not fit a double exactly), GPUs.
 */
export class ResourceRequirement {
  readonly cpu: number;
  readonly memory: bigint;
  readonly gpu: number;

  constructor(init: { cpu?: number; memory?: bigint | number; gpu?: number } = {}) {
    this.cpu = init.cpu ?? 0;
    this.memory = BigInt(init.memory ?? 0);
    this.gpu = init.gpu ?? 0;
  }

  /**
   * Parses the flame-rs form `"cpu=4,mem=16g,gpu=1"`.
   *
   * - Entries are separated by `,`; each is `key=value`. Whitespace around
   *   entries, keys and values is trimmed.
   * - Keys: `cpu`, `mem` or `memory`, `gpu` (lower case, as flame-rs
   *   matches them). A key given twice: the last one wins. A key left out
   *   is 0 (the server does not fill in defaults for a given resreq).
   * - Values are whole decimal numbers. Memory may end in a unit, any case:
   *   `b`, `k`/`kb`/`ki`/`kib`, `m`/`mb`/`mi`/`mib`, `g`/..., `t`/..., `p`/...,
   *   each a power of 1024.
   *
   * Throws a `FlameError` of kind "invalid-input" naming the bad part for
   * empty input, an empty entry, a missing or second `=`, a missing value,
   * an unknown key, a value that is not a number, an unknown unit, or a
   * value too large for the wire type.
   */
  static parse(text: string): ResourceRequirement {
    if (text.trim() === "") throw inputError("resource requirement is empty", method);
    let cpu = 0;
    let memory = 0n;
    let gpu = 0;
    const entries = text.split(",");
    for (let i = 0; i < entries.length; i++) {
      const entry = (entries[i] as string).trim();
      if (entry === "") {
        throw inputError(`entry ${i + 1} of "${text}" is empty`, method);
      }
      const parts = entry.split("=");
      if (parts.length === 1) throw inputError(`"${entry}" has no "="`, method);
      if (parts.length > 2) throw inputError(`"${entry}" has more than one "="`, method);
      const key = (parts[0] as string).trim();
      const value = (parts[1] as string).trim();
      if (key === "") throw inputError(`"${entry}" has no key`, method);
      if (value === "") throw inputError(`"${key}" has no value`, method);
      switch (key) {
        case "cpu":
          cpu = parseCount(key, value, Number.MAX_SAFE_INTEGER);
          break;
        case "gpu":
          gpu = parseCount(key, value, I32_MAX);
          break;
        case "mem":
        case "memory":
          memory = parseMemory(key, value);
          break;
        default:
          throw inputError(`unknown key "${key}" (expected cpu, mem, memory or gpu)`, method);
      }
    }
    return new ResourceRequirement({ cpu, memory, gpu });
  }

  /** From the wire message. */
  static fromMessage(message: ResourceRequirementMessage): ResourceRequirement {
    return new ResourceRequirement({
      cpu: Number(message.cpu),
      memory: message.memory,
      gpu: message.gpu,
    });
  }

  /** The wire form (init object for `create(ResourceRequirementSchema, ...)`). */
  toMessage(): { cpu: bigint; memory: bigint; gpu: number } {
    return { cpu: BigInt(this.cpu), memory: this.memory, gpu: this.gpu };
  }

  /** `cpu=4,mem=17179869184,gpu=1`: parses back to an equal value. */
  toString(): string {
    return `cpu=${this.cpu},mem=${this.memory},gpu=${this.gpu}`;
  }

  equals(other: ResourceRequirement): boolean {
    return this.cpu === other.cpu && this.memory === other.memory && this.gpu === other.gpu;
  }
}

function parseCount(key: string, value: string, max: number): number {
  if (!digits.test(value))
    throw inputError(`${key} value "${value}" is not a whole number`, method);
  const n = Number(value);
  if (n > max) throw inputError(`${key} value "${value}" is too large`, method);
  return n;
}

function parseMemory(key: string, value: string): bigint {
  const match = memoryPattern.exec(value);
  if (!match) throw inputError(`${key} value "${value}" is not a number with a unit`, method);
  const unit = unitPattern.exec(match[2] as string);
  if (!unit) throw inputError(`${key} value "${value}" has an unknown unit "${match[2]}"`, method);
  const power = BigInt("kmgtp".indexOf((unit[1] ?? " ").toLowerCase()) + 1);
  const bytes = BigInt(match[1] as string) * 1024n ** power;
  if (bytes > U64_MAX) throw inputError(`${key} value "${value}" is too large`, method);
  return bytes;
}
