import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Lets a stream handler break its own transport (set by the Node server). */
export interface RawStream {
  destroy(): void;
}

export const rawStreamKey = createContextKey<RawStream | undefined>(undefined, {
  description: "the transport stream under a call",
});

interface OpenStream {
  raw: RawStream | undefined;
  dropped: boolean;
}

/**
 * Tracks the open server streams so tests can count them, see client
 * cancellation, and break them all at once.
 */
export class StreamRegistry {
  private readonly open = new Set<OpenStream>();
  started = 0;
  cancelled = 0;

  get size(): number {
    return this.open.size;
  }

  /**
   * Wraps a server-stream body: counts it and notes how it ended.
   *
   * A stream is over once its call is aborted, even if the body is never
   * resumed: when a client goes away just as a message is written, Node's
   * HTTP/1.1 response swallows the write (no callback, no error, no drain:
   * nodejs/node#39988) and connect-node waits on it for ever, leaving the
   * body suspended at its `yield`. Counting on the abort, not on the body's
   * `finally`, keeps `openStreams` true.
   */
  async *track<T>(ctx: HandlerContext, body: AsyncGenerator<T>): AsyncGenerator<T> {
    const entry: OpenStream = { raw: ctx.values.get(rawStreamKey), dropped: false };
    this.open.add(entry);
    this.started++;
    // Ended by the client's cancel (not by us, not by completing).
    const onAbort = () => this.end(entry, true);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    if (ctx.signal.aborted) onAbort();
    let finished = false;
    try {
      yield* body;
      // A body that returned because the call was aborted did not finish.
      finished = !ctx.signal.aborted;
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      this.end(entry, !finished && ctx.signal.aborted);
    }
  }

  /** Removes a stream once; `cancelled` counts it as ended by the client. */
  private end(entry: OpenStream, cancelled: boolean): void {
    if (!this.open.delete(entry)) return;
    if (cancelled && !entry.dropped) this.cancelled++;
  }

  dropAll(): void {
    for (const entry of this.open) {
      entry.dropped = true;
      entry.raw?.destroy();
    }
  }

  resetCounters(): void {
    this.started = 0;
    this.cancelled = 0;
  }
}
