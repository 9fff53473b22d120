import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** Flag byte of the gRPC-Web frame that carries the trailers, at the end of the body. */
export const trailerFrameFlag = 0x80;

/**
 * A gRPC-Web trailer frame: flag 0x80, 4-byte big-endian length, then one
 * `name: value\r\n` line per trailer (names lower-case). gRPC-Web carries
 * trailers in the body because browsers cannot read HTTP trailers.
 */
export function encodeTrailerFrame(trailers: IncomingHttpHeaders | OutgoingHttpHeaders): Buffer {
  let text = "";
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value) text += `${name}: ${v}\r\n`;
    } else {
      text += `${name}: ${String(value)}\r\n`;
    }
  }
  const length = Buffer.byteLength(text, "latin1");
  const frame = Buffer.allocUnsafe(5 + length);
  frame[0] = trailerFrameFlag;
  frame.writeUInt32BE(length, 1);
  // Header values are bytes (latin1), as on the wire; grpc-message is percent-encoded.
  frame.write(text, 5, "latin1");
  return frame;
}

/** The gRPC content type to send upstream for a gRPC-Web client's content type. */
export function upstreamContentTypeForWeb(webContentType: string): string {
  return webContentType === "application/grpc-web" ? "application/grpc" : "application/grpc+proto";
}
