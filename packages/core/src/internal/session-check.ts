import { Code } from "@connectrpc/connect";
import type { CallOptions } from "../call-options.js";
import { unknownOrClosedSessionPhrase } from "../error-kinds.js";
import { FlameError, withKind } from "../errors.js";
import type { SessionState } from "../gen/flame/v1/types_pb.js";
import type { Rpc } from "./rpc.js";
import type { Scope } from "./scope.js";

/**
 * Whether Flame's refusal leaves open whether the session is unknown or
 * closed: sqlite answers CreateTask on either with the same constraint
 * error, and the none engine answers OpenSession on either with a bare
 * NOT_FOUND "session <id>".
 */
export function unknownOrClosed(err: FlameError): boolean {
  const message = (err.serverMessage ?? "").toLowerCase();
  if (message.includes(unknownOrClosedSessionPhrase)) return true;
  return (
    err.method === "OpenSession" && err.code === Code.NotFound && !message.includes("not found")
  );
}

/**
 * `err` with the kind one GetSession decides when Flame's answer did not say
 * (see `unknownOrClosed`): "not-found" for an unknown session,
 * "invalid-state" for a closed one. Any other error, or a GetSession that
 * fails, leaves `err` as it was.
 */
export async function decideBySession(
  rpc: Rpc,
  err: unknown,
  sessionId: string,
  options: (CallOptions & { scope?: Scope | undefined }) | undefined,
): Promise<unknown> {
  if (!FlameError.is(err) || !unknownOrClosed(err)) return err;
  try {
    const session = await rpc.unary(
      "GetSession",
      (o) => rpc.client.getSession({ sessionId }, o),
      options,
      true,
    );
    // A literal (SessionState.Closed): naming the member would bundle the enum.
    if (session.status?.state === (1 as SessionState)) {
      return withKind(err, "invalid-state", `session ${sessionId} is closed`);
    }
    return err;
  } catch (lookup) {
    if (FlameError.is(lookup, "not-found")) {
      return withKind(err, "not-found", `session ${sessionId} not found`);
    }
    return err;
  }
}
