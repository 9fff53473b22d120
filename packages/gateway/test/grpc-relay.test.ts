// The gRPC relay over real sockets: which connections it takes, that HPACK
// state stays right in both directions over hundreds of calls on one
// connection (refused calls included), that DATA it drops gives its
// flow-control credit back, what it answers itself, and how relayed calls
// end when the upstream or the gateway goes away.
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { GetTaskRequestSchema, TaskSchema } from "@flame-ts/core/gen";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ByteProxy } from "../src/byte-proxy.js";
import {
  clientPreface,
  encodeFrame,
  type Frame,
  FrameFlag,
  FrameReader,
  FrameType,
  headersFragment,
  headersFrames,
} from "../src/h2-frame.js";
import { encodeHeaderBlock, HeaderBlockDecoder, type HeaderField } from "../src/header-block.js";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";
import { startScriptedUpstream } from "./scripted-upstream.js";

const token = "tok-relay-5d1e9a7c3b";
/** grpc-status of a call that succeeded (Connect's Code has no OK). */
const grpcOk = 0;

let flame: FakeFlame;
/** Relay on (the default), every method, no token. */
let gateway: Gateway;
/** Relay on, read-only methods and a bearer token: refusals on relayed connections. */
let guarded: Gateway;
/** The relay off: every gRPC call goes through Node's HTTP/2 server. */
let withoutRelay: Gateway;
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(async () => {
  flame = await startFakeFlame();
  gateway = await startGateway({ upstream: flame.url });
  guarded = await startGateway({ upstream: flame.url, methods: "read-only", bearerToken: token });
  withoutRelay = await startGateway({ upstream: flame.url, grpcRelay: false });
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const session of sessions.splice(0)) session.destroy();
  // Tests count relayed connections from 0: the last test's are gone first.
  await eventually(
    () => gateway.stats().relayedConnections + guarded.stats().relayedConnections === 0,
    "the relay to drop the last test's connections",
  );
});

afterAll(async () => {
  await withoutRelay?.close();
  await guarded?.close();
  await gateway?.close();
  await flame?.close();
});

/** A raw HTTP/2 client session, closed after the test. */
async function connect(gw: Gateway): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(gw.url);
  sessions.push(session);
  session.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  return session;
}

interface RawAnswer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  grpcStatus: number | undefined;
  grpcMessage: string | undefined;
}

/**
 * One call on a raw session: `body` undefined ends the stream with its
 * headers. Rejects, instead of hanging, when no answer comes in `ms`.
 */
