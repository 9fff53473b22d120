// The service side of the Pi job: what an instance of the `pi` application
// does with one task. Input is JSON `{"samples": N}`, output is JSON
// `{"inside": K}`, K being how many of N random points in the unit square fall
// inside the quarter circle x² + y² ≤ 1. Flame's Rust Pi service computes the
// same thing, so the client works against either.

/** Task input of the `pi` application. */
export interface PiInput {
  samples: number;
}

/** Task output of the `pi` application. */
export interface PiOutput {
  inside: number;
}

/**
 * The most samples one task may ask for. The handler runs on the emulator's
 * event loop, so an absurd number would freeze the process rather than fail.
 */
export const MAX_SAMPLES_PER_TASK = 1_000_000_000;

/** Counts how many of `samples` random points land inside the quarter circle. */
export function countInside(samples: number, random: () => number = Math.random): number {
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = random();
    const y = random();
    if (x * x + y * y <= 1) inside++;
  }
  return inside;
}

/** Reads and validates a task input; throws an Error that says what is wrong. */
export function parsePiInput(input: Uint8Array | undefined): PiInput {
  if (input === undefined || input.byteLength === 0) {
    throw new Error('pi: task input is missing; expected JSON {"samples": N}');
  }
  const text = new TextDecoder().decode(input);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`pi: task input is not JSON: ${preview(text)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`pi: task input must be a JSON object {"samples": N}, got ${preview(text)}`);
  }
  const samples = (value as Record<string, unknown>).samples;
  if (
    typeof samples !== "number" ||
    !Number.isInteger(samples) ||
    samples < 0 ||
    samples > MAX_SAMPLES_PER_TASK
  ) {
    throw new Error(
      `pi: "samples" must be an integer from 0 to ${MAX_SAMPLES_PER_TASK}, got ${JSON.stringify(samples) ?? "nothing"}`,
    );
  }
  return { samples };
}

/**
 * The emulator handler for the `pi` application:
 * `emulator.serve("pi", piHandler)`. A bad input throws, so the task Fails
 * with that message, as it would on a real Flame instance.
 */
export function piHandler({ input }: { input?: Uint8Array | undefined }): Uint8Array {
  const { samples } = parsePiInput(input);
  const output: PiOutput = { inside: countInside(samples) };
  return new TextEncoder().encode(JSON.stringify(output));
}

function preview(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
