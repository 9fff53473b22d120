import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions } from "../call-options.js";
import type { Rpc } from "./rpc.js";

/**
 * One AbortController for a piece of work (a subscription, a run): aborted
 * when the connection closes, the caller's signal aborts, the timeout
 * passes (with a DeadlineExceeded reason), or `dispose` is called.
 */
export class Scope {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly sources: AbortSignal[] = [];
  private readonly onAbort = (event: Event) => {
    this.abort((event.target as AbortSignal).reason);
  };

  constructor(rpc: Rpc, options: CallOptions | undefined) {
    for (const s of [rpc.closeSignal, options?.signal]) {
      if (s === undefined) continue;
      if (s.aborted) {
        this.abort(s.reason);
        return;
      }
      s.addEventListener("abort", this.onAbort);
      this.sources.push(s);
    }
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs > 0) {
      this.timer = setTimeout(
        () => this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason?: unknown): void {
    this.release();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Stops listening; aborts whatever still runs under this scope. */
  dispose(): void {
    this.abort();
  }

  private release(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const s of this.sources) s.removeEventListener("abort", this.onAbort);
    this.sources.length = 0;
  }
}
