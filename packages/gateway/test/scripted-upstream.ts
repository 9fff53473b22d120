// An HTTP/2 upstream of raw frames for the relays' tests: it accepts
// connections, sends its SETTINGS, records every frame it receives and does
// what the test's script says with each, so a test can answer early, send
// GOAWAY or RST_STREAM, change windows, or leave a request unanswered.
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { TaskSchema } from "@flame-ts/core/gen";
import {
  clientPreface,
  encodeFrame,
  type Frame,
  FrameFlag,
  FrameReader,
  FrameType,
  headersFrames,
  windowUpdateFrame,
} from "../src/h2-frame.js";
import { encodeHeaderBlock, type HeaderField } from "../src/header-block.js";

export const okHeaders: HeaderField[] = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];
export const okTrailers: HeaderField[] = [["grpc-status", "0"]];

/** A Task message with `id` as one gRPC frame. */
export function taskFrame(id: string): Buffer {
  const message = toBinary(TaskSchema, create(TaskSchema, { metadata: { id, name: id } }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** One connection the scripted upstream accepted, and every frame it received. */
/** The frames of a whole answer on stream `id`: headers, messages, trailers. */
export function answerFrames(
  id: number,
  messages: Buffer[] = [taskFrame("raw")],
  headers: HeaderField[] = okHeaders,
  trailers: HeaderField[] = okTrailers,
): Buffer {
  return Buffer.concat([
    headersFrames(id, encodeHeaderBlock(headers), false),
    ...messages.map((m) => encodeFrame(FrameType.data, 0, id, m)),
    headersFrames(id, encodeHeaderBlock(trailers), true),
  ]);
}

export class UpstreamConnection {
  readonly frames: Frame[] = [];
  constructor(readonly socket: net.Socket) {}

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** A whole answer: headers, messages, trailers. */
  answer(
    id: number,
    messages: Buffer[] = [taskFrame("raw")],
    headers: HeaderField[] = okHeaders,
    trailers: HeaderField[] = okTrailers,
  ): void {
    this.write(answerFrames(id, messages, headers, trailers));
  }

  /** Frames of `type` received on stream `id`. */
  received(type: number, id: number): Frame[] {
    return this.frames.filter((f) => f.type === type && f.streamId === id);
  }

  /** Request body bytes received on stream `id`. */
  body(id: number): Buffer {
    return Buffer.concat(this.received(FrameType.data, id).map((f) => f.payload));
  }

  /** The request on stream `id` has ended (END_STREAM) or was reset. */
  over(id: number): boolean {
    return (
      this.received(FrameType.rstStream, id).length > 0 ||
      this.frames.some(
        (f) =>
          f.streamId === id &&
          (f.type === FrameType.data || f.type === FrameType.headers) &&
          (f.flags & FrameFlag.endStream) !== 0,
      )
    );
  }
}

/** The frame ends its stream's request (END_STREAM on HEADERS or DATA). */
export function endsStream(frame: Frame): boolean {
  return (
    (frame.type === FrameType.headers || frame.type === FrameType.data) &&
    (frame.flags & FrameFlag.endStream) !== 0
  );
}

/** Answers each request once its END_STREAM is in, unless it was reset. */
export function answerEnded(connection: UpstreamConnection, frame: Frame): void {
  if (endsStream(frame) && connection.received(FrameType.rstStream, frame.streamId).length === 0) {
    connection.answer(frame.streamId);
  }
}

export interface Script {
  /** SETTINGS sent first, as [identifier, value]. */
  settings?: [number, number][];
  /** Gives back window for each DATA frame as it arrives (the default). */
  credit?: boolean;
  /** Every frame as it arrives; by default each request is answered once its END_STREAM is in. */
  onFrame?(connection: UpstreamConnection, frame: Frame): void;
}

/** An HTTP/2 upstream of raw frames, doing what the test's script says. */
export async function startScriptedUpstream(script: Script = {}) {
  const connections: UpstreamConnection[] = [];
  const onFrame = script.onFrame ?? answerEnded;
  const server = net.createServer((socket) => {
    const connection = new UpstreamConnection(socket);
    connections.push(connection);
    socket.on("error", () => {});
    const settings = Buffer.alloc(6 * (script.settings?.length ?? 0));
    for (const [i, [id, value]] of (script.settings ?? []).entries()) {
      settings.writeUInt16BE(id, i * 6);
      settings.writeUInt32BE(value, i * 6 + 2);
    }
    socket.write(encodeFrame(FrameType.settings, 0, 0, settings));
    const reader = new FrameReader();
    let preface = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      let bytes = chunk;
      if (preface.length < clientPreface.length) {
        const need = clientPreface.length - preface.length;
        preface = Buffer.concat([preface, chunk.subarray(0, need)]);
        bytes = chunk.subarray(need);
      }
      for (const frame of reader.push(bytes)) {
        connection.frames.push(frame);
        if (frame.type === FrameType.data && frame.payload.length > 0 && script.credit !== false) {
          socket.write(
            Buffer.concat([
              windowUpdateFrame(0, frame.payload.length),
              windowUpdateFrame(frame.streamId, frame.payload.length),
            ]),
          );
        }
        onFrame(connection, frame);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections,
    close: async () => {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type ScriptedUpstream = Awaited<ReturnType<typeof startScriptedUpstream>>;
