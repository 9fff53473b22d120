// A raw HTTP/2 server that answers every call wrongly: wrong content type,
// truncated or garbage frames, missing trailers, huge messages, broken
// streams, and well-formed messages with holes or unknown enum values.
// Each call must end in a FlameError naming the method (or, for the
// well-formed cases, the documented value) — never a crash, never an
// unhandled rejection.
import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { FlameError, type Session, type Task, TaskState } from "@flame-ts/core";
import { SessionSchema, TaskSchema } from "@flame-ts/core/gen";
import { type Connection, connect } from "@flame-ts/node";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejection } from "./helpers.js";
import { grpcFrame, RawH2Server, type RawReply } from "./raw-h2-server.js";

const LIMIT = 1024 * 1024;

let server: RawH2Server;
let connection: Connection;
let session: Session;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

const frame = <D extends DescMessage>(schema: D, init: Parameters<typeof create<D>>[1]) =>
  grpcFrame(toBinary(schema, create(schema, init) as MessageShape<D>));

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  server = new RawH2Server();
  await server.start();
  connection = await connect(server.url, {
    maxMessageBytes: LIMIT,
    timeoutMs: 5_000,
    retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 10 },
  });
  server.handler = () => ({
    body: [frame(SessionSchema, { metadata: { id: "s1" }, spec: { application: "flmexec" } })],
  });
  session = await connection.createSession({ id: "s1", application: "flmexec" });
});
afterAll(async () => {
  await connection?.close();
  await server?.close();
  process.off("unhandledRejection", onUnhandled);
});

/** Every kind of client call, each named by the method it sends. */
const calls: [string, () => Promise<unknown>][] = [
  ["GetTask", () => session.getTask("1")],
  ["CreateTask", () => session.createTask(new Uint8Array([1]))],
  ["ListTask", () => session.listTasks()],
  ["GetSession", () => connection.getSession("s1")],
  ["CreateSession", () => connection.createSession({ application: "flmexec" })],
  ["ListApplication", () => connection.listApplications()],
  ["RegisterApplication", () => connection.registerApplication("a", {})],
  ["GetNode", () => connection.getNode("n")],
];

const bigTask = toBinary(
  TaskSchema,
  create(TaskSchema, { metadata: { id: "1" }, spec: { input: new Uint8Array(2 * LIMIT) } }),
);

const malformed: [string, RawReply][] = [
  ["an HTML page as content", { contentType: "text/html", body: [Buffer.from("<h1>hi</h1>")] }],
  [
    "HTTP 503 from a proxy",
    { status: 503, contentType: "text/plain", body: [Buffer.from("no")], trailers: null },
  ],
  ["a frame cut short, then OK trailers", { body: [grpcFrame(new Uint8Array(10), 100)] }],
  [
    "a frame cut short, no trailers",
    { body: [grpcFrame(new Uint8Array(10), 100)], trailers: null },
  ],
  ["half a frame header", { body: [Buffer.from([0, 0, 0])] }],
  ["bytes that are not protobuf", { body: [grpcFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff]))] }],
  ["a compressed flag without compression", { body: [Buffer.from([1, 0, 0, 0, 1, 0])] }],
  ["a declared length of 2 GiB", { body: [grpcFrame(new Uint8Array(8), 0x7fff_ffff)] }],
  ["a message twice the size limit", { body: [grpcFrame(bigTask)] }],
  ["no grpc-status trailer", { body: [grpcFrame(new Uint8Array(0))], trailers: {} }],
  ["a grpc-status that does not exist", { trailers: { "grpc-status": "99" } }],
  ["grpc-status not a number", { trailers: { "grpc-status": "oops" } }],
  ["the stream reset mid-answer", { body: [grpcFrame(new Uint8Array(10), 100)], resetCode: 2 }],
];

describe.each(malformed)("%s", (_name, reply) => {
  it("every call fails with a FlameError naming its method", async () => {
    server.handler = () => reply;
    for (const [method, call] of calls) {
      const err = await rejection(call());
      expect(FlameError.is(err), `${method}: ${String(err)}`).toBe(true);
      const fe = err as FlameError;
      expect(fe.method).toBe(method);
      expect(fe.message).toContain(method);
      // A broken answer is never mistaken for an answer about the data.
      expect(["not-found", "already-exists", "invalid-input"]).not.toContain(fe.kind);
    }
    const watch = await rejection(lastValueFrom(session.watchTask("1", { maxResumes: 2 })));
    expect(FlameError.is(watch), String(watch)).toBe(true);
    expect(["GetTask", "WatchTask"]).toContain((watch as FlameError).method);
    expect(unhandled).toEqual([]);
  });
});

