import type * as http2 from "node:http2";

export interface RawGrpcResult {
  /** grpc-status from the trailers (or the headers of a trailers-only answer). */
  status: number | undefined;
  messages: Buffer[];
}

/**
 * One gRPC call made with Node's HTTP/2 client rather than a gRPC library,
 * so the test can send what a library would not: any header (a deadline of
 * 99999999H) and request trailers.
 */
export function rawGrpcCall(
  session: http2.ClientHttp2Session,
  method: string,
  message: Uint8Array,
  options: { headers?: Record<string, string>; trailers?: Record<string, string> } = {},
): Promise<RawGrpcResult> {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        ":method": "POST",
        ":path": `/flame.v1.Frontend/${method}`,
        "content-type": "application/grpc+proto",
        te: "trailers",
        ...options.headers,
      },
      { waitForTrailers: options.trailers !== undefined },
    );
    let status: number | undefined;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = Number(headers["grpc-status"]);
    });
    stream.on("trailers", (trailers) => {
      status = Number(trailers["grpc-status"]);
    });
    stream.on("wantTrailers", () => stream.sendTrailers(options.trailers ?? {}));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.once("error", reject);
    stream.once("close", () => {
      let body = Buffer.concat(chunks);
      const messages: Buffer[] = [];
      while (body.length >= 5 && body.length >= 5 + body.readUInt32BE(1)) {
        messages.push(body.subarray(5, 5 + body.readUInt32BE(1)));
        body = body.subarray(5 + body.readUInt32BE(1));
      }
      resolve({ status, messages });
    });
    const head = Buffer.alloc(5);
    head.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([head, message]));
  });
}
