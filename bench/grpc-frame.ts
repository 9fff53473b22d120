// A raw gRPC exchange for checking what h2load will send: h2load counts any
// HTTP 200 as a success, and gRPC reports errors in trailers with a 200.
import * as http2 from "node:http2";

/** One length-prefixed gRPC message: flag 0 (uncompressed), 4-byte BE length, bytes. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length, false);
  frame.set(message, 5);
  return frame;
}

export const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };

/** Sends `frame` to `url` + `path` and returns grpc-status and the reply's message bytes. */
export function grpcCall(
  url: string,
  path: string,
  frame: Uint8Array,
): Promise<{ status: string | undefined; message: string | undefined; reply: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, ...grpcHeaders });
    const chunks: Buffer[] = [];
    let headerStatus: string | undefined;
    let grpcMessage: string | undefined;
    stream.on("response", (headers) => {
      headerStatus = headers["grpc-status"] as string | undefined; // trailers-only reply
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("trailers", (trailers) => {
      headerStatus = (trailers["grpc-status"] as string | undefined) ?? headerStatus;
      grpcMessage = trailers["grpc-message"] as string | undefined;
    });
    stream.on("error", reject);
    stream.on("end", () => {
      session.close();
      const body = Buffer.concat(chunks);
      resolve({
        status: headerStatus,
        message: grpcMessage,
        reply: body.subarray(5),
      });
    });
    stream.end(frame);
  });
}
