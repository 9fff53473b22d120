// Helpers for the gRPC-Web relay's tests: gRPC-Web requests as bytes, an
// HTTP/1.1 client on a raw socket, and readers of what comes back.
import * as net from "node:net";
import * as tls from "node:tls";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreateTaskRequestSchema,
  GetTaskRequestSchema,
  ListTaskRequestSchema,
  TaskSchema,
  WatchTaskRequestSchema,
} from "@flame-ts/core/gen";
import { expect } from "vitest";
import type { Gateway } from "../src/index.js";

/** Every client opened, for `destroyClients()` after each test. */
const clients: RawClient[] = [];

/** Destroys the clients opened since the last call. */
export function destroyClients(): void {
  for (const client of clients.splice(0)) client.destroy();
}

// --- requests ----------------------------------------------------------------

/** A message as one length-prefixed frame (gRPC-Web's binary framing is gRPC's). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export const getTask = (taskId: string) =>
  grpcFrame(
    toBinary(GetTaskRequestSchema, create(GetTaskRequestSchema, { sessionId: "s", taskId })),
  );
export const watchTask = (taskId: string) =>
  grpcFrame(
    toBinary(WatchTaskRequestSchema, create(WatchTaskRequestSchema, { sessionId: "s", taskId })),
  );
export const listTask = (sessionId: string) =>
  grpcFrame(toBinary(ListTaskRequestSchema, create(ListTaskRequestSchema, { sessionId })));
export const createTask = (input: Uint8Array) =>
  grpcFrame(
    toBinary(
      CreateTaskRequestSchema,
      create(CreateTaskRequestSchema, { task: { sessionId: "s", input } }),
    ),
  );

/** The head of a binary gRPC-Web POST with a sized body, as a browser's fetch sends it. */
export function webHead(
  method: string,
  length: number,
  extra: Record<string, string> = {},
): string {
  let head =
    `POST /flame.v1.Frontend/${method} HTTP/1.1\r\n` +
    "Host: gateway.test\r\n" +
    "Content-Type: application/grpc-web+proto\r\n" +
    "X-Grpc-Web: 1\r\n" +
    `Content-Length: ${length}\r\n`;
  for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

export function webCall(method: string, body: Buffer, extra: Record<string, string> = {}): Buffer {
  return Buffer.concat([Buffer.from(webHead(method, body.length, extra), "latin1"), body]);
}

export function preflight(from: string): Buffer {
  return Buffer.from(
    "OPTIONS /flame.v1.Frontend/GetTask HTTP/1.1\r\n" +
      "Host: gateway.test\r\n" +
      `Origin: ${from}\r\n` +
      "Access-Control-Request-Method: POST\r\n" +
      "Access-Control-Request-Headers: content-type,x-grpc-web\r\n\r\n",
    "latin1",
  );
}

export const getRoot = Buffer.from("GET / HTTP/1.1\r\nHost: gateway.test\r\n\r\n", "latin1");

// --- responses -----------------------------------------------------------------

export interface HttpResponse {
  status: number;
  /** Names in lower case; repeats joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The chunks of a chunked body so far. */
  chunks: Buffer[];
  /** The body is all there. */
  complete: boolean;
  /** Bytes of the response read so far. */
  size: number;
}

/** Reads one HTTP/1.1 response from the start of `bytes`, as far as it has come. */
export function parseResponse(bytes: Buffer, ended: boolean): HttpResponse | undefined {
  const end = bytes.indexOf("\r\n\r\n", 0, "latin1");
  if (end < 0) return undefined;
  const lines = bytes.toString("latin1", 0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? "")?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const start = end + 4;
  const response = (body: Buffer, chunks: Buffer[], complete: boolean, size: number) => ({
    status,
    headers,
    body,
    chunks,
    complete,
    size,
  });
  if (status < 200 || status === 204 || status === 304) {
    return response(Buffer.alloc(0), [], true, start);
  }
  if (headers["transfer-encoding"] === "chunked") {
    const chunks: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = bytes.indexOf("\r\n", at, "latin1");
      if (lineEnd < 0) break;
      const length = Number.parseInt(bytes.toString("latin1", at, lineEnd), 16);
      if (length === 0) {
        // No trailer section: the last chunk ends with an empty line.
        const complete = bytes.length >= lineEnd + 4;
        return response(Buffer.concat(chunks), chunks, complete, complete ? lineEnd + 4 : at);
      }
      if (bytes.length < lineEnd + 2 + length + 2) break;
      chunks.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + length));
      at = lineEnd + 2 + length + 2;
    }
    return response(Buffer.concat(chunks), chunks, false, at);
  }
  const length = headers["content-length"];
  if (length !== undefined) {
    const size = start + Number(length);
    const complete = bytes.length >= size;
    return response(bytes.subarray(start, size), [], complete, Math.min(size, bytes.length));
  }
  // Neither: the body runs to the connection's end.
  return response(bytes.subarray(start), [], ended, bytes.length);
}

