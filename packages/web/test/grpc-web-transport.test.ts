// The built-in binary gRPC-Web transport, against the emulator over HTTP/1.1
// (Node's fetch, like a browser's): unary and server-streaming calls through
// the raw Connect client and through the API, error statuses (in a trailer
// frame and trailers-only), deadlines, cancellation, and headers.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type Connection,
  connect,
  createBinaryGrpcWebTransport,
  FlameError,
  Frontend,
  TaskState,
} from "../src/index.js";

let emulator: Emulator;
let flame: Connection;
const requests: Headers[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  flame = connect(emulator.url, {
    fetch: (input, init) => {
      requests.push(new Headers(init?.headers));
      return fetch(input, init);
    },
  });
});

afterAll(async () => {
  await flame?.close();
  await emulator?.close();
});

function rawClient() {
  return createClient(Frontend, createBinaryGrpcWebTransport({ baseUrl: emulator.url }));
}

describe("createBinaryGrpcWebTransport", () => {
  it("runs tasks: unary calls and a server stream to the terminal state", async () => {
    const session = await flame.createSession({ application: "flmping" });
    const results = await session.runAll([new Uint8Array(), new Uint8Array(), new Uint8Array()], {
      concurrency: 3,
    });
    expect(results.map((r) => r.state)).toEqual([
      TaskState.Succeed,
      TaskState.Succeed,
      TaskState.Succeed,
    ]);
    // ListTask is a server stream of several messages.
    const tasks = await session.listTasks();
    expect(tasks.map((t) => t.id).sort()).toEqual(results.map((r) => r.taskId).sort());
    expect(requests.at(-1)?.get("content-type")).toBe("application/grpc-web+proto");
    expect(requests.at(-1)?.get("x-grpc-web")).toBe("1");
  });

  it("turns an error status into a FlameError with its code", async () => {
    const session = await flame.createSession({ application: "flmping" });
    const err = await session.getTask("999999").catch((e: unknown) => e);
    expect(FlameError.is(err, "not-found")).toBe(true);
    expect((err as FlameError).code).toBe(Code.NotFound);
    // The same through a stream, whose status comes after zero messages.
    const watched = await new Promise<unknown>((resolve) => {
      session.watchTask("999999").subscribe({ error: resolve, complete: () => resolve(0) });
    });
    expect(FlameError.is(watched, "not-found")).toBe(true);
  });

  it("sends the deadline and ends a stream past it with DeadlineExceeded", async () => {
    const session = await flame.createSession({ application: "flmping" });
    emulator.pause();
    try {
      const task = await session.createTask();
      const seen: TaskState[] = [];
      const err = await (async () => {
        const stream = rawClient().watchTask(
          { sessionId: session.id, taskId: task.id },
          { timeoutMs: 200 },
        );
        for await (const t of stream) seen.push(t.status?.state ?? TaskState.Pending);
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
      expect(seen.includes(TaskState.Succeed)).toBe(false);
    } finally {
      emulator.resume();
    }
  });

  it("cancels a server stream on abort, at the server too", async () => {
    const session = await flame.createSession({ application: "flmping" });
    emulator.pause();
    try {
      const task = await session.createTask();
      const before = emulator.stats().streamsCancelled;
      const ac = new AbortController();
      const done = (async () => {
        for await (const _ of rawClient().watchTask(
          { sessionId: session.id, taskId: task.id },
          { signal: ac.signal },
        )) {
          // nothing arrives while paused
        }
      })().catch((e: unknown) => e);
      await vi.waitFor(() => expect(emulator.stats().openStreams).toBeGreaterThan(0));
      ac.abort();
      const err = await done;
      expect((err as ConnectError).code).toBe(Code.Canceled);
      await vi.waitFor(() => expect(emulator.stats().streamsCancelled).toBeGreaterThan(before));
    } finally {
      emulator.resume();
    }
  });

  it("sends the caller's headers", async () => {
    const count = requests.length;
    await flame.listApplications({ headers: { "x-trace": "abc" } });
    expect(requests.slice(count).map((h) => h.get("x-trace"))).toEqual(["abc"]);
  });

  it("reports a server that does not speak gRPC-Web as an error, not a hang", async () => {
    const client = createClient(
      Frontend,
      createBinaryGrpcWebTransport({ baseUrl: `${emulator.url}/nowhere` }),
    );
    const err = await client.listApplication({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
  });
});
