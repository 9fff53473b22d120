import { Code } from "@connectrpc/connect";
import { Shim, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { TaskHandler } from "../src/index.js";
import {
  bytes,
  collect,
  expectCode,
  gate,
  type Harness,
  startHarness,
  stateOf,
  text,
  waitFor,
  waitForTask,
} from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ hostname: "emu-node" });
});
afterAll(() => h.emulator.close());
beforeEach(async () => {
  h.emulator.reset();
  for (const app of ["app", "flmping"]) h.emulator.unserve(app);
  await h.client.registerApplication({ name: "app", application: {} });
});

const session = async (id: string, application = "app", commonData?: Uint8Array) =>
  h.client.createSession({
    sessionId: id,
    session: { application, ...(commonData ? { commonData } : {}) },
  });

describe("CreateTask / GetTask", () => {
  it("numbers tasks per session from 1, with millisecond timestamps", async () => {
    await session("a");
    await session("b");
    const before = BigInt(Date.now());
    const a1 = await h.client.createTask({ task: { sessionId: "a" } });
    const a2 = await h.client.createTask({ task: { sessionId: "a" } });
    const b1 = await h.client.createTask({ task: { sessionId: "b" } });
    expect([a1.metadata?.id, a2.metadata?.id, b1.metadata?.id]).toEqual(["1", "2", "1"]);
    expect(a1.spec?.sessionId).toBe("a");
    const created = a1.status?.creationTime ?? 0n;
    expect(created >= before && created <= BigInt(Date.now())).toBe(true);
    const done = await waitForTask(h.client, "a", "1");
    expect(done.status?.completionTime).toBeGreaterThanOrEqual(created);
  });

  it("an unknown or closed session is INTERNAL", async () => {
    await expectCode(h.client.createTask({ task: { sessionId: "ghost" } }), Code.Internal, "ghost");
    await session("c");
    await h.client.closeSession({ sessionId: "c" });
    await expectCode(h.client.createTask({ task: { sessionId: "c" } }), Code.Internal, "c");
  });

  it("a missing task spec is INVALID_ARGUMENT", async () => {
    await expectCode(h.client.createTask({}), Code.InvalidArgument);
  });

  it("GetTask: unknown is NOT_FOUND, non-numeric id is INVALID_ARGUMENT", async () => {
    await session("g");
    await expectCode(h.client.getTask({ sessionId: "g", taskId: "5" }), Code.NotFound, "not found");
    await expectCode(h.client.getTask({ sessionId: "nope", taskId: "1" }), Code.NotFound);
    await expectCode(h.client.getTask({ sessionId: "g", taskId: "abc" }), Code.InvalidArgument);
  });

  it("echoes the input of an application without a handler", async () => {
    await session("e");
    await h.client.createTask({ task: { sessionId: "e", input: bytes("hello") } });
    await h.client.createTask({ task: { sessionId: "e" } });
    const echoed = await waitForTask(h.client, "e", "1");
    expect(stateOf(echoed)).toBe(TaskState.Succeed);
    expect(text(echoed.spec?.output)).toBe("hello");
    expect(text(echoed.spec?.input)).toBe("hello");
    const empty = await waitForTask(h.client, "e", "2");
    expect(empty.spec?.output).toBeUndefined();
  });

  it("runs a served handler with the input and the session's common data", async () => {
    const seen: unknown[] = [];
    h.emulator.serve("app", async (task) => {
      seen.push({ ...task, signal: undefined, input: text(task.input) });
      return `${text(task.commonData)}:${text(task.input)}`;
    });
    await session("s", "app", bytes("common"));
    await h.client.createTask({ task: { sessionId: "s", input: bytes("in") } });
    const task = await waitForTask(h.client, "s", "1");
    expect(text(task.spec?.output)).toBe("common:in");
    expect(seen).toEqual([
      expect.objectContaining({ sessionId: "s", taskId: "1", application: "app", input: "in" }),
    ]);

    h.emulator.serve("app", () => new Uint8Array([1, 2, 3]));
    await h.client.createTask({ task: { sessionId: "s" } });
    expect((await waitForTask(h.client, "s", "2")).spec?.output).toEqual(new Uint8Array([1, 2, 3]));

    h.emulator.serve("app", async () => undefined);
    await h.client.createTask({ task: { sessionId: "s", input: bytes("x") } });
    expect((await waitForTask(h.client, "s", "3")).spec?.output).toBeUndefined();

    h.emulator.unserve("app");
    await h.client.createTask({ task: { sessionId: "s", input: bytes("echo") } });
    expect(text((await waitForTask(h.client, "s", "4")).spec?.output)).toBe("echo");
  });

  it("a handler that throws fails the task; its last event has code 3 and the message", async () => {
    h.emulator.serve("app", () => {
      throw new Error("division by zero");
    });
    await session("f");
    await h.client.createTask({ task: { sessionId: "f" } });
    const failed = await waitForTask(h.client, "f", "1");
    expect(stateOf(failed)).toBe(TaskState.Failed);
    const last = failed.status?.events.at(-1);
    expect(last?.code).toBe(3);
    expect(last?.message).toBe("division by zero");
    expect(last?.creationTime).toBeGreaterThan(0n);
    expect((await h.client.getSession({ sessionId: "f" })).status?.failed).toBe(1);
  });

  it("a handler that returns something other than bytes or text fails the task", async () => {
    h.emulator.serve("app", (() => 42) as unknown as TaskHandler);
    await session("odd");
    await h.client.createTask({ task: { sessionId: "odd" } });
    const failed = await waitForTask(h.client, "odd", "1");
    expect(stateOf(failed)).toBe(TaskState.Failed);
    expect(failed.status?.events.at(-1)?.message).toContain("handler returned number");
  });

  it("tasks of a Wasm-shim application stay Pending", async () => {
    await h.client.registerApplication({ name: "wasm", application: { shim: Shim.Wasm } });
    await session("w", "wasm");
    await session("host", "app");
    await h.client.createTask({ task: { sessionId: "w" } });
    // A later Host task completes, so the scheduler has run past the Wasm one.
    await h.client.createTask({ task: { sessionId: "host" } });
    await waitForTask(h.client, "host", "1");
    expect(stateOf(await h.client.getTask({ sessionId: "w", taskId: "1" }))).toBe(
      TaskState.Pending,
    );
  });
});

