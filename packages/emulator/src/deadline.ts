import type { IncomingHttpHeaders } from "node:http";

/** The longest delay a Node timer holds; a longer one fires after 1 ms. */
const longestTimerMs = 2 ** 31 - 1;

const msPerGrpcUnit: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

const requestedMs = (headers: IncomingHttpHeaders): number | undefined => {
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(String(headers["grpc-timeout"]));
  if (grpc) return Number(grpc[1]) * (msPerGrpcUnit[grpc[2] as string] as number);
  const connect = /^\d{1,10}$/.exec(String(headers["connect-timeout-ms"]));
  return connect ? Number(connect[0]) : undefined;
};

/**
 * Removes, in place and before Connect reads it, a deadline longer than a
 * Node timer holds (about 24.8 days): Connect would arm a timer with it as
 * it is, which fires at once and ends the call DEADLINE_EXCEEDED, while
 * gRPC allows up to 99999999H. Such a deadline cannot be reached within an
 * emulator's life, so the call runs without one. Malformed values are left
 * for Connect to refuse.
 */
export function dropUnreachableDeadline(headers: IncomingHttpHeaders): void {
  const ms = requestedMs(headers);
  if (ms === undefined || ms <= longestTimerMs) return;
  delete headers["grpc-timeout"];
  delete headers["connect-timeout-ms"];
}
