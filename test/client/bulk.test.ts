import { codecs, TaskState } from "@flame-ts/core";
import { lastValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { engines, unique, useHarness, waitFor } from "./helpers.js";

describe.each(engines)("on %s", (storage) => {
  const h = useHarness({ storage });

  /** An application that records how many of its tasks run at once. */
  async function countingApp(delayMs = 15) {
    const app = unique("count");
    await h.connection.registerApplication(app, {});
    const stats = { inFlight: 0, max: 0, runs: 0 };
    h.emulator.serve(app, async ({ input }) => {
      stats.inFlight++;
      stats.runs++;
      stats.max = Math.max(stats.max, stats.inFlight);
      await new Promise((r) => setTimeout(r, delayMs));
      stats.inFlight--;
      const text = new TextDecoder().decode(input);
      if (text.startsWith("fail")) throw new Error(`refused ${text}`);
      return text.toUpperCase();
    });
    return { app, stats };
  }

  describe("runMany and runAll", () => {
    it("runAll: results in input order, progress done/total, concurrency bounded", async () => {
      const { app, stats } = await countingApp();
      const s = await h.connection.createSession({ application: app, codec: codecs.string });
      const inputs = Array.from({ length: 40 }, (_, i) => `in-${i}`);
      const progress: [number, number][] = [];
      const results = await s.runAll(inputs, {
        concurrency: 4,
        onProgress: (done, total) => progress.push([done, total]),
      });
      expect(results.map((r) => r.output)).toEqual(inputs.map((x) => x.toUpperCase()));
      expect(results.every((r) => r.state === TaskState.Succeed)).toBe(true);
      expect(progress).toEqual(inputs.map((_, i) => [i + 1, 40]));
      expect(stats.max).toBeLessThanOrEqual(4);
      expect(stats.max).toBeGreaterThan(1);
      expect(stats.runs).toBe(40);
    });

    it("runMany: every index once, done counts up, failed tasks are results", async () => {
      const { app } = await countingApp(1);
      const s = await h.connection.createSession({ application: app, codec: codecs.string });
      const inputs = ["a", "fail-1", "b", "c", "fail-2", "d"];
      const events = await lastValueFrom(s.runMany(inputs, { concurrency: 2 }).pipe(toArray()));
      expect(events.map((e) => e.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(events.map((e) => e.done)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.every((e) => e.total === 6)).toBe(true);
      const failed = events.filter((e) => e.result.state === TaskState.Failed);
      expect(failed.map((e) => e.index).sort()).toEqual([1, 4]);
      for (const f of failed) {
        expect(f.result.errorCode).toBe(3);
        expect(f.result.errorMessage).toContain(`refused ${inputs[f.index]}`);
      }
    });

    it("runMany is cold, and unsubscribing stops new tasks and cancels the watches", async () => {
      const app = unique("slow");
      await h.connection.registerApplication(app, {});
      let release!: () => void;
      const held = new Promise<string>((r) => {
        release = () => r("x");
      });
      h.emulator.serve(app, () => held);
      const s = await h.connection.createSession({ application: app, codec: codecs.string });
      const many = s.runMany(["1", "2", "3", "4", "5", "6"], { concurrency: 2 });
      const beforeCreate = h.emulator.stats().calls.CreateTask ?? 0;
      await new Promise((r) => setTimeout(r, 30));
      expect(h.emulator.stats().calls.CreateTask ?? 0).toBe(beforeCreate);
      const cancelledBefore = h.emulator.stats().streamsCancelled;
      const sub = many.subscribe();
      await waitFor(() => h.emulator.stats().openStreams >= 2, "two watches");
      sub.unsubscribe();
      await waitFor(
        () => h.emulator.stats().streamsCancelled >= cancelledBefore + 2,
        "the server to see both cancelled",
      );
      expect((h.emulator.stats().calls.CreateTask ?? 0) - beforeCreate).toBe(2);
      release();
    });

    it("an empty input completes at once", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      await expect(s.runAll([])).resolves.toEqual([]);
    });
  });
});
