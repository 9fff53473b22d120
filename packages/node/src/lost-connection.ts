import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

// Node's errors for streams ended because their HTTP/2 session went away
// (a GOAWAY with an error code, a destroyed session).
const sessionGone = new Set([
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
]);

function causedBySessionLoss(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && sessionGone.has(code)) return true;
    current = current.cause;
  }
  return false;
}

/**
 * connect-node reports a call cut off by the server closing the HTTP/2
 * connection (e.g. Node's rapid-reset guard sends GOAWAY after ~1,000
 * client cancels) as `Internal`. It is the connection, not the call, that
 * failed: `Unavailable`, so reads retry and watches resume on a new one.
 */
export function describeLostConnection(err: unknown): ConnectError | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.Internal) return undefined;
  if (!causedBySessionLoss(err.cause)) return undefined;
  return new ConnectError(err.rawMessage, Code.Unavailable, err.metadata, undefined, err);
}

async function* rewriteStream<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw describeLostConnection(err) ?? err;
  }
}

/** Applies {@link describeLostConnection} to unary calls and to streams as they are read. */
export const lostConnectionInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: rewriteStream(res.message) };
  } catch (err) {
    throw describeLostConnection(err) ?? err;
  }
};
