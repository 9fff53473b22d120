import { type Task, TaskState } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { EMULATOR_STORAGES, type EmulatorStorage } from "../src/index.js";
import { collect, gate, startHarness, stateOf, text, waitFor, waitForTask } from "./helpers.js";

describe.each(EMULATOR_STORAGES)("loseExecutors() on %s", (storage: EmulatorStorage) => {
  it("aborts running handlers; the tasks are retried silently, or stay Running on none", async () => {
    const h = await startHarness({ storage });
    try {
      const release = gate();
      const aborted: string[] = [];
      let runs = 0;
      h.emulator.serve("flmexec", async ({ signal, taskId }) => {
        runs++;
        signal.addEventListener("abort", () => aborted.push(taskId));
        await release.opened;
        return `run ${runs}`;
      });
      await h.client.createSession({ sessionId: "s", session: { application: "flmexec" } });
      await h.client.createTask({ task: { sessionId: "s" } });
      await waitFor(async () => (await h.client.getSession({ sessionId: "s" })).status?.running);
      const executorsBefore = (await h.client.listExecutor({})).executors.map(
        (e) => e.metadata?.id,
      );
      // A watcher that has already seen Running.
      // (On none it never ends: close() breaks it.)
      const watching = collect(h.client.watchTask({ sessionId: "s", taskId: "1" })).catch(
        (error: unknown) => error,
      );
      await waitFor(() => h.emulator.stats().openStreams === 1, "the watch to open");

      h.emulator.loseExecutors();
      expect(aborted).toEqual(["1"]);

      if (storage === "none") {
        // Flame's none engine cannot retry: the task is Running for ever.
        const task = await h.client.getTask({ sessionId: "s", taskId: "1" });
        expect(stateOf(task)).toBe(TaskState.Running);
        expect((await h.client.getSession({ sessionId: "s" })).status?.running).toBe(1);
        release.open();
        await h.client.listSession({});
        expect(stateOf(await h.client.getTask({ sessionId: "s", taskId: "1" }))).toBe(
          TaskState.Running,
        );
        expect(runs).toBe(1);
        return;
      }
      // Back to Pending, then run again on a new executor.
      await waitFor(() => runs === 2, "the second run");
      const executorsAfter = (await h.client.listExecutor({})).executors.map((e) => e.metadata?.id);
      expect(executorsAfter.some((id) => executorsBefore.includes(id))).toBe(false);
      release.open();
      const done = await waitForTask(h.client, "s", "1");
      expect(text(done.spec?.output)).toBe("run 2");
      // No event for the retry: created, Running twice, Succeed.
      expect(done.status?.events.map((e) => e.code)).toEqual([0, 1, 1, 2]);
      // The watcher had seen Running, so the retry's Running is not sent again.
      expect(((await watching) as Task[]).map(stateOf)).toEqual([TaskState.Succeed]);
      expect((await h.client.getSession({ sessionId: "s" })).status).toMatchObject({
        running: 0,
        pending: 0,
        succeed: 1,
      });
    } finally {
      await h.emulator.close();
    }
  });

  it("a task Pending while the executors go is not touched", async () => {
    const h = await startHarness({ storage });
    try {
      h.emulator.pause();
      await h.client.createSession({ sessionId: "p", session: { application: "flmexec" } });
      await h.client.createTask({ task: { sessionId: "p", input: new Uint8Array([1]) } });
      h.emulator.loseExecutors();
      h.emulator.resume();
      expect(stateOf(await waitForTask(h.client, "p", "1"))).toBe(TaskState.Succeed);
    } finally {
      await h.emulator.close();
    }
  });
});
