// Edges of the byte path's upstream half (ProxiedCall over H2ClientPool and
// UpstreamRequest) over real sockets, against an HTTP/2 upstream of raw
// frames that each test scripts: calls that end while their upstream
// connection is still opening (the first one, or one for a resend after
// GOAWAY), deadlines mid-body and mid-resend, the gateway closing in the
// middle of things, early answers and refusals while the client is paused,
// many calls through GOAWAYs, an upstream's stream limit, and a server
// stream whose client stops reading. The clients are mostly raw node:http2
// sessions (one test speaks HTTP/1.1), so a test can stop, cancel or
// half-send a call.
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { GetTaskRequestSchema } from "@flame-ts/core/gen";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ByteProxy } from "../src/byte-proxy.js";
import { H2ClientConnection, H2ClientStream } from "../src/h2-client-connection.js";
import { encodeFrame, FrameType, goawayFrame, H2Error, headersFrames } from "../src/h2-frame.js";
import { encodeHeaderBlock } from "../src/header-block.js";
import { type Gateway, startGateway } from "../src/index.js";
import { makeCertificates, type TestCertificates } from "./certificates.js";
import { eventually } from "./fake-flame.js";
import {
  answerEnded,
  endsStream,
  okHeaders,
  type Script,
  startScriptedUpstream,
  taskFrame,
  type UpstreamConnection,
} from "./scripted-upstream.js";
import {
  destroyClients,
  getTask,
  grpcStatusOf,
  preflight,
  RawClient,
  taskIdsOf,
  webCall,
} from "./web-relay-client.js";

let certs: TestCertificates;
/** What a test started, closed after it (last first). */
const cleanups: (() => Promise<void> | void)[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(() => {
  certs = makeCertificates();
  process.on("unhandledRejection", onUnhandled);
});

afterEach(async () => {
  vi.restoreAllMocks();
  destroyClients();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  // Nothing the gateway did in the test left a promise rejected unhandled.
  expect(unhandled.splice(0)).toEqual([]);
});

afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
  certs?.remove();
});

// --- upstreams ---------------------------------------------------------------

/** A scripted upstream, closed after the test; its writes go at once (no Nagle). */
async function upstreamWith(onFrame: Script["onFrame"], options: Omit<Script, "onFrame"> = {}) {
  const upstream = await startScriptedUpstream({
    ...options,
    onFrame(connection, frame) {
      connection.socket.setNoDelay(true);
      onFrame?.(connection, frame);
    },
  });
  cleanups.push(() => upstream.close());
  return upstream;
}

/** Stream ids the upstream got HEADERS for on `connection`. */
const requestIds = (connection: UpstreamConnection | undefined) =>
  (connection?.frames ?? []).filter((f) => f.type === FrameType.headers).map((f) => f.streamId);

/**
 * A TLS front for a plain upstream whose handshakes wait while it is held:
 * the gateway's upstream connection stays "opening" (TCP is up, TLS is
 * not) until the test releases it.
 */