function rawCall(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
  ms = 5_000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no answer within ${ms} ms to ${String(headers[":path"])}`));
    }, ms);
    stream.on("response", (h) => {
      response = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    stream.on("close", () => {
      clearTimeout(timer);
      const status = trailers["grpc-status"] ?? response["grpc-status"];
      const message = trailers["grpc-message"] ?? response["grpc-message"];
      resolve({
        status: response[":status"] === undefined ? undefined : Number(response[":status"]),
        headers: response,
        trailers,
        body: Buffer.concat(chunks),
        grpcStatus: status === undefined ? undefined : Number(status),
        grpcMessage: typeof message === "string" ? decodeURIComponent(message) : undefined,
      });
    });
    if (body !== undefined) stream.end(body);
  });
}

function grpcHeaders(method: string, extra: http2.OutgoingHttpHeaders = {}) {
  return {
    ":method": "POST",
    ":path": `/flame.v1.Frontend/${method}`,
    "content-type": "application/grpc",
    te: "trailers",
    ...extra,
  };
}

/** A message as one gRPC length-prefixed frame. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

function getTaskFrame(taskId: string): Buffer {
  return grpcFrame(
    toBinary(GetTaskRequestSchema, create(GetTaskRequestSchema, { sessionId: "s", taskId })),
  );
}

/** The task id in a GetTask answer's one message. */
function taskIdOf(answer: RawAnswer): string | undefined {
  const length = answer.body.readUInt32BE(1);
  expect(answer.body.length).toBe(5 + length);
  return fromBinary(TaskSchema, answer.body.subarray(5)).metadata?.id;
}

describe("which connections the relay takes", () => {
  it("relays a gRPC client's connection: one relayed and one more upstream connection", async () => {
    // A gateway of its own: connect-es keeps its connection open until the gateway closes.
    const gw = await startGateway({ upstream: flame.url });
    try {
      const before = gw.stats();
      const client = clientFor("grpc", gw.url);
      for (let i = 0; i < 3; i++) {
        expect((await client.getApplication({ name: "flmping" })).metadata?.name).toBe("flmping");
      }
      const after = gw.stats();
      expect(before.relayedConnections).toBe(0);
      expect(after.relayedConnections).toBe(1);
      expect(after.upstreamConnections).toBe(before.upstreamConnections + 1);
      expect(after.forwarded.GetApplication).toBe(3);
    } finally {
      await gw.close();
    }
  });

  it("forgets a relayed connection once its client closes it", async () => {
    const session = await connect(gateway);
    const answer = await rawCall(session, grpcHeaders("GetTask"), getTaskFrame("t1"));
    expect(answer.grpcStatus).toBe(grpcOk);
    expect(gateway.stats().relayedConnections).toBe(1);
    session.close();
    await eventually(
      () => gateway.stats().relayedConnections === 0,
      "the relay to drop the connection",
    );
  });

  it("with grpcRelay: false relays nothing, and calls still work", async () => {
    const spy = vi.spyOn(ByteProxy.prototype, "handle");
    const client = clientFor("grpc", withoutRelay.url);
    expect((await client.getTask({ sessionId: "s", taskId: "7" })).metadata?.id).toBe("7");
    const tasks: string[] = [];
    for await (const t of client.listTask({ sessionId: "s" })) tasks.push(t.metadata?.id ?? "");
    expect(tasks).toEqual(["1", "2", "3"]);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(withoutRelay.stats().relayedConnections).toBe(0);
    expect(withoutRelay.stats().upstreamConnections).toBeGreaterThan(0);
  });

  it("leaves a client that sends no request within the sniff window to Node's server", async () => {
    const spy = vi.spyOn(ByteProxy.prototype, "handle");
    const session = await connect(gateway);
    // Longer than the relay waits for a first request (100 ms).
    await new Promise((r) => setTimeout(r, 200));
    const answer = await rawCall(session, grpcHeaders("GetTask"), getTaskFrame("late"));
    expect(answer.grpcStatus).toBe(grpcOk);
    expect(taskIdOf(answer)).toBe("late");
    // Node's server handed the call to the byte proxy; the relay never counted it.
    expect(spy).toHaveBeenCalledTimes(1);
    expect(gateway.stats().relayedConnections).toBe(0);
  });

  it("leaves a connection whose first request is gRPC-Web to Node's server", async () => {
    const spy = vi.spyOn(ByteProxy.prototype, "handle");
    const session = await connect(gateway);
    const web = await rawCall(
      session,
      grpcHeaders("GetTask", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }),
      getTaskFrame("web"),
    );
    expect(web.status).toBe(200);
    // A gRPC call after it stays on Node's server too: the connection was decided once.
    const grpc = await rawCall(session, grpcHeaders("GetTask"), getTaskFrame("after-web"));
    expect(taskIdOf(grpc)).toBe("after-web");
    expect(spy).toHaveBeenCalledTimes(2);
    expect(gateway.stats().relayedConnections).toBe(0);
  });
});

describe("HPACK state on one relayed connection", () => {
  it("stays right in both directions over 300 calls, refused ones in between", async () => {
    const session = await connect(guarded);
    const before = { calls: flame.calls.GetTask ?? 0, rejected: guarded.stats().rejected };
    const auth = { authorization: `Bearer ${token}` };
    let allowed = 0;
    for (let i = 0; i < 300; i++) {
      // A header value first sent by a refused call, then by the two allowed calls after
      // it: those refer to the client's table entry that the refused call's block made.
      const carry = `carry-${Math.floor((i + 2) / 3)}`;
      const extra: http2.OutgoingHttpHeaders = { "x-request-id": `req-${i}`, "x-carry": carry };
      // Long values now and then: more than 4 KiB go through the 4 KiB tables, which evict.
      if (i % 10 === 0) extra["x-long"] = `${i}:${"L".repeat(1200)}`;
      const echo = i % 2 === 0 ? `echo-${i}${i % 20 === 0 ? "E".repeat(1000) : ""}` : undefined;
      if (echo !== undefined) extra["x-echo"] = echo;

      if (i % 3 === 1) {
        const byMethod = i % 2 === 1;
        const answer = byMethod
          ? await rawCall(
              session,
              grpcHeaders("CreateTask", { ...extra, ...auth }),
              grpcFrame(new Uint8Array(3)),
            )
          : await rawCall(
              session,
              grpcHeaders("GetTask", { ...extra, authorization: `Bearer wrong-${i}` }),
              getTaskFrame(`refused-${i}`),
            );
        expect(answer.grpcStatus, `call ${i}`).toBe(
          byMethod ? Code.PermissionDenied : Code.Unauthenticated,
        );
        expect(answer.headers["x-echo"]).toBeUndefined();
        continue;
      }

      const answer = await rawCall(
        session,
        grpcHeaders("GetTask", { ...extra, ...auth }),
        getTaskFrame(`t-${i}`),
      );
      allowed++;
      expect(answer.grpcStatus, `call ${i}`).toBe(grpcOk);
      expect(taskIdOf(answer)).toBe(`t-${i}`);
      // Response header blocks: the upstream's table, decoded and re-encoded by the relay.
      expect(answer.headers["x-echo"]).toBe(echo);
      expect(answer.trailers["x-echo-trailer"]).toBe(echo);
      // Request header blocks, as the upstream decoded them.
      const seen = flame.headers.GetTask;
      expect(seen?.get("x-request-id")).toBe(`req-${i}`);
      expect(seen?.get("x-carry"), `call ${i}`).toBe(carry);
      expect(seen?.get("x-long")).toBe(extra["x-long"] ?? null);
      expect(seen?.get("x-echo")).toBe(echo ?? null);
      expect(seen?.get("authorization")).toBeNull();
    }
    expect(flame.calls.GetTask).toBe(before.calls + allowed);
    expect(guarded.stats().rejected.method).toBe(before.rejected.method + 50);
    expect(guarded.stats().rejected.unauthenticated).toBe(before.rejected.unauthenticated + 50);
    // The client really used its dynamic table, and the relay never made it use one to read.
    expect(session.state.deflateDynamicTableSize).toBeGreaterThan(0);
    expect(guarded.stats().relayedConnections).toBe(1);
    expect(session.state.inflateDynamicTableSize).toBe(0);
  });
});

describe("frames Node's client writes in other shapes", () => {
  it("relays padded frames, priority fields and header blocks larger than one frame", async () => {
    const session = http2.connect(guarded.url, {
      paddingStrategy: http2.constants.PADDING_STRATEGY_MAX,
    });
    sessions.push(session);
    session.on("error", () => {});
    const auth = { authorization: `Bearer ${token}` };
    // Over 16 KiB: HEADERS and CONTINUATION frames, from the client and from the upstream.
    const big = (tag: string) => `${tag}:${"B".repeat(20_000)}`;
    for (let i = 0; i < 3; i++) {
      const stream = session.request(
        grpcHeaders("GetTask", { ...auth, "x-big": big(`req${i}`), "x-echo": big(`echo${i}`) }),
        { weight: 100 + i },
      );
      const answer = await new Promise<RawAnswer>((resolve, reject) => {
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        stream.on("response", (h) => {
          headers = h;
        });
        stream.on("trailers", (t) => {
          trailers = t;
        });
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", reject);
        stream.on("close", () =>
          resolve({
            status: 200,
            headers,
            trailers,
            body: Buffer.concat(chunks),
            grpcStatus: Number(trailers["grpc-status"]),
            grpcMessage: undefined,
          }),
        );
        stream.end(getTaskFrame(`big-${i}`));
      });
      expect(answer.grpcStatus).toBe(grpcOk);
      expect(taskIdOf(answer)).toBe(`big-${i}`);
      expect(answer.headers["x-echo"]).toBe(big(`echo${i}`));
      expect(answer.trailers["x-echo-trailer"]).toBe(big(`echo${i}`));
      expect(flame.headers.GetTask?.get("x-big")).toBe(big(`req${i}`));
    }
    expect(guarded.stats().relayedConnections).toBe(1);

    // Dropped DATA is credited with its padding: flow control counts whole payloads.
    const window = session.state.remoteWindowSize ?? 0;
    const body = grpcFrame(new Uint8Array(30 * 1024));
    for (let sent = 0; sent <= window; sent += body.length) {
      const refused = await rawCall(session, grpcHeaders("CreateTask", auth), body);
      expect(refused.grpcStatus).toBe(Code.PermissionDenied);
    }
    await eventually(
      () => session.state.remoteWindowSize === window,
      "the connection window to be credited back",
    );
    const last = await rawCall(session, grpcHeaders("GetTask", auth), getTaskFrame("after"));
    expect(taskIdOf(last)).toBe("after");
  });
});

describe("peers that offer HPACK tables larger than the relay decodes", () => {
  it("are told the relay's maximum, so blocks stay readable in both directions", async () => {
    const big = 1 << 20;
    const roomy = await startFakeFlame({ headerTableSize: big });
    const gw = await startGateway({ upstream: roomy.url });
    const session = http2.connect(gw.url, {
      maxDeflateDynamicTableSize: big,
      settings: { headerTableSize: big },
    });
    session.on("error", () => {});
    try {
      for (let i = 0; i < 5; i++) {
        const echo = `echo-${i}:${"e".repeat(3000)}`;
        const answer = await rawCall(
          session,
          grpcHeaders("GetTask", { "x-request-id": `req-${i}`, "x-echo": echo }),
          getTaskFrame(`t-${i}`),
        );
        expect(answer.grpcStatus, `call ${i}`).toBe(grpcOk);
        expect(taskIdOf(answer)).toBe(`t-${i}`);
        expect(answer.trailers["x-echo-trailer"]).toBe(echo);
        expect(roomy.headers.GetTask?.get("x-request-id")).toBe(`req-${i}`);
      }
      expect(gw.stats().relayedConnections).toBe(1);
      // What the client was told: the relay's 64 KiB, not the upstream's 1 MiB.
      expect(session.remoteSettings.headerTableSize).toBe(64 * 1024);
    } finally {
      session.destroy();
      await gw.close();
      await roomy.close();
    }
  });
});

describe("DATA of calls the gateway answered itself", () => {
  it("gives its connection-window credit back, so later calls are not starved", async () => {
    const session = await connect(guarded);
    const auth = { authorization: `Bearer ${token}` };
    const first = await rawCall(session, grpcHeaders("GetTask", auth), getTaskFrame("first"));
    expect(first.grpcStatus).toBe(grpcOk);
    expect(guarded.stats().relayedConnections).toBe(1);
    const window = session.state.remoteWindowSize ?? 0;
    expect(window).toBeGreaterThan(0);

    // Refused calls whose bodies together are more than the whole connection window.
    const before = flame.totalCalls();
    const chunk = grpcFrame(new Uint8Array(20 * 1024).fill(1));
    let sent = 0;
    while (sent <= window + 16 * 1024) {
      const refused = await rawCall(session, grpcHeaders("CreateTask", auth), chunk);
      expect(refused.grpcStatus).toBe(Code.PermissionDenied);
      sent += chunk.length;
    }
    await eventually(
      () => session.state.remoteWindowSize === window,
      "the connection window to be credited back",
    );
    // Without the credit this call's body could never be sent: it would time out.
    const last = await rawCall(session, grpcHeaders("GetTask", auth), getTaskFrame("after"), 5_000);
    expect(last.grpcStatus).toBe(grpcOk);
    expect(taskIdOf(last)).toBe("after");
    expect(flame.totalCalls()).toBe(before + 1);
  });
});

describe("answers the gateway makes on a relayed connection", () => {
  it("answers unknown methods, other content types, compression and bad deadlines itself", async () => {
    const session = await connect(gateway);
    const first = await rawCall(session, grpcHeaders("GetTask"), getTaskFrame("first"));
    expect(first.grpcStatus).toBe(grpcOk);
    expect(gateway.stats().relayedConnections).toBe(1);
    const before = flame.totalCalls();
    const body = getTaskFrame("x");

    for (const withBody of [true, false]) {
      const send = (headers: http2.OutgoingHttpHeaders) =>
        rawCall(session, headers, withBody ? body : undefined);

      const unknown = await send({
        ...grpcHeaders("GetTask"),
        ":path": "/flame.v1.Frontend/NoSuchMethod",
      });
      expect(unknown.status).toBe(200);
      expect(unknown.grpcStatus).toBe(Code.Unimplemented);
      expect(unknown.grpcMessage).toBe("method not found: /flame.v1.Frontend/NoSuchMethod");
      const otherService = await send({
        ...grpcHeaders("GetTask"),
        ":path": "/other.v1.Service/GetTask",
      });
      expect(otherService.grpcStatus).toBe(Code.Unimplemented);

      const json = await send(grpcHeaders("GetTask", { "content-type": "application/json" }));
      expect(json.status).toBe(415);
      expect(json.grpcStatus).toBeUndefined();

      const gzip = await send(grpcHeaders("GetTask", { "grpc-encoding": "gzip" }));
      expect(gzip.grpcStatus).toBe(Code.Unimplemented);
      expect(gzip.headers["grpc-accept-encoding"]).toBe("identity");

      const deadline = await send(grpcHeaders("GetTask", { "grpc-timeout": "soon" }));
      expect(deadline.grpcStatus).toBe(Code.InvalidArgument);
      expect(deadline.grpcMessage).toContain("invalid grpc timeout value: soon");
    }
    expect(flame.totalCalls()).toBe(before);

    // The connection is still relayed, and still good.
    const last = await rawCall(session, grpcHeaders("GetTask"), getTaskFrame("last"));
    expect(taskIdOf(last)).toBe("last");
    expect(flame.totalCalls()).toBe(before + 1);
    expect(gateway.stats().relayedConnections).toBe(1);
  });
});

describe("a relayed call whose connection goes away", () => {
  it("ends with Unavailable when the upstream connection dies mid-stream", async () => {
    const doomed = await startFakeFlame();
    const gw = await startGateway({ upstream: doomed.url });
    try {
      const client = clientFor("grpc", gw.url);
      const iterator = client.watchTask({ sessionId: "s", taskId: "9" })[Symbol.asyncIterator]();
      expect((await iterator.next()).value?.metadata?.id).toBe("9");
      expect(gw.stats().relayedConnections).toBe(1);
      expect(gw.stats().openStreams).toBe(1);
      await doomed.close();
      const err = await rejection(iterator.next());
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(/^upstream connection failed/);
      await eventually(() => gw.stats().openStreams === 0, "the stream count to drop");
      await eventually(
        () => gw.stats().relayedConnections === 0,
        "the relay to drop the connection",
      );
    } finally {
      await gw.close();
      await doomed.close();
    }
  });

  it("ends with Unavailable, the gateway is closing, when the gateway closes", async () => {
    const gw = await startGateway({ upstream: flame.url });
    let closed = false;
    try {
      const client = clientFor("grpc", gw.url);
      const cancelled = flame.streamsCancelled;
      const iterator = client.watchTask({ sessionId: "s", taskId: "8" })[Symbol.asyncIterator]();
      expect((await iterator.next()).value?.metadata?.id).toBe("8");
      expect(gw.stats().relayedConnections).toBe(1);
      const closing = gw.close();
      const err = await rejection(iterator.next());
      await closing;
      closed = true;
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("the gateway is closing");
      await eventually(
        () => flame.streamsCancelled === cancelled + 1,
        "the upstream stream to end",
      );
    } finally {
      if (!closed) await gw.close();
    }
  });
});

/** What a raw connection's call got back: each header block's fields, the DATA, or a reset. */
interface FrameAnswer {
  blocks: HeaderField[][];
  data: Buffer;
  rst: number | undefined;
}

/**
 * An HTTP/2 client that writes header blocks byte for byte as a test makes
 * them (Node's client chooses its own HPACK encoding). It acknowledges
 * SETTINGS and otherwise only collects what comes back.
 */
class FrameClient {
  readonly #socket: net.Socket;
  readonly #reader = new FrameReader();
  readonly #decoder = new HeaderBlockDecoder(64 * 1024);
  readonly #calls = new Map<number, FrameAnswer & { done: (a: FrameAnswer) => void }>();
  #nextId = 1;
  /** The header block being read, and whether its HEADERS frame ended the stream. */
  #block: Buffer[] = [];
  #blockEnds = false;
  goaway: number | undefined;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.#socket = net.connect(port, "127.0.0.1");
    this.#socket.on("error", () => {});
    this.closed = new Promise((resolve) => this.#socket.once("close", () => resolve()));
    this.#socket.write(
      Buffer.concat([clientPreface, encodeFrame(FrameType.settings, 0, 0, Buffer.alloc(0))]),
    );
    this.#socket.on("data", (chunk: Buffer) => {
      for (const frame of this.#reader.push(chunk)) this.#onFrame(frame);
    });
  }

  /** Sends one request: its header block as given, then `body` (if any) ending the stream. */
  call(block: Buffer, body?: Buffer, ms = 5_000): Promise<FrameAnswer> {
    const id = this.#nextId;
    this.#nextId += 2;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer on stream ${id}`)), ms);
      this.#calls.set(id, {
        blocks: [],
        data: Buffer.alloc(0),
        rst: undefined,
        done: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
      });
      const frames = [headersFrames(id, block, body === undefined)];
      if (body !== undefined)
        frames.push(encodeFrame(FrameType.data, FrameFlag.endStream, id, body));
      this.#socket.write(Buffer.concat(frames));
    });
  }

  /** Writes bytes as they are (frames a test makes by hand). */
  send(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onFrame(frame: Frame): void {
    const call = this.#calls.get(frame.streamId);
    switch (frame.type) {
      case FrameType.settings:
        if (!(frame.flags & 0x1)) {
          this.#socket.write(encodeFrame(FrameType.settings, 0x1, 0, Buffer.alloc(0)));
        }
        return;
      case FrameType.goaway:
        this.goaway = frame.payload.readUInt32BE(4);
        return;
      case FrameType.headers:
      case FrameType.continuation: {
        if (frame.type === FrameType.headers) {
          this.#block = [headersFragment(frame) as Buffer];
          this.#blockEnds = (frame.flags & FrameFlag.endStream) !== 0;
        } else {
          this.#block.push(frame.payload);
        }
        if (!(frame.flags & FrameFlag.endHeaders)) return;
        const fields = this.#decoder.decode(Buffer.concat(this.#block)).fields;
        call?.blocks.push([...fields]);
        if (this.#blockEnds) this.#finish(frame.streamId);
        return;
      }
      case FrameType.data:
        if (call === undefined) return;
        call.data = Buffer.concat([call.data, frame.payload]);
        if (frame.flags & FrameFlag.endStream) this.#finish(frame.streamId);
        return;
      case FrameType.rstStream:
        if (call === undefined) return;
        call.rst = frame.payload.readUInt32BE(0);
        this.#finish(frame.streamId);
        return;
      default:
    }
  }

  #finish(id: number): void {
    const call = this.#calls.get(id);
    if (call === undefined) return;
    this.#calls.delete(id);
    call.done({ blocks: call.blocks, data: call.data, rst: call.rst });
  }
}

