import { Code } from "@connectrpc/connect";
import { SessionState, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  bytes,
  expectCode,
  gate,
  type Harness,
  startHarness,
  waitFor,
  waitForTask,
} from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());
beforeEach(() => {
  h.emulator.reset();
  h.emulator.unserve("slow");
});

const GiB = 1024n * 1024n * 1024n;

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
    const created = session.status?.creationTime ?? 0n;
    expect(created >= before && created <= BigInt(Date.now())).toBe(true);
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

  it("a missing spec is INVALID_ARGUMENT", async () => {
    await expectCode(h.client.createSession({ sessionId: "s" }), Code.InvalidArgument);
  });

  it("an unknown application or a duplicate id is INTERNAL", async () => {
    await expectCode(
      h.client.createSession({ sessionId: "s", session: { application: "nope" } }),
      Code.Internal,
      "nope",
    );
    await h.client.createSession({ sessionId: "dup", session: { application: "flmping" } });
    await expectCode(
      h.client.createSession({ sessionId: "dup", session: { application: "flmping" } }),
      Code.Internal,
      "dup",
    );
  });

  it("GetSession on an unknown id is NOT_FOUND", async () => {
    await expectCode(h.client.getSession({ sessionId: "ghost" }), Code.NotFound, "not found");
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

  it("without a spec the session must exist", async () => {
    await expectCode(h.client.openSession({ sessionId: "nope" }), Code.NotFound, "not found");
    await h.client.createSession({ sessionId: "s", session: spec });
    const opened = await h.client.openSession({ sessionId: "s" });
    expect(opened.metadata?.id).toBe("s");
  });

  it("with a spec it creates a missing session, then opens it when the spec matches", async () => {
    const created = await h.client.openSession({ sessionId: "os", session: spec });
    expect(created.status?.state).toBe(SessionState.Open);
    const again = await h.client.openSession({
      sessionId: "os",
      // common_data is not compared.
      session: { ...spec, commonData: bytes("other") },
    });
    expect(again.metadata?.id).toBe("os");
    expect((await h.client.listSession({})).sessions).toHaveLength(1);
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
    ["application", { application: "flmexec" }, "expected flmping, got flmexec"],
    ["resreq", { resreq: { cpu: 4n, memory: GiB, gpu: 0 } }, "expected cpu=1,memory=1073741824"],
    ["min_instances", { minInstances: 1 }, "expected 0, got 1"],
    ["max_instances", { maxInstances: undefined }, "expected Some(2), got None"],
    ["priority", { priority: 9 }, "expected 1, got 9"],
  ])("a different %s is INVALID_ARGUMENT naming it", async (field, change, detail) => {
    await h.client.createSession({ sessionId: "m", session: spec });
    const error = await expectCode(
      h.client.openSession({ sessionId: "m", session: { ...spec, ...change } }),
      Code.InvalidArgument,
      `session m spec mismatch: ${field} differs (`,
    );
    expect(error.rawMessage).toContain(detail);
  });

  it("reports the first difference in Flame's order", async () => {
    await h.client.createSession({ sessionId: "o", session: spec });
    await expectCode(
      h.client.openSession({ sessionId: "o", session: { ...spec, priority: 7, minInstances: 3 } }),
      Code.InvalidArgument,
      "min_instances differs",
    );
  });

  it("a closed session is INVALID_ARGUMENT, not open", async () => {
    await h.client.createSession({ sessionId: "c", session: spec });
    await h.client.closeSession({ sessionId: "c" });
    await expectCode(
      h.client.openSession({ sessionId: "c" }),
      Code.InvalidArgument,
      "c is not open",
    );
    await expectCode(
      h.client.openSession({ sessionId: "c", session: spec }),
      Code.InvalidArgument,
      "session c is not open",
    );
  });
});

