import { SessionState, TaskState } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { SESSION_BIND_FAILED, SESSION_RETRY_LIMIT_REACHED } from "../src/index.js";
import { startHarness, stateOf, useHarness, waitForTask } from "./helpers.js";

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
const bindFailure = (node: string, code: number, detail: string) =>
  new RegExp(
    `^Executor <${UUID}> on node <${node}> failed to bind session with return_code <${code}>: ${detail.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`,
  );
const LIMIT_REACHED = (n: number, m: number) =>
  `Session retry limit reached after ${n}/${m} failed attempts; new executor assignment is paused for this session; existing executors are unchanged.`;

describe("applications that fail to start", () => {
  const h = useHarness({ hostname: "node-1", failToStart: { broken: {} } }, async (h) => {
    h.emulator.allowStart("other");
    await h.client.registerApplication({ name: "broken", application: {} });
    await h.client.registerApplication({ name: "other", application: {} });
  });

  it("keep their tasks Pending; GetSession and ListSession say why with events 1001 and 1002", async () => {
    const created = await h.client.createSession({
      sessionId: "b",
      session: { application: "broken" },
    });
    expect(created.status?.events).toEqual([]);
    // No task, no binding: no events yet.
    expect((await h.client.getSession({ sessionId: "b" })).status?.events).toEqual([]);
    await h.client.createTask({ task: { sessionId: "b" } });
    // A task of a healthy application runs meanwhile.
    await h.client.createSession({ sessionId: "ok", session: { application: "flmexec" } });
    await h.client.createTask({ task: { sessionId: "ok" } });
    expect(stateOf(await waitForTask(h.client, "ok", "1"))).toBe(TaskState.Succeed);

    const session = await h.client.getSession({ sessionId: "b" });
    const events = session.status?.events ?? [];
    expect(events.map((e) => e.code)).toEqual([
      ...Array(5).fill(SESSION_BIND_FAILED),
      SESSION_RETRY_LIMIT_REACHED,
    ]);
    for (const event of events.slice(0, 5)) {
      expect(event.message).toMatch(
        bindFailure("node-1", 11, "failed to start the application's instance"),
      );
    }
    // Each attempt is a different executor.
    expect(new Set(events.slice(0, 5).map((e) => e.message)).size).toBe(5);
    expect(events[5]?.message).toBe(LIMIT_REACHED(5, 5));
    expect(session.status).toMatchObject({ pending: 1, running: 0 });
    expect(stateOf(await h.client.getTask({ sessionId: "b", taskId: "1" }))).toBe(
      TaskState.Pending,
    );
    const listed = (await h.client.listSession({})).sessions.find((s) => s.metadata?.id === "b");
    expect(listed?.status?.events).toEqual(events);
    // Other session replies carry no events.
    expect((await h.client.openSession({ sessionId: "b" })).status?.events).toEqual([]);
    const closed = await h.client.closeSession({ sessionId: "b" });
    expect(closed.status).toMatchObject({ state: SessionState.Closed, cancelled: 1, events: [] });
  });

  it("failToStart() with a return code and message; allowStart() lets new sessions run", async () => {
    h.emulator.failToStart("other", { returnCode: 12, message: "on_session_enter: boom" });
    await h.client.createSession({ sessionId: "o1", session: { application: "other" } });
    await h.client.createTask({ task: { sessionId: "o1" } });
    const events = (await h.client.getSession({ sessionId: "o1" })).status?.events ?? [];
    expect(events[0]?.message).toMatch(bindFailure("node-1", 12, "on_session_enter: boom"));
    expect(events.at(-1)?.code).toBe(SESSION_RETRY_LIMIT_REACHED);

    h.emulator.allowStart("other");
    await h.client.createSession({ sessionId: "o2", session: { application: "other" } });
    await h.client.createTask({ task: { sessionId: "o2" } });
    expect(stateOf(await waitForTask(h.client, "o2", "1"))).toBe(TaskState.Succeed);
    // Past the retry limit a session stays paused, as in Flame.
    await h.client.createTask({ task: { sessionId: "o1" } });
    await h.client.listSession({});
    const paused = await h.client.getSession({ sessionId: "o1" });
    expect(paused.status).toMatchObject({ pending: 2, running: 0 });
    expect(paused.status?.events).toHaveLength(events.length);
  });

  it("sessionRetryLimit sets the number of attempts", async () => {
    const two = await startHarness({
      hostname: "n",
      sessionRetryLimit: 2,
      failToStart: { flmexec: { message: "exec format error" } },
    });
    try {
      await two.client.createSession({ sessionId: "s", session: { application: "flmexec" } });
      await two.client.createTask({ task: { sessionId: "s" } });
      const events = (await two.client.getSession({ sessionId: "s" })).status?.events ?? [];
      expect(events.map((e) => e.code)).toEqual([1001, 1001, 1002]);
      expect(events[2]?.message).toBe(LIMIT_REACHED(2, 2));
    } finally {
      await two.emulator.close();
    }
  });
});

describe("a none session whose application does not exist", () => {
  it("collects bind failures and its tasks stay Pending", async () => {
    const h = await startHarness({ storage: "none", hostname: "n" });
    try {
      await h.client.createSession({ sessionId: "d", session: { application: "ghost" } });
      await h.client.createTask({ task: { sessionId: "d" } });
      const session = await h.client.getSession({ sessionId: "d" });
      expect(session.status?.events.map((e) => e.code)).toEqual([
        1001, 1001, 1001, 1001, 1001, 1002,
      ]);
      expect(session.status?.events[0]?.message).toMatch(
        bindFailure("n", 11, "application <ghost> not found"),
      );
      expect(stateOf(await h.client.getTask({ sessionId: "d", taskId: "1" }))).toBe(
        TaskState.Pending,
      );
    } finally {
      await h.emulator.close();
    }
  });
});
