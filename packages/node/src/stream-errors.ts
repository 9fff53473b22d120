import { constants } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { describeTlsFailure } from "./tls-errors.js";

// What a broken HTTP/2 stream means for a gRPC call.

const rstNames: Record<number, string> = {
  0: "NO_ERROR",
  1: "PROTOCOL_ERROR",
  2: "INTERNAL_ERROR",
  3: "FLOW_CONTROL_ERROR",
  4: "SETTINGS_TIMEOUT",
  5: "STREAM_CLOSED",
  6: "FRAME_SIZE_ERROR",
  7: "REFUSED_STREAM",
  8: "CANCEL",
  9: "COMPRESSION_ERROR",
  10: "CONNECT_ERROR",
  11: "ENHANCE_YOUR_CALM",
  12: "INADEQUATE_SECURITY",
  13: "HTTP_1_1_REQUIRED",
};

/**
 * The gRPC code for a stream the server reset (gRPC's PROTOCOL-HTTP2
 * mapping): REFUSED_STREAM is Unavailable (safe to retry), CANCEL is
 * Canceled, ENHANCE_YOUR_CALM ResourceExhausted, the security codes
 * PermissionDenied, and the rest Internal.
 */
export function rstStreamError(rstCode: number): ConnectError {
  let code: Code;
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      code = Code.Unavailable;
      break;
    case constants.NGHTTP2_CANCEL:
      code = Code.Canceled;
      break;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      code = Code.ResourceExhausted;
      break;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
    case constants.NGHTTP2_HTTP_1_1_REQUIRED:
      code = Code.PermissionDenied;
      break;
    default:
      code = Code.Internal;
  }
  const name = rstNames[rstCode] ?? "unknown";
  return new ConnectError(
    `http/2 stream closed with error code ${name} (0x${rstCode.toString(16)})`,
    code,
  );
}

/**
 * The error a stream's "error" event stands for. A reset by the server is
 * mapped by its code; anything else (the socket died, a GOAWAY with an
 * error, an unanswered PING, a refused connection or a failed TLS
 * handshake) means the connection is gone: `Unavailable`, so reads retry
 * and watches resume on a new connection. TLS failures get a message that
 * says what to fix.
 */
export function streamFailure(err: unknown, rstCode: number, baseUrl: string): ConnectError {
  if (err instanceof ConnectError) return err;
  const nodeCode = (err as { code?: unknown } | undefined)?.code;
  if (nodeCode === "ERR_HTTP2_STREAM_ERROR") return rstStreamError(rstCode);
  // A stream still waiting for its connection is cancelled "caused by" the
  // connection's error; the cause is what tells the user something.
  let cause: unknown = err;
  if (nodeCode === "ERR_HTTP2_STREAM_CANCEL" && err instanceof Error && err.cause !== undefined) {
    cause = err.cause;
  }
  if (cause instanceof ConnectError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  const lost = new ConnectError(message, Code.Unavailable, undefined, undefined, cause);
  return describeTlsFailure(lost, baseUrl) ?? lost;
}

/** The error for a call whose connection closed before its answer was complete. */
export function connectionLostError(baseUrl: string): ConnectError {
  return new ConnectError(
    `the connection to ${baseUrl} closed before the call finished`,
    Code.Unavailable,
  );
}

/** The error for a call whose signal was aborted: its reason, as Canceled unless it says otherwise. */
export function abortError(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason === undefined) return new ConnectError("the operation was aborted", Code.Canceled);
  return ConnectError.from(reason, Code.Canceled);
}

/** The error for a call past its deadline (the text connect-es uses). */
export function deadlineError(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

/** A message that did not decode (`parse`) or encode (`serialize`): Internal, with the cause's text. */
export function codecError(what: "parse" | "serialize", err: unknown): ConnectError {
  return new ConnectError(
    `${what} binary: ${err instanceof Error ? err.message : String(err)}`,
    Code.Internal,
  );
}
