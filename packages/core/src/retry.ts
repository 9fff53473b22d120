import { Code, ConnectError } from "@connectrpc/connect";
import { FlameError, isFetchFailure } from "./errors.js";

/**
 * Retry policy for idempotent reads (Get*, List*, and re-subscribing a
 * Watch*). CreateTask, CreateSession and every other write are never
 * retried: a write that reached the server before the connection broke
 * would be repeated.
 */
export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  maxAttempts?: number;
  /** Delay before the first retry (default 50 ms); doubles each time. */
  initialDelayMs?: number;
  /** Upper bound of one delay (default 2000 ms). */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const defaultRetry: RetryPolicy = { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 2000 };

export function resolveRetry(option: RetryOptions | false | undefined): RetryPolicy | undefined {
  if (option === false) return undefined;
  return { ...defaultRetry, ...option };
}

/**
 * Transient failures: the server could not be reached or went away.
 * Node reports a refused connection as Unavailable, a reset one as
 * Aborted; browsers as Unknown "Failed to fetch".
 */
export function isTransient(err: unknown): boolean {
  if (FlameError.is(err)) return err.kind === "unavailable";
  if (!(err instanceof ConnectError)) return false;
  // connect-node reports a connection reset under a call in flight
  // (ECONNRESET) as Aborted; kindOfCode already calls it "unavailable".
  if (err.code === Code.Unavailable || err.code === Code.Aborted) return true;
  return err.code === Code.Unknown && isFetchFailure(err.rawMessage);
}

/**
 * Capped exponential backoff with "equal jitter": half of the capped delay
 * is fixed, half random, so clients that failed together spread out.
 * `attempt` counts from 0.
 */
export function backoffDelay(attempt: number, policy: RetryOptions = defaultRetry): number {
  const initial = policy.initialDelayMs ?? defaultRetry.initialDelayMs;
  const max = policy.maxDelayMs ?? defaultRetry.maxDelayMs;
  const capped = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return capped / 2 + Math.random() * (capped / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, fails with a non-transient error, or
 * the policy's attempts are spent. Without a policy it runs once.
 */
export async function withRetry<T>(
  attempt: (n: number) => Promise<T>,
  policy: RetryPolicy | undefined,
  signal: AbortSignal | undefined,
  onRetry?: (err: unknown, n: number, delayMs: number) => void,
): Promise<T> {
  const max = policy ? Math.max(1, policy.maxAttempts) : 1;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!policy || n + 1 >= max || !isTransient(err) || signal?.aborted) throw err;
      const delay = backoffDelay(n, policy);
      onRetry?.(err, n + 1, delay);
      await sleep(delay, signal);
    }
  }
}
