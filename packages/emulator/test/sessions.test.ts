import { Code } from "@connectrpc/connect";
import { SessionState, TaskState } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { EMULATOR_STORAGES, type EmulatorStorage } from "../src/index.js";
import {
  bytes,
  expectCode,
  expectStamp,
  gate,
  startHarness,
  useHarness,
  waitFor,
  waitForTask,
} from "./helpers.js";

const GiB = 1024n * 1024n * 1024n;

describe.each(EMULATOR_STORAGES)("sessions on %s", (storage: EmulatorStorage) => {
  const h = useHarness({ storage }, (h) => h.emulator.unserve("slow"));

  describe("CreateSession", () => {
    it("creates an open session with defaults applied", async () => {
      const before = BigInt(Date.now());
      const session = await h.client.createSession({
        sessionId: "s1",
        session: { application: "flmping", batchSize: 8, commonData: bytes("cd") },
      });
      expect(session.metadata?.id).toBe("s1");
      expect(session.spec?.application).toBe("flmping");
      expect(session.spec?.batchSize).toBe(1);
      expect(session.spec?.resreq).toMatchObject({ cpu: 1n, memory: GiB, gpu: 0 });
      expect(session.spec?.maxInstances).toBeUndefined();
      expect(session.spec?.commonData).toEqual(bytes("cd"));
      expect(session.status?.state).toBe(SessionState.Open);
      expect(session.status?.events).toEqual([]);
      expectStamp(storage, session.status?.creationTime, before);
      expect(session.status?.completionTime).toBeUndefined();
    });

    it("keeps a given resreq, max_instances and priority", async () => {
      const session = await h.client.createSession({
        sessionId: "s2",
        session: {
          application: "flmping",
          resreq: { cpu: 2n, memory: 4n * GiB, gpu: 1 },
          maxInstances: 3,
          minInstances: 1,
          priority: 5,
        },
      });
      expect(session.spec?.resreq).toMatchObject({ cpu: 2n, memory: 4n * GiB, gpu: 1 });
      expect(session.spec?.maxInstances).toBe(3);
      expect(session.spec?.minInstances).toBe(1);
      expect(session.spec?.priority).toBe(5);
    });

    it("accepts an empty session id", async () => {
      const session = await h.client.createSession({
        sessionId: "",
        session: { application: "flmping" },
      });
      expect(session.metadata?.id).toBe("");
      expect((await h.client.getSession({ sessionId: "" })).metadata?.id).toBe("");
      await h.client.createTask({ task: { sessionId: "" } });
      expect((await waitForTask(h.client, "", "1")).status?.state).toBe(TaskState.Succeed);
    });

    it("a missing spec is INVALID_ARGUMENT `session spec`", async () => {
      await expectCode(
        h.client.createSession({ sessionId: "s" }),
        Code.InvalidArgument,
        "session spec",
      );
    });

    it("GetSession on an unknown id is NOT_FOUND with the bare id", async () => {
      const error = await expectCode(h.client.getSession({ sessionId: "ghost" }), Code.NotFound);
      expect(error.rawMessage).toBe("ghost");
    });
  });

  describe("OpenSession", () => {
    const spec = {
      application: "flmping",
      resreq: { cpu: 1n, memory: GiB, gpu: 0 },
      minInstances: 0,
      maxInstances: 2,
      priority: 1,
    };

    it("opens an existing open session, and creates a missing one when given a spec", async () => {
      await h.client.createSession({ sessionId: "s", session: spec });
      expect((await h.client.openSession({ sessionId: "s" })).metadata?.id).toBe("s");
      const created = await h.client.openSession({ sessionId: "os", session: spec });
      expect(created.status?.state).toBe(SessionState.Open);
      const again = await h.client.openSession({
        sessionId: "os",
        // common_data is not compared.
        session: { ...spec, commonData: bytes("other") },
      });
      expect(again.metadata?.id).toBe("os");
      expect((await h.client.listSession({})).sessions).toHaveLength(2);
    });

    it("applies the default resreq before comparing", async () => {
      await h.client.createSession({ sessionId: "d", session: { application: "flmping" } });
      const opened = await h.client.openSession({
        sessionId: "d",
        session: { application: "flmping", resreq: { cpu: 1n, memory: GiB, gpu: 0 } },
      });
      expect(opened.metadata?.id).toBe("d");
    });

    it.each([
      ["application", { application: "flmexec" }, "(expected 'flmping', got 'flmexec')"],
      [
        "resreq",
        { resreq: { cpu: 4n, memory: GiB, gpu: 0 } },
        "(expected Some(ResourceRequirement { cpu: 1, memory: 1073741824, gpu: 0 }), got Some(ResourceRequirement { cpu: 4, memory: 1073741824, gpu: 0 }))",
      ],
      ["min_instances", { minInstances: 1 }, "(expected 0, got 1)"],
      ["max_instances", { maxInstances: undefined }, "(expected Some(2), got None)"],
      ["priority", { priority: 9 }, "(expected 1, got 9)"],
    ])("a different %s is INVALID_ARGUMENT naming it", async (field, change, detail) => {
      await h.client.createSession({ sessionId: "m", session: spec });
      const error = await expectCode(
        h.client.openSession({ sessionId: "m", session: { ...spec, ...change } }),
        Code.InvalidArgument,
      );
      expect(error.rawMessage).toBe(`session <m> spec mismatch: ${field} differs ${detail}`);
    });

    it("reports the first difference in Flame's order", async () => {
      await h.client.createSession({ sessionId: "o", session: spec });
      await expectCode(
        h.client.openSession({
          sessionId: "o",
          session: { ...spec, priority: 7, minInstances: 3 },
        }),
        Code.InvalidArgument,
        "min_instances differs",
      );
    });
  });

  describe("CloseSession", () => {
    it("cancels pending tasks with no event, sets completion_time", async () => {
      h.emulator.pause();
      await h.client.createSession({ sessionId: "c", session: { application: "flmping" } });
      await h.client.createTask({ task: { sessionId: "c" } });
      await h.client.createTask({ task: { sessionId: "c" } });
      const before = BigInt(Date.now());
      const closed = await h.client.closeSession({ sessionId: "c" });
      expect(closed.status?.state).toBe(SessionState.Closed);
      expect(closed.status?.pending).toBe(0);
      expect(closed.status?.cancelled).toBe(2);
      expect(closed.status?.events).toEqual([]);
      expectStamp(storage, closed.status?.completionTime, before);
      const task = await h.client.getTask({ sessionId: "c", taskId: "1" });
      expect(task.status?.state).toBe(TaskState.Cancelled);
      // A cancelled task's completion time is the session's.
      expect(task.status?.completionTime).toBe(closed.status?.completionTime);
      // Only the creation event: cancelling records none.
      expect(task.status?.events.map((e) => e.code)).toEqual([TaskState.Pending]);
      h.emulator.resume();
      // Cancelled tasks never run after resume.
      expect((await h.client.getTask({ sessionId: "c", taskId: "2" })).status?.state).toBe(
        TaskState.Cancelled,
      );
    });

    it("closing again succeeds and moves completion_time to now", async () => {
      await h.client.createSession({ sessionId: "c", session: { application: "flmping" } });
      const first = (await h.client.closeSession({ sessionId: "c" })).status?.completionTime ?? 0n;
      // Wait until the stored clock (seconds on sqlite and fs) has moved on.
      const step = storage === "none" ? 1n : 1000n;
      await waitFor(() => BigInt(Date.now()) >= first + step, "the clock to move on");
      const again = await h.client.closeSession({ sessionId: "c" });
      expect(again.status?.state).toBe(SessionState.Closed);
      expect((again.status?.completionTime ?? 0n) > first).toBe(true);
    });

    it("refuses while tasks run, with INTERNAL", async () => {
      const release = gate();
      h.emulator.serve("slow", () => release.opened.then(() => "done"));
      await h.client.registerApplication({ name: "slow", application: {} });
      await h.client.createSession({ sessionId: "r", session: { application: "slow" } });
      await h.client.createTask({ task: { sessionId: "r" } });
      await waitFor(
        async () => (await h.client.getSession({ sessionId: "r" })).status?.running === 1,
      );
      const error = await expectCode(h.client.closeSession({ sessionId: "r" }), Code.Internal);
      expect(error.rawMessage).toBe("Cannot close session with running tasks");
      const after = await h.client.getSession({ sessionId: "r" });
      expect(after.status?.state).toBe(SessionState.Open);
      expect(after.status?.running).toBe(1);
      release.open();
      await waitForTask(h.client, "r", "1");
      expect((await h.client.closeSession({ sessionId: "r" })).status?.state).toBe(
        SessionState.Closed,
      );
    });

    it("an unknown session is NOT_FOUND `session <id>`", async () => {
      const error = await expectCode(h.client.closeSession({ sessionId: "ghost" }), Code.NotFound);
      expect(error.rawMessage).toBe("session <ghost>");
    });

    it("ListSession includes closed sessions", async () => {
      await h.client.createSession({ sessionId: "a", session: { application: "flmping" } });
      await h.client.createSession({ sessionId: "b", session: { application: "flmping" } });
      await h.client.closeSession({ sessionId: "a" });
      const { sessions } = await h.client.listSession({});
      const states = Object.fromEntries(sessions.map((s) => [s.metadata?.id, s.status?.state]));
      expect(states).toEqual({ a: SessionState.Closed, b: SessionState.Open });
    });
  });

  describe("DeleteSession", () => {
    it("removes a closed session whose tasks all finished, and the id can be reused", async () => {
      await h.client.createSession({ sessionId: "d", session: { application: "flmping" } });
      await h.client.createTask({ task: { sessionId: "d" } });
      await waitForTask(h.client, "d", "1");
      await h.client.closeSession({ sessionId: "d" });
      const deleted = await h.client.deleteSession({ sessionId: "d" });
      expect(deleted.metadata?.id).toBe("d");
      expect(deleted.status?.state).toBe(SessionState.Closed);
      expect(deleted.status?.succeed).toBe(1);
      await expectCode(h.client.getSession({ sessionId: "d" }), Code.NotFound);
      await expectCode(h.client.getTask({ sessionId: "d", taskId: "1" }), Code.NotFound);
      await h.client.createSession({ sessionId: "d", session: { application: "flmping" } });
    });

    it("an unknown session is NOT_FOUND `session <id>`", async () => {
      const error = await expectCode(h.client.deleteSession({ sessionId: "ghost" }), Code.NotFound);
      expect(error.rawMessage).toBe("session <ghost>");
    });
  });

  describe("status counters", () => {
    it("track pending, running, succeed, failed and cancelled", async () => {
      const release = gate();
      h.emulator.serve("slow", async ({ input }) => {
        await release.opened;
        if (input && new TextDecoder().decode(input) === "fail") throw new Error("boom");
        return "ok";
      });
      await h.client.registerApplication({ name: "slow", application: {} });
      await h.client.createSession({
        sessionId: "n",
        session: { application: "slow", maxInstances: 2 },
      });
      await h.client.createTask({ task: { sessionId: "n", input: bytes("ok") } });
      await h.client.createTask({ task: { sessionId: "n", input: bytes("fail") } });
      await h.client.createTask({ task: { sessionId: "n", input: bytes("ok") } });
      const during = await waitFor(async () => {
        const s = await h.client.getSession({ sessionId: "n" });
        return s.status?.running === 2 ? s : undefined;
      });
      expect(during.status?.pending).toBe(1);
      release.open();
      await waitForTask(h.client, "n", "3");
      const after = await h.client.getSession({ sessionId: "n" });
      expect(after.status).toMatchObject({ pending: 0, running: 0, succeed: 2, failed: 1 });

      h.emulator.pause();
      await h.client.createTask({ task: { sessionId: "n" } });
      expect((await h.client.getSession({ sessionId: "n" })).status?.pending).toBe(1);
      const closed = await h.client.closeSession({ sessionId: "n" });
      expect(closed.status).toMatchObject({ pending: 0, succeed: 2, failed: 1, cancelled: 1 });
    });
  });
});