describe("flmping", () => {
  it("outputs Flame's message with literal angle brackets", async () => {
    await session("p", "flmping");
    await h.client.createTask({ task: { sessionId: "p" } });
    await h.client.createTask({
      task: { sessionId: "p", input: bytes(JSON.stringify({ duration: 20, memory: 1_048_576 })) },
    });
    const plain = await waitForTask(h.client, "p", "1");
    expect(JSON.parse(text(plain.spec?.output) ?? "")).toEqual({
      message: expect.stringMatching(
        /^Completed on <emu-node> in <\d+> milliseconds with <0 B> memory$/,
      ),
    });
    const held = await waitForTask(h.client, "p", "2");
    const { message } = JSON.parse(text(held.spec?.output) ?? "") as { message: string };
    expect(message).toMatch(
      /^Completed on <emu-node> in <(\d+)> milliseconds with <1.05 MB> memory$/,
    );
    expect(Number(/in <(\d+)>/.exec(message)?.[1])).toBeGreaterThanOrEqual(20);
  });

  it("fails on input that is not JSON", async () => {
    await session("bad", "flmping");
    await h.client.createTask({ task: { sessionId: "bad", input: bytes("not json") } });
    const failed = await waitForTask(h.client, "bad", "1");
    expect(stateOf(failed)).toBe(TaskState.Failed);
    expect(failed.status?.events.at(-1)?.code).toBe(3);
  });
});

describe("WatchTask", () => {
  it("sends no initial state, then each change, and ends after the terminal one", async () => {
    const release = gate();
    const started = gate();
    h.emulator.serve("app", async () => {
      started.open();
      await release.opened;
      return "out";
    });
    h.emulator.pause();
    await session("w");
    await h.client.createTask({ task: { sessionId: "w" } });
    const received: TaskState[] = [];
    const done = (async () => {
      for await (const t of h.client.watchTask({ sessionId: "w", taskId: "1" })) {
        received.push(stateOf(t) as TaskState);
      }
    })();
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    h.emulator.resume();
    await started.opened;
    await waitFor(() => received.length === 1, "Running");
    release.open();
    await done;
    // No Pending first: the task was Pending when the watch started.
    expect(received).toEqual([TaskState.Running, TaskState.Succeed]);
  });

  it("on an already terminal task sends that state at once and ends", async () => {
    await session("t");
    await h.client.createTask({ task: { sessionId: "t", input: bytes("x") } });
    await waitForTask(h.client, "t", "1");
    const all = await collect(h.client.watchTask({ sessionId: "t", taskId: "1" }));
    expect(all.map(stateOf)).toEqual([TaskState.Succeed]);
    expect(text(all[0]?.spec?.output)).toBe("x");
  });

  it("for an unknown task or session ends OK with no message", async () => {
    await session("u");
    expect(await collect(h.client.watchTask({ sessionId: "u", taskId: "99" }))).toEqual([]);
    expect(await collect(h.client.watchTask({ sessionId: "none", taskId: "1" }))).toEqual([]);
  });

  it("a non-numeric task id is INVALID_ARGUMENT", async () => {
    await session("n");
    await expectCode(
      collect(h.client.watchTask({ sessionId: "n", taskId: "one" })),
      Code.InvalidArgument,
    );
  });

  it("sees Cancelled when the session is closed", async () => {
    h.emulator.pause();
    await session("c");
    await h.client.createTask({ task: { sessionId: "c" } });
    const watching = collect(h.client.watchTask({ sessionId: "c", taskId: "1" }));
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    await h.client.closeSession({ sessionId: "c" });
    const all = await watching;
    expect(all.map(stateOf)).toEqual([TaskState.Cancelled]);
    expect(all[0]?.status?.events.at(-1)?.code).toBe(TaskState.Cancelled);
  });
});

describe("ListTask", () => {
  it("streams every task of the session, then ends", async () => {
    h.emulator.pause();
    await session("l");
    for (let i = 0; i < 5; i++) {
      await h.client.createTask({ task: { sessionId: "l", input: bytes(String(i)) } });
    }
    const tasks = await collect(h.client.listTask({ sessionId: "l" }));
    expect(tasks.map((t) => t.metadata?.id)).toEqual(["1", "2", "3", "4", "5"]);
    expect(tasks.every((t) => stateOf(t) === TaskState.Pending)).toBe(true);
    expect(tasks.map((t) => text(t.spec?.input))).toEqual(["0", "1", "2", "3", "4"]);
    h.emulator.resume();
    await waitForTask(h.client, "l", "5");
  });

  it("an empty session streams nothing; an unknown one is NOT_FOUND", async () => {
    await session("empty");
    expect(await collect(h.client.listTask({ sessionId: "empty" }))).toEqual([]);
    await expectCode(collect(h.client.listTask({ sessionId: "ghost" })), Code.NotFound);
  });
});