/**
 * An HTTP/1.1 client on a raw socket: it writes exactly the bytes a test
 * gives it and reads responses one after another off the same connection.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly #connected: Promise<void>;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #changed: (() => void)[] = [];
  /** Resolves when the server has ended or closed the connection. */
  readonly ended: Promise<void>;

  constructor(socket: net.Socket, connectEvent: "connect" | "secureConnect") {
    this.socket = socket;
    socket.on("error", () => {});
    this.#connected = new Promise((resolve) => socket.once(connectEvent, () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    this.ended = new Promise((resolve) => {
      const done = () => {
        this.#ended = true;
        this.#wake();
        resolve();
      };
      socket.once("end", done);
      socket.once("close", done);
    });
  }

  static async open(gw: Gateway): Promise<RawClient> {
    const client = new RawClient(net.connect(gw.port, "127.0.0.1"), "connect");
    clients.push(client);
    await client.#connected;
    return client;
  }

  static async openTls(gw: Gateway, ca: string): Promise<RawClient> {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: gw.port,
      servername: "localhost",
      ca,
      ALPNProtocols: ["http/1.1"],
    });
    const client = new RawClient(socket, "secureConnect");
    clients.push(client);
    await client.#connected;
    return client;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  }

  /** The next response, whole; it is consumed. Rejects instead of hanging. */
  async next(ms = 5_000): Promise<HttpResponse> {
    const response = await this.peek((r) => r.complete, ms);
    this.#buffer = this.#buffer.subarray(response.size);
    return response;
  }

  /** The next response as far as it has come once `ready` holds; nothing is consumed. */
  async peek(ready: (r: HttpResponse) => boolean, ms = 5_000): Promise<HttpResponse> {
    const deadline = setTimeout(() => this.#wake(), ms);
    const started = Date.now();
    try {
      for (;;) {
        const response = parseResponse(this.#buffer, this.#ended);
        if (response !== undefined && ready(response)) return response;
        if (this.#ended) throw new Error("the connection ended before the response was ready");
        if (Date.now() - started >= ms) throw new Error(`no response within ${ms} ms`);
        await new Promise<void>((resolve) => this.#changed.push(resolve));
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Bytes received and not yet consumed as a response. */
  get unread(): number {
    return this.#buffer.length;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const resolve of this.#changed.splice(0)) resolve();
  }
}

export interface WebFrame {
  flag: number;
  payload: Buffer;
}

/** The gRPC-Web frames of a response body. */
export function framesOf(body: Buffer): WebFrame[] {
  const frames: WebFrame[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const length = body.readUInt32BE(at + 1);
    frames.push({ flag: body[at] as number, payload: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  expect(at, "the body is whole frames").toBe(body.length);
  return frames;
}

/** The trailers of a response body's last frame, which must be the trailer frame. */
export function trailersOf(body: Buffer): Record<string, string> {
  const last = framesOf(body).at(-1);
  expect(last?.flag, "the body ends with the trailer frame").toBe(0x80);
  const trailers: Record<string, string> = {};
  for (const line of (last as WebFrame).payload.toString("latin1").split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    trailers[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return trailers;
}

export function grpcStatusOf(response: HttpResponse): {
  code: number;
  message: string | undefined;
} {
  const trailers = trailersOf(response.body);
  const message = trailers["grpc-message"];
  return {
    code: Number(trailers["grpc-status"]),
    message: message === undefined ? undefined : decodeURIComponent(message),
  };
}

/** The task ids of a response's message frames. */
export function taskIdsOf(response: HttpResponse): string[] {
  return framesOf(response.body)
    .filter((f) => f.flag === 0)
    .map((f) => fromBinary(TaskSchema, f.payload).metadata?.id ?? "");
}

export function accessControlOf(response: HttpResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (name.startsWith("access-control-") || name === "vary") out[name] = value;
  }
  return out;
}
