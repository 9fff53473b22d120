import { Code } from "@connectrpc/connect";
import type { GatewayLogger } from "./logger.js";

/**
 * Logs the end of a forwarded call: a warning when the upstream failed it
 * (Unavailable, Internal, Unknown), a debug line otherwise. `message` is
 * the raw `grpc-message` (percent-encoded) when there is one.
 */
export function logCallDone(
  logger: GatewayLogger,
  method: string,
  code: number,
  message: unknown,
  started: number,
): void {
  const ms = Date.now() - started;
  if (code === Code.Unavailable || code === Code.Internal || code === Code.Unknown) {
    logger.warn?.("upstream call failed", {
      method,
      code: Code[code],
      message: typeof message === "string" ? decodeMessage(message) : undefined,
      ms,
    });
  } else {
    logger.debug?.("forwarded", { method, code: code === 0 ? "OK" : Code[code], ms });
  }
}

/** Logs a call whose client went away before its answer was complete. */
export function logClientCancelled(logger: GatewayLogger, method: string, started: number): void {
  logger.debug?.("client cancelled", { method, ms: Date.now() - started });
}

function decodeMessage(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
