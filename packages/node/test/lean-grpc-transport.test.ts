import { getEventListeners } from "node:events";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { Connection, connectionAffinity, FlameError, TaskState } from "@flame-ts/core";
import { Frontend, GetTaskRequestSchema, SessionSchema, TaskSchema } from "@flame-ts/core/gen";
import { lastValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { createNodeTransport, type NodeTransport } from "../src/node-transport.js";
import {
  frame,
  respond,
  ScriptedH2Server,
  type SeenRequest,
} from "./helpers/scripted-h2-server.js";

// The lean transport (the default) against a server that answers exactly
// as each test scripts it, right or wrong.

let server: ScriptedH2Server;
const transports: NodeTransport[] = [];
const servers: ScriptedH2Server[] = [];

async function open(url = server.url, options: Parameters<typeof createNodeTransport>[1] = {}) {
  const t = await createNodeTransport(url, options);
  transports.push(t);
  return { t, client: createClient(Frontend, t.transport) };
}

async function rejectionOf(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail");
}

const task = (id: string, input = new Uint8Array([1, 2, 3])) =>
  toBinary(TaskSchema, create(TaskSchema, { metadata: { id }, spec: { sessionId: "s", input } }));
const ok = { "grpc-status": "0" };
const methodOf = (req: SeenRequest) => String(req.headers[":path"]).replace(/.*\//, "");

/** A script: GetSession answers session "s"; any other call, task "7" Succeeded (a watch ends at once). */
function answerSessionAndFinishedTask(req: SeenRequest) {
  const reply =
    methodOf(req) === "GetSession"
      ? toBinary(SessionSchema, create(SessionSchema, { metadata: { id: "s" } }))
      : toBinary(
          TaskSchema,
          create(TaskSchema, {
            metadata: { id: "7" },
            spec: { sessionId: "s" },
            status: { state: TaskState.Succeed },
          }),
        );
  return respond(req.stream, [frame(reply)], ok);
}
const request = { taskId: "7", sessionId: "s" };
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

beforeAll(async () => {
  server = await new ScriptedH2Server().start();
});
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
  server.script = (req) => respond(req.stream, [frame(task("7"))], ok);
});
afterAll(async () => {
  await server?.close();
  for (const s of servers) await s.close();
});

