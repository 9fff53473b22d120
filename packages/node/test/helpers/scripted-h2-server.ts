import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

/** What the server saw of one request. */
export interface SeenRequest {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  stream: http2.ServerHttp2Stream;
  /** Resolves with the RST_STREAM code the stream closed with (0 = ended normally). */
  closed: Promise<number>;
}

/** Answers one request: anything goes, including wrong answers. */
export type Script = (req: SeenRequest) => void | Promise<void>;

/**
 * An HTTP/2 server for transport tests: every request is recorded (headers,
 * body, how its stream closed) and answered by the test's script, written
 * against Node's raw `ServerHttp2Stream`.
 */
export class ScriptedH2Server {
  readonly requests: SeenRequest[] = [];
  readonly sessions = new Set<http2.ServerHttp2Session>();
  sessionsOpened = 0;
  sessionsClosed = 0;
  private readonly sockets = new Set<import("node:net").Socket>();
  script: Script = (req) => respond(req.stream, [], { "grpc-status": "0" });
  private readonly server: http2.Http2Server;
  port = 0;

  constructor(settings: http2.Settings = {}) {
    this.server = http2.createServer({ settings });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server.on("session", (s) => {
      this.sessionsOpened++;
      this.sessions.add(s);
      s.on("close", () => {
        this.sessions.delete(s);
        this.sessionsClosed++;
      });
      s.on("error", () => {});
    });
    this.server.on("connection", (socket: import("node:net").Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      const chunks: Buffer[] = [];
      const closed = new Promise<number>((resolve) =>
        stream.on("close", () => resolve(stream.rstCode ?? 0)),
      );
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const req: SeenRequest = { headers, body: Buffer.concat(chunks), stream, closed };
        this.requests.push(req);
        void Promise.resolve()
          .then(() => this.script(req))
          .catch(() => stream.close(2));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Cut every TCP connection, as a crashed server or a broken network would. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One gRPC frame. */
export function frame(message: Uint8Array, flags = 0, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, Buffer.from(message)]);
}

/**
 * Answer with status 200, `application/grpc`, the given body chunks (each
 * written on its own turn of the event loop, so they travel as separate
 * DATA frames), then trailers (`null`: none).
 */
export async function respond(
  stream: http2.ServerHttp2Stream,
  body: Uint8Array[],
  trailers: http2.OutgoingHttpHeaders | null,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<void> {
  if (stream.destroyed) return;
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", ...headers },
    { waitForTrailers: trailers !== null },
  );
  if (trailers !== null) stream.on("wantTrailers", () => stream.sendTrailers(trailers));
  for (const chunk of body) {
    if (stream.destroyed) return;
    stream.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!stream.destroyed) stream.end();
}