/** The value of `name` in the last header block of an answer (its trailers). */
function lastField(answer: FrameAnswer, name: string): string | undefined {
  return answer.blocks.at(-1)?.find(([n]) => n === name)?.[1];
}

describe("header blocks written byte for byte by the client", () => {
  /** Literals without indexing: these fields leave the dynamic table alone. */
  const base = (method: string) =>
    encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", `/flame.v1.Frontend/${method}`],
      [":authority", "gateway"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["authorization", `Bearer ${token}`],
    ]).subarray(1); // without the table size update encodeHeaderBlock starts with
  /** A literal with incremental indexing (new name): the field goes into the table. */
  const insert = (name: string, value: string) =>
    Buffer.concat([
      Buffer.from([0x40, name.length]),
      Buffer.from(name),
      Buffer.from([value.length]),
      Buffer.from(value),
    ]);
  const newest = Buffer.from([0xbe]); // indexed field 62
  const secondNewest = Buffer.from([0xbf]); // indexed field 63

  let client: FrameClient | undefined;
  afterEach(() => client?.destroy());

  it("are decoded afresh after a refused call changed the table, and refused first calls are answered", async () => {
    client = new FrameClient(guarded.port);
    const before = flame.calls.GetTask ?? 0;
    const refused = flame.totalCalls();

    // The first request is refused: its answer waits for the upstream's SETTINGS.
    const first = await client.call(
      Buffer.concat([base("CreateTask"), insert("x-v", "one")]),
      grpcFrame(new Uint8Array(2)),
    );
    expect(lastField(first, "grpc-status")).toBe(String(Code.PermissionDenied));
    expect(guarded.stats().relayedConnections).toBe(1);

    // Only refers to the table: the relay may answer the same bytes from memory...
    const refer = Buffer.concat([base("GetTask"), newest]);
    const a = await client.call(refer, getTaskFrame("a"));
    expect(lastField(a, "grpc-status")).toBe("0");
    expect(flame.headers.GetTask?.get("x-v")).toBe("one");

    // ...until a block changes the table, here a refused call's block.
    const second = await client.call(
      Buffer.concat([base("CreateTask"), insert("x-v", "two")]),
      grpcFrame(new Uint8Array(2)),
    );
    expect(lastField(second, "grpc-status")).toBe(String(Code.PermissionDenied));

    const b = await client.call(refer, getTaskFrame("b"));
    expect(lastField(b, "grpc-status")).toBe("0");
    expect(flame.headers.GetTask?.get("x-v")).toBe("two");
    const c = await client.call(Buffer.concat([base("GetTask"), secondNewest]), getTaskFrame("c"));
    expect(lastField(c, "grpc-status")).toBe("0");
    expect(flame.headers.GetTask?.get("x-v")).toBe("one");
    expect(fromBinary(TaskSchema, c.data.subarray(5)).metadata?.id).toBe("c");

    expect(flame.calls.GetTask).toBe(before + 3);
    expect(flame.totalCalls()).toBe(refused + 3);
  });

  it("ends the connection with COMPRESSION_ERROR on a malformed block, cancelling its calls upstream", async () => {
    client = new FrameClient(gateway.port);
    const held = await client.call(
      Buffer.concat([base("GetTask"), insert("x-v", "held")]),
      getTaskFrame("1"),
    );
    expect(lastField(held, "grpc-status")).toBe("0");
    expect(gateway.stats().relayedConnections).toBe(1);
    const cancelled = flame.streamsCancelled;
    const stream = client.call(
      base("WatchTask"),
      grpcFrame(
        toBinary(
          GetTaskRequestSchema,
          create(GetTaskRequestSchema, { sessionId: "s", taskId: "w" }),
        ),
      ),
    );
    await eventually(() => gateway.stats().openStreams === 1, "the stream to open");
    void stream.catch(() => {});
    // An integer that never ends: the decoder cannot read it.
    client.call(Buffer.from([0xff, 0x80]), undefined).catch(() => {});
    await client.closed;
    expect(client.goaway).toBe(0x9);
    await eventually(
      () => flame.streamsCancelled === cancelled + 1,
      "the upstream stream to be cancelled",
    );
    await eventually(() => gateway.stats().openStreams === 0, "the stream count to drop");
  });
});