describe("a message past the size limit", () => {
  it("says it is too large, with the limit", async () => {
    server.handler = () => ({ body: [grpcFrame(bigTask)] });
    const err = (await rejection(session.getTask("1"))) as FlameError;
    expect(err.message).toMatch(/larger than configured/);
    expect(err.message).toContain(String(LIMIT));
  });
});

describe("well-formed replies with holes", () => {
  const empty = (): RawReply => ({ body: [grpcFrame(new Uint8Array(0))] });

  it("a Task with no metadata, spec or status reads as protobuf defaults, without a crash", async () => {
    // Documented behaviour: absent sub-messages read as their defaults (as
    // every protobuf runtime does): state Pending, creation at 0; the ids
    // are the ones the call asked about.
    server.handler = empty;
    const task = await session.getTask("1");
    expect(task).toMatchObject({ id: "1", sessionId: "s1", state: TaskState.Pending, events: [] });
    expect(task.creationTime.getTime()).toBe(0);
    expect(task.input).toBeUndefined();
    const session2 = await connection.getSession("s1");
    expect(session2).toMatchObject({ id: "s1", application: "", pending: 0 });
    // A created task must have its id from the server.
    const created = (await rejection(session.createTask(new Uint8Array([1])))) as FlameError;
    expect(created.kind).toBe("internal");
    expect(created.message).toBe(
      "CreateTask failed (internal error): the reply carried no task id",
    );
    const apps = await connection.listApplications();
    expect(apps).toEqual([]);
    const node = (await rejection(connection.getNode("n"))) as FlameError;
    expect(node.method).toBe("GetNode");
  });

  it("a watch on a task whose status never arrives ends with a typed error, not a hang", async () => {
    // GetTask says Pending (no status); WatchTask ends at once with nothing.
    server.handler = (method) => (method === "GetTask" ? empty() : { body: [] });
    const err = (await rejection(
      lastValueFrom(session.watchTask("1", { maxResumes: 3 })),
    )) as FlameError;
    expect(err.kind).toBe("unavailable");
    expect(err.method).toBe("WatchTask");
  });
});

describe("unknown enum values", () => {
  const task = (state: number): MessageShape<typeof TaskSchema> =>
    create(TaskSchema, {
      metadata: { id: "1" },
      spec: { sessionId: "s1" },
      status: { state: state as TaskState, creationTime: 1n },
    });
  const frames = (...states: number[]) =>
    states.map((s) => grpcFrame(toBinary(TaskSchema, task(s))));

  it("a TaskState the client does not know passes through as a non-terminal state", async () => {
    // Decided: a newer Flame may add states; an unknown one is shown as it
    // is and the watch goes on until a known terminal state.
    server.handler = (method) =>
      method === "GetTask" ? { body: frames(99) } : { body: frames(99, TaskState.Succeed) };
    expect((await session.getTask("1")).state).toBe(99);
    const seen: Task[] = await lastValueFrom(session.watchTask("1").pipe(toArray()));
    expect(seen.map((t) => t.state)).toEqual([99, TaskState.Succeed]);
  });

  it("a watch that only ever sees the unknown state gives up with a typed error", async () => {
    server.handler = (method) =>
      method === "GetTask" ? { body: frames(99) } : { body: frames(99) };
    const err = (await rejection(
      lastValueFrom(session.watchTask("1", { maxResumes: 3 })),
    )) as FlameError;
    expect(FlameError.is(err)).toBe(true);
    expect(err.kind).toBe("unavailable");
  });

  it("unknown enum values elsewhere (session state, shim) do not break reads", async () => {
    const s = create(SessionSchema, {
      metadata: { id: "s1" },
      spec: { application: "x" },
      status: { state: 7 as never },
    });
    server.handler = () => ({ body: [grpcFrame(toBinary(SessionSchema, s))] });
    const got = await connection.getSession("s1");
    expect(got.state as number).toBe(7);
  });
});
