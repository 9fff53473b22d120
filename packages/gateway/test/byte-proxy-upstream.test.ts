// The byte proxy's upstream half over real sockets: calls that arrive
// through Node's own servers (gRPC over HTTP/2 with the gRPC relay off,
// connect-node's chunked gRPC-Web over HTTP/1.1, gRPC-Web over HTTP/2) go
// out as streams on the proxy's own HTTP/2 connections (H2ClientPool). Flow
// control both ways, how held calls end when the upstream or the gateway
// goes away, what becomes of a raw upstream's odd answers, and the count of
// those connections in the gateway's stats. The relays' counterparts are in
// web-relay.test.ts and grpc-relay.test.ts.
import * as http from "node:http";
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { CreateTaskRequestSchema } from "@flame-ts/core/gen";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ByteProxy } from "../src/byte-proxy.js";
import { H2ClientStream } from "../src/h2-client-connection.js";
import {
  encodeFrame,
  FrameFlag,
  FrameType,
  goawayFrame,
  H2Error,
  headersFrames,
  rstStreamFrame,
  windowUpdateFrame,
} from "../src/h2-frame.js";
import { encodeHeaderBlock, type HeaderField } from "../src/header-block.js";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor, type Protocol } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";
import {
  okHeaders,
  okTrailers,
  startScriptedUpstream,
  taskFrame,
  type UpstreamConnection,
} from "./scripted-upstream.js";

interface BytePath {
  name: string;
  protocol: Protocol;
}

/** The byte paths; each gateway here has the gRPC relay off, so gRPC goes to Node's server. */
const paths: BytePath[] = [
  { name: "gRPC through Node's HTTP/2 server", protocol: "grpc" },
  { name: "chunked gRPC-Web through Node's HTTP/1.1 server", protocol: "grpc-web" },
  { name: "gRPC-Web over HTTP/2", protocol: "grpc-web-h2" },
];

let flame: FakeFlame;
/** The gateway most tests share: gRPC relay off, the default 4 MiB message limit. */
let gateway: Gateway;
/** What a test started, closed after it (last first). */
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  flame = await startFakeFlame();
  gateway = await startGateway({ upstream: flame.url, grpcRelay: false });
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await gateway?.close();
  await flame?.close();
});

/** A gateway whose gRPC calls go through Node's server and the byte proxy, closed after the test. */
async function byteGateway(upstream: string): Promise<Gateway> {
  const gw = await startGateway({ upstream, grpcRelay: false });
  cleanups.push(() => gw.close());
  return gw;
}

/** Counts calls that took the byte path; `mock.contexts` holds the proxies that took them. */
function spyOnBytePath() {
  return vi.spyOn(ByteProxy.prototype, "handle");
}

/** The byte proxy that took the spied calls. */
function proxyOf(spy: ReturnType<typeof spyOnBytePath>): ByteProxy {
  const proxy = spy.mock.contexts[0];
  if (!(proxy instanceof ByteProxy)) throw new Error("no call took the byte path");
  return proxy;
}

/** Streams the proxy's upstream connection (there is one, with room) still holds. */
function openUpstreamStreams(proxy: ByteProxy): number {
  expect(proxy.pool.size).toBe(1);
  const connection = proxy.pool.connection();
  if (connection instanceof Promise) throw new Error("the pool had no connection ready");
  return connection.openStreams;
}

/** What the scripted upstream does with the first request it gets. */
type Answer = (connection: UpstreamConnection, streamId: number) => void;

/**
 * A raw HTTP/2 upstream that answers its first request as `first` says, at
 * the request's HEADERS or at its end, and every later one with a clean
 * Task "raw". With `streamCredit: false` it gives back connection window
 * only, so a request larger than a stream's initial window never ends.
 */
