import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** Flag byte of the gRPC-Web frame that carries the trailers, at the end of the body. */
export const trailerFrameFlag = 0x80;

/**
 * A gRPC-Web trailer frame: flag 0x80, 4-byte big-endian length, then one
 * `name: value\r\n` line per trailer (names lower-case). gRPC-Web carries
 * trailers in the body because browsers cannot read HTTP trailers.
 */
export function encodeTrailerFrame(trailers: IncomingHttpHeaders | OutgoingHttpHeaders): Buffer {
  const text = headerLines(trailers);
  const length = Buffer.byteLength(text, "latin1");
  const frame = Buffer.allocUnsafe(5 + length);
  frame[0] = trailerFrameFlag;
  frame.writeUInt32BE(length, 1);
  // Header values are bytes (latin1), as on the wire; grpc-message is percent-encoded.
  frame.write(text, 5, "latin1");
  return frame;
}

/**
 * One `name: value\r\n` line per header value, as in an HTTP/1.1 head and
 * in the trailer frame (a repeated header gives one line per value).
 */
export function headerLines(headers: IncomingHttpHeaders | OutgoingHttpHeaders): string {
  let lines = "";
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) lines += `${name}: ${String(v)}\r\n`;
  }
  return lines;
}

/** The gRPC content type to send upstream for a gRPC-Web client's content type. */
export function upstreamContentTypeForWeb(webContentType: string): string {
  return webContentType === "application/grpc-web" ? "application/grpc" : "application/grpc+proto";
}
