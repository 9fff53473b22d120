import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A tree of AbortControllers. Aborting a scope aborts its children; each
 * call gets a child of its own. Fan-out goes through a Set rather than
 * "abort" listeners on one shared signal: 64 concurrent calls on one signal
 * would pile 64 listeners on it (and Node warns past 10).
 */
export class Scope {
  readonly controller = new AbortController();
  /** How many calls have used it (the Rpc lends idle scopes out again). */
  uses = 0;
  // Made on the first child: most scopes (one call, one watch attempt) have none.
  private children: Set<Scope> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private external: AbortSignal | undefined;
  private parent: Scope | undefined;

  /**
   * A child of `parent`, also aborted by `signal` (the caller's), and by a
   * DeadlineExceeded reason after `timeoutMs`.
   */
  constructor(parent?: Scope, signal?: AbortSignal, timeoutMs?: number) {
    if (parent !== undefined) {
      if (parent.signal.aborted) {
        this.controller.abort(parent.signal.reason);
        return;
      }
      this.parent = parent;
      parent.children ??= new Set();
      parent.children.add(this);
    }
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abort(signal.reason);
        return;
      }
      this.external = signal;
      // The scope is its own listener (handleEvent): no closure per scope.
      signal.addEventListener("abort", this, { once: true });
    }
    if (timeoutMs !== undefined && timeoutMs > 0) this.setDeadline(timeoutMs);
  }

  /**
   * Aborts this scope with DeadlineExceeded after `timeoutMs`, unless
   * {@link clearDeadline} or the end of the scope comes first.
   */
  setDeadline(timeoutMs: number): void {
    this.clearDeadline();
    this.timer = setTimeout(expire, timeoutMs, this);
  }

  clearDeadline(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.abort(this.external?.reason);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A new child scope (aborted at once if this one is). */
  child(signal?: AbortSignal, timeoutMs?: number): Scope {
    return new Scope(this, signal, timeoutMs);
  }

  /** Aborts this scope and every child with `reason`. */
  abort(reason?: unknown): void {
    this.release();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
    const children = this.children;
    this.children = undefined;
    if (children !== undefined)
      for (const child of children) child.abort(this.controller.signal.reason);
  }

  /** The work is over: stop listening, abort what still runs under it. */
  dispose(): void {
    this.abort();
  }

  /** The work is over and nothing runs under it: forget it without aborting. */
  done(): void {
    this.release();
    const children = this.children;
    this.children = undefined;
    if (children !== undefined) for (const child of children) child.done();
  }

  private release(): void {
    this.clearDeadline();
    this.external?.removeEventListener("abort", this);
    this.external = undefined;
    this.parent?.children?.delete(this);
    this.parent = undefined;
  }
}

function expire(scope: Scope): void {
  scope.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}
