// Pure in-memory checks of client logic that needs no socket: a Connect
// router transport plays a scripted server.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { lastValueFrom, toArray } from "rxjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionSchema, type Task as TaskMessage, TaskSchema } from "../src/generated.js";
import {
  Connection,
  FlameError,
  Frontend,
  type Logger,
  resolveLogger,
  silentLogger,
  TaskState,
} from "../src/index.js";

const session = (id: string) =>
  create(SessionSchema, {
    metadata: { id },
    spec: { application: "app", batchSize: 1 },
    status: { creationTime: 1_700_000_000_000n },
  });

const task = (id: string, state: TaskState, events = 0): TaskMessage =>
  create(TaskSchema, {
    metadata: { id },
    spec: { sessionId: "s" },
    status: {
      state,
      creationTime: 1n,
      events: Array.from({ length: events }, (_, i) => ({ code: i, creationTime: 1n })),
    },
  });

describe("in-band Result", () => {
  it("return_code < 0 becomes a FlameError with the server's message", async () => {
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          registerApplication: () => ({ returnCode: -1, message: "bad schema: input" }),
          unregisterApplication: () => ({ returnCode: 0 }),
        }),
      ),
    );
    const err = await c.registerApplication("x", {}).catch((e: unknown) => e);
    expect(FlameError.is(err, "invalid-config")).toBe(true);
    expect((err as FlameError).serverMessage).toBe("bad schema: input");
    expect((err as FlameError).method).toBe("RegisterApplication");
    await expect(c.unregisterApplication("x")).resolves.toBeUndefined();
  });
});

describe("retry", () => {
  it("retries reads on Unavailable, never CreateTask or CreateSession", async () => {
    const calls: Record<string, number> = {};
    const count = (m: string) => {
      calls[m] = (calls[m] ?? 0) + 1;
    };
    const down = () => {
      throw new ConnectError("connection refused", Code.Unavailable);
    };
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => {
            count("GetSession");
            if ((calls.GetSession ?? 0) < 3) down();
            return session("s");
          },
          createTask: () => {
            count("CreateTask");
            return down();
          },
          createSession: () => {
            count("CreateSession");
            return down();
          },
          listSession: () => {
            count("ListSession");
            return down();
          },
        }),
      ),
      { retry: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 4 } },
    );
    const s = await c.getSession("s");
    expect(calls.GetSession).toBe(3);
    await expect(s.createTask()).rejects.toMatchObject({ kind: "unavailable" });
    expect(calls.CreateTask).toBe(1);
    await expect(c.createSession({ application: "app" })).rejects.toMatchObject({
      kind: "unavailable",
    });
    expect(calls.CreateSession).toBe(1);
    await expect(c.listSessions()).rejects.toMatchObject({ kind: "unavailable" });
    expect(calls.ListSession).toBe(4);
  });

  it("a CANCEL reset the client did not ask for is unavailable, and reads retry it", async () => {
    let n = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => {
            if (n++ === 0) throw new ConnectError("stream closed with CANCEL", Code.Canceled);
            return session("s");
          },
          createTask: () => {
            throw new ConnectError("stream closed with CANCEL", Code.Canceled);
          },
        }),
      ),
      { retry: { initialDelayMs: 1 } },
    );
    const s = await c.getSession("s");
    expect(n).toBe(2);
    await expect(s.createTask()).rejects.toMatchObject({ kind: "unavailable" });
  });

  it("retry: false runs reads once", async () => {
    let n = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          listSession: () => {
            n++;
            throw new ConnectError("Failed to fetch", Code.Unknown);
          },
        }),
      ),
      { retry: false },
    );
    await expect(c.listSessions()).rejects.toMatchObject({ kind: "unavailable" });
    expect(n).toBe(1);
  });
});

