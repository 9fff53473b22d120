/**
 * What the emulator allows each client connection. Where Node has a
 * default, it is the default here too.
 */
export interface ConnectionLimits {
  /** Streams one HTTP/2 client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); default 100. */
  maxStreamsPerConnection: number;
  /** A new connection's first bytes, or an HTTP/1.1 request head, must arrive within this (ms); default 60,000. */
  headersTimeoutMs: number;
  /** A whole HTTP/1.1 request, head and body, must arrive within this (ms); default 300,000. */
  requestTimeoutMs: number;
  /** An HTTP/1.1 connection idle between requests is closed after this (ms); default 5,000. */
  keepAliveTimeoutMs: number;
  /**
   * RST_STREAM frames one HTTP/2 client may send per second, and at once;
   * beyond that the connection is sent GOAWAY (Node's rapid-reset guard);
   * default 10,000.
   */
  streamResetsPerSecond: number;
}

export const connectionLimitDefaults: ConnectionLimits = {
  // Flame sets none, and Node's default is none either: a client could open
  // streams until memory ran out. gRPC clients queue calls beyond the limit.
  maxStreamsPerConnection: 100,
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 5_000,
  // Node's own budget (a burst of 1,000, then 33 a second) is less than a
  // client resetting each watch it is done with sends at the emulator's
  // pace, and such a client would be cut off. This is more than the streams
  // the emulator can serve in a second, so only resetting streams faster
  // than they can be answered runs out of it.
  streamResetsPerSecond: 10_000,
};

/** The limits with `given` over the defaults, each checked to be a positive integer. */
export function resolveConnectionLimits(given: Partial<ConnectionLimits>): ConnectionLimits {
  const limits = { ...connectionLimitDefaults };
  for (const key of Object.keys(connectionLimitDefaults) as (keyof ConnectionLimits)[]) {
    const value = given[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`${key} must be a positive integer, got ${String(value)}`);
    }
    limits[key] = value;
  }
  return limits;
}
