import type { IncomingHttpHeaders } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";

// gRPC over HTTP/2 status handling, read straight from Node's header
// objects: the success path builds no `Headers` and no error.

const statusDetailsBin = "grpc-status-details-bin";

/** Node's header object (response headers or trailers) as fetch `Headers`, pseudo-headers left out. */
export function toHeaders(...sources: (IncomingHttpHeaders | undefined)[]): Headers {
  const headers = new Headers();
  for (const source of sources) {
    if (source === undefined) continue;
    for (const key of Object.keys(source)) {
      if (key.charCodeAt(0) === 58 /* ":" */) continue;
      const value = source[key];
      if (value === undefined) continue;
      if (Array.isArray(value)) {
        for (const v of value) headers.append(key, v);
      } else {
        headers.append(key, String(value));
      }
    }
  }
  return headers;
}

/**
 * The error a response's `:status` stands for, when it is not 200 (gRPC's
 * HTTP-to-status mapping: 401 Unauthenticated, 403 PermissionDenied, 404
 * Unimplemented, 429/502/503/504 Unavailable, others Unknown).
 */
export function httpStatusError(status: number, headers: IncomingHttpHeaders): ConnectError {
  return new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), toHeaders(headers));
}

/** True for `application/grpc` and `application/grpc+proto`, the only bodies we can read. */
export function isGrpcProtoContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === "application/grpc" || value === "application/grpc+proto") return true;
  const lower = value.toLowerCase().split(";")[0]?.trim();
  return lower === "application/grpc" || lower === "application/grpc+proto";
}

/** The error for a response that is not gRPC (an HTML error page from a proxy, say). */
export function contentTypeError(value: string | undefined): ConnectError {
  return new ConnectError(
    value === undefined
      ? "protocol error: the response has no content-type, expected application/grpc"
      : `protocol error: unsupported content-type "${value}", expected application/grpc`,
    Code.Unknown,
  );
}

/** True when these headers carry a gRPC status (trailers, or the headers of a trailers-only response). */
export function hasGrpcStatus(headers: IncomingHttpHeaders | undefined): boolean {
  return headers !== undefined && headers["grpc-status"] !== undefined;
}

/**
 * The error in a gRPC status (`grpc-status`, percent-encoded
 * `grpc-message`, optional `grpc-status-details-bin`), or undefined for OK.
 * `trailers` hold the status; `headers` (the response headers, when the
 * status came in trailers) are added to the error's metadata.
 */
export function grpcStatusError(
  trailers: IncomingHttpHeaders,
  headers?: IncomingHttpHeaders,
): ConnectError | undefined {
  const status = trailers["grpc-status"];
  if (status === "0" && trailers[statusDetailsBin] === undefined) return undefined;
  const metadata = toHeaders(trailers, headers);
  if (trailers[statusDetailsBin] !== undefined) {
    // connect-es decodes google.rpc.Status and its details; a malformed
    // value falls back to grpc-status and grpc-message below.
    try {
      const fromDetails = findTrailerError(toHeaders(trailers));
      if (fromDetails === undefined) return undefined;
      if (headers !== undefined) {
        for (const [key, value] of toHeaders(headers)) fromDetails.metadata.append(key, value);
      }
      return fromDetails;
    } catch {
      // ignore the details
    }
  }
  if (status === "0") return undefined;
  const text = typeof status === "string" ? status : String(status);
  const code = /^\d{1,2}$/.test(text) ? Number(text) : Number.NaN;
  if (!(code >= 1 && code <= 16)) {
    return new ConnectError(
      `protocol error: invalid grpc-status: ${text}`,
      Code.Internal,
      metadata,
    );
  }
  return new ConnectError(decodeGrpcMessage(trailers["grpc-message"]), code as Code, metadata);
}

/** The error for a response that ended without any grpc-status. */
export function missingStatusError(): ConnectError {
  return new ConnectError("protocol error: missing grpc-status", Code.Internal);
}

/**
 * `grpc-message` is percent-encoded. The spec says a client must not throw
 * on a bad encoding: it keeps the raw text instead.
 */
export function decodeGrpcMessage(value: string | string[] | undefined): string {
  if (value === undefined) return "";
  const text = Array.isArray(value) ? value.join(", ") : value;
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
