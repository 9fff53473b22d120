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

  /** Wraps a server-stream body: counts it and notes how it ended. */
  async *track<T>(ctx: HandlerContext, body: AsyncGenerator<T>): AsyncGenerator<T> {
    const entry: OpenStream = { raw: ctx.values.get(rawStreamKey), dropped: false };
    this.open.add(entry);
    this.started++;
    let finished = false;
    try {
      yield* body;
      // A body that returned because the call was aborted did not finish.
      finished = !ctx.signal.aborted;
    } finally {
      this.open.delete(entry);
      // Ended by the client's cancel (not by us, not by completing).
      if (!finished && ctx.signal.aborted && !entry.dropped) this.cancelled++;
    }
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