describe("a client frame larger than the relay takes", () => {
  let client: FrameClient | undefined;
  afterEach(() => client?.destroy());

  it("ends the connection with FRAME_SIZE_ERROR instead of buffering it", async () => {
    client = new FrameClient(gateway.port);
    const base = encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/flame.v1.Frontend/GetTask"],
      [":authority", "gateway"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ]);
    const ok = await client.call(base, getTaskFrame("1"));
    expect(lastField(ok, "grpc-status")).toBe("0");
    expect(gateway.stats().relayedConnections).toBe(1);
    // Only the 9-byte header of a 2 MiB DATA frame: the announced length alone must end it.
    const header = Buffer.alloc(9);
    header.writeUIntBE(2 * 1024 * 1024, 0, 3);
    header[3] = FrameType.data;
    header.writeUInt32BE(3, 5);
    client.send(header);
    const stayedOpen = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the connection stayed open")), 5_000).unref(),
    );
    await Promise.race([client.closed, stayedOpen]);
    expect(client.goaway).toBe(0x6);
    await eventually(() => gateway.stats().relayedConnections === 0, "the relay to drop it");
  });
});

describe("an upstream that breaks HTTP/2", () => {
  it("ends the relayed call with Unavailable, upstream protocol error", async () => {
    // Speaks just enough HTTP/2 to be relayed to, then answers with a header
    // block no decoder can read.
    const broken = await startScriptedUpstream({
      onFrame(connection, frame) {
        if (frame.type === FrameType.headers) {
          connection.write(headersFrames(frame.streamId, Buffer.from([0xff, 0x80]), false));
        }
      },
    });
    const gw = await startGateway({ upstream: broken.url });
    try {
      const client = clientFor("grpc", gw.url);
      const err = await rejection(client.getTask({ sessionId: "s", taskId: "1" }));
      expect(gw.stats().forwarded.GetTask).toBe(1);
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("upstream protocol error");
    } finally {
      await gw.close();
      await broken.close();
    }
  });
});