describe("CloseSession", () => {
  it("cancels pending tasks, sets completion_time and is idempotent", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "c", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "c" } });
    await h.client.createTask({ task: { sessionId: "c" } });
    const closed = await h.client.closeSession({ sessionId: "c" });
    expect(closed.status?.state).toBe(SessionState.Closed);
    expect(closed.status?.pending).toBe(0);
    expect(closed.status?.cancelled).toBe(2);
    const completed = closed.status?.completionTime;
    expect(completed).toBeGreaterThanOrEqual(closed.status?.creationTime ?? 0n);
    const task = await h.client.getTask({ sessionId: "c", taskId: "1" });
    expect(task.status?.state).toBe(TaskState.Cancelled);
    expect(task.status?.completionTime).toBeDefined();

    const again = await h.client.closeSession({ sessionId: "c" });
    expect(again.status?.state).toBe(SessionState.Closed);
    expect(again.status?.completionTime).toBe(completed);
    h.emulator.resume();
    // Cancelled tasks never run after resume.
    expect((await h.client.getTask({ sessionId: "c", taskId: "2" })).status?.state).toBe(
      TaskState.Cancelled,
    );
  });

  it("refuses while tasks run, with INTERNAL (a storage error in Flame)", async () => {
    const release = gate();
    h.emulator.serve("slow", () => release.opened.then(() => "done"));
    await h.client.registerApplication({ name: "slow", application: {} });
    await h.client.createSession({ sessionId: "r", session: { application: "slow" } });
    await h.client.createTask({ task: { sessionId: "r" } });
    await waitFor(
      async () => (await h.client.getSession({ sessionId: "r" })).status?.running === 1,
    );
    await expectCode(
      h.client.closeSession({ sessionId: "r" }),
      Code.Internal,
      "Cannot close session with running tasks",
    );
    // Refused: still open, the task still running.
    const after = await h.client.getSession({ sessionId: "r" });
    expect(after.status?.state).toBe(SessionState.Open);
    expect(after.status?.running).toBe(1);
    release.open();
    await waitForTask(h.client, "r", "1");
    expect((await h.client.closeSession({ sessionId: "r" })).status?.state).toBe(
      SessionState.Closed,
    );
  });

  it("an unknown session is NOT_FOUND", async () => {
    await expectCode(h.client.closeSession({ sessionId: "ghost" }), Code.NotFound);
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
  it("removes a closed session and returns its last state", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "d", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "d" } });
    await h.client.closeSession({ sessionId: "d" });
    const deleted = await h.client.deleteSession({ sessionId: "d" });
    expect(deleted.metadata?.id).toBe("d");
    expect(deleted.status?.state).toBe(SessionState.Closed);
    expect(deleted.status?.cancelled).toBe(1);
    await expectCode(h.client.getSession({ sessionId: "d" }), Code.NotFound);
    await expectCode(h.client.getTask({ sessionId: "d", taskId: "1" }), Code.NotFound);
    // The id can be used again.
    await h.client.createSession({ sessionId: "d", session: { application: "flmping" } });
  });

  it("an unknown session is NOT_FOUND", async () => {
    await expectCode(h.client.deleteSession({ sessionId: "ghost" }), Code.NotFound);
  });

  it("refuses an open session with INTERNAL and leaves it as it was", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "o", session: { application: "flmping" } });
    await h.client.createTask({ task: { sessionId: "o" } });
    await expectCode(
      h.client.deleteSession({ sessionId: "o" }),
      Code.Internal,
      "Cannot delete open session",
    );
    const kept = await h.client.getSession({ sessionId: "o" });
    expect(kept.status?.state).toBe(SessionState.Open);
    expect(kept.status?.pending).toBe(1);
    expect((await h.client.getTask({ sessionId: "o", taskId: "1" })).status?.state).toBe(
      TaskState.Pending,
    );
  });

  it("refuses an open session with a running task, with INTERNAL", async () => {
    const release = gate();
    h.emulator.serve("slow", () => release.opened.then(() => undefined));
    await h.client.registerApplication({ name: "slow", application: {} });
    await h.client.createSession({ sessionId: "r", session: { application: "slow" } });
    await h.client.createTask({ task: { sessionId: "r" } });
    await waitFor(
      async () => (await h.client.getSession({ sessionId: "r" })).status?.running === 1,
    );
    await expectCode(
      h.client.deleteSession({ sessionId: "r" }),
      Code.Internal,
      "Cannot delete open session",
    );
    release.open();
    await waitForTask(h.client, "r", "1");
    await h.client.closeSession({ sessionId: "r" });
    await h.client.deleteSession({ sessionId: "r" });
    await expectCode(h.client.getSession({ sessionId: "r" }), Code.NotFound);
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
