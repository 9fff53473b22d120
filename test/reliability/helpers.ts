import type { Interceptor } from "@connectrpc/connect";
import { type Task, TaskState } from "@flame-ts/core";

/** Polls until `check` gives something other than undefined/false (bounded; not a timing assertion). */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A promise with its resolve function outside: a gate task handlers wait on. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** The rejection of `promise` (throws if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (err: unknown) => err,
  );
}

const terminal = new Set([TaskState.Succeed, TaskState.Failed, TaskState.Cancelled]);

/**
 * What one watched task's emissions must look like: states only move
 * forward, exactly one terminal state, and it is the last one.
 * Returns a description of the first problem, or undefined.
 */
export function emissionProblem(seen: readonly Task[]): string | undefined {
  const states = seen.map((t) => t.state);
  const terminals = states.filter((s) => terminal.has(s)).length;
  if (terminals !== 1) return `${terminals} terminal emissions: ${states.join(",")}`;
  if (!terminal.has(states.at(-1) as TaskState)) return `last is not terminal: ${states.join(",")}`;
  const rank = (s: TaskState) => (terminal.has(s) ? 2 : s === TaskState.Running ? 1 : 0);
  for (let i = 1; i < states.length; i++) {
    if (rank(states[i] as TaskState) < rank(states[i - 1] as TaskState)) {
      return `went backwards: ${states.join(",")}`;
    }
  }
  return undefined;
}

/** Counts every call the client sends, per method (retries included). */
export function countingInterceptor(sent: Record<string, number>): Interceptor {
  return (next) => (req) => {
    sent[req.method.name] = (sent[req.method.name] ?? 0) + 1;
    return next(req);
  };
}
