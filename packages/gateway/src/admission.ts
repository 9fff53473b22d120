import { Code } from "@connectrpc/connect";
import type { BoundedLog } from "./bounded-log.js";
import { type CallGuard, CallRejected, type HeaderReader } from "./call-guard.js";
import type { GatewayStats } from "./gateway-stats.js";

/**
 * Runs the guard for one call. A refusal is counted, logged (bounded) and
 * returned; nothing has gone upstream.
 */
export function admitCall(
  deps: { guard: CallGuard; stats: GatewayStats; refusals: BoundedLog },
  methodName: string,
  header: HeaderReader,
  protocol: string,
): CallRejected | undefined {
  try {
    deps.guard.check(methodName, header);
  } catch (e) {
    if (!(e instanceof CallRejected)) throw e;
    deps.stats.rejected[e.reason]++;
    deps.refusals.warn("call refused", {
      method: methodName,
      code: Code[e.code],
      reason: e.reason,
      origin: header.get("origin") ?? undefined,
      protocol,
    });
    return e;
  }
  return undefined;
}
