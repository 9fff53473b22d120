import type { Interceptor } from "@connectrpc/connect";
import { type Task, TaskState } from "@flame-ts/core";

import { waitFor as waitForShared } from "../support/async.js";

export { gate, rejection } from "../support/async.js";

/** `waitFor` with a longer limit: these tests drive 1,000s of tasks on 2 cores. */
export const waitFor = <T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  timeoutMs = 20_000,
): Promise<T> => waitForShared(check, what, timeoutMs);

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
