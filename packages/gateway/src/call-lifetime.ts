import type { FastPathRoute } from "./fast-path.js";
import type { GatewayStats } from "./gateway-stats.js";

/**
 * What a forwarded call holds while it is open, on every forwarding path:
 * its place in `stats().openStreams` (server streams), and the timer that
 * ends it at its deadline. The upstream gets the deadline too; the timer
 * ends the call at the gateway even if the upstream ignores it.
 */
export class CallLifetime {
  #stats: GatewayStats | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(stats: GatewayStats, route: FastPathRoute, onDeadline: () => void) {
    if (route.method.serverStreaming) {
      stats.openStreams++;
      this.#stats = stats;
    }
    if (route.timeoutMs !== undefined) this.#timer = setTimeout(onDeadline, route.timeoutMs);
  }

  /** The call is over: its count and timer go. Later calls do nothing. */
  end(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stats !== undefined) this.#stats.openStreams--;
    this.#stats = undefined;
  }
}
