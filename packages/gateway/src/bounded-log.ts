import type { GatewayLogger } from "./logger.js";

/** Longest client-supplied value a log line carries, in characters. */
export const maxLoggedFieldLength = 80;

/**
 * Writes warnings at most `perSecond` lines a second (a token bucket that
 * refills continuously), with every string field cut to
 * `maxLoggedFieldLength`. Refusals and failed calls cost a client a few
 * bytes each, so without both bounds a small flood of bad requests becomes
 * a large flood of log. Lines dropped are counted in the next line that is
 * written (`suppressed`).
 */
export class BoundedLog {
  #tokens: number;
  #lastRefill = Date.now();
  #suppressed = 0;

  constructor(
    private readonly logger: GatewayLogger,
    private readonly perSecond: number,
  ) {
    this.#tokens = perSecond;
  }

  warn(message: string, fields: Record<string, string | number | undefined>): void {
    if (this.logger.warn === undefined) return;
    const now = Date.now();
    this.#tokens = Math.min(
      this.perSecond,
      this.#tokens + ((now - this.#lastRefill) / 1000) * this.perSecond,
    );
    this.#lastRefill = now;
    if (this.#tokens < 1) {
      this.#suppressed++;
      return;
    }
    this.#tokens--;
    const line: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(fields)) {
      if (value !== undefined) line[name] = typeof value === "string" ? bounded(value) : value;
    }
    if (this.#suppressed > 0) line.suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.logger.warn(message, line);
  }
}

function bounded(value: string): string {
  return value.length <= maxLoggedFieldLength
    ? value
    : `${value.slice(0, maxLoggedFieldLength)}...(${value.length} chars)`;
}