/** Each engine's own answers for sessions (flame-as-deployed.md §2, §6.2). */
const SESSION_ANSWERS = {
  sqlite: {
    unknownApplication: [
      Code.Internal,
      "error returned from database: (code: 1299) NOT NULL constraint failed: sessions.application",
    ],
    duplicate: [
      Code.Internal,
      "error returned from database: (code: 1555) UNIQUE constraint failed: sessions.id",
    ],
    openUnknown: [Code.NotFound, "session <ghost> not found"],
    openClosed: [Code.InvalidArgument, "session <c> is not open"],
  },
  fs: {
    unknownApplication: [
      Code.NotFound,
      "Application nope not found: No such file or directory (os error 2)",
    ],
    duplicate: [Code.AlreadyExists, "Session 'dup' already exists"],
    openUnknown: [Code.NotFound, "Session ghost not found"],
    openClosed: [Code.InvalidArgument, "Session c is not open"],
  },
  none: {
    unknownApplication: undefined,
    duplicate: undefined,
    openUnknown: [Code.NotFound, "session <ghost>"],
    openClosed: [Code.NotFound, "session <c>"],
  },
} as const;

describe.each(EMULATOR_STORAGES)("session answers particular to %s", (storage) => {
  const answers = SESSION_ANSWERS[storage];
  const h = useHarness({ storage });

  const expectAnswer = async (
    call: Promise<unknown>,
    answer: readonly [Code, string] | undefined,
  ) => {
    if (answer === undefined) return call;
    const error = await expectCode(call, answer[0]);
    expect(error.rawMessage).toBe(answer[1]);
  };

  it("CreateSession with an unknown application", async () => {
    await expectAnswer(
      h.client.createSession({ sessionId: "s", session: { application: "nope" } }),
      answers.unknownApplication,
    );
    if (answers.unknownApplication === undefined) {
      // none: the session exists, dangling; its tasks can never run.
      expect((await h.client.getSession({ sessionId: "s" })).spec?.application).toBe("nope");
    }
  });

  it("CreateSession with an id in use", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "dup", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "dup" } });
    await expectAnswer(
      h.client.createSession({ sessionId: "dup", session: { application: "flmexec" } }),
      answers.duplicate,
    );
    const kept = await h.client.getSession({ sessionId: "dup" });
    if (answers.duplicate === undefined) {
      // none replaces the session: its tasks and task numbering are gone.
      expect(kept.spec?.application).toBe("flmexec");
      expect(kept.status?.pending).toBe(0);
      expect((await h.client.createTask({ task: { sessionId: "dup" } })).metadata?.id).toBe("1");
    } else {
      expect(kept.spec?.application).toBe("flmping");
      expect(kept.status?.pending).toBe(1);
    }
  });

  it("OpenSession of an unknown id without a spec", async () => {
    await expectAnswer(h.client.openSession({ sessionId: "ghost" }), answers.openUnknown);
  });

  it("OpenSession of a closed session, without and with a spec", async () => {
    await h.client.createSession({ sessionId: "c", session: { application: "flmping" } });
    await h.client.closeSession({ sessionId: "c" });
    await expectAnswer(h.client.openSession({ sessionId: "c" }), answers.openClosed);
    const withSpec = h.client.openSession({
      sessionId: "c",
      session: { application: "flmping" },
    });
    if (storage === "none") {
      // none creates a new session over the closed one.
      expect((await withSpec).status?.state).toBe(SessionState.Open);
    } else {
      await expectAnswer(withSpec, answers.openClosed);
    }
  });
});