describe("the request on the wire", () => {
  test("one frame (0x00, 4-byte length, protobuf) with gRPC headers, deadline and user headers", async () => {
    server.script = (req) => respond(req.stream, [frame(task("7"))], ok);
    const { client } = await open();
    const before = server.requests.length;
    const got = await client.getTask(request, {
      timeoutMs: 5_000,
      headers: { "x-trace": "abc", "content-type": "text/plain" },
    });
    expect(got.metadata?.id).toBe("7");
    const seen = server.requests[before];
    expect(seen?.headers[":method"]).toBe("POST");
    expect(seen?.headers[":path"]).toBe("/flame.v1.Frontend/GetTask");
    // A caller cannot replace the protocol's own headers.
    expect(seen?.headers["content-type"]).toBe("application/grpc+proto");
    expect(seen?.headers.te).toBe("trailers");
    expect(seen?.headers["user-agent"]).toMatch(/^flame-ts\//);
    expect(seen?.headers["x-trace"]).toBe("abc");
    const timeout = String(seen?.headers["grpc-timeout"]);
    expect(timeout).toMatch(/^\d+m$/);
    expect(Number.parseInt(timeout, 10)).toBeLessThanOrEqual(5_000);
    const body = seen?.body ?? Buffer.alloc(0);
    expect(body[0]).toBe(0);
    expect(body.readUInt32BE(1)).toBe(body.length - 5);
    const sent = fromBinary(GetTaskRequestSchema, body.subarray(5));
    expect(sent).toMatchObject(request);
  });

  test("no deadline means no grpc-timeout; a path in the base URL prefixes the method", async () => {
    const { client } = await open(`${server.url}/api/flame/`);
    const before = server.requests.length;
    await client.getTask(request);
    const seen = server.requests[before];
    expect(seen?.headers["grpc-timeout"]).toBeUndefined();
    expect(seen?.headers[":path"]).toBe("/api/flame/flame.v1.Frontend/GetTask");
  });

  test("a Connection sends a deadline the caller chose, never its own default", async () => {
    server.script = answerSessionAndFinishedTask;
    const { t } = await open();
    const connection = new Connection(t.transport, { timeoutMs: 60_000 });
    const before = server.requests.length;
    await connection.getSession("s");
    await connection.getSession("s", { timeoutMs: 5_000 });
    const [byDefault, chosen] = server.requests.slice(before);
    // The default guards against a server that never answers; the client keeps it.
    expect(byDefault?.headers["grpc-timeout"]).toBeUndefined();
    const timeout = String(chosen?.headers["grpc-timeout"]);
    expect(timeout).toMatch(/^\d+m$/);
    expect(Number.parseInt(timeout, 10)).toBeLessThanOrEqual(5_000);
  });

  test("watchTask's own reads keep the default deadline off the wire too", async () => {
    server.script = answerSessionAndFinishedTask;
    const { t } = await open();
    const connection = new Connection(t.transport, { timeoutMs: 60_000 });
    const before = server.requests.length;
    const session = await connection.getSession("s");
    const last = await lastValueFrom(session.watchTask("7"));
    expect(last.state).toBe(TaskState.Succeed);
    const seen = server.requests.slice(before);
    expect(seen.map(methodOf)).toContain("GetTask");
    for (const r of seen) {
      expect(r.headers["grpc-timeout"], String(r.headers[":path"])).toBeUndefined();
    }
  });

  test("a message over maxMessageBytes is refused before anything is sent", async () => {
    const { client } = await open(server.url, { maxMessageBytes: 16 });
    const before = server.requests.length;
    const err = await rejectionOf(client.getTask({ taskId: "x".repeat(40), sessionId: "s" }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/larger than configured writeMaxBytes 16/);
    expect(server.requests.length).toBe(before);
  });
});

describe("reading the response", () => {
  test("a message split across many DATA frames is put back together", async () => {
    const whole = frame(task("7", new Uint8Array(3000).fill(9)));
    // One byte at a time for the header, then uneven pieces.
    const pieces = [...[0, 1, 2, 3, 4].map((i) => whole.subarray(i, i + 1))];
    for (let at = 5; at < whole.length; at += 777) pieces.push(whole.subarray(at, at + 777));
    server.script = (req) => respond(req.stream, pieces, ok);
    const { client } = await open();
    const got = await client.getTask(request);
    expect(got.spec?.input).toEqual(new Uint8Array(3000).fill(9));
  });

  test("several messages in one DATA frame, and one split between frames, on a stream", async () => {
    const all = Buffer.concat([frame(task("1")), frame(task("2")), frame(task("3"))]);
    server.script = (req) => respond(req.stream, [all.subarray(0, 30), all.subarray(30)], ok);
    const { client } = await open();
    const ids: string[] = [];
    for await (const t of client.watchTask(request)) ids.push(t.metadata?.id ?? "");
    expect(ids).toEqual(["1", "2", "3"]);
  });

  test("a slow reader of a long stream gets every message in order", async () => {
    const frames = Array.from({ length: 200 }, (_, i) => frame(task(String(i))));
    server.script = (req) => respond(req.stream, [Buffer.concat(frames)], ok);
    const { client } = await open();
    let n = 0;
    for await (const t of client.watchTask(request)) {
      expect(t.metadata?.id).toBe(String(n++));
      if (n % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(n).toBe(200);
  });

  test("trailers-only error: code and percent-decoded message, metadata kept", async () => {
    server.script = (req) => {
      req.stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": String(Code.NotFound),
          "grpc-message": "task%207%20not%20found%20%E2%9C%93",
          "x-server": "flame",
        },
        { endStream: true },
      );
    };
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("task 7 not found ✓");
    expect(err.metadata.get("x-server")).toBe("flame");
    const streamErr = await rejectionOf(
      (async () => {
        for await (const _ of client.watchTask(request)) {
          // none
        }
      })(),
    );
    expect(streamErr.code).toBe(Code.NotFound);
  });

  test("a grpc-message with a broken percent-encoding is kept as sent", async () => {
    server.script = (req) =>
      respond(req.stream, [], { "grpc-status": "13", "grpc-message": "bad %E2%9C here" });
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("bad %E2%9C here");
  });

  test("grpc-status-details-bin: the details reach the error", async () => {
    const detail = create(TaskSchema, { metadata: { id: "detail" } });
    const trailer = setTrailerStatus(
      new Headers(),
      new ConnectError("with details", Code.FailedPrecondition, undefined, [
        { desc: TaskSchema, value: detail },
      ]),
    );
    server.script = (req) => respond(req.stream, [], Object.fromEntries(trailer));
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toBe("with details");
    expect(err.findDetails(TaskSchema).map((t) => t.metadata?.id)).toEqual(["detail"]);
  });

  test.each([
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [404, Code.Unimplemented],
    [503, Code.Unavailable],
    [500, Code.Unknown],
  ])("HTTP %d maps to gRPC code %d", async (status, code) => {
    server.script = (req) => {
      req.stream.respond({ ":status": status, "content-type": "text/plain" });
      req.stream.end("nope");
    };
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(code);
    expect(err.rawMessage).toBe(`HTTP ${status}`);
  });

  test("a response that is not gRPC names its content type", async () => {
    server.script = (req) =>
      respond(req.stream, [Buffer.from("<h1>hi</h1>")], ok, {
        "content-type": "text/html",
      });
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.Unknown);
    expect(err.message).toContain("text/html");
  });

  test.each([
    ["a compressed message", [frame(task("7"), 1)], ok, Code.Internal, /compress/],
    [
      "a declared length past the limit",
      [frame(new Uint8Array(4), 0, 1 << 30)],
      ok,
      Code.ResourceExhausted,
      /readMaxBytes/,
    ],
    ["no grpc-status", [frame(task("7"))], {}, Code.Internal, /missing grpc-status/],
    [
      "an unknown grpc-status",
      [],
      { "grpc-status": "42" },
      Code.Internal,
      /invalid grpc-status: 42/,
    ],
    ["no message", [], ok, Code.Unimplemented, /missing output message/],
    [
      "two messages",
      [frame(task("7")), frame(task("8"))],
      ok,
      Code.Unimplemented,
      /extra output message/,
    ],
    ["a frame cut short", [frame(new Uint8Array(10), 0, 100)], ok, Code.Internal, /incomplete/],
    [
      "bytes that are not protobuf",
      [frame(new Uint8Array([0xff, 0xff, 0xff]))],
      ok,
      Code.Internal,
      /parse binary/,
    ],
  ] as const)("%s fails the call", async (_name, body, trailers, code, message) => {
    server.script = (req) => respond(req.stream, [...body], trailers);
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
});

describe("broken streams and connections", () => {
  test.each([
    [7, Code.Unavailable], // REFUSED_STREAM: never processed, safe to retry
    [2, Code.Internal],
    [11, Code.ResourceExhausted],
  ])("RST_STREAM %d from the server maps to code %d", async (rst, code) => {
    server.script = (req) => {
      req.stream.close(rst);
    };
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(code);
  });

  test("a socket that dies mid-call is Unavailable, and the next call reconnects", async () => {
    server.script = () => server.dropConnections();
    const { client } = await open();
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.Unavailable);
    server.script = (req) => respond(req.stream, [frame(task("7"))], ok);
    expect((await client.getTask(request)).metadata?.id).toBe("7");
  });

  test("after a GOAWAY the next call opens a new connection", async () => {
    const { client } = await open();
    await client.getTask(request);
    const opened = server.sessionsOpened;
    for (const s of server.sessions) s.goaway(0);
    await new Promise((r) => setTimeout(r, 50));
    expect((await client.getTask(request)).metadata?.id).toBe("7");
    expect(server.sessionsOpened).toBe(opened + 1);
  });

  test("a refused connection is Unavailable", async () => {
    const dead = await new ScriptedH2Server().start();
    const url = dead.url;
    await dead.close();
    const { client } = await open(url);
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe("deadlines and cancellation", () => {
  test("a deadline ends the call with DeadlineExceeded and resets the stream with CANCEL", async () => {
    server.script = () => {}; // never answers
    const { client } = await open();
    const before = server.requests.length;
    const err = await rejectionOf(client.getTask(request, { timeoutMs: 100 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    const seen = server.requests[before];
    expect(await seen?.closed).toBe(8); // NGHTTP2_CANCEL
  });

  test("aborting a watch rejects the read at once and resets the stream with CANCEL", async () => {
    server.script = (req) => {
      req.stream.respond({ ":status": 200, "content-type": "application/grpc" });
      req.stream.write(frame(task("1")));
    };
    const { client } = await open();
    const before = server.requests.length;
    const ac = new AbortController();
    const it = client.watchTask(request, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value?.metadata?.id).toBe("1");
    const pending = it.next();
    ac.abort();
    const err = await rejectionOf(pending);
    expect(err.code).toBe(Code.Canceled);
    expect(await server.requests[before]?.closed).toBe(8);
  });

  test("an already aborted signal sends nothing", async () => {
    const { client } = await open();
    const before = server.requests.length;
    const err = await rejectionOf(client.getTask(request, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(Code.Canceled);
    await nextTick();
    expect(server.requests.length).toBe(before);
  });

  test("finished calls leave no listener on the caller's signal", async () => {
    const { client } = await open();
    const ac = new AbortController();
    await Promise.all(
      Array.from({ length: 50 }, () => client.getTask(request, { signal: ac.signal })),
    );
    for await (const _ of client.watchTask(request, { signal: ac.signal })) {
      // one message
    }
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });
});

describe("connections", () => {
  test("past the server's max concurrent streams a second connection opens; all calls finish", async () => {
    const limited = await new ScriptedH2Server({ maxConcurrentStreams: 2 }).start();
    servers.push(limited);
    const held: (() => void)[] = [];
    limited.script = (req) => {
      const answer = () => void respond(req.stream, [frame(task("7"))], ok);
      // The first call answers at once (the server's SETTINGS are then known); the rest wait.
      if (limited.requests.length === 1) answer();
      else held.push(answer);
    };
    const { client } = await open(limited.url);
    await client.getTask(request);
    const calls = Array.from({ length: 5 }, () => client.getTask(request));
    while (held.length < 5) await new Promise((r) => setTimeout(r, 10));
    expect(limited.sessionsOpened).toBeGreaterThanOrEqual(3);
    for (const release of held) release();
    const done = await Promise.all(calls);
    expect(done.map((t) => t.metadata?.id)).toEqual(["7", "7", "7", "7", "7"]);
  });

  /** Holds every call after the first (answered, so the connection exists) until released. */
  async function holdingServer() {
    const holding = await new ScriptedH2Server().start();
    servers.push(holding);
    const held: { session: unknown; body: Buffer; answer: () => void }[] = [];
    holding.script = (req) => {
      const answer = () => void respond(req.stream, [frame(task("7"))], ok);
      if (holding.requests.length === 1) answer();
      else held.push({ session: req.stream.session, body: req.body, answer });
    };
    return { holding, held };
  }

  async function spreadOf(calls: number, http2: Record<string, number>) {
    const { holding, held } = await holdingServer();
    const { client } = await open(holding.url, { http2 });
    await client.getTask(request);
    // Its stream closes just after the answer: let it, so it holds no slot.
    await new Promise((r) => setTimeout(r, 10));
    const pending = Array.from({ length: calls }, () => client.getTask(request));
    while (held.length < calls) await new Promise((r) => setTimeout(r, 5));
    const perConnection = new Map<unknown, number>();
    for (const { session } of held)
      perConnection.set(session, (perConnection.get(session) ?? 0) + 1);
    for (const { answer } of held) answer();
    const done = await Promise.all(pending);
    expect(done.every((t) => t.metadata?.id === "7")).toBe(true);
    return [...perConnection.values()];
  }

  test("a busy connection spreads calls onto a second one: 64 in flight by default go 32 and 32", async () => {
    expect(await spreadOf(32, {})).toEqual([32]);
    expect(await spreadOf(64, {})).toEqual([32, 32]);
  });

  test("spreading opens at most spreadConnections, then shares them out; 1 turns it off", async () => {
    const shares = await spreadOf(20, { streamsPerConnection: 4, spreadConnections: 3 });
    expect(shares).toHaveLength(3);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.min(...shares)).toBeGreaterThanOrEqual(6);
    expect(await spreadOf(20, { streamsPerConnection: 4, spreadConnections: 1 })).toEqual([20]);
  });

  test("calls with the same connectionAffinity stay on one connection while others spread", async () => {
    const { holding, held } = await holdingServer();
    const { client } = await open(holding.url, {
      http2: { streamsPerConnection: 1, spreadConnections: 4 },
    });
    await client.getTask(request);
    await new Promise((r) => setTimeout(r, 10));
    const together = { contextValues: createContextValues().set(connectionAffinity, {}) };
    const pending = [
      client.getTask({ ...request, taskId: "first" }, together),
      client.getTask({ ...request, taskId: "other" }),
      client.getTask({ ...request, taskId: "second" }, together),
    ];
    while (held.length < 3) await new Promise((r) => setTimeout(r, 5));
    // Held in the order they reached the server, which two connections do not keep.
    const sessionOf = (taskId: string) =>
      held.find((h) => fromBinary(GetTaskRequestSchema, h.body.subarray(5)).taskId === taskId)
        ?.session;
    const [first, other, second] = ["first", "other", "second"].map(sessionOf);
    expect(first).toBeDefined();
    expect(other).not.toBe(first);
    expect(second).toBe(first);
    for (const { answer } of held) answer();
    await Promise.all(pending);
  });

  test("a watch's WatchTask and its GetTask share a connection even when calls spread", async () => {
    const sessionOf = new Map<string, unknown>();
    server.script = (req) => {
      sessionOf.set(methodOf(req), req.stream.session);
      return answerSessionAndFinishedTask(req);
    };
    const { t } = await open(server.url, { http2: { streamsPerConnection: 1 } });
    const connection = new Connection(t.transport);
    const session = await connection.getSession("s");
    expect((await lastValueFrom(session.watchTask("7"))).state).toBe(TaskState.Succeed);
    expect(sessionOf.get("WatchTask")).toBeDefined();
    expect(sessionOf.get("GetTask")).toBe(sessionOf.get("WatchTask"));
  });

  test("with maxConnections 1, calls past the limit wait for a free stream", async () => {
    const limited = await new ScriptedH2Server({ maxConcurrentStreams: 1 }).start();
    servers.push(limited);
    limited.script = (req) => respond(req.stream, [frame(task("7"))], ok);
    const { client } = await open(limited.url, { http2: { maxConnections: 1 } });
    await client.getTask(request);
    const done = await Promise.all(Array.from({ length: 4 }, () => client.getTask(request)));
    expect(done).toHaveLength(4);
    expect(limited.sessionsOpened).toBe(1);
  });

  test("an idle connection closes after idleConnectionTimeoutMs; the next call reconnects", async () => {
    const { client } = await open(server.url, { http2: { idleConnectionTimeoutMs: 50 } });
    await client.getTask(request);
    const opened = server.sessionsOpened;
    const closed = server.sessionsClosed;
    while (server.sessionsClosed === closed) await new Promise((r) => setTimeout(r, 10));
    await client.getTask(request);
    expect(server.sessionsOpened).toBe(opened + 1);
  });

  test("close() cancels calls in flight and refuses new ones", async () => {
    server.script = () => {};
    const { t, client } = await open();
    const pending = rejectionOf(client.getTask(request));
    while (server.requests.length === 0 || server.sessions.size === 0) await nextTick();
    await new Promise((r) => setTimeout(r, 20));
    t.close();
    expect((await pending).code).toBe(Code.Canceled);
    const later = await rejectionOf(client.getTask(request));
    expect(later.code).toBe(Code.FailedPrecondition);
    expect(later.message).toMatch(/is closed/);
  });
});

describe("interceptors and the connect-node fallback", () => {
  test("interceptors see and change requests, and see responses", async () => {
    const seen: string[] = [];
    const auth: Interceptor = (next) => async (req) => {
      req.header.set("authorization", "Bearer t0k3n");
      const res = await next(req);
      seen.push(`${req.method.name}:${res.stream ? "stream" : "unary"}`);
      return res;
    };
    server.script = (req) => respond(req.stream, [frame(task("7"))], ok, { "x-reply": "yes" });
    const { client } = await open(server.url, { interceptors: [auth] });
    const before = server.requests.length;
    let header: Headers | undefined;
    await client.getTask(request, { onHeader: (h) => (header = h), timeoutMs: 3_000 });
    for await (const _ of client.watchTask(request)) {
      // one message
    }
    expect(server.requests[before]?.headers.authorization).toBe("Bearer t0k3n");
    expect(server.requests[before]?.headers["grpc-timeout"]).toMatch(/^\d+m$/);
    expect(server.requests[before + 1]?.headers.authorization).toBe("Bearer t0k3n");
    expect(header?.get("x-reply")).toBe("yes");
    expect(seen).toEqual(["GetTask:unary", "WatchTask:stream"]);
  });

  test('transport: "connect-node" still works', async () => {
    const { client } = await open(server.url, { transport: "connect-node" });
    expect((await client.getTask(request)).metadata?.id).toBe("7");
    const before = server.requests.length;
    await client.getTask(request);
    expect(server.requests[before]?.headers["user-agent"]).toMatch(/connect-es/);
  });

  test("FLAME_NODE_TRANSPORT picks the default; the option wins over it", async () => {
    const saved = process.env.FLAME_NODE_TRANSPORT;
    process.env.FLAME_NODE_TRANSPORT = "connect-node";
    try {
      const before = server.requests.length;
      await (await open()).client.getTask(request);
      await (await open(server.url, { transport: "lean" })).client.getTask(request);
      expect(server.requests[before]?.headers["user-agent"]).toMatch(/connect-es/);
      expect(server.requests[before + 1]?.headers["user-agent"]).toMatch(/^flame-ts\//);
    } finally {
      if (saved === undefined) delete process.env.FLAME_NODE_TRANSPORT;
      else process.env.FLAME_NODE_TRANSPORT = saved;
    }
  });

  test("an unknown transport name is a configuration error", async () => {
    const err = await createNodeTransport(server.url, { transport: "fetch" as never }).catch(
      (e: unknown) => e,
    );
    expect(FlameError.is(err, "invalid-config")).toBe(true);
  });
});
