// A server that does no work: it answers every call with the same gRPC
// reply, as soon as the request has ended. Figure 5 puts the gateway in
// front of it to tell the gateway's own cost from the emulator's, whose
// replies cost hundreds of µs and, over HTTP/2, come in two writes.
//
// One port, sniffed by the first bytes (as the emulator does):
// - HTTP/1.1: gRPC-Web, head and body (message and trailer frame) in one
//   write, as the emulator answers gRPC-Web;
// - HTTP/2: gRPC. `--trailers with-data` writes HEADERS, DATA and the
//   trailers at once; `--trailers next-turn` writes the trailers one turn
//   of the event loop later, as node:http2 (so the emulator) always does.
//
// Usage: scripted-upstream.ts --trailers with-data|next-turn --reply <hex>
// (the reply message's protobuf bytes). It prints "listening on URL".
import * as net from "node:net";
import { parseArgs } from "node:util";
import { encodeTrailerFrame } from "../packages/gateway/src/grpc-web-framing.js";
import {
  clientPreface,
  encodeFrame,
  FrameFlag,
  FrameReader,
  FrameType,
  headersFrames,
  windowUpdateFrame,
} from "../packages/gateway/src/h2-frame.js";
import { encodeHeaderBlock } from "../packages/gateway/src/header-block.js";
import { serveAsChild } from "./child-process.js";
import { grpcFrame } from "./grpc-frame.js";

const { values } = parseArgs({
  options: { trailers: { type: "string" }, reply: { type: "string" } },
});
const trailers = values.trailers;
if (trailers !== "with-data" && trailers !== "next-turn") {
  throw new Error("--trailers must be with-data or next-turn");
}
const message = Buffer.from(grpcFrame(Buffer.from(values.reply ?? "", "hex")));

const webBody = Buffer.concat([message, encodeTrailerFrame({ "grpc-status": "0" })]);
const webReply = Buffer.concat([
  Buffer.from(
    "HTTP/1.1 200 OK\r\ncontent-type: application/grpc-web+proto\r\n" +
      `content-length: ${webBody.length}\r\n\r\n`,
    "latin1",
  ),
  webBody,
]);
const replyHead = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", "application/grpc"],
]);
const replyTrailers = encodeHeaderBlock([["grpc-status", "0"]]);
/** Window given back on the connection once this much request data has come in. */
const creditEvery = 32 * 1024;

/** Answers each gRPC-Web request (a head with a Content-Length body) in one write. */
function serveHttp1(socket: net.Socket, first: Buffer): void {
  let buffered = first;
  const onBytes = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    let replies = 0;
    for (;;) {
      const headEnd = buffered.indexOf("\r\n\r\n");
      if (headEnd < 0) break;
      const head = buffered.subarray(0, headEnd).toString("latin1");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const end = headEnd + 4 + length;
      if (buffered.length < end) break;
      buffered = buffered.subarray(end);
      replies++;
    }
    if (replies > 0)
      socket.write(replies === 1 ? webReply : Buffer.concat(Array(replies).fill(webReply)));
  };
  socket.on("data", onBytes);
  onBytes(Buffer.alloc(0));
}

/** Answers each gRPC request once its END_STREAM is in; acknowledges SETTINGS and PING. */
function serveHttp2(socket: net.Socket, first: Buffer): void {
  const reader = new FrameReader();
  let uncredited = 0;
  socket.write(encodeFrame(FrameType.settings, 0, 0, Buffer.alloc(0)));
  const onFrames = (bytes: Buffer) => {
    const now: Buffer[] = [];
    const later: Buffer[] = [];
    for (const frame of reader.push(bytes)) {
      const ack = (frame.flags & 0x1) !== 0;
      if (frame.type === FrameType.settings && !ack) {
        now.push(encodeFrame(FrameType.settings, 0x1, 0, Buffer.alloc(0)));
      } else if (frame.type === FrameType.ping && !ack) {
        now.push(encodeFrame(FrameType.ping, 0x1, 0, frame.payload));
      } else if (frame.type === FrameType.data) {
        uncredited += frame.payload.length;
      }
      const ends =
        (frame.type === FrameType.headers || frame.type === FrameType.data) &&
        (frame.flags & FrameFlag.endStream) !== 0;
      if (ends) {
        const id = frame.streamId;
        now.push(headersFrames(id, replyHead, false), encodeFrame(FrameType.data, 0, id, message));
        (trailers === "with-data" ? now : later).push(headersFrames(id, replyTrailers, true));
      }
    }
    if (uncredited >= creditEvery) {
      now.push(windowUpdateFrame(0, uncredited));
      uncredited = 0;
    }
    if (now.length > 0) socket.write(Buffer.concat(now));
    if (later.length > 0) setImmediate(() => socket.write(Buffer.concat(later)));
  };
  socket.on("data", onFrames);
  onFrames(first.subarray(clientPreface.length));
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => socket.destroy());
  let seen = Buffer.alloc(0);
  const sniff = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const http2 = seen.subarray(0, 3).toString("latin1") === "PRI";
    if (seen.length < (http2 ? clientPreface.length : 3)) return;
    socket.off("data", sniff);
    if (http2) serveHttp2(socket, seen);
    else serveHttp1(socket, seen);
  };
  socket.on("data", sniff);
});
serveAsChild(server);
