import type { TaskContext } from "./options.js";

/** The emulator holds at most this much memory for one flmping task. */
export const FLMPING_MEMORY_CAP = 64 * 1024 * 1024;

interface PingInput {
  duration?: number;
  memory?: number;
}

const parseInput = (input: Uint8Array | undefined): PingInput => {
  if (!input || input.length === 0) return {};
  const text = new TextDecoder().decode(input);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`invalid flmping input: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("invalid flmping input: expected a JSON object");
  }
  const { duration, memory } = parsed as Record<string, unknown>;
  const count = (name: string, value: unknown): number | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new Error(`invalid flmping input: ${name} must be a non-negative number`);
    }
    return Math.floor(value);
  };
  return { duration: count("duration", duration), memory: count("memory", memory) };
};

/**
 * Waits until at least `ms` have passed since `since` (a performance.now()
 * reading). A timer may fire a little early against the clock, so whatever
 * is left is waited for again.
 */
const holdUntil = async (since: number, ms: number, signal: AbortSignal): Promise<void> => {
  for (;;) {
    const left = since + ms - performance.now();
    if (left <= 0) return;
    await sleep(Math.ceil(left), signal);
  }
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(new Error("task aborted"));
    if (ms <= 0) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error("task aborted"));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Flame's built-in ping service: holds `memory` bytes for `duration` ms and
 * reports where and how long it ran, with the values in literal angle brackets
 * (SIZE is the plain byte count: byte-unit's Display in Flame).
 */
export const makeFlmping =
  (hostname: string) =>
  async (task: TaskContext): Promise<Uint8Array> => {
    const { duration = 0, memory = 0 } = parseInput(task.input);
    // A monotonic clock: Date.now() can step, and timers fire against neither exactly.
    const started = performance.now();
    const held = new Uint8Array(Math.min(memory, FLMPING_MEMORY_CAP));
    // Touch each page so the memory is really committed, as the real service does.
    for (let i = 0; i < held.length; i += 4096) held[i] = 1;
    await holdUntil(started, duration, task.signal);
    // Whole milliseconds, floored: never less than the duration asked for.
    const elapsed = Math.floor(performance.now() - started);
    const message = `Completed on <${hostname}> in <${elapsed}> milliseconds with <${memory}> memory`;
    return new TextEncoder().encode(JSON.stringify({ message }));
  };