async function startRawUpstream(
  first: Answer,
  options: { at?: "headers" | "end"; streamCredit?: boolean } = {},
) {
  let firstRequest: { connection: UpstreamConnection; id: number } | undefined;
  const upstream = await startScriptedUpstream({
    credit: options.streamCredit !== false,
    onFrame(connection, frame) {
      // Its small writes go at once (Nagle would hold each answer for the gateway's delayed ACK).
      connection.socket.setNoDelay(true);
      const isData = frame.type === FrameType.data;
      if (options.streamCredit === false && isData && frame.payload.length > 0) {
        connection.write(windowUpdateFrame(0, frame.payload.length));
      }
      if (frame.type === FrameType.headers && firstRequest === undefined) {
        firstRequest = { connection, id: frame.streamId };
      }
      const isFirst = firstRequest?.connection === connection && firstRequest.id === frame.streamId;
      const ends =
        (isData || frame.type === FrameType.headers) && (frame.flags & FrameFlag.endStream) !== 0;
      const now = isFirst && options.at === "headers" ? frame.type === FrameType.headers : ends;
      if (!now) return;
      if (isFirst) first(connection, frame.streamId);
      else connection.answer(frame.streamId);
    },
  });
  cleanups.push(() => upstream.close());
  return {
    ...upstream,
    /** The first request's connection and stream id. */
    get first() {
      if (firstRequest === undefined) throw new Error("no request reached the upstream");
      return firstRequest;
    },
  };
}

/** Frames of a response's head (not ending the stream). */
function headFrames(id: number, fields: HeaderField[], endStream = false): Buffer {
  return headersFrames(id, encodeHeaderBlock(fields), endStream);
}

const messageOf = (id: number, bytes: Buffer, end = false) =>
  encodeFrame(FrameType.data, end ? FrameFlag.endStream : 0, id, bytes);

