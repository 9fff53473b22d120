// The built-in binary gRPC-Web transport, against the emulator over HTTP/1.1
// (Node's fetch, like a browser's): unary and server-streaming calls through
// the raw Connect client and through the API, error statuses (in a trailer
// frame and trailers-only, with details), deadlines, cancellation, framing
// across chunks, and headers.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
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

function rawClient(fetchImpl?: typeof fetch) {
  return createClient(
    Frontend,
    createBinaryGrpcWebTransport({
      baseUrl: emulator.url,
      ...(fetchImpl ? { fetch: fetchImpl } : {}),
    }),
  );
}

/** A fetch whose response body arrives re-cut into chunks of `size` bytes, minus `drop` at the end. */
function rechunkingFetch(size: number, drop = 0): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const kept = bytes.subarray(0, Math.max(0, bytes.length - drop));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < kept.length; i += size) controller.enqueue(kept.slice(i, i + size));
        controller.close();
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
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

  it("reads frames cut across chunks anywhere", async () => {
    const session = await flame.createSession({ application: "flmping" });
    const made = await session.runAll([new Uint8Array([1]), new Uint8Array([2])]);
    for (const size of [1, 2, 3, 7]) {
      const tasks = [];
      for await (const t of rawClient(rechunkingFetch(size)).listTask({ sessionId: session.id })) {
        tasks.push(t.metadata?.id);
      }
      expect(tasks.sort()).toEqual(made.map((r) => r.taskId).sort());
      const one = await rawClient(rechunkingFetch(size)).getTask({
        sessionId: session.id,
        taskId: made[0]?.taskId ?? "",
      });
      expect(one.status?.state).toBe(made[0]?.state);
    }
  });

  it("fails a body cut in the middle of a frame", async () => {
    const session = await flame.createSession({ application: "flmping" });
    const err = await rawClient(rechunkingFetch(4, 3))
      .getSession({ sessionId: session.id })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).not.toBe(Code.Canceled);
  });

  it("aborts with the caller's reason while a deadline is also set", async () => {
    const session = await flame.createSession({ application: "flmping" });
    emulator.pause();
    try {
      const task = await session.createTask();
      const ac = new AbortController();
      const done = (async () => {
        for await (const _ of rawClient().watchTask(
          { sessionId: session.id, taskId: task.id },
          { signal: ac.signal, timeoutMs: 60_000 },
        )) {
          // nothing arrives while paused
        }
      })().catch((e: unknown) => e);
      await vi.waitFor(() => expect(emulator.stats().openStreams).toBeGreaterThan(0));
      ac.abort(new Error("user left"));
      const err = (await done) as ConnectError;
      expect(err.code).toBe(Code.Canceled);
      expect(err.message).toContain("user left");
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

// Answers a real server rarely gives (error details, proxies' HTTP errors,
// odd statuses), crafted as fetch responses; the status headers are made by
// connect's own gRPC encoder, so both sides agree on the format.
describe("createBinaryGrpcWebTransport status handling", () => {
  function answering(status: number, headers: Headers, body?: Uint8Array): typeof fetch {
    return async () =>
      new Response(body ? new Blob([body as BlobPart]) : null, { status, headers });
  }
  function trailerFrame(text: string): Uint8Array {
    const bytes = new TextEncoder().encode(text);
    const frame = new Uint8Array(5 + bytes.length);
    frame[0] = 0x80;
    new DataView(frame.buffer).setUint32(1, bytes.length);
    frame.set(bytes, 5);
    return frame;
  }
  async function listError(fetchImpl: typeof fetch): Promise<ConnectError> {
    const client = createClient(
      Frontend,
      createBinaryGrpcWebTransport({ baseUrl: "http://127.0.0.1:9", fetch: fetchImpl }),
    );
    const err = await client.listApplication({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }

  it("reads code, message and details from grpc-status-details-bin", async () => {
    const sent = new ConnectError("no room: 100%", Code.ResourceExhausted);
    sent.details = [{ type: "flame.v1.Hint", value: new Uint8Array([1, 2, 3]) }];
    const headers = setTrailerStatus(
      new Headers({ "content-type": "application/grpc-web+proto" }),
      sent,
    );
    expect(headers.has("grpc-status-details-bin")).toBe(true);
    const err = await listError(answering(200, headers));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toBe("no room: 100%");
    expect(err.details).toEqual([{ type: "flame.v1.Hint", value: new Uint8Array([1, 2, 3]) }]);
  });

  it("reads a percent-encoded status from a trailer frame", async () => {
    const headers = new Headers({ "content-type": "application/grpc-web+proto", "x-hop": "1" });
    const err = await listError(
      answering(200, headers, trailerFrame("grpc-status: 5\r\ngrpc-message: no%20such%20task\r\n")),
    );
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("no such task");
    expect(err.metadata.get("x-hop")).toBe("1");
  });

  it("maps a proxy's HTTP status, and rejects an unknown grpc-status", async () => {
    expect((await listError(answering(503, new Headers()))).code).toBe(Code.Unavailable);
    expect((await listError(answering(401, new Headers()))).code).toBe(Code.Unauthenticated);
    const odd = await listError(answering(200, new Headers({ "grpc-status": "99" })));
    expect(odd.code).toBe(Code.Internal);
    expect(odd.rawMessage).toContain("invalid grpc-status: 99");
  });

  it("fails an answer with a trailer but no status", async () => {
    const err = await listError(answering(200, new Headers(), trailerFrame("x-other: 1\r\n")));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toContain("missing status");
  });
});