describe.each(EMULATOR_STORAGES)("DeleteSession on %s", (storage) => {
  const h = useHarness({ storage }, (h) => h.emulator.unserve("slow"));

  it("an open session with a pending task", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "o", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "o" } });
    const deleting = h.client.deleteSession({ sessionId: "o" });
    if (storage === "none") {
      expect((await deleting).metadata?.id).toBe("o");
      await expectCode(h.client.getSession({ sessionId: "o" }), Code.NotFound);
      return;
    }
    const error = await expectCode(deleting, Code.Internal);
    expect(error.rawMessage).toBe(
      storage === "sqlite" ? "1 open tasks in the session" : "Cannot delete open session",
    );
    const kept = await h.client.getSession({ sessionId: "o" });
    expect(kept.status).toMatchObject({ state: SessionState.Open, pending: 1 });
  });

  it("an open session with no tasks", async () => {
    await h.client.createSession({ sessionId: "e", session: { application: "flmping" } });
    const deleting = h.client.deleteSession({ sessionId: "e" });
    if (storage === "none") {
      expect((await deleting).metadata?.id).toBe("e");
      return;
    }
    const error = await expectCode(deleting, Code.Internal);
    expect(error.rawMessage).toBe(
      storage === "sqlite"
        ? "failed to close session: no rows returned by a query that expected to return at least one row"
        : "Cannot delete open session",
    );
  });

  it("an open session with a running task", async () => {
    const release = gate();
    h.emulator.serve("slow", () => release.opened.then(() => "late"));
    await h.client.registerApplication({ name: "slow", application: {} });
    await h.client.createSession({ sessionId: "r", session: { application: "slow" } });
    await h.client.createTask({ task: { sessionId: "r" } });
    await waitFor(
      async () => (await h.client.getSession({ sessionId: "r" })).status?.running === 1,
    );
    const deleting = h.client.deleteSession({ sessionId: "r" });
    if (storage === "none") {
      // Deleted even while it runs; the task's end is reported to nobody.
      expect((await deleting).status?.running).toBe(1);
      release.open();
      await h.client.createSession({ sessionId: "r2", session: { application: "slow" } });
      await h.client.createTask({ task: { sessionId: "r2" } });
      // The executor came back: the next session's task runs.
      expect((await waitForTask(h.client, "r2", "1")).status?.state).toBe(TaskState.Succeed);
      return;
    }
    await expectCode(
      deleting,
      Code.Internal,
      storage === "sqlite" ? "1 open tasks in the session" : "Cannot delete open session",
    );
    release.open();
    await waitForTask(h.client, "r", "1");
  });

  it("a closed session with a cancelled task", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "x", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "x" } });
    await h.client.closeSession({ sessionId: "x" });
    const deleting = h.client.deleteSession({ sessionId: "x" });
    if (storage === "sqlite") {
      // sqlite counts Cancelled as open: such a session can never be deleted.
      await expectCode(deleting, Code.Internal, "1 open tasks in the session");
      expect((await h.client.getSession({ sessionId: "x" })).status?.cancelled).toBe(1);
    } else {
      expect((await deleting).status?.cancelled).toBe(1);
      await expectCode(h.client.getSession({ sessionId: "x" }), Code.NotFound);
    }
  });
});

describe("defaultResreq (Flame's cluster.resreq)", () => {
  it("is the resreq of a session that gives none, and OpenSession compares with it", async () => {
    const twoGiB = { cpu: 1n, memory: 2n * GiB, gpu: 0 };
    const h = await startHarness({ defaultResreq: twoGiB });
    try {
      const created = await h.client.createSession({
        sessionId: "r",
        session: { application: "flmping" },
      });
      expect(created.spec?.resreq).toMatchObject(twoGiB);
      // A spec without resreq matches; one with Flame's built-in 1 GiB does not.
      await h.client.openSession({ sessionId: "r", session: { application: "flmping" } });
      await expectCode(
        h.client.openSession({
          sessionId: "r",
          session: { application: "flmping", resreq: { cpu: 1n, memory: GiB, gpu: 0 } },
        }),
        Code.InvalidArgument,
        "resreq differs (expected Some(ResourceRequirement { cpu: 1, memory: 2147483648, gpu: 0 })",
      );
    } finally {
      await h.emulator.close();
    }
  });
});
