import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import type { ServerHttp2Stream } from "node:http2";

/** What a byte-forwarded call hears from its client. */
export interface DownstreamListener {
  onClientData(chunk: Buffer): void;
  onClientEnd(): void;
  /** The client side closed: normal after the response ended, a cancel before. */
  onClientClose(): void;
  onClientDrain(): void;
}

/**
 * The client side of a byte-forwarded call, over HTTP/2 (gRPC, gRPC-Web)
 * or HTTP/1.1 (gRPC-Web only, which needs no HTTP trailers).
 */
export interface Downstream {
  readonly headers: IncomingHttpHeaders;
  /** True once the response headers went out. */
  readonly responded: boolean;
  /** True when nothing more can be sent (closed or reset). */
  readonly gone: boolean;
  listen(listener: DownstreamListener): void;
  pause(): void;
  resume(): void;
  /**
   * Sends the response headers (`:status` among them). `endStream` ends the
   * response there (a trailers-only gRPC response); otherwise, over HTTP/2,
   * `end()` sends the trailers given to it.
   */
  respond(headers: OutgoingHttpHeaders, endStream: boolean): void;
  /** False when the client is not keeping up; wait for onClientDrain. */
  write(chunk: Buffer): boolean;
  /** Ends the response, with HTTP/2 trailers when given (gRPC only). */
  end(trailers?: OutgoingHttpHeaders): void;
}

export class Http2Downstream implements Downstream {
  #trailers: OutgoingHttpHeaders | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    /** gRPC ends with HTTP/2 trailers; gRPC-Web ends with its body. */
    private readonly trailers: boolean,
  ) {}

  get responded(): boolean {
    return this.stream.headersSent;
  }

  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  listen(listener: DownstreamListener): void {
    const stream = this.stream;
    stream.on("data", (chunk: Buffer) => listener.onClientData(chunk));
    stream.on("end", () => listener.onClientEnd());
    stream.on("close", () => listener.onClientClose());
    stream.on("drain", () => listener.onClientDrain());
    // A reset or a dead connection: "close" follows and says the rest.
    stream.on("error", () => {});
    stream.on("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(this.#trailers ?? {});
    });
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  respond(headers: OutgoingHttpHeaders, endStream: boolean): void {
    if (this.gone) return;
    this.stream.respond(
      headers,
      endStream ? { endStream: true } : { waitForTrailers: this.trailers },
    );
  }

  write(chunk: Buffer): boolean {
    if (this.gone) return true;
    return this.stream.write(chunk);
  }

  end(trailers?: OutgoingHttpHeaders): void {
    if (this.gone) return;
    this.#trailers = trailers;
    this.stream.end();
  }
}

export class Http1Downstream implements Downstream {
  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {}

  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  get responded(): boolean {
    return this.res.headersSent;
  }

  get gone(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  listen(listener: DownstreamListener): void {
    this.req.on("data", (chunk: Buffer) => listener.onClientData(chunk));
    this.req.on("end", () => listener.onClientEnd());
    this.req.on("error", () => {});
    this.res.on("close", () => listener.onClientClose());
    this.res.on("drain", () => listener.onClientDrain());
    this.res.on("error", () => {});
  }

  pause(): void {
    this.req.pause();
  }

  resume(): void {
    this.req.resume();
  }

  respond(headers: OutgoingHttpHeaders, endStream: boolean): void {
    if (this.gone) return;
    const { ":status": status, ...rest } = headers;
    this.res.writeHead(Number(status ?? 200), rest);
    if (endStream) this.res.end();
  }

  write(chunk: Buffer): boolean {
    if (this.gone) return true;
    return this.res.write(chunk);
  }

  end(): void {
    if (this.gone) return;
    this.res.end();
  }
}