describe("watchTask de-duplication and resume (scripted server)", () => {
  it("drops replays, resumes after an early end, emits the terminal state once", async () => {
    let watches = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          getTask: () =>
            watches < 2 ? task("1", TaskState.Pending, 1) : task("1", TaskState.Running, 2),
          async *watchTask() {
            watches++;
            if (watches === 1) {
              // A replay of the current state, then an early end.
              yield task("1", TaskState.Pending, 1);
              return;
            }
            // After resume: stale states, then the terminal one twice.
            yield task("1", TaskState.Pending, 1);
            yield task("1", TaskState.Running, 2);
            yield task("1", TaskState.Succeed, 3);
            yield task("1", TaskState.Succeed, 3);
          },
        }),
      ),
    );
    const s = await c.getSession("s");
    const states = await lastValueFrom(s.watchTask("1").pipe(toArray()));
    expect(states.map((t) => TaskState[t.state])).toEqual(["Pending", "Running", "Succeed"]);
    expect(watches).toBe(2);
  });

  it("a transient GetTask failure keeps the open watch and reads it", async () => {
    let gets = 0;
    let watches = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          getTask: () => {
            gets++;
            throw new ConnectError("connection reset", Code.Unavailable);
          },
          async *watchTask() {
            watches++;
            yield task("1", TaskState.Running, 1);
            yield task("1", TaskState.Succeed, 2);
          },
        }),
      ),
    );
    const s = await c.getSession("s");
    const states = await lastValueFrom(s.watchTask("1").pipe(toArray()));
    expect(states.map((t) => TaskState[t.state])).toEqual(["Running", "Succeed"]);
    expect([gets, watches]).toEqual([1, 1]);
  });

  it("gives up with kind unavailable after maxResumes attempts without progress", async () => {
    let watches = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          getTask: () => task("1", TaskState.Running, 1),
          // biome-ignore lint/correctness/useYield: a stream that always ends at once
          async *watchTask() {
            watches++;
          },
        }),
      ),
      { retry: { initialDelayMs: 1, maxDelayMs: 2 } },
    );
    const s = await c.getSession("s");
    const err = await lastValueFrom(s.watchTask("1", { maxResumes: 3 }), {
      defaultValue: undefined,
    })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(FlameError.is(err, "unavailable")).toBe(true);
    expect((err as FlameError).message).toContain("without progress");
    // The first watch followed progress (GetTask's Running); then the
    // budget: 3 resumes without progress, and the 4th failure gives up.
    expect(watches).toBe(5);
  });
});

describe("replies that leave out the task's metadata", () => {
  /** A task as a server might send it without metadata: state and spec only. */
  const bare = (state: TaskState) => create(TaskSchema, { status: { state, creationTime: 1n } });

  it('CreateTask without a task id is an internal FlameError, not a task with id ""', async () => {
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          createTask: () => bare(TaskState.Pending),
        }),
      ),
    );
    const s = await c.getSession("s");
    const err = await s.createTask(new Uint8Array([1])).catch((e: unknown) => e);
    expect(FlameError.is(err, "internal")).toBe(true);
    expect((err as FlameError).method).toBe("CreateTask");
    expect((err as FlameError).message).toBe(
      "CreateTask failed (internal error): the reply carried no task id",
    );
  });

  it("GetTask and watchTask fill in the ids they asked about", async () => {
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          getTask: () => bare(TaskState.Running),
          async *watchTask() {
            yield bare(TaskState.Running);
            yield bare(TaskState.Succeed);
          },
        }),
      ),
    );
    const s = await c.getSession("s");
    const got = await s.getTask("t-7");
    expect([got.id, got.sessionId]).toEqual(["t-7", "s"]);
    const watched = await lastValueFrom(s.watchTask("t-7").pipe(toArray()));
    expect(watched.map((t) => [t.id, t.sessionId, TaskState[t.state]])).toEqual([
      ["t-7", "s", "Running"],
      ["t-7", "s", "Succeed"],
    ]);
  });
});

describe("Connection.close", () => {
  it("calls onClose once and fails later calls with a clear FlameError", async () => {
    const onClose = vi.fn();
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, { listSession: () => ({ sessions: [] }) }),
      ),
      { onClose },
    );
    await expect(c.listSessions()).resolves.toEqual([]);
    await c.close();
    await c.close();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(c.closed).toBe(true);
    const err = await c.listSessions().catch((e: unknown) => e);
    expect(FlameError.is(err, "cancelled")).toBe(true);
    expect((err as FlameError).message).toBe("ListSession failed: the connection is closed");
  });
});

describe("logger", () => {
  const env = process.env.FLAME_LOG;
  afterEach(() => {
    if (env === undefined) delete process.env.FLAME_LOG;
    else process.env.FLAME_LOG = env;
  });

  it("is silent by default and turned on by FLAME_LOG or an option", () => {
    delete process.env.FLAME_LOG;
    expect(resolveLogger()).toBe(silentLogger);
    process.env.FLAME_LOG = "debug";
    const spy = vi.spyOn(console, "debug").mockImplementation(() => {});
    resolveLogger().debug("hello", { method: "GetTask" });
    expect(spy).toHaveBeenCalledWith("[flame] debug hello", { method: "GetTask" });
    spy.mockRestore();
    expect(resolveLogger(false)).toBe(silentLogger);
  });

  it("an option logger sees calls and retries", async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m) => lines.push(`debug ${m}`),
      info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
    };
    let n = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          listSession: () => {
            if (n++ === 0) throw new ConnectError("down", Code.Unavailable);
            return { sessions: [] };
          },
        }),
      ),
      { logger, retry: { initialDelayMs: 1 } },
    );
    await c.listSessions();
    expect(lines).toEqual(["debug call", "warn retrying", "debug call"]);
  });
});
