import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions } from "../call-options.js";
import { FlameError, toFlameError } from "../errors.js";
import type { Frontend } from "../gen/flame/v1/frontend_pb.js";
import type { Logger } from "../logger.js";
import type { RetryPolicy } from "../retry.js";
import { withRetry } from "../retry.js";
import { Scope } from "./scope.js";

/** What Connect's generated client accepts per call. */
export interface WireCallOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  headers?: HeadersInit | undefined;
}

/**
 * The plumbing shared by a Connection and its Sessions: the raw client,
 * the default deadline, retries, the logger, and the signal that aborts
 * everything when the connection closes.
 */
export class Rpc {
  /** Parent of every call and subscription: aborted by `close()`. */
  readonly root = new Scope();
  closed = false;

  constructor(
    readonly client: Client<typeof Frontend>,
    readonly timeoutMs: number,
    readonly retry: RetryPolicy | undefined,
    readonly logger: Logger,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.root.abort(closedError());
  }

  /** A scope for one piece of work, under the connection, linked to the caller's signal. */
  scope(options?: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined }): Scope {
    return this.root.child(options?.signal, options?.timeoutMs);
  }

  assertOpen(method: string): void {
    if (this.closed) throw closedError(method);
  }

  /**
   * A unary call (or a finite stream collected into one value). Idempotent
   * reads are retried on transient failures within one overall deadline;
   * everything else runs exactly once. Errors come out as FlameError.
   */
  async unary<T>(
    method: string,
    call: (options: WireCallOptions) => Promise<T>,
    options: (CallOptions & { scope?: Scope | undefined }) | undefined,
    idempotent: boolean,
    defaultTimeoutMs: number | undefined = this.timeoutMs,
  ): Promise<T> {
    this.assertOpen(method);
    const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
    const deadline = timeoutMs !== undefined && timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
    const scope = (options?.scope ?? this.root).child(options?.signal);
    const headers = options?.headers;
    try {
      return await withRetry(
        () => {
          const remaining = deadline === undefined ? undefined : deadline - Date.now();
          if (remaining !== undefined && remaining <= 0) {
            throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
          }
          this.logger.debug("call", { method });
          return call({ signal: scope.signal, timeoutMs: remaining, headers }).catch((err) => {
            throw spuriousCancel(err, scope.signal);
          });
        },
        idempotent ? this.retry : undefined,
        scope.signal,
        (err, attempt, delayMs) =>
          this.logger.warn("retrying", {
            method,
            attempt,
            delayMs: Math.round(delayMs),
            error: String((err as Error)?.message ?? err),
          }),
      );
    } catch (err) {
      if (this.closed) throw closedError(method, err);
      const error = toFlameError(err, method);
      this.logger.debug("call failed", { method, kind: error.kind });
      throw error;
    } finally {
      scope.done();
    }
  }
}

/**
 * A stream reset with CANCEL that we did not ask for is the connection
 * breaking under us (connect-node reports a socket that died between calls
 * this way): Unavailable, so reads retry and the kind says what happened.
 */
export function spuriousCancel(err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return err;
  if (err instanceof ConnectError && err.code === Code.Canceled) {
    return new ConnectError(err.rawMessage, Code.Unavailable, err.metadata, undefined, err);
  }
  return err;
}

export function closedError(method?: string, cause?: unknown): FlameError {
  const what = method ? `${method} failed: ` : "";
  return new FlameError(`${what}the connection is closed`, {
    kind: "cancelled",
    method,
    cause,
  });
}

export function noop(): void {}
