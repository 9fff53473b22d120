/** Flame's timestamps: Unix epoch milliseconds as int64. */
export const nowMs = (): bigint => BigInt(Date.now());

/** NodeStatus.last_heartbeat_time is the one timestamp in seconds. */
export const nowSeconds = (): bigint => BigInt(Math.floor(Date.now() / 1000));
