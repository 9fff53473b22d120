// An application whose instances cannot start leaves its tasks Pending for
// ever on Flame; only the session's events 1001/1002 (GetSession) say why.
// run(), runAll(), runTask() and watchTask() report it with kind
// "bind-failed" within `bindCheckMs`, instead of waiting silently.
import { FlameError, TaskState } from "@flame-ts/core";
import { lastValueFrom } from "rxjs";
import { describe, expect, it } from "vitest";
import { rejection, unique, useHarness, waitFor } from "./helpers.js";

const h = useHarness({}, { bindCheckMs: 20 });

/** A registered application whose instances fail to start. */
async function brokenApp(message = "exec: /opt/app/bin/serve: not found") {
  const app = unique("broken");
  await h.connection.registerApplication(app, { command: "/opt/app/bin/serve" });
  h.emulator.failToStart(app, { message });
  return app;
}

function expectBindFailed(err: unknown, sessionId: string, detail: string) {
  expect(FlameError.is(err, "bind-failed")).toBe(true);
  const e = err as FlameError;
  expect(e.message).toContain(`session ${sessionId} cannot start its application`);
  // Flame's own words: the last 1001 (with the instance's detail) and the 1002.
  expect(e.serverMessage).toContain("failed to bind session with return_code");
  expect(e.serverMessage).toContain(detail);
  expect(e.serverMessage).toContain("Session retry limit reached");
}

describe("an application that cannot start", () => {
  it("run() rejects with kind bind-failed and Flame's messages", async () => {
    const app = await brokenApp("no such interpreter");
    const s = await h.connection.createSession({ application: app });
    const err = await rejection(s.run(new Uint8Array([1])));
    expectBindFailed(err, s.id, "no such interpreter");
    // The task is still there, Pending: nothing was lost, only the wait ended.
    const [task] = await s.listTasks();
    expect(task?.state).toBe(TaskState.Pending);
  });

  it("every wait on the session fails, and so do waits that come later", async () => {
    const app = await brokenApp();
    const s = await h.connection.createSession({ application: app });
    const both = await Promise.all([rejection(s.run()), rejection(s.run())]);
    for (const err of both) expectBindFailed(err, s.id, "not found");
    expectBindFailed(await rejection(s.run()), s.id, "not found");
    expect((await s.listTasks()).map((t) => TaskState[t.state])).toEqual([
      "Pending",
      "Pending",
      "Pending",
    ]);
  });

  it("invoke() and runTask() reject the same way", async () => {
    const app = await brokenApp();
    const s = await h.connection.createSession({ application: app });
    expectBindFailed(await rejection(s.invoke(new Uint8Array([1]))), s.id, "not found");
    expectBindFailed(await rejection(lastValueFrom(s.runTask())), s.id, "not found");
  });

  it("runAll() rejects the whole run, and reads the session once per check, not once per task", async () => {
    const app = await brokenApp();
    const s = await h.connection.createSession({ application: app });
    const before = h.sent.GetSession ?? 0;
    const err = await rejection(
      s.runAll(Array.from({ length: 20 }, (_, i) => new Uint8Array([i]))),
    );
    expectBindFailed(err, s.id, "not found");
    // 16 tasks were awaited at once; one GetSession found the failure.
    expect((h.sent.GetSession ?? 0) - before).toBe(1);
  });

  it("watchTask errors with kind bind-failed", async () => {
    const app = await brokenApp();
    const s = await h.connection.createSession({ application: app });
    const t = await s.createTask();
    const seen: TaskState[] = [];
    const err = await new Promise<unknown>((resolve) =>
      s.watchTask(t.id).subscribe({
        next: (task) => seen.push(task.state),
        error: resolve,
        complete: () => resolve(new Error("completed")),
      }),
    );
    expectBindFailed(err, s.id, "not found");
    expect(seen).toEqual([TaskState.Pending]);
  });

  it("a task that only waits its turn is not failed: the check finds nothing and looks again", async () => {
    const s = await h.connection.createSession({ application: "flmexec" });
    h.emulator.pause();
    const before = h.sent.GetSession ?? 0;
    const result = s.run(new Uint8Array([7]));
    try {
      await waitFor(() => (h.sent.GetSession ?? 0) >= before + 3, "three looks at the session");
    } finally {
      h.emulator.resume();
    }
    expect((await result).state).toBe(TaskState.Succeed);
  });

  it("bindCheckMs 0 turns the check off: the wait goes on (until its own deadline)", async () => {
    const app = await brokenApp();
    const c = h.connect({ bindCheckMs: 0 });
    const s = await c.createSession({ application: app });
    const before = h.sent.GetSession ?? 0;
    const err = (await rejection(s.run(undefined, { timeoutMs: 300 }))) as FlameError;
    expect(err.kind).toBe("deadline-exceeded");
    expect(h.sent.GetSession ?? 0).toBe(before);
  });
});

describe("a session whose application does not exist (Flame's none engine accepts it)", () => {
  const none = useHarness({ storage: "none" }, { bindCheckMs: 20 });

  it("run() rejects with kind bind-failed", async () => {
    const s = await none.connection.createSession({ application: "no-such-app" });
    expectBindFailed(await rejection(s.run()), s.id, "no-such-app");
  });
});
