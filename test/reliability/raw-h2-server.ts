import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

/** One gRPC length-prefixed frame: flag byte, 4-byte big-endian length, bytes. */
export function grpcFrame(message: Uint8Array, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, Buffer.from(message)]);
}

/** What the server does with one request. */
export interface RawReply {
  /** HTTP status (default 200). */
  status?: number;
  /** Default "application/grpc+proto". */
  contentType?: string;
  /** Bytes written as the body, in order (already framed, or deliberately not). */
  body?: Uint8Array[];
  /** Trailers; default `{ "grpc-status": "0" }`. `null`: end the stream without any. */
  trailers?: Record<string, string> | null;
  /** Reset the stream with this HTTP/2 error code after the body instead of ending it. */
  resetCode?: number;
}

export type RawHandler = (method: string) => RawReply;

/**
 * An HTTP/2 server that speaks just enough gRPC to misbehave on purpose:
 * each request is answered by whatever the test's handler returns, however
 * wrong. Counts requests per method.
 */
export class RawH2Server {
  // Generous session memory: the huge-message cases buffer megabytes.
  private readonly server = http2.createServer({ maxSessionMemory: 1024 });
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  handler: RawHandler = () => ({ trailers: { "grpc-status": "12" } });
  readonly calls: Record<string, number> = {};
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server.on("session", (s) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
      s.on("error", () => {});
    });
    this.server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      const method =
        String(headers[":path"] ?? "")
          .split("/")
          .pop() ?? "";
      this.calls[method] = (this.calls[method] ?? 0) + 1;
      // Read the request before answering, as a real server would.
      stream.resume();
      stream.on("end", () => this.answer(stream, this.handler(method)));
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private answer(stream: http2.ServerHttp2Stream, reply: RawReply): void {
    if (stream.destroyed) return;
    const trailers = reply.trailers === undefined ? { "grpc-status": "0" } : reply.trailers;
    stream.respond(
      {
        ":status": reply.status ?? 200,
        "content-type": reply.contentType ?? "application/grpc+proto",
      },
      { waitForTrailers: trailers !== null && reply.resetCode === undefined },
    );
    if (trailers !== null && reply.resetCode === undefined) {
      stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    }
    for (const chunk of reply.body ?? []) stream.write(chunk);
    if (reply.resetCode !== undefined) {
      // Let the body go out first, then break the stream.
      setImmediate(() => stream.close(reply.resetCode));
      return;
    }
    stream.end();
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
