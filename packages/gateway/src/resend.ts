import { attemptHeader } from "./upstream-pool.js";

/** What {@link resendUnprocessed} needs of the upstream pool. */
export interface UpstreamAttempts {
  nextAttempt(): string;
  settle(attempt: string): boolean;
}

/**
 * Runs `call` (an upstream call sending `headers`) and, if it failed
 * without the upstream processing it (the upstream refused the stream, or
 * its connection got GOAWAY with a last stream id below it), once more.
 * Such a call is safe to send again, whatever it does; another client's
 * resets getting a shared connection GOAWAYed then cost nobody their call.
 * A failure after the upstream took the call is never resent.
 */
export async function resendUnprocessed<T>(
  attempts: UpstreamAttempts,
  headers: Headers,
  signal: AbortSignal,
  call: () => Promise<T>,
): Promise<T> {
  const first = attempts.nextAttempt();
  headers.set(attemptHeader, first);
  try {
    return await call();
  } catch (e) {
    if (!attempts.settle(first) || signal.aborted) throw e;
  } finally {
    attempts.settle(first);
  }
  const second = attempts.nextAttempt();
  headers.set(attemptHeader, second);
  try {
    return await call();
  } finally {
    attempts.settle(second);
  }
}
