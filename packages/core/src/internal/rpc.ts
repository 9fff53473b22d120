import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions } from "../call-options.js";
import { FlameError, toFlameError } from "../errors.js";
import type { Frontend } from "../gen/flame/v1/frontend_pb.js";
import type { Logger } from "../logger.js";
import type { RetryPolicy } from "../retry.js";
import { backoffDelay, isTransient, sleep, withRetry } from "../retry.js";
import { flameMaxRequestBytes } from "./request-size.js";
import { Scope } from "./scope.js";
import type { WatchOptions } from "./watch-hub.js";

const maxUses = 8;
const maxIdle = 256;

/** When a call must end, and whether the server is told (grpc-timeout). */
interface Deadline {
  at: number;
  onWire: boolean;
}

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
  /** Largest request sent (ConnectionOptions `maxRequestBytes`). */
  maxRequestBytes = flameMaxRequestBytes;
  /** ConnectionOptions `watch`, read by the watch hub when it is first needed. */
  watchOptions: WatchOptions | undefined;
  /** ConnectionOptions `bindCheckMs`, read by the bind watch when it is first needed. */
  bindCheckMs: number | undefined;

  constructor(
    readonly client: Client<typeof Frontend>,
    readonly timeoutMs: number,
    readonly retry: RetryPolicy | undefined,
    readonly logger: Logger,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.idle.length = 0;
    this.root.abort(closedError());
  }

  /** A scope for one piece of work, under the connection, linked to the caller's signal. */
  scope(options?: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined }): Scope {
    return this.root.child(options?.signal, options?.timeoutMs);
  }

  assertOpen(method: string): void {
    if (this.closed) throw closedError(method);
  }

  // Idle children of the root for calls with no signal of their own. Each
  // is lent out a few times only: a transport that leaves a listener on the
  // signal after a call (connect-node does) cannot pile up many on one.
  private readonly idle: Scope[] = [];

  private borrow(): Scope {
    return this.idle.pop() ?? this.root.child();
  }

  private giveBack(scope: Scope): void {
    if (this.closed || scope.signal.aborted) return;
    if (++scope.uses < maxUses && this.idle.length < maxIdle) this.idle.push(scope);
    else scope.done();
  }

  private attempt<T>(
    method: string,
    call: (options: WireCallOptions) => Promise<T>,
    signal: AbortSignal,
    deadline: Deadline | undefined,
    headers: HeadersInit | undefined,
  ): Promise<T> {
    const remaining = deadline === undefined ? undefined : deadline.at - Date.now();
    if (remaining !== undefined && remaining <= 0) {
      return Promise.reject(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    }
    this.logger.debug("call", { method });
    const timeoutMs = deadline?.onWire ? remaining : undefined;
    return call({ signal, timeoutMs, headers }).catch((err) => {
      throw spuriousCancel(err, signal);
    });
  }

  private onRetry(method: string, err: unknown, attempt: number, delayMs: number): void {
    this.logger.warn("retrying", {
      method,
      attempt,
      delayMs: Math.round(delayMs),
      error: String((err as Error)?.message ?? err),
    });
  }

  /**
   * A unary call (or a finite stream collected into one value). Idempotent
   * reads are retried on transient failures within one overall deadline;
   * everything else runs exactly once. Errors come out as FlameError.
   *
   * A deadline the caller chose (`options.timeoutMs`) goes on the wire as
   * the call's gRPC deadline, so the server can stop work at it. The
   * connection's default deadline is only a guard against a server that
   * never answers: the client enforces it with a timer of its own and does
   * not send it, sparing the server a timer for every call.
   */
  async unary<T>(
    method: string,
    call: (options: WireCallOptions) => Promise<T>,
    options: (CallOptions & { scope?: Scope | undefined }) | undefined,
    idempotent: boolean,
    defaultTimeoutMs: number | undefined = this.timeoutMs,
  ): Promise<T> {
    this.assertOpen(method);
    const chosen = options?.timeoutMs;
    const timeoutMs = chosen ?? defaultTimeoutMs;
    const deadline: Deadline | undefined =
      timeoutMs !== undefined && timeoutMs > 0
        ? { at: Date.now() + timeoutMs, onWire: chosen !== undefined }
        : undefined;
    const parent = options?.scope;
    const signal = options?.signal;
    // Without a caller's signal or scope, the call is cancelled only by
    // close(): it borrows a pooled child of the root instead of a new one
    // (a listener on a fresh AbortSignal costs Node microseconds per call).
    const pooled = parent === undefined && signal === undefined;
    const scope = pooled ? this.borrow() : (parent ?? this.root).child(signal);
    if (deadline !== undefined && !deadline.onWire) scope.setDeadline(timeoutMs as number);
    const headers = options?.headers;
    try {
      // The first attempt runs on its own: no retry machinery on the success path.
      try {
        return await this.attempt(method, call, scope.signal, deadline, headers);
      } catch (err) {
        const policy = idempotent ? this.retry : undefined;
        if (policy === undefined || policy.maxAttempts <= 1 || !isTransient(err)) throw err;
        if (scope.signal.aborted) throw err;
        const delay = backoffDelay(0, policy);
        this.onRetry(method, err, 1, delay);
        await sleep(delay, scope.signal);
      }
      return await withRetry(
        () => this.attempt(method, call, scope.signal, deadline, headers),
        // The first attempt is spent: one fewer left, backoff counted from the second.
        this.retry === undefined
          ? undefined
          : {
              ...this.retry,
              maxAttempts: this.retry.maxAttempts - 1,
              initialDelayMs: this.retry.initialDelayMs * 2,
            },
        scope.signal,
        (err, attempt, delayMs) => this.onRetry(method, err, attempt + 1, delayMs),
      );
    } catch (err) {
      if (this.closed) throw closedError(method, err);
      const error = toFlameError(err, method);
      this.logger.debug("call failed", { method, kind: error.kind });
      throw error;
    } finally {
      if (pooled) {
        scope.clearDeadline();
        this.giveBack(scope);
      } else scope.done();
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