describe.each(paths)("over $name, the byte proxy's upstream", ({ protocol }) => {
  describe("flow control", () => {
    it("sends a request body larger than the initial window and 256 KiB upstream whole", async () => {
      const spy = spyOnBytePath();
      const client = clientFor(protocol, gateway.url);
      // 600 KiB: past HTTP/2's 65,535-byte initial window and the 256 KiB the
      // proxy queues before it pauses the client.
      const input = new Uint8Array(600 * 1024).map((_, i) => (i * 7) % 251);
      const before = flame.calls.CreateTask ?? 0;
      const task = await client.createTask({ task: { sessionId: "big-request", input } });
      expect(spy).toHaveBeenCalledTimes(1);
      expect(flame.calls.CreateTask).toBe(before + 1);
      // The fake answers with the task it got: the upstream saw every byte, in order.
      const echoed = Buffer.from(task.spec?.input ?? new Uint8Array());
      expect(echoed.length).toBe(input.length);
      expect(echoed.equals(Buffer.from(input))).toBe(true);
      // The connection's windows are not left spent: the next call goes through.
      expect((await client.getTask({ sessionId: "s", taskId: "after" })).metadata?.id).toBe(
        "after",
      );
      expect(gateway.stats().openStreams).toBe(0);
    });

    it("pauses the client while its request waits for upstream window, and sends it whole once the window opens", async () => {
      const spy = spyOnBytePath();
      const waiting = vi.spyOn(H2ClientStream.prototype, "whenFlushed");
      // No stream credit until the test gives it: 65,535 bytes go, the rest waits in the proxy.
      const upstream = await startRawUpstream((c, id) => c.answer(id, [taskFrame("whole")]), {
        streamCredit: false,
      });
      const gw = await byteGateway(upstream.url);
      const input = new Uint8Array(600 * 1024).map((_, i) => (i * 13) % 249);
      const call = clientFor(protocol, gw.url).createTask({ task: { sessionId: "s", input } });
      // More than 256 KiB queued: the proxy stops reading the client until they are sent.
      await eventually(() => waiting.mock.calls.length > 0, "the proxy to pause the client");
      const { connection, id } = upstream.first;
      await eventually(() => connection.body(id).length === 65_535, "the initial window's bytes");
      expect(connection.over(id)).toBe(false);
      connection.write(windowUpdateFrame(id, 2 * input.length));
      expect((await call).metadata?.id).toBe("whole");
      // The upstream saw the request's one gRPC frame, byte for byte.
      const message = toBinary(
        CreateTaskRequestSchema,
        create(CreateTaskRequestSchema, { task: { sessionId: "s", input } }),
      );
      const body = connection.body(id);
      expect(body.length).toBe(5 + message.length);
      expect(body.readUInt32BE(1)).toBe(message.length);
      expect(body.subarray(5).equals(Buffer.from(message))).toBe(true);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
    });

    it("relays a server stream of several MiB to a client that stops reading for a while, whole and in order", async () => {
      const spy = spyOnBytePath();
      const client = clientFor(protocol, gateway.url);
      const size = 256 * 1024;
      // 16 messages of 256 KiB: four times the upstream stream's 1 MiB receive window.
      const iterator = client.listTask({ sessionId: `big:16:${size}` })[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      // Long enough for every buffer on the way to fill; nothing is asserted on time.
      await new Promise((r) => setTimeout(r, 300));
      const inputs = [first.value?.spec?.input];
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        inputs.push(next.value.spec?.input);
      }
      expect(spy).toHaveBeenCalledTimes(1);
      expect(inputs.length).toBe(16);
      for (const [i, input] of inputs.entries()) {
        expect(input?.length).toBe(size);
        expect(Buffer.from(input ?? new Uint8Array()).equals(Buffer.alloc(size, i))).toBe(true);
      }
      expect((await client.getTask({ sessionId: "s", taskId: "after" })).metadata?.id).toBe(
        "after",
      );
    });
  });

  describe("held calls when something goes away", () => {
    it("ends a held stream with Unavailable, upstream connection failed, when the upstream dies; the next call opens a new connection", async () => {
      const spy = spyOnBytePath();
      const doomed = await startFakeFlame();
      cleanups.push(() => doomed.close());
      const port = Number(new URL(doomed.url).port);
      const gw = await byteGateway(doomed.url);
      const client = clientFor(protocol, gw.url);
      const iterator = client
        .watchTask({ sessionId: "s", taskId: "doomed" })
        [Symbol.asyncIterator]();
      expect((await iterator.next()).value?.metadata?.id).toBe("doomed");
      expect(gw.stats().openStreams).toBe(1);
      expect(gw.stats().upstreamConnections).toBe(1);
      await doomed.close();
      const err = await rejection(iterator.next());
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(/^upstream connection failed: /);
      await eventually(
        () => gw.stats().openStreams === 0 && gw.stats().upstreamConnections === 0,
        "the gateway to drop the stream and the connection",
      );
      // The upstream comes back where the gateway points: the next call gets through.
      const late = await startFakeFlame({ port });
      cleanups.push(() => late.close());
      expect((await client.getTask({ sessionId: "s", taskId: "late" })).metadata?.id).toBe("late");
      expect(late.calls.GetTask).toBe(1);
      expect(gw.stats().upstreamConnections).toBe(1);
      expect(spy).toHaveBeenCalledTimes(2);
    });

    /** A gateway to the shared fake with a watch held open on it, and the proxy that holds it. */
    async function heldWatch(taskId: string) {
      const spy = spyOnBytePath();
      const gw = await byteGateway(flame.url);
      const iterator = clientFor(protocol, gw.url)
        .watchTask({ sessionId: "s", taskId })
        [Symbol.asyncIterator]();
      expect((await iterator.next()).value?.metadata?.id).toBe(taskId);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(gw.stats().upstreamConnections).toBe(1);
      return { gw, iterator, proxy: proxyOf(spy) };
    }

    it("ends a held stream with Unavailable, the gateway is closing, at the proxy's close, and cancels it upstream", async () => {
      const cancelled = flame.streamsCancelled;
      const { gw, iterator, proxy } = await heldWatch("closing");
      // What gateway.close() does first; the servers close after the client has its status.
      proxy.close();
      const err = await rejection(iterator.next());
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("the gateway is closing");
      await eventually(
        () => flame.streamsCancelled === cancelled + 1,
        "the upstream to see the stream cancelled",
      );
      expect(gw.stats().openStreams).toBe(0);
      expect(gw.stats().upstreamConnections).toBe(0);
    });

    it("ends a held stream and cancels it upstream when the whole gateway closes", async () => {
      const cancelled = flame.streamsCancelled;
      const { gw, iterator } = await heldWatch("gateway-closing");
      const closing = gw.close();
      const err = await rejection(iterator.next());
      await closing;
      // Over HTTP/2 too: the server lets Node's session write the status
      // before it destroys the connection.
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("the gateway is closing");
      await eventually(
        () => flame.streamsCancelled === cancelled + 1,
        "the upstream to see the stream cancelled",
      );
      expect(gw.stats().upstreamConnections).toBe(0);
    });
  });

  describe("answers of a raw HTTP/2 upstream", () => {
    it.each<[string, HeaderField[], HeaderField[]]>([
      [
        "a CRLF in a response header value",
        [...okHeaders, ["x-split", "a\r\nset-cookie: session=stolen"]],
        okTrailers,
      ],
      ["a space in a response header name", [...okHeaders, ["x bad", "v"]], okTrailers],
      ["a CRLF in a trailer value", okHeaders, [...okTrailers, ["x-split", "a\r\ngrpc-status: 7"]]],
    ])(
      "ends the call with Internal, malformed header field, and the connection serves on: %s",
      async (_, headers, trailers) => {
        const spy = spyOnBytePath();
        const upstream = await startRawUpstream((c, id) =>
          c.answer(id, [taskFrame("raw")], headers, trailers),
        );
        const gw = await byteGateway(upstream.url);
        const client = clientFor(protocol, gw.url);
        const err = await rejection(client.getTask({ sessionId: "s", taskId: "bad" }));
        expect(err.code).toBe(Code.Internal);
        expect(err.rawMessage).toBe("protocol error: malformed response header field");
        // Nothing of the bad block reached the client, injected or not.
        expect(err.metadata.get("set-cookie")).toBeNull();
        expect(err.metadata.get("x-split")).toBeNull();
        const connections = gw.stats().upstreamConnections;
        expect(connections).toBe(1);
        // A clean call right after goes on the same upstream connection.
        expect((await client.getTask({ sessionId: "s", taskId: "ok" })).metadata?.id).toBe("raw");
        expect(gw.stats().upstreamConnections).toBe(connections);
        expect(upstream.connections.length).toBe(1);
        expect(spy).toHaveBeenCalledTimes(2);
        // A stream refused at its headers is cancelled upstream; one refused at its trailers is over.
        const { connection, id } = upstream.first;
        expect(connection.received(FrameType.rstStream, id).length).toBe(
          trailers === okTrailers ? 1 : 0,
        );
        expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
      },
    );

    it.each<[string, Answer, Code, string]>([
      [
        "503 with a text body and no trailers",
        (c, id) =>
          c.write(
            Buffer.concat([
              headFrames(id, [
                [":status", "503"],
                ["content-type", "text/plain"],
              ]),
              messageOf(id, Buffer.from("service unavailable, try later"), true),
            ]),
          ),
        Code.Unavailable,
        "HTTP 503",
      ],
      [
        "502 ending with grpc-status 0 trailers",
        (c, id) =>
          c.answer(
            id,
            [Buffer.from("bad gateway")],
            [
              [":status", "502"],
              ["content-type", "text/html"],
            ],
            okTrailers,
          ),
        Code.Unavailable,
        "HTTP 502",
      ],
      [
        "404 in headers alone",
        (c, id) =>
          c.write(
            headFrames(
              id,
              [
                [":status", "404"],
                ["content-type", "text/plain"],
              ],
              true,
            ),
          ),
        Code.Unimplemented,
        "HTTP 404",
      ],
      [
        "401 with a body",
        (c, id) =>
          c.write(
            Buffer.concat([
              headFrames(id, [[":status", "401"]]),
              messageOf(id, Buffer.from("who are you"), true),
            ]),
          ),
        Code.Unauthenticated,
        "HTTP 401",
      ],
      [
        "200 whose trailers have no grpc-status",
        (c, id) => c.answer(id, [taskFrame("raw")], okHeaders, [["x-trailer", "no status"]]),
        Code.Internal,
        "protocol error: missing status",
      ],
    ])(
      "maps an answer without a gRPC status as the relay does: %s",
      async (_, answer, code, message) => {
        const spy = spyOnBytePath();
        const upstream = await startRawUpstream(answer);
        const gw = await byteGateway(upstream.url);
        const client = clientFor(protocol, gw.url);
        const err = await rejection(client.getTask({ sessionId: "s", taskId: "http" }));
        expect(err.code).toBe(code);
        expect(err.rawMessage).toBe(message);
        expect((await client.getTask({ sessionId: "s", taskId: "ok" })).metadata?.id).toBe("raw");
        expect(upstream.connections.length).toBe(1);
        expect(spy).toHaveBeenCalledTimes(2);
        expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
      },
    );

    it.each<[string, number, boolean, Code, string]>([
      [
        "NO_ERROR before the headers",
        H2Error.noError,
        false,
        Code.Unavailable,
        "upstream stream closed before its status",
      ],
      [
        "CANCEL before the headers",
        H2Error.cancel,
        false,
        Code.Canceled,
        "upstream stream closed with error code CANCEL (0x8)",
      ],
      [
        "ENHANCE_YOUR_CALM before the headers",
        0xb,
        false,
        Code.ResourceExhausted,
        "upstream stream closed with error code ENHANCE_YOUR_CALM (0xb)",
      ],
      [
        "INTERNAL_ERROR after the headers and a message",
        H2Error.internalError,
        true,
        Code.Internal,
        "upstream stream closed with error code INTERNAL_ERROR (0x2)",
      ],
    ])(
      "maps RST_STREAM from the upstream to a status: %s",
      async (_, rstCode, afterMessage, code, message) => {
        const spy = spyOnBytePath();
        const upstream = await startRawUpstream((c, id) =>
          c.write(
            Buffer.concat([
              ...(afterMessage ? [headFrames(id, okHeaders), messageOf(id, taskFrame("raw"))] : []),
              rstStreamFrame(id, rstCode),
            ]),
          ),
        );
        const gw = await byteGateway(upstream.url);
        const client = clientFor(protocol, gw.url);
        const err = await rejection(client.getTask({ sessionId: "s", taskId: "reset" }));
        expect(err.code).toBe(code);
        expect(err.rawMessage).toBe(message);
        expect((await client.getTask({ sessionId: "s", taskId: "ok" })).metadata?.id).toBe("raw");
        expect(upstream.connections.length).toBe(1);
        // A reset stream is over: the proxy does not reset it back, send it again, nor keep it.
        const { connection, id } = upstream.first;
        expect(connection.received(FrameType.rstStream, id)).toEqual([]);
        expect(connection.frames.filter((f) => f.type === FrameType.headers).length).toBe(2);
        expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
      },
    );

    it("sends again a call the upstream refused unprocessed (REFUSED_STREAM), on the same connection", async () => {
      const spy = spyOnBytePath();
      const upstream = await startRawUpstream((c, id) =>
        c.write(rstStreamFrame(id, H2Error.refusedStream)),
      );
      const gw = await byteGateway(upstream.url);
      const client = clientFor(protocol, gw.url);
      expect((await client.getTask({ sessionId: "s", taskId: "refused" })).metadata?.id).toBe(
        "raw",
      );
      expect(spy).toHaveBeenCalledTimes(1);
      // The connection still takes streams: the call went again on it, whole.
      expect(upstream.connections.length).toBe(1);
      const { connection } = upstream.first;
      expect(connection.frames.filter((f) => f.type === FrameType.headers).length).toBe(2);
      const bodies = connection.frames
        .filter((f) => f.type === FrameType.data && f.payload.length > 0)
        .map((f) => f.payload.toString("hex"));
      expect(bodies.length).toBe(2);
      expect(bodies[1]).toBe(bodies[0]);
      expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
    });

    it("sends again, on a new connection, a call the upstream left unprocessed (GOAWAY)", async () => {
      const spy = spyOnBytePath();
      const upstream = await startRawUpstream((c) => c.write(goawayFrame(0, H2Error.noError)));
      const gw = await byteGateway(upstream.url);
      const client = clientFor(protocol, gw.url);
      expect((await client.getTask({ sessionId: "s", taskId: "goaway" })).metadata?.id).toBe("raw");
      expect(spy).toHaveBeenCalledTimes(1);
      // Once on each connection: the one that said GOAWAY, then a new one.
      expect(upstream.connections.length).toBe(2);
      expect(
        upstream.connections.map(
          (c) => c.frames.filter((f) => f.type === FrameType.headers).length,
        ),
      ).toEqual([1, 1]);
      // The connection that said GOAWAY leaves the pool (and the count).
      await eventually(
        () => gw.stats().upstreamConnections === 1,
        "the proxy to close the connection that said GOAWAY",
      );
    });

    it("sends a call again whole and in order while its body is still arriving", async () => {
      const spy = spyOnBytePath();
      // The first connection says GOAWAY at the first request, processing nothing.
      const upstream = await startRawUpstream((c) => c.write(goawayFrame(0, H2Error.noError)), {
        at: "headers",
      });
      const gw = await byteGateway(upstream.url);
      const input = new Uint8Array(200 * 1024).map((_, i) => (i * 11) % 241);
      const message = toBinary(
        CreateTaskRequestSchema,
        create(CreateTaskRequestSchema, { task: { sessionId: "s", input } }),
      );
      const body = Buffer.concat([grpcFrameHeader(message.length), Buffer.from(message)]);
      // A request whose body comes in two parts, the second only once the call was sent again.
      const half = 100 * 1024;
      const call = rawCall(gw.url, protocol, "CreateTask", body.subarray(0, half));
      await eventually(() => upstream.connections.length === 2, "the call to be sent again");
      call.finish(body.subarray(half));
      expect(await call.status).toBe("0");
      expect(spy).toHaveBeenCalledTimes(1);
      const again = upstream.connections[1] as UpstreamConnection;
      await eventually(() => again.over(1), "the request to end on the new connection");
      expect(again.body(1).equals(body)).toBe(true);
      expect(gw.stats().openStreams).toBe(0);
    });

    it("relays a trailers-only answer's code, message and metadata", async () => {
      const upstream = await startRawUpstream((c, id) =>
        c.write(
          headFrames(
            id,
            [
              ...okHeaders,
              ["grpc-status", String(Code.NotFound)],
              ["grpc-message", "task caf%C3%A9 not found"],
              ["x-hint", "look elsewhere"],
            ],
            true,
          ),
        ),
      );
      const gw = await byteGateway(upstream.url);
      const client = clientFor(protocol, gw.url);
      const err = await rejection(client.getTask({ sessionId: "s", taskId: "missing" }));
      expect(err.code).toBe(Code.NotFound);
      expect(err.rawMessage).toBe("task café not found");
      expect(err.metadata.get("x-hint")).toBe("look elsewhere");
      expect((await client.getTask({ sessionId: "s", taskId: "ok" })).metadata?.id).toBe("raw");
      expect(upstream.connections.length).toBe(1);
    });

    it("delivers an answer that comes before the whole request was sent, and leaves no stream open upstream", async () => {
      const spy = spyOnBytePath();
      // Answered at its HEADERS, and the stream never gets more window than
      // its first 65,535 bytes: the request cannot end before the answer.
      const upstream = await startRawUpstream((c, id) => c.answer(id, [taskFrame("early")]), {
        at: "headers",
        streamCredit: false,
      });
      const gw = await byteGateway(upstream.url);
      const client = clientFor(protocol, gw.url);
      const input = new Uint8Array(300 * 1024).fill(3);
      const task = await client.createTask({ task: { sessionId: "s", input } });
      expect(task.metadata?.id).toBe("early");
      const { connection, id } = upstream.first;
      // The rest of the request was not wanted: the stream is cancelled upstream.
      await eventually(
        () => connection.received(FrameType.rstStream, id).length === 1,
        "the proxy to cancel the stream upstream",
      );
      const [reset] = connection.received(FrameType.rstStream, id);
      expect(reset?.payload.readUInt32BE(0)).toBe(H2Error.cancel);
      expect(connection.body(id).length).toBeLessThan(input.length);
      expect(connection.over(id)).toBe(true);
      // And it holds no slot on the shared connection, which serves on.
      expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
      expect(gw.stats().openStreams).toBe(0);
      expect((await client.getTask({ sessionId: "s", taskId: "ok" })).metadata?.id).toBe("raw");
      expect(upstream.connections.length).toBe(1);
      expect(openUpstreamStreams(proxyOf(spy))).toBe(0);
    });
  });
});

