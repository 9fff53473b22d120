import { Code } from "@connectrpc/connect";
import { type CallGuard, CallRejected, type HeaderReader } from "./call-guard.js";
import type { GatewayStats } from "./gateway-stats.js";
import type { GatewayLogger } from "./logger.js";

/**
 * Runs the guard for one call, on either forwarding path. A refusal is
 * counted, logged and returned (nothing has gone upstream); an admitted
 * call is counted as forwarded.
 */
export function admitCall(
  deps: { guard: CallGuard; stats: GatewayStats; logger: GatewayLogger },
  methodName: string,
  header: HeaderReader,
  protocol: string,
): CallRejected | undefined {
  try {
    deps.guard.check(methodName, header);
  } catch (e) {
    if (!(e instanceof CallRejected)) throw e;
    deps.stats.rejected[e.reason]++;
    deps.logger.warn?.("call refused", {
      method: methodName,
      code: Code[e.code],
      reason: e.reason,
      origin: header.get("origin") ?? undefined,
      protocol,
    });
    return e;
  }
  deps.stats.forwarded[methodName] = (deps.stats.forwarded[methodName] ?? 0) + 1;
  return undefined;
}
