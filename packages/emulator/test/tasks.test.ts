import { Code } from "@connectrpc/connect";
import { Shim, TaskState } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import {
  EMULATOR_STORAGES,
  type EmulatorStorage,
  TaskFailure,
  type TaskHandler,
} from "../src/index.js";
import {
  bytes,
  collect,
  expectCode,
  expectStamp,
  gate,
  stateOf,
  text,
  useHarness,
  waitFor,
  waitForTask,
} from "./helpers.js";

const CREATED = { code: 0, message: "Task was created with state <Pending>" };
const RUNNING = { code: 1, message: "Task state was updated to <Running>" };
const SUCCEEDED = { code: 2, message: "Task was completed with state <Succeed>" };

describe.each(EMULATOR_STORAGES)("tasks on %s", (storage: EmulatorStorage) => {
  const h = useHarness({ hostname: "emu-node", storage }, async (h) => {
    for (const app of ["app", "flmping"]) h.emulator.unserve(app);
    await h.client.registerApplication({ name: "app", application: {} });
  });

  const session = async (id: string, application = "app", commonData?: Uint8Array) =>
    h.client.createSession({
      sessionId: id,
      session: { application, ...(commonData ? { commonData } : {}) },
    });

  describe("CreateTask / GetTask", () => {
    it("numbers tasks per session from 1; times as the engine stores them", async () => {
      await session("a");
      await session("b");
      const before = BigInt(Date.now());
      const a1 = await h.client.createTask({ task: { sessionId: "a" } });
      const a2 = await h.client.createTask({ task: { sessionId: "a" } });
      const b1 = await h.client.createTask({ task: { sessionId: "b" } });
      expect([a1.metadata?.id, a2.metadata?.id, b1.metadata?.id]).toEqual(["1", "2", "1"]);
      expect(a1.spec?.sessionId).toBe("a");
      expect(stateOf(a1)).toBe(TaskState.Pending);
      const created = a1.status?.creationTime ?? 0n;
      expectStamp(storage, created, before);
      const done = await waitForTask(h.client, "a", "1");
      expect(done.status?.completionTime).toBeGreaterThanOrEqual(created);
      if (storage !== "none") expect((done.status?.completionTime ?? 1n) % 1000n).toBe(0n);
    });

    it("a missing task is INVALID_ARGUMENT `session spec` (Flame's words)", async () => {
      await expectCode(h.client.createTask({}), Code.InvalidArgument, "session spec");
    });

    it("GetTask: NOT_FOUND with the bare session id or task number", async () => {
      await session("g");
      const task = await expectCode(
        h.client.getTask({ sessionId: "g", taskId: "007" }),
        Code.NotFound,
      );
      expect(task.rawMessage).toBe("7");
      const ssn = await expectCode(
        h.client.getTask({ sessionId: "nope", taskId: "1" }),
        Code.NotFound,
      );
      expect(ssn.rawMessage).toBe("nope");
    });

    it("task ids are 64-bit integers: `+1` and `01` name task 1, others are INVALID_ARGUMENT", async () => {
      await session("i");
      await h.client.createTask({ task: { sessionId: "i" } });
      for (const id of ["1", "+1", "01"]) {
        expect((await h.client.getTask({ sessionId: "i", taskId: id })).metadata?.id).toBe("1");
      }
      await expectCode(h.client.getTask({ sessionId: "i", taskId: "-3" }), Code.NotFound, "-3");
      for (const id of ["abc", "", " 1", "1.0", "9223372036854775808"]) {
        const error = await expectCode(
          h.client.getTask({ sessionId: "i", taskId: id }),
          Code.InvalidArgument,
        );
        expect(error.rawMessage).toBe("invalid task id");
      }
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

    it("empty input, output and common data: absent on fs, kept elsewhere", async () => {
      const none = new Uint8Array(0);
      const created = await session("z", "app", none);
      const task = await h.client.createTask({ task: { sessionId: "z", input: none } });
      const done = await waitForTask(h.client, "z", "1");
      const kept = storage !== "fs";
      for (const value of [created.spec?.commonData, task.spec?.input, done.spec?.output]) {
        expect(value).toEqual(kept ? none : undefined);
      }
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
      expect((await waitForTask(h.client, "s", "2")).spec?.output).toEqual(
        new Uint8Array([1, 2, 3]),
      );

      h.emulator.serve("app", async () => undefined);
      await h.client.createTask({ task: { sessionId: "s", input: bytes("x") } });
      expect((await waitForTask(h.client, "s", "3")).spec?.output).toBeUndefined();

      h.emulator.unserve("app");
      await h.client.createTask({ task: { sessionId: "s", input: bytes("echo") } });
      expect(text((await waitForTask(h.client, "s", "4")).spec?.output)).toBe("echo");
    });

    it("a handler that throws a TaskFailure fails the task with output", async () => {
      h.emulator.serve("app", () => {
        throw new TaskFailure("half done", "partial");
      });
      await session("fo");
      await h.client.createTask({ task: { sessionId: "fo" } });
      const failed = await waitForTask(h.client, "fo", "1");
      expect(stateOf(failed)).toBe(TaskState.Failed);
      expect(text(failed.spec?.output)).toBe("partial");
      expect(failed.status?.events.at(-1)).toMatchObject({ code: 3, message: "half done" });
    });

    it("a handler that returns something other than bytes or text fails the task", async () => {
      h.emulator.serve("app", (() => 42) as unknown as TaskHandler);
      await session("odd");
      await h.client.createTask({ task: { sessionId: "odd" } });
      const failed = await waitForTask(h.client, "odd", "1");
      expect(stateOf(failed)).toBe(TaskState.Failed);
      expect(failed.status?.events.at(-1)?.message).toContain("handler returned number");
    });

    it("tasks of a Wasm-shim application stay Pending, except on sqlite (it forgets the shim)", async () => {
      await h.client.registerApplication({ name: "wasm", application: { shim: Shim.Wasm } });
      await session("w", "wasm");
      await session("host", "app");
      await h.client.createTask({ task: { sessionId: "w" } });
      // A later Host task completes, so the scheduler has run past the Wasm one.
      await h.client.createTask({ task: { sessionId: "host" } });
      await waitForTask(h.client, "host", "1");
      if (storage === "sqlite") {
        expect(stateOf(await waitForTask(h.client, "w", "1"))).toBe(TaskState.Succeed);
      } else {
        expect(stateOf(await h.client.getTask({ sessionId: "w", taskId: "1" }))).toBe(
          TaskState.Pending,
        );
      }
    });
  });

  describe("events", () => {
    it("GetTask returns 0 on create, 1 on Running, 2 on Succeed, in real milliseconds", async () => {
      const before = BigInt(Date.now());
      await session("ev");
      await h.client.createTask({ task: { sessionId: "ev" } });
      const done = await waitForTask(h.client, "ev", "1");
      const events = done.status?.events ?? [];
      expect(events.map(({ code, message }) => ({ code, message }))).toEqual([
        CREATED,
        RUNNING,
        SUCCEEDED,
      ]);
      for (const event of events) expect(event.creationTime >= before).toBe(true);
    });

    it("a failed task's last event has code 3 and the handler's message", async () => {
      h.emulator.serve("app", ({ input }) => {
        throw new Error(text(input) ?? "");
      });
      await session("f");
      await h.client.createTask({ task: { sessionId: "f", input: bytes("division by zero") } });
      await h.client.createTask({ task: { sessionId: "f" } });
      const failed = await waitForTask(h.client, "f", "1");
      expect(stateOf(failed)).toBe(TaskState.Failed);
      expect(failed.status?.events.map((e) => e.code)).toEqual([0, 1, 3]);
      expect(failed.status?.events.at(-1)?.message).toBe("division by zero");
      // No message from the instance: Flame's own words.
      const silent = await waitForTask(h.client, "f", "2");
      expect(silent.status?.events.at(-1)).toMatchObject({
        code: 3,
        message: "Task failed with state <Failed>",
      });
      expect((await h.client.getSession({ sessionId: "f" })).status?.failed).toBe(1 + 1);
    });

    it("CreateTask replies carry no events", async () => {
      await session("c");
      const created = await h.client.createTask({ task: { sessionId: "c" } });
      expect(created.status?.events).toEqual([]);
    });

    it("WatchTask and ListTask carry none, or on none the last GetTask's (stale)", async () => {
      const release = gate();
      h.emulator.serve("app", () => release.opened.then(() => "out"));
      await session("w");
      await h.client.createTask({ task: { sessionId: "w" } });
      await waitFor(async () => (await h.client.getSession({ sessionId: "w" })).status?.running);
      // GetTask while Running writes [created, running] onto the task record.
      const running = await h.client.getTask({ sessionId: "w", taskId: "1" });
      expect(running.status?.events.map((e) => e.code)).toEqual([0, 1]);
      const watching = collect(h.client.watchTask({ sessionId: "w", taskId: "1" }));
      await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
      release.open();
      const [terminal] = await watching;
      expect(stateOf(terminal as never)).toBe(TaskState.Succeed);
      const listed = await collect(h.client.listTask({ sessionId: "w" }));
      const stale = storage === "none" ? [0, 1] : [];
      expect(terminal?.status?.events.map((e) => e.code)).toEqual(stale);
      expect(listed[0]?.status?.events.map((e) => e.code)).toEqual(stale);
      // GetTask always has them all.
      const got = await h.client.getTask({ sessionId: "w", taskId: "1" });
      expect(got.status?.events.map((e) => e.code)).toEqual([0, 1, 2]);
    });
  });

  describe("flmping", () => {
    it("outputs Flame's message, SIZE as the plain byte count", async () => {
      await session("p", "flmping");
      await h.client.createTask({ task: { sessionId: "p" } });
      await h.client.createTask({
        task: { sessionId: "p", input: bytes(JSON.stringify({ duration: 20, memory: 1_048_576 })) },
      });
      const plain = await waitForTask(h.client, "p", "1");
      expect(JSON.parse(text(plain.spec?.output) ?? "")).toEqual({
        message: expect.stringMatching(
          /^Completed on <emu-node> in <\d+> milliseconds with <0> memory$/,
        ),
      });
      const held = await waitForTask(h.client, "p", "2");
      const { message } = JSON.parse(text(held.spec?.output) ?? "") as { message: string };
      expect(message).toMatch(
        /^Completed on <emu-node> in <(\d+)> milliseconds with <1048576> memory$/,
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

    it("a non-numeric task id is INVALID_ARGUMENT `invalid task id`", async () => {
      await session("n");
      const error = await expectCode(
        collect(h.client.watchTask({ sessionId: "n", taskId: "one" })),
        Code.InvalidArgument,
      );
      expect(error.rawMessage).toBe("invalid task id");
    });

    it("sees Cancelled when the session is closed, with no cancel event", async () => {
      h.emulator.pause();
      await session("c");
      await h.client.createTask({ task: { sessionId: "c" } });
      const watching = collect(h.client.watchTask({ sessionId: "c", taskId: "1" }));
      await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
      await h.client.closeSession({ sessionId: "c" });
      const all = await watching;
      expect(all.map(stateOf)).toEqual([TaskState.Cancelled]);
      expect(all[0]?.status?.events).toEqual([]);
      const got = await h.client.getTask({ sessionId: "c", taskId: "1" });
      expect(got.status?.events.map((e) => e.code)).toEqual([0]);
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
      const byId = tasks.sort((a, b) => Number(a.metadata?.id) - Number(b.metadata?.id));
      expect(byId.map((t) => t.metadata?.id)).toEqual(["1", "2", "3", "4", "5"]);
      expect(byId.every((t) => stateOf(t) === TaskState.Pending)).toBe(true);
      expect(byId.map((t) => text(t.spec?.input))).toEqual(["0", "1", "2", "3", "4"]);
      h.emulator.resume();
      await waitForTask(h.client, "l", "5");
    });

    it("an empty session streams nothing; an unknown one is NOT_FOUND with the bare id", async () => {
      await session("empty");
      expect(await collect(h.client.listTask({ sessionId: "empty" }))).toEqual([]);
      const error = await expectCode(
        collect(h.client.listTask({ sessionId: "ghost" })),
        Code.NotFound,
      );
      expect(error.rawMessage).toBe("ghost");
    });
  });
});

/** CreateTask's refusals per engine (flame-as-deployed.md §3). */
const CREATE_TASK_ANSWERS = {
  sqlite: {
    unknown: [
      Code.Internal,
      "error returned from database: (code: 1299) NOT NULL constraint failed: tasks.ssn_id",
    ],
    closed: [
      Code.Internal,
      "error returned from database: (code: 1299) NOT NULL constraint failed: tasks.ssn_id",
    ],
  },
  fs: {
    unknown: [Code.NotFound, "Session ghost not found: No such file or directory (os error 2)"],
    closed: [Code.InvalidArgument, "Cannot create task in closed session"],
  },
  none: { unknown: [Code.NotFound, "ghost"], closed: undefined },
} as const;

describe.each(EMULATOR_STORAGES)("CreateTask answers particular to %s", (storage) => {
  const answers = CREATE_TASK_ANSWERS[storage];
  const h = useHarness({ storage });

  it("on an unknown session", async () => {
    const error = await expectCode(
      h.client.createTask({ task: { sessionId: "ghost" } }),
      answers.unknown[0],
    );
    expect(error.rawMessage).toBe(answers.unknown[1]);
  });

  it("on a closed session", async () => {
    await h.client.createSession({ sessionId: "c", session: { application: "flmping" } });
    await h.client.closeSession({ sessionId: "c" });
    const creating = h.client.createTask({ task: { sessionId: "c" } });
    if (answers.closed === undefined) {
      // none adds it, Pending for ever: nothing runs a closed session's tasks.
      expect(stateOf(await creating)).toBe(TaskState.Pending);
      await h.client.listSession({});
      expect(stateOf(await h.client.getTask({ sessionId: "c", taskId: "1" }))).toBe(
        TaskState.Pending,
      );
      // Closing again cancels it.
      expect((await h.client.closeSession({ sessionId: "c" })).status?.cancelled).toBe(1);
      return;
    }
    const error = await expectCode(creating, answers.closed[0]);
    expect(error.rawMessage).toBe(answers.closed[1]);
  });
});