async function startGatedFront(target: string) {
  const targetPort = Number(new URL(target).port);
  const context = tls.createSecureContext({ cert: certs.cert, key: certs.key });
  let held = false;
  const waiting: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (raw) => {
    sockets.add(raw);
    raw.on("error", () => {});
    const pass = () => {
      if (raw.destroyed) return;
      const secure = new tls.TLSSocket(raw, {
        isServer: true,
        secureContext: context,
        ALPNProtocols: ["h2"],
      });
      const back = net.connect(targetPort, "127.0.0.1");
      sockets.add(back);
      for (const s of [secure, back]) s.on("error", () => {});
      secure.pipe(back).pipe(secure);
      secure.on("close", () => back.destroy());
      back.on("close", () => secure.destroy());
    };
    if (held) waiting.push(pass);
    else pass();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const front = {
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    /** Handshakes waiting for `release()`. */
    get waiting() {
      return waiting.length;
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const pass of waiting.splice(0)) pass();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanups.push(front.close);
  return front;
}

/** A gateway with the gRPC relay off: gRPC over HTTP/2 takes the byte path. */
async function byteGateway(upstream: string, ca?: string): Promise<Gateway> {
  const gw = await startGateway({
    upstream,
    grpcRelay: false,
    ...(ca === undefined ? {} : { ca }),
  });
  cleanups.push(() => gw.close());
  return gw;
}

/** Counts calls that took the byte path; `mock.contexts` holds the proxies that took them. */
const spyOnBytePath = () => vi.spyOn(ByteProxy.prototype, "handle");

/** Streams the byte proxy's one upstream connection still holds. */
function openUpstreamStreams(spy: ReturnType<typeof spyOnBytePath>): number {
  const proxy = spy.mock.contexts[0];
  if (!(proxy instanceof ByteProxy)) throw new Error("no call took the byte path");
  expect(proxy.pool.size).toBe(1);
  const connection = proxy.pool.connection();
  if (connection instanceof Promise) throw new Error("the pool had no connection ready");
  return connection.openStreams;
}

// --- clients -----------------------------------------------------------------

/** A GetTaskRequest (WatchTaskRequest has the same shape) as one gRPC frame. */
function requestFrame(taskId: string): Buffer {
  const message = toBinary(GetTaskRequestSchema, create(GetTaskRequestSchema, { taskId }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

interface Outcome {
  /** grpc-status, from the trailers or a trailers-only answer; undefined if none came. */
  code: number | undefined;
  message: string | undefined;
  data: Buffer;
}

/** One gRPC call on a raw HTTP/2 session; the body is written as the test says. */
function startCall(
  session: http2.ClientHttp2Session,
  method: string,
  headers: http2.OutgoingHttpHeaders = {},
) {
  const stream = session.request({
    ":method": "POST",
    ":path": `/flame.v1.Frontend/${method}`,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers,
  });
  stream.on("error", () => {});
  const chunks: Buffer[] = [];
  let fields: http2.IncomingHttpHeaders = {};
  stream.on("response", (h) => {
    fields = { ...fields, ...h };
  });
  stream.on("trailers", (t) => {
    fields = { ...fields, ...t };
  });
  stream.on("data", (c: Buffer) => chunks.push(c));
  const outcome = new Promise<Outcome>((resolve) => {
    // The response's end, or the stream's close (a reset, or a cancel) if that comes first.
    const over = () => {
      const status = fields["grpc-status"];
      const message = fields["grpc-message"];
      resolve({
        code: status === undefined ? undefined : Number(status),
        message: message === undefined ? undefined : decodeURIComponent(String(message)),
        data: Buffer.concat(chunks),
      });
    };
    stream.on("end", over);
    stream.on("close", over);
  });
  return { stream, outcome };
}

/** A whole call: its request frame, then its end. */
function call(session: http2.ClientHttp2Session, method: string, taskId: string, headers = {}) {
  const started = startCall(session, method, headers);
  started.stream.end(requestFrame(taskId));
  return started;
}

async function connect(gw: Gateway): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(gw.url);
  session.on("error", () => {});
  cleanups.push(() => {
    session.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  return session;
}

/** The gRPC messages of a response body, as strings (the task ids show in them). */
const text = (data: Buffer) => data.toString("latin1");

// --- tests -------------------------------------------------------------------

describe("a call that ends while its upstream connection is still opening", () => {
  it("the first call of a fresh gateway, cancelled by its client: nothing reaches the upstream, the next call has stream 1", async () => {
    const spy = spyOnBytePath();
    const upstream = await upstreamWith(answerEnded);
    const front = await startGatedFront(upstream.url);
    front.hold();
    const gw = await byteGateway(front.url, certs.caPem);
    const session = await connect(gw);
    // A server stream, so the gateway's openStreams shows when the call is over.
    const watch = call(session, "WatchTask", "cancelled");
    await eventually(() => front.waiting === 1, "the gateway to open its upstream connection");
    expect(gw.stats().openStreams).toBe(1);
    watch.stream.close(http2.constants.NGHTTP2_CANCEL);
    expect((await watch.outcome).code).toBeUndefined();
    await eventually(() => gw.stats().openStreams === 0, "the gateway to end the call");
    front.release();
    const next = call(session, "GetTask", "next");
    const answered = await next.outcome;
    expect(answered.code).toBe(0);
    expect(text(answered.data)).toContain("raw");
    // The cancelled call never became a stream upstream: the next call is stream 1, alone.
    expect(upstream.connections.length).toBe(1);
    expect(requestIds(upstream.connections[0])).toEqual([1]);
    expect(upstream.connections[0]?.body(1).equals(requestFrame("next"))).toBe(true);
    expect(openUpstreamStreams(spy)).toBe(0);
  });

  it.each([
    ["cancelled by its client", "cancel"],
    ["past its deadline", "deadline"],
  ] as const)(
    "a call being sent again after GOAWAY, %s: it is not sent on the new connection",
    async (_, how) => {
      const spy = spyOnBytePath();
      let front: Awaited<ReturnType<typeof startGatedFront>> | undefined;
      const upstream = await upstreamWith((connection, frame) => {
        if (connection === upstream.connections[0]) {
          // The first connection goes away at the first request, processing nothing;
          // the connection the call is sent again on then waits in its handshake.
          if (frame.type === FrameType.headers) {
            front?.hold();
            connection.write(goawayFrame(0, H2Error.noError));
          }
          return;
        }
        answerEnded(connection, frame);
      });
      front = await startGatedFront(upstream.url);
      const gw = await byteGateway(front.url, certs.caPem);
      const session = await connect(gw);
      const first = call(
        session,
        "WatchTask",
        "resent",
        how === "deadline" ? { "grpc-timeout": "300m" } : {},
      );
      await eventually(() => front?.waiting === 1, "the call to wait for a new connection");
      expect(requestIds(upstream.connections[0])).toEqual([1]);
      if (how === "cancel") {
        first.stream.close(http2.constants.NGHTTP2_CANCEL);
        expect((await first.outcome).code).toBeUndefined();
      } else {
        expect(await first.outcome).toMatchObject({
          code: Code.DeadlineExceeded,
          message: "the operation timed out",
        });
      }
      await eventually(() => gw.stats().openStreams === 0, "the gateway to end the call");
      front.release();
      const next = call(session, "GetTask", "next");
      expect((await next.outcome).code).toBe(0);
      const again = upstream.connections[1];
      expect(requestIds(again)).toEqual([1]);
      expect(again?.body(1).equals(requestFrame("next"))).toBe(true);
      expect(openUpstreamStreams(spy)).toBe(0);
    },
  );
});

describe("a call over HTTP/1.1 that ends while its upstream connection is still opening", () => {
  it("leaves its client connection read again: the next request on it is answered while the connection still opens", async () => {
    const upstream = await upstreamWith(answerEnded);
    const front = await startGatedFront(upstream.url);
    front.hold();
    // The gRPC-Web relay off: gRPC-Web over HTTP/1.1 goes through Node's server to the byte path.
    const gw = await startGateway({
      upstream: front.url,
      ca: certs.caPem,
      grpcWebRelay: false,
      allowedOrigins: ["https://dash.example.com"],
    });
    cleanups.push(() => gw.close());
    const client = await RawClient.open(gw);
    client.write(webCall("GetTask", getTask("t"), { "Grpc-Timeout": "100m" }));
    const failed = await client.next();
    expect(grpcStatusOf(failed)).toEqual({
      code: Code.DeadlineExceeded,
      message: "the operation timed out",
    });
    expect(front.waiting).toBe(1);
    // The byte path paused this socket's request while the connection opened.
    client.write(preflight("https://dash.example.com"));
    expect((await client.next()).status).toBe(204);
    front.release();
    client.write(webCall("GetTask", getTask("next")));
    const next = await client.next();
    expect(taskIdsOf(next)).toEqual(["raw"]);
    expect(requestIds(upstream.connections[0])).toEqual([1]);
  });
});

describe("a call the upstream refuses (REFUSED_STREAM) while its client is paused for window", () => {
  it("is sent again whole on the same connection, and its client is read again to the end", async () => {
    const waiting = vi.spyOn(H2ClientStream.prototype, "whenFlushed");
    const upstream = await upstreamWith(
      (connection, frame) => {
        // Connection credit only: each request's body stops at its stream's initial window.
        if (frame.type === FrameType.data && frame.payload.length > 0) {
          connection.write(encodeFrame(FrameType.windowUpdate, 0, 0, uint32(frame.payload.length)));
        }
        answerEnded(connection, frame);
      },
      { credit: false },
    );
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const body = requestFrame("r".repeat(700 * 1024));
    const refused = startCall(session, "GetTask");
    refused.stream.end(body);
    await eventually(() => waiting.mock.calls.length === 1, "the proxy to pause the client");
    const [connection] = upstream.connections as [UpstreamConnection];
    await eventually(() => connection.body(1).length === 65_535, "the first window's bytes");
    connection.write(encodeFrame(FrameType.rstStream, 0, 1, uint32(H2Error.refusedStream)));
    // Sent again on stream 3 from its first byte, and paused again at its window.
    await eventually(() => connection.body(3).length === 65_535, "the resend's first window");
    await eventually(() => waiting.mock.calls.length === 2, "the proxy to pause the client again");
    connection.write(encodeFrame(FrameType.windowUpdate, 0, 3, uint32(body.length)));
    const outcome = await refused.outcome;
    expect(outcome.code).toBe(0);
    expect(connection.body(3).equals(body)).toBe(true);
    expect(requestIds(connection)).toEqual([1, 3]);
  });
});

describe("a deadline that passes while the request body arrives", () => {
  it("fails the call, resets its upstream stream, and the client's session goes on", async () => {
    const spy = spyOnBytePath();
    const upstream = await upstreamWith(answerEnded);
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const body = requestFrame("x".repeat(4096));
    const late = startCall(session, "GetTask", { "grpc-timeout": "50m" });
    late.stream.write(body.subarray(0, 100));
    expect(await late.outcome).toMatchObject({
      code: Code.DeadlineExceeded,
      message: "the operation timed out",
    });
    const [connection] = upstream.connections;
    await eventually(
      () => connection?.received(FrameType.rstStream, 1).length === 1,
      "the upstream stream to be reset",
    );
    expect(connection?.over(1)).toBe(true);
    const next = call(session, "GetTask", "next");
    expect((await next.outcome).code).toBe(0);
    expect(upstream.connections.length).toBe(1);
    expect(requestIds(connection)).toEqual([1, 3]);
    expect(openUpstreamStreams(spy)).toBe(0);
  });
});

describe("the gateway closing", () => {
  it("while its upstream connection opens: the call ends Unavailable, and the connection, once up, is dropped unused", async () => {
    const upstream = await upstreamWith(answerEnded);
    const front = await startGatedFront(upstream.url);
    front.hold();
    const gw = await startGateway({ upstream: front.url, grpcRelay: false, ca: certs.caPem });
    const session = await connect(gw);
    const pending = call(session, "WatchTask", "t");
    await eventually(() => front.waiting === 1, "the gateway to open its upstream connection");
    const closing = gw.close();
    expect(await pending.outcome).toMatchObject({
      code: Code.Unavailable,
      message: "the gateway is closing",
    });
    session.destroy();
    await closing;
    expect(gw.stats().openStreams).toBe(0);
    // The handshake completes after the close: the gateway drops that socket
    // without a byte of HTTP/2 on it.
    front.release();
    await eventually(() => upstream.connections.length === 1, "the upstream to be reached");
    const reached = upstream.connections[0] as UpstreamConnection;
    await eventually(() => reached.socket.destroyed || reached.socket.readableEnded, "its close");
    expect(reached.frames).toEqual([]);
  });

  it("while a call's first write is held for the turn: the held frames go out, then the stream's reset and GOAWAY", async () => {
    const upstream = await upstreamWith(answerEnded);
    const gw = await startGateway({ upstream: upstream.url, grpcRelay: false });
    const session = await connect(gw);
    // Warm the pool, so the next call's request is written in the same turn as its data arrives.
    expect((await call(session, "GetTask", "warm").outcome).code).toBe(0);
    const request = H2ClientConnection.prototype.request;
    let closing: Promise<void> | undefined;
    vi.spyOn(H2ClientConnection.prototype, "request").mockImplementation(function (
      this: H2ClientConnection<unknown>,
      ...args: Parameters<H2ClientConnection<unknown>["request"]>
    ) {
      const stream = request.apply(this, args);
      // Before the hold's setImmediate release: the frames are still held.
      queueMicrotask(() => {
        closing ??= gw.close();
      });
      return stream;
    });
    const body = requestFrame("y".repeat(2048));
    const held = startCall(session, "GetTask");
    held.stream.write(body.subarray(0, 1000));
    expect(await held.outcome).toMatchObject({
      code: Code.Unavailable,
      message: "the gateway is closing",
    });
    session.destroy();
    await closing;
    const [connection] = upstream.connections;
    await eventually(
      () => connection?.received(FrameType.goaway, 0).length === 1,
      "the gateway's GOAWAY",
    );
    expect(requestIds(connection)).toEqual([1, 3]);
    expect(connection?.body(3).equals(body.subarray(0, 1000))).toBe(true);
    expect(connection?.received(FrameType.rstStream, 3).length).toBe(1);
    // In that order: the held request, its reset, then GOAWAY.
    const order = connection?.frames
      .filter((f) => f.streamId === 3 || f.type === FrameType.goaway)
      .map((f) => f.type);
    expect(order).toEqual([
      FrameType.headers,
      FrameType.data,
      FrameType.rstStream,
      FrameType.goaway,
    ]);
  });
});

describe("an answer before the whole request, while the client is paused for window", () => {
  it("ends the call with the answer, resets the stream upstream, and later calls on the connection go through", async () => {
    const spy = spyOnBytePath();
    const waiting = vi.spyOn(H2ClientStream.prototype, "whenFlushed");
    const upstream = await upstreamWith(
      (connection, frame) => {
        // Connection credit only: the first request's body stops at the stream's initial window.
        if (frame.type === FrameType.data && frame.payload.length > 0) {
          connection.write(encodeFrame(FrameType.windowUpdate, 0, 0, uint32(frame.payload.length)));
        }
        // The first request is answered by the test, once the client is paused.
        if (frame.streamId !== 1) answerEnded(connection, frame);
      },
      { credit: false },
    );
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const big = startCall(session, "GetTask");
    big.stream.end(requestFrame("z".repeat(600 * 1024)));
    // More than 256 KiB wait for window: the proxy pauses the client.
    await eventually(() => waiting.mock.calls.length > 0, "the proxy to pause the client");
    const [connection] = upstream.connections;
    await eventually(() => connection?.body(1).length === 65_535, "the initial window's bytes");
    connection?.answer(1, [taskFrame("early")]);
    const early = await big.outcome;
    expect(early.code).toBe(0);
    expect(text(early.data)).toContain("early");
    await eventually(() => connection?.over(1) === true, "the upstream stream to be reset");
    expect(connection?.received(FrameType.rstStream, 1).length).toBe(1);
    expect(connection?.body(1).length).toBe(65_535);
    for (const id of ["a", "b", "c"]) {
      const next = call(session, "GetTask", id);
      expect((await next.outcome).code).toBe(0);
    }
    expect(upstream.connections.length).toBe(1);
    expect(requestIds(connection)).toEqual([1, 3, 5, 7]);
    expect(openUpstreamStreams(spy)).toBe(0);
  });
});

function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

describe("many calls over several connections, through GOAWAYs", () => {
  it("ends each of 100 calls once, answered or Unavailable, sends none more than three times, and puts no more than 32 on a connection", async () => {
    const calls = 100;
    const idOf = (data: Buffer) => /call-\d{3}/.exec(text(data))?.[0];
    /** Request bodies per call id, across every connection: each is one sending. */
    const sends = new Map<string, number>();
    const answers = new Map<string, number>();
    const headersSeen = new Map<UpstreamConnection, number>();
    /** Streams each connection has open (not answered, not reset), and the most at once. */
    const open = new Map<UpstreamConnection, Set<number>>();
    let peak = 0;
    const upstream = await upstreamWith((connection, frame) => {
      const index = upstream.connections.indexOf(connection);
      const streams = open.get(connection) ?? new Set<number>();
      open.set(connection, streams);
      if (frame.type === FrameType.rstStream) streams.delete(frame.streamId);
      if (frame.type === FrameType.headers) {
        streams.add(frame.streamId);
        peak = Math.max(peak, streams.size);
        const seen = (headersSeen.get(connection) ?? 0) + 1;
        headersSeen.set(connection, seen);
        // The first three connections go away mid-way, at the eleventh request: the tenth (stream 19) is their last.
        if (index < 3 && seen === 11) connection.write(goawayFrame(19, H2Error.noError));
      }
      if (frame.type === FrameType.data && frame.payload.length > 0) {
        const id = idOf(frame.payload);
        if (id !== undefined) sends.set(id, (sends.get(id) ?? 0) + 1);
      }
      if (!endsStream(frame)) return;
      if (index < 3 && frame.streamId > 19) return;
      const id = idOf(connection.body(frame.streamId)) ?? "none";
      answers.set(id, (answers.get(id) ?? 0) + 1);
      streams.delete(frame.streamId);
      connection.answer(frame.streamId, [taskFrame(id)]);
    });
    const gw = await byteGateway(upstream.url);
    const sessions = [await connect(gw), await connect(gw)];
    const started = Array.from({ length: calls }, (_, i) => {
      const id = `call-${String(i).padStart(3, "0")}`;
      const session = sessions[i % 2] as http2.ClientHttp2Session;
      return { id, ...call(session, "WatchTask", id) };
    });
    const outcomes = await Promise.all(started.map((c) => c.outcome));
    // Spread over connections of at most 32 streams each, even as a burst waits for a new one.
    expect(peak).toBeLessThanOrEqual(32);
    expect(upstream.connections.length).toBeGreaterThan(3);
    let answered = 0;
    let unavailable = 0;
    for (const [i, outcome] of outcomes.entries()) {
      const id = started[i]?.id as string;
      const sent = sends.get(id) ?? 0;
      expect(sent).toBeGreaterThanOrEqual(1);
      expect(sent).toBeLessThanOrEqual(3);
      if (outcome.code === 0) {
        answered++;
        // Its own answer, processed once upstream.
        expect(idOf(outcome.data)).toBe(id);
        expect(answers.get(id)).toBe(1);
      } else {
        unavailable++;
        expect(outcome.code).toBe(Code.Unavailable);
        // Only after the third sending was left unprocessed too.
        expect(sent).toBe(3);
        expect(answers.get(id)).toBeUndefined();
      }
    }
    expect(answered + unavailable).toBe(calls);
    expect(answered).toBeGreaterThan(0);
    await eventually(() => gw.stats().openStreams === 0, "every call to be over");
  });
});

describe("a server stream to a client that stops reading", () => {
  it("holds the upstream by its stream window, and the client's cancel resets the upstream stream", async () => {
    const spy = spyOnBytePath();
    const window = 1024 * 1024;
    const upstream = await upstreamWith((connection, frame) => {
      if (!endsStream(frame)) return;
      if (frame.streamId !== 1) {
        connection.answer(frame.streamId);
        return;
      }
      // One message as large as the gateway's stream window, in 16 KiB DATA frames, then a PING.
      const message = Buffer.alloc(window, 7);
      message.writeUInt8(0, 0);
      message.writeUInt32BE(window - 5, 1);
      const frames = [headersFrames(1, encodeHeaderBlock(okHeaders), false)];
      for (let at = 0; at < window; at += 16_384) {
        frames.push(encodeFrame(FrameType.data, 0, 1, message.subarray(at, at + 16_384)));
      }
      frames.push(encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8, 1)));
      connection.write(Buffer.concat(frames));
    });
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const watch = call(session, "WatchTask", "slow");
    // The client reads nothing at all.
    watch.stream.pause();
    await eventually(() => upstream.connections.length === 1, "the call upstream");
    const c = upstream.connections[0] as UpstreamConnection;
    // The PING's answer comes after the gateway read every DATA frame before it.
    await eventually(
      () => c.received(FrameType.ping, 0).some((f) => (f.flags & 0x1) !== 0),
      "the gateway to read the whole window",
    );
    const credit = c
      .received(FrameType.windowUpdate, 1)
      .reduce((sum, f) => sum + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
    // A proxy that handed credit back as bytes arrived would have given the whole window back.
    expect(credit).toBeLessThan(window / 2);
    // The connection's own credit went back as bytes came: other calls on it are not held up.
    const connectionCredit = c
      .received(FrameType.windowUpdate, 0)
      .reduce((sum, f) => sum + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
    expect(connectionCredit).toBeGreaterThanOrEqual(window - 65_535 + window / 2);
    expect(gw.stats().openStreams).toBe(1);
    watch.stream.close(http2.constants.NGHTTP2_CANCEL);
    await eventually(
      () => c.received(FrameType.rstStream, 1).length === 1,
      "the upstream stream to be reset",
    );
    await eventually(() => gw.stats().openStreams === 0, "the gateway to end the call");
    // The next call goes through on the same connection.
    const next = call(session, "GetTask", "next");
    expect((await next.outcome).code).toBe(0);
    expect(upstream.connections.length).toBe(1);
    expect(requestIds(c)).toEqual([1, 3]);
    expect(openUpstreamStreams(spy)).toBe(0);
  });
});

describe("a connection the upstream is draining (GOAWAY naming the last stream it takes)", () => {
  it("still resets upstream a call its client cancels, while another call on it goes on", async () => {
    const upstream = await upstreamWith((connection, frame) => {
      // Both server streams in: GOAWAY that keeps them, and a PING to know it was read.
      if (frame.type === FrameType.data && frame.streamId === 3 && endsStream(frame)) {
        connection.write(
          Buffer.concat([
            goawayFrame(2 ** 31 - 1, H2Error.noError),
            encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8, 2)),
          ]),
        );
      }
    });
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const cancelled = call(session, "WatchTask", "cancelled");
    await eventually(() => upstream.connections[0]?.over(1) === true, "the first call upstream");
    const kept = call(session, "WatchTask", "kept");
    await eventually(
      () => upstream.connections[0]?.received(FrameType.ping, 0).length === 1,
      "the gateway to read the GOAWAY",
    );
    const c = upstream.connections[0] as UpstreamConnection;
    cancelled.stream.close(http2.constants.NGHTTP2_CANCEL);
    // The upstream is still processing stream 1 and must hear of the cancel.
    await eventually(
      () => c.received(FrameType.rstStream, 1).length === 1,
      "the cancelled stream to be reset upstream",
    );
    c.answer(3, [taskFrame("kept")]);
    const outcome = await kept.outcome;
    expect(outcome.code).toBe(0);
    expect(text(outcome.data)).toContain("kept");
    await eventually(() => gw.stats().openStreams === 0, "both calls to be over");
    // Its last stream over, the drained connection is closed by the gateway.
    await eventually(
      () => c.received(FrameType.goaway, 0).length === 1,
      "the gateway to close the drained connection",
    );
  });
});

describe("an upstream that takes 4 streams at a time (SETTINGS_MAX_CONCURRENT_STREAMS)", () => {
  it("gets no more than 4 at once on any connection, even from a burst on a fresh gateway, and answers all 20", async () => {
    const open = new Map<UpstreamConnection, Set<number>>();
    let refused = 0;
    let peak = 0;
    const upstream = await upstreamWith(
      (connection, frame) => {
        const streams = open.get(connection) ?? new Set<number>();
        open.set(connection, streams);
        if (frame.type === FrameType.headers) {
          // Beyond its limit it refuses, as a server may (RFC 9113, section 5.1.2).
          if (streams.size >= 4) {
            refused++;
            connection.write(
              encodeFrame(FrameType.rstStream, 0, frame.streamId, uint32(H2Error.refusedStream)),
            );
            return;
          }
          streams.add(frame.streamId);
          peak = Math.max(peak, streams.size);
        }
        // Answered a turn later, so the calls of one read are all open together.
        if (endsStream(frame) && streams.has(frame.streamId)) {
          setImmediate(() => {
            streams.delete(frame.streamId);
            connection.answer(frame.streamId, [taskFrame(`answer-${frame.streamId}`)]);
          });
        }
      },
      { settings: [[0x3, 4]] },
    );
    const gw = await byteGateway(upstream.url);
    const session = await connect(gw);
    const calls = Array.from({ length: 20 }, (_, i) => call(session, "GetTask", `c${i}`));
    const outcomes = await Promise.all(calls.map((c) => c.outcome));
    expect(outcomes.map((o) => o.code)).toEqual(outcomes.map(() => 0));
    expect(refused).toBe(0);
    expect(peak).toBeLessThanOrEqual(4);
  });
});

describe("an upstream that closes its connections before its SETTINGS", () => {
  it("ends the waiting calls Unavailable, and keeps no connection", async () => {
    const sockets = new Set<net.Socket>();
    const closing = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      // Reads the gateway's preface, then hangs up without a frame.
      socket.once("data", () => socket.destroy());
    });
    await new Promise<void>((resolve) => closing.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    });
    const port = (closing.address() as net.AddressInfo).port;
    const gw = await byteGateway(`http://127.0.0.1:${port}`);
    const session = await connect(gw);
    const calls = [call(session, "WatchTask", "a"), call(session, "GetTask", "b")];
    for (const outcome of await Promise.all(calls.map((c) => c.outcome))) {
      expect(outcome.code).toBe(Code.Unavailable);
      expect(outcome.message).toMatch(/^upstream /);
    }
    expect(gw.stats().openStreams).toBe(0);
    expect(gw.stats().upstreamConnections).toBe(0);
  });
});
