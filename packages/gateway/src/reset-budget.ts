/**
 * How many streams one upstream connection may reset before the pool stops
 * putting calls on it: a token bucket of `burst`, refilled at `perSecond`.
 *
 * An HTTP/2 server counts the resets it receives on a connection and past
 * its own budget sends GOAWAY, failing every call on it (Node 20's nghttp2:
 * 1,000, then 33 a second, not configurable). Every client that cancels a
 * call the gateway has started makes the gateway reset a stream on a
 * connection shared with other clients; keeping each connection within
 * half that budget means those resets never cost anyone else their call.
 */
export class ResetBudget {
  #tokens: number;
  #at = Date.now();

  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {
    this.#tokens = burst;
  }

  /** Counts one reset; false once the budget is spent. */
  spend(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    this.#tokens -= 1;
    return this.#tokens >= 0;
  }
}

/** Half of Node 20's nghttp2 budget, so an upstream on Node never sees it run out. */
export const upstreamResetBudget = { burst: 500, perSecond: 16 } as const;
