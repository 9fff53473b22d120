import type { IncomingHttpHeaders } from "node:http";

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const maxDeadlineMs = 2 ** 31 - 1;

const grpcUnitMs: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * Holds a client's deadline to `maxDeadlineMs`, in place, before connect
 * reads it. gRPC allows `grpc-timeout` up to 99999999H, and Connect
 * `connect-timeout-ms` up to ten digits; connect arms a timer with the
 * value as it is, and Node fires a timer longer than `maxDeadlineMs` after
 * 1 ms, so such a call would end at once with DEADLINE_EXCEEDED. A
 * malformed value is left for connect to refuse.
 */
export function holdDeadline(headers: IncomingHttpHeaders): void {
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string") {
    const match = /^(\d{1,8})([HMSmun])$/.exec(grpc);
    if (
      match !== null &&
      Number(match[1]) * (grpcUnitMs[match[2] as string] ?? 0) > maxDeadlineMs
    ) {
      headers["grpc-timeout"] = `${Math.floor(maxDeadlineMs / 60_000)}M`;
    }
  }
  const connect = headers["connect-timeout-ms"];
  if (
    typeof connect === "string" &&
    /^\d{1,10}$/.test(connect) &&
    Number(connect) > maxDeadlineMs
  ) {
    headers["connect-timeout-ms"] = String(maxDeadlineMs);
  }
}

/** The longest `grpc-timeout` connect's client writes correctly: it writes milliseconds, in at most 8 digits. */
const maxMillisecondDigits = 99_999_999;

/**
 * The deadline to hand connect's gRPC client for the upstream call. It
 * writes `grpc-timeout` in milliseconds whatever the length, and past eight
 * digits (about 27.7 hours) a gRPC server refuses the value; such a
 * deadline goes in `headers` in whole minutes instead (rounded up), and
 * the client's own deadline still ends the call in the gateway.
 */
export function upstreamTimeout(
  timeoutMs: number | undefined,
  headers: Headers,
): number | undefined {
  if (timeoutMs === undefined || timeoutMs <= maxMillisecondDigits) return timeoutMs;
  headers.set("grpc-timeout", `${Math.ceil(timeoutMs / 60_000)}M`);
  return undefined;
}