describe("an upstream that resets a relayed call", () => {
  it.each<[string, number, Code, string]>([
    ["NO_ERROR", 0x0, Code.Unavailable, "upstream stream closed before its status"],
    ["CANCEL", 0x8, Code.Canceled, "upstream stream closed with error code CANCEL (0x8)"],
    [
      "ENHANCE_YOUR_CALM",
      0xb,
      Code.ResourceExhausted,
      "upstream stream closed with error code ENHANCE_YOUR_CALM (0xb)",
    ],
  ])("ends it with the status the other paths give (%s)", async (_, rstCode, code, message) => {
    const resetting = await startScriptedUpstream({
      onFrame(connection, frame) {
        if (frame.type === FrameType.headers) {
          const payload = Buffer.alloc(4);
          payload.writeUInt32BE(rstCode);
          connection.write(encodeFrame(FrameType.rstStream, 0, frame.streamId, payload));
        }
      },
    });
    const gw = await startGateway({ upstream: resetting.url });
    try {
      const err = await rejection(
        clientFor("grpc", gw.url).getTask({ sessionId: "s", taskId: "1" }),
      );
      expect(gw.stats().relayedConnections).toBe(1);
      expect(err.code).toBe(code);
      expect(err.rawMessage).toBe(message);
    } finally {
      await gw.close();
      await resetting.close();
    }
  });
});

describe("an upstream that closes before it says anything", () => {
  it("still gets the client a server preface and Unavailable, upstream connection failed", async () => {
    // Accepts the relay's connection, reads the first request, then hangs up
    // without ever sending SETTINGS.
    const sockets = new Set<net.Socket>();
    const mute = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("data", () => socket.destroy());
    });
    await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
    const port = (mute.address() as net.AddressInfo).port;
    const gw = await startGateway({ upstream: `http://127.0.0.1:${port}` });
    try {
      const err = await rejection(
        clientFor("grpc", gw.url).getTask({ sessionId: "s", taskId: "1" }),
      );
      expect(gw.stats().forwarded.GetTask).toBe(1);
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(/^upstream connection failed/);
    } finally {
      await gw.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });
});
