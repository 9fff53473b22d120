import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

// OpenSSL's certificate verification results, as Node names them.
const certificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
]);

/** The `code` of the first error in `err`'s cause chain that has one. */
function causeCode(err: unknown): { code: string; message: string } | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return { code, message: current.message };
    current = current.cause;
  }
  return undefined;
}

/**
 * Node reports a failed TLS handshake as gRPC `Internal`, which reads like a
 * server bug. Rewrite it as `Unavailable` (the server cannot be reached
 * safely) with a message that says what is wrong and what to do.
 */
export function describeTlsFailure(err: unknown, baseUrl: string): ConnectError | undefined {
  if (!(err instanceof ConnectError)) return undefined;
  const cause = causeCode(err.cause);
  if (cause === undefined) return undefined;
  const { code } = cause;
  const message = cleanMessage(cause.message);
  let text: string | undefined;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH") {
    text =
      `TLS certificate problem with ${baseUrl}: the server's certificate does not match the host ` +
      `(${message}). Connect with a host name the certificate lists`;
  } else if (certificateCodes.has(code)) {
    text =
      `TLS certificate problem with ${baseUrl}: the server's certificate is not trusted ` +
      `(${code}: ${message}). Give the CA that signed it with the caFile option or FLAME_CA_FILE`;
  } else if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG") {
    text =
      `TLS handshake with ${baseUrl} failed (${message}): the server does not seem to speak TLS ` +
      "on that port; use http:// for a plaintext server";
  } else if (code.includes("CERTIFICATE_REQUIRED") || code.includes("HANDSHAKE_FAILURE")) {
    text =
      `TLS handshake with ${baseUrl} failed (${message}): the server may require a client ` +
      "certificate; give certFile and keyFile (or FLAME_CERT_FILE and FLAME_KEY_FILE)";
  } else if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || code === "EPROTO") {
    text = `TLS handshake with ${baseUrl} failed (${code}: ${message})`;
  }
  if (text === undefined) return undefined;
  return new ConnectError(text, Code.Unavailable, undefined, undefined, err);
}

// OpenSSL messages read "8000...:error:0A00010B:SSL routines:fn:reason:file:line:";
// keep the reason. Node's own messages are kept, minus trailing separators.
function cleanMessage(message: string): string {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1];
  return (reason ?? message).trim().replace(/[\s:]+$/, "");
}

/** An interceptor applying {@link describeTlsFailure} to every call. */
export function tlsErrorInterceptor(baseUrl: string): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw describeTlsFailure(err, baseUrl) ?? err;
    }
  };
}