describe("the byte proxy's upstream connections in the gateway's stats", () => {
  it("counts them as they open and as they go", async () => {
    const spy = spyOnBytePath();
    // One stream per connection: each held watch needs a connection of its own.
    const held = await startFakeFlame({ maxConcurrentStreams: 1 });
    cleanups.push(() => held.close());
    const gw = await byteGateway(held.url);
    expect(gw.stats().upstreamConnections).toBe(0);
    const watches: AsyncIterator<unknown>[] = [];
    for (const [i, { protocol }] of paths.entries()) {
      const iterator = clientFor(protocol, gw.url)
        .watchTask({ sessionId: "s", taskId: `held-${i}` })
        [Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      watches.push(iterator);
      expect(gw.stats().upstreamConnections).toBe(i + 1);
    }
    expect(spy).toHaveBeenCalledTimes(3);
    expect(proxyOf(spy).pool.size).toBe(3);
    expect(gw.stats().relayedConnections).toBe(0);
    expect(gw.stats().webRelayedConnections).toBe(0);
    // The upstream goes away: every connection leaves the pool and the count.
    await held.close();
    for (const watch of watches) {
      expect((await rejection(watch.next())).code).toBe(Code.Unavailable);
    }
    await eventually(
      () => gw.stats().upstreamConnections === 0,
      "the proxy's connections to leave the count",
    );
    expect(proxyOf(spy).pool.size).toBe(0);
  });
});

/** A gRPC message's 5-byte frame header (uncompressed). */
function grpcFrameHeader(length: number): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(length, 1);
  return header;
}

