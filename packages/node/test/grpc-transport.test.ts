import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, createClient, createContextValues, type Interceptor } from "@connectrpc/connect";
import { Connection, connectionAffinity, FlameError, TaskState } from "@flame-ts/core";
import { Frontend, GetTaskRequestSchema, SessionSchema, TaskSchema } from "@flame-ts/core/gen";
import { lastValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { createNodeTransport, type NodeTransport } from "../src/node-transport.js";
import { rejectionOf } from "./helpers/rejection.js";
import {
  frame,
  respond,
  ScriptedH2Server,
  type SeenRequest,
} from "./helpers/scripted-h2-server.js";

// createNodeTransport (connect-node's gRPC transport, calls spread over
// `http2.connections`) against a raw HTTP/2 server that records every
// request and answers as each test scripts it: what reaches the wire.

let server: ScriptedH2Server;
const transports: NodeTransport[] = [];
const servers: ScriptedH2Server[] = [];

async function open(url = server.url, options: Parameters<typeof createNodeTransport>[1] = {}) {
  const t = await createNodeTransport(url, options);
  transports.push(t);
  return { t, client: createClient(Frontend, t.transport) };
}

const task = (id: string, state = TaskState.Pending) =>
  toBinary(
    TaskSchema,
    create(TaskSchema, { metadata: { id }, spec: { sessionId: "s" }, status: { state } }),
  );
const ok = { "grpc-status": "0" };
const methodOf = (req: SeenRequest) => String(req.headers[":path"]).replace(/.*\//, "");
const request = { taskId: "7", sessionId: "s" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** GetSession answers session "s"; any other call, task "7" Succeeded (a watch ends at once). */
function answerSessionAndFinishedTask(req: SeenRequest) {
  const reply =
    methodOf(req) === "GetSession"
      ? toBinary(SessionSchema, create(SessionSchema, { metadata: { id: "s" } }))
      : task("7", TaskState.Succeed);
  return respond(req.stream, [frame(reply)], ok);
}

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

describe("deadlines on the wire", () => {
  test("a Connection sends a deadline the caller chose as grpc-timeout, never its own default", async () => {
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

  test("a deadline ends the call with deadline-exceeded and resets the stream at the server", async () => {
    server.script = () => {}; // never answers
    const { t } = await open();
    const connection = new Connection(t.transport, { retry: false });
    const before = server.requests.length;
    const err = await connection.getSession("s", { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(FlameError.is(err, "deadline-exceeded")).toBe(true);
    const seen = server.requests[before];
    expect(seen?.headers["grpc-timeout"]).toMatch(/^\d+m$/);
    // connect-node resets a stream past its deadline (RST_STREAM, non-zero code).
    expect(await seen?.closed).toBeGreaterThan(0);
  });
});

describe("cancellation", () => {
  test("unsubscribing a watch resets its WatchTask stream at the server with CANCEL", async () => {
    let watch: SeenRequest | undefined;
    server.script = (req) => {
      if (methodOf(req) === "WatchTask") {
        watch = req;
        req.stream.respond({ ":status": 200, "content-type": "application/grpc" });
        return;
      }
      if (methodOf(req) === "GetSession") return answerSessionAndFinishedTask(req);
      return respond(req.stream, [frame(task("7", TaskState.Running))], ok);
    };
    const { t } = await open();
    const connection = new Connection(t.transport);
    const session = await connection.getSession("s");
    const states: TaskState[] = [];
    const subscription = session.watchTask("7").subscribe((s) => states.push(s.state));
    while (states.length === 0 || watch === undefined) await sleep(5);
    expect(states).toEqual([TaskState.Running]);
    subscription.unsubscribe();
    expect(await watch.closed).toBe(8);
  });

  test("close() cancels calls in flight and refuses new ones", async () => {
    server.script = () => {};
    const { t, client } = await open();
    const before = server.requests.length;
    const pending = rejectionOf(client.getTask(request));
    while (server.requests.length === before) await sleep(5);
    t.close();
    expect((await pending).code).toBe(Code.Canceled);
    const later = await rejectionOf(client.getTask(request));
    expect(later.code).toBe(Code.FailedPrecondition);
    expect(later.message).toMatch(/is closed/);
  });
});

describe("broken connections", () => {
  test("a socket that dies mid-call is unavailable, and the next call reconnects", async () => {
    server.script = () => server.dropConnections();
    const { t } = await open(server.url, { http2: { connections: 1 } });
    const connection = new Connection(t.transport, { retry: false });
    const err = await connection.getSession("s").catch((e: unknown) => e);
    expect(FlameError.is(err, "unavailable")).toBe(true);
    server.script = answerSessionAndFinishedTask;
    expect((await connection.getSession("s")).id).toBe("s");
  });

  test("a refused connection is Unavailable", async () => {
    const dead = await new ScriptedH2Server().start();
    const url = dead.url;
    await dead.close();
    const { client } = await open(url);
    const err = await rejectionOf(client.getTask(request));
    expect(err.code).toBe(Code.Unavailable);
  });
});

describe("connections", () => {
  /** Holds every call after the first (answered, so a connection exists) until released. */
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

  async function spreadOf(calls: number, connections: number | undefined) {
    const { holding, held } = await holdingServer();
    const { client } = await open(holding.url, connections ? { http2: { connections } } : {});
    await client.getTask(request);
    const pending = Array.from({ length: calls }, () => client.getTask(request));
    while (held.length < calls) await sleep(5);
    const perConnection = new Map<unknown, number>();
    for (const { session } of held) {
      perConnection.set(session, (perConnection.get(session) ?? 0) + 1);
    }
    for (const { answer } of held) answer();
    const done = await Promise.all(pending);
    expect(done.every((t) => t.metadata?.id === "7")).toBe(true);
    return { shares: [...perConnection.values()].sort(), opened: holding.sessionsOpened };
  }

  test("calls take turns on two connections by default; http2.connections sets how many", async () => {
    expect(await spreadOf(64, undefined)).toEqual({ shares: [32, 32], opened: 2 });
    expect(await spreadOf(30, 3)).toEqual({ shares: [10, 10, 10], opened: 3 });
    expect(await spreadOf(20, 1)).toEqual({ shares: [20], opened: 1 });
  });

  test("calls with the same connectionAffinity stay on one connection", async () => {
    const { holding, held } = await holdingServer();
    const { client } = await open(holding.url, { http2: { connections: 4 } });
    await client.getTask(request);
    const together = { contextValues: createContextValues().set(connectionAffinity, {}) };
    const pending = [
      client.getTask({ ...request, taskId: "first" }, together),
      client.getTask({ ...request, taskId: "other" }),
      client.getTask({ ...request, taskId: "second" }, together),
    ];
    while (held.length < 3) await sleep(5);
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

  test("a watch's WatchTask and its GetTask share a connection", async () => {
    const sessionOf = new Map<string, unknown>();
    server.script = (req) => {
      sessionOf.set(methodOf(req), req.stream.session);
      return answerSessionAndFinishedTask(req);
    };
    const { t } = await open(server.url, { http2: { connections: 4 } });
    const connection = new Connection(t.transport);
    const session = await connection.getSession("s");
    expect((await lastValueFrom(session.watchTask("7"))).state).toBe(TaskState.Succeed);
    expect(sessionOf.get("WatchTask")).toBeDefined();
    expect(sessionOf.get("GetTask")).toBe(sessionOf.get("WatchTask"));
  });

  test("http2.connections outside 1..64 is invalid-config", async () => {
    for (const connections of [0, 1.5, 65]) {
      const err = await createNodeTransport(server.url, { http2: { connections } }).catch(
        (e: unknown) => e,
      );
      expect(FlameError.is(err, "invalid-config")).toBe(true);
      expect((err as Error).message).toContain("http2.connections");
    }
  });
});

describe("interceptors", () => {
  test("interceptors see and change requests, and see responses", async () => {
    const seen: string[] = [];
    const auth: Interceptor = (next) => async (req) => {
      req.header.set("authorization", "Bearer t0k3n");
      const res = await next(req);
      seen.push(`${req.method.name}:${res.stream ? "stream" : "unary"}`);
      return res;
    };
    server.script = (req) =>
      respond(req.stream, [frame(task("7", TaskState.Succeed))], ok, { "x-reply": "yes" });
    const { client } = await open(server.url, { interceptors: [auth], http2: { connections: 1 } });
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
});
