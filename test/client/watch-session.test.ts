import { codecs, type Task, TaskState } from "@flame-ts/core";
import { describe, expect, it } from "vitest";
import { engines, serveHeld, unique, useHarness, waitFor } from "./helpers.js";

describe.each(engines)("on %s", (storage) => {
  const h = useHarness({ storage });

  describe("watchSession", () => {
    it("delivers every task's terminal state once, within maxStreams, and completes on close", async () => {
      const app = unique("many");
      await h.connection.registerApplication(app, {});
      const gates = serveHeld(h.emulator, app);
      const s = await h.connection.createSession({ application: app, codec: codecs.string });
      const TASKS = 12;
      const MAX = 3;
      for (let i = 0; i < TASKS; i++) await s.createTask(`t${i}`);

      let maxOpen = 0;
      const sampler = setInterval(() => {
        maxOpen = Math.max(maxOpen, h.emulator.stats().openStreams);
      }, 2);
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) =>
        s
          .watchSession({ maxStreams: MAX, pollIntervalMs: 20, maxPollIntervalMs: 80 })
          .subscribe({ next: (t) => seen.push(t), error: reject, complete: resolve }),
      );
      try {
        // Every task's current state arrives, and the budget's watches open
        // (maxStreams - 1: one stream is kept for the ListTask poll).
        await waitFor(() => new Set(seen.map((t) => t.id)).size === TASKS, "every task");
        await waitFor(() => h.emulator.stats().openStreams >= MAX - 1, "the watches");
        // Finish the tasks a few at a time so both watches and polls see changes.
        for (let i = 1; i <= TASKS; i++) {
          const id = String(i);
          await waitFor(() => gates.has(id), `task ${id} running`);
          gates.get(id)?.();
          if (i % 4 === 0) {
            await waitFor(
              () => seen.filter((t) => t.state === TaskState.Succeed).length >= i,
              `${i} terminal states`,
            );
          }
        }
        await waitFor(
          () => seen.filter((t) => t.state === TaskState.Succeed).length === TASKS,
          "all terminal states",
        );
        await s.close();
        await done;
      } finally {
        clearInterval(sampler);
      }
      const byTask = new Map<string, Task[]>();
      for (const t of seen) byTask.set(t.id, [...(byTask.get(t.id) ?? []), t]);
      expect(byTask.size).toBe(TASKS);
      for (const [, states] of byTask) {
        expect(states.filter((t) => t.state === TaskState.Succeed)).toHaveLength(1);
        expect(states.at(-1)?.state).toBe(TaskState.Succeed);
        const order = states.map((t) => t.state);
        for (let i = 1; i < order.length; i++) {
          expect(order[i]).toBeGreaterThan(order[i - 1] as number);
        }
      }
      expect(maxOpen).toBeLessThanOrEqual(MAX);
      await waitFor(() => h.emulator.stats().openStreams === 0, "no open streams");
    });

    it("rides out dropped streams: every terminal state once", async () => {
      const app = unique("drop");
      await h.connection.registerApplication(app, {});
      let release!: () => void;
      const held = new Promise<string>((resolve) => {
        release = () => resolve("ok");
      });
      h.emulator.serve(app, () => held);
      const s = await h.connection.createSession({ application: app });
      for (let i = 0; i < 6; i++) await s.createTask();
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) =>
        s
          .watchSession({ maxStreams: 4, pollIntervalMs: 20, maxPollIntervalMs: 40 })
          .subscribe({ next: (t) => seen.push(t), error: reject, complete: resolve }),
      );
      await waitFor(() => new Set(seen.map((t) => t.id)).size === 6, "every task");
      await waitFor(() => h.emulator.stats().openStreams >= 3, "the watches");
      const watches = h.emulator.stats().calls.WatchTask ?? 0;
      h.emulator.dropStreams();
      await waitFor(() => (h.emulator.stats().calls.WatchTask ?? 0) > watches, "watching again");
      release();
      await waitFor(
        () => seen.filter((t) => t.state === TaskState.Succeed).length === 6,
        "all terminal states",
      );
      await s.close();
      await done;
      const succeeded = seen.filter((t) => t.state === TaskState.Succeed).map((t) => t.id);
      expect(succeeded.sort()).toEqual(["1", "2", "3", "4", "5", "6"]);
    });

    it("with untilClosed: false it keeps running after close until unsubscribed", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      await s.run(new Uint8Array([1]));
      await s.close();
      const seen: Task[] = [];
      let completed = false;
      const sub = s
        .watchSession({ untilClosed: false, pollIntervalMs: 10, maxPollIntervalMs: 20 })
        .subscribe({ next: (t) => seen.push(t), complete: () => (completed = true) });
      await waitFor(() => seen.length === 1, "the one task");
      const lists = h.emulator.stats().calls.ListTask ?? 0;
      await waitFor(() => (h.emulator.stats().calls.ListTask ?? 0) > lists + 2, "more polls");
      expect(completed).toBe(false);
      expect(seen).toHaveLength(1);
      sub.unsubscribe();
    });

    it("completes at once for a closed session whose tasks are all terminal", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      await s.runAll([new Uint8Array([1]), new Uint8Array([2])]);
      await s.close();
      const seen: Task[] = [];
      await new Promise<void>((resolve, reject) =>
        s.watchSession().subscribe({ next: (t) => seen.push(t), error: reject, complete: resolve }),
      );
      expect(seen.map((t) => t.state)).toEqual([TaskState.Succeed, TaskState.Succeed]);
    });
  });
});