/**
 * One call written by hand, so its body can come in parts: `first` now,
 * the rest with `finish()`. gRPC and gRPC-Web over HTTP/2 (Node's client);
 * gRPC-Web over HTTP/1.1 with a chunked body, as connect-node sends it.
 * `status` is the grpc-status the call ended with.
 */
function rawCall(
  url: string,
  protocol: Protocol,
  method: string,
  first: Buffer,
): { finish(rest: Buffer): void; status: Promise<string | undefined> } {
  const path = `/flame.v1.Frontend/${method}`;
  if (protocol === "grpc-web") {
    const request = http.request(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
    });
    request.write(first);
    const status = new Promise<string | undefined>((resolve, reject) => {
      request.on("error", reject);
      request.on("response", (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (c: Buffer) => chunks.push(c));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("latin1");
          resolve(/grpc-status: ?(\d+)/.exec(text)?.[1]);
        });
      });
    });
    return { finish: (rest) => request.end(rest), status };
  }
  const session = http2.connect(url);
  cleanups.push(async () => {
    session.close();
  });
  const web = protocol === "grpc-web-h2";
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": web ? "application/grpc-web+proto" : "application/grpc",
    ...(web ? {} : { te: "trailers" }),
  });
  stream.write(first);
  const status = new Promise<string | undefined>((resolve, reject) => {
    stream.on("error", reject);
    let text = "";
    stream.on("data", (c: Buffer) => {
      text += c.toString("latin1");
    });
    stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
    stream.on("end", () => resolve(/grpc-status: ?(\d+)/.exec(text)?.[1]));
  });
  return { finish: (rest) => stream.end(rest), status };
}
