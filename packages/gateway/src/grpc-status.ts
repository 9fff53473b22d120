import { constants } from "node:http2";
import { Code } from "@connectrpc/connect";

/**
 * Percent-encodes a status message for the `grpc-message` header, as the
 * gRPC spec asks: every byte outside printable ASCII, and `%` itself.
 */
export function encodeGrpcMessage(message: string): string {
  // Fast path: most messages are plain ASCII.
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The gRPC code a client sees when an HTTP/2 stream is reset with `rstCode` (gRPC spec). */
export function codeFromRstCode(rstCode: number): Code {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return Code.Unavailable;
    case constants.NGHTTP2_CANCEL:
      return Code.Canceled;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.ResourceExhausted;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return Code.PermissionDenied;
    default:
      return Code.Internal;
  }
}

/** The gRPC code for an HTTP status that came without a grpc-status (gRPC spec). */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/** A gRPC status the gateway gives a call, with its message. */
export interface GatewayStatus {
  code: Code;
  message: string;
}

/**
 * The status of an upstream response that ended without a `grpc-status`:
 * from its HTTP status when that is not 200 (a proxy's error page), else a
 * protocol error. `httpStatus` is 0 when no response headers came.
 */
export function statusOfUnfinishedResponse(httpStatus: number): GatewayStatus {
  return httpStatus !== 200 && httpStatus !== 0
    ? { code: codeFromHttpStatus(httpStatus), message: `HTTP ${httpStatus}` }
    : { code: Code.Internal, message: "protocol error: missing status" };
}

/** The status of a call whose upstream stream was reset (RST_STREAM `rstCode`) before its status. */
export function statusOfResetStream(rstCode: number): GatewayStatus {
  return rstCode === constants.NGHTTP2_NO_ERROR
    ? { code: Code.Unavailable, message: "upstream stream closed before its status" }
    : {
        code: codeFromRstCode(rstCode),
        message: `upstream stream closed with error code ${rstName(rstCode)}`,
      };
}

/** Milliseconds in a `grpc-timeout` value ("100m", "30S"), or undefined when malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  const amount = Number(match[1]);
  switch (match[2]) {
    case "H":
      return amount * 3_600_000;
    case "M":
      return amount * 60_000;
    case "S":
      return amount * 1_000;
    case "m":
      return amount;
    case "u":
      return amount / 1_000;
    default:
      return amount / 1_000_000;
  }
}

/** HTTP/2 error code names (RFC 9113, section 7). */
const rstNames = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

export function rstName(code: number): string {
  return `${rstNames[code] ?? "unknown"} (0x${code.toString(16)})`;
}
