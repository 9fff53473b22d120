// The watch hub's polled path against a scripted in-memory server: rows
// are de-duplicated per subscriber, the last unsubscribe aborts a ListTask
// in flight, failed polls give up after maxResumes, a refused ListTask
// fails the watches with its kind, and a big session's poll keeps to its
// row budget.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { lastValueFrom, toArray } from "rxjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionSchema, type Task as TaskMessage, TaskSchema } from "../src/generated.js";
import { Connection, FlameError, Frontend, TaskState } from "../src/index.js";

const session = (id: string) =>
  create(SessionSchema, {
    metadata: { id },
    spec: { application: "app", batchSize: 1 },
    status: { creationTime: 1n },
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

const polled = { maxStreams: 0, pollIntervalMs: 1, maxPollIntervalMs: 2 };

describe("watch hub, polled path (scripted server)", () => {
  it("emits each task's current state, then changes, once each, and completes on the terminal one", async () => {
    // Each poll is one step further; steps repeat states and go backwards.
    const script: [TaskState, number][][] = [
      [
        [TaskState.Pending, 1],
        [TaskState.Running, 2],
      ],
      [
        [TaskState.Pending, 1],
        [TaskState.Running, 2],
      ],
      [
        [TaskState.Running, 2],
        [TaskState.Running, 3],
      ],
      [
        [TaskState.Pending, 1],
        [TaskState.Succeed, 4],
      ],
      [
        [TaskState.Succeed, 3],
        [TaskState.Succeed, 5],
      ],
      [
        [TaskState.Succeed, 4],
        [TaskState.Succeed, 5],
      ],
    ];
    let polls = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          async *listTask() {
            const step = script[Math.min(polls++, script.length - 1)] ?? [];
            for (const [i, [state, events]] of step.entries())
              yield task(String(i + 1), state, events);
          },
        }),
      ),
      { watch: polled },
    );
    const s = await c.getSession("s");
    const [one, two] = await Promise.all([
      lastValueFrom(s.watchTask("1").pipe(toArray())),
      lastValueFrom(s.watchTask("2").pipe(toArray())),
    ]);
    expect(one.map((t) => [TaskState[t.state], t.events.length])).toEqual([
      ["Pending", 1],
      ["Running", 2],
      ["Succeed", 3],
    ]);
    expect(two.map((t) => [TaskState[t.state], t.events.length])).toEqual([
      ["Running", 2],
      ["Running", 3],
      ["Succeed", 4],
    ]);
    await c.close();
  });

  it("the last unsubscribe aborts the ListTask in flight and no poll follows", async () => {
    let lists = 0;
    let aborted = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          async *listTask(_req, ctx) {
            lists++;
            yield task("1", TaskState.Running, 1);
            // Then hang until the client cancels.
            await new Promise<void>((resolve) => {
              ctx.signal.addEventListener("abort", () => {
                aborted++;
                resolve();
              });
            });
          },
        }),
      ),
      { watch: polled },
    );
    const s = await c.getSession("s");
    const seen: TaskState[] = [];
    const a = s.watchTask("1").subscribe((t) => seen.push(t.state));
    const b = s.watchTask("1").subscribe((t) => seen.push(t.state));
    for (let i = 0; seen.length < 2 && i < 1000; i++) await new Promise((r) => setTimeout(r, 1));
    expect(seen).toEqual([TaskState.Running, TaskState.Running]);
    expect(lists).toBe(1);
    a.unsubscribe();
    await new Promise((r) => setTimeout(r, 5));
    expect(aborted).toBe(0); // b still watches
    b.unsubscribe();
    for (let i = 0; aborted === 0 && i < 1000; i++) await new Promise((r) => setTimeout(r, 1));
    expect(aborted).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(lists).toBe(1);
    await c.close();
  });

  it("failed polls: resumed with backoff, then unavailable after maxResumes", async () => {
    let lists = 0;
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          // biome-ignore lint/correctness/useYield: a poll that always fails
          async *listTask() {
            lists++;
            throw new ConnectError("connection reset", Code.Unavailable);
          },
        }),
      ),
      { watch: polled, retry: { initialDelayMs: 1, maxDelayMs: 2 } },
    );
    const s = await c.getSession("s");
    const err = await lastValueFrom(s.watchTask("1", { maxResumes: 3 })).catch((e: unknown) => e);
    expect(FlameError.is(err, "unavailable")).toBe(true);
    expect((err as FlameError).message).toContain("without progress");
    expect(lists).toBe(4);
    await c.close();
  });

  it("a refused ListTask fails every polled watch with its kind", async () => {
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          // biome-ignore lint/correctness/useYield: refused
          async *listTask() {
            throw new ConnectError("no", Code.PermissionDenied);
          },
        }),
      ),
      { watch: polled },
    );
    const s = await c.getSession("s");
    const errors = await Promise.all(
      ["1", "2"].map((id) => lastValueFrom(s.watchTask(id)).catch((e: unknown) => e)),
    );
    expect(errors.map((e) => (e as FlameError).kind)).toEqual([
      "permission-denied",
      "permission-denied",
    ]);
    await c.close();
  });

  it("within the budget a watch has its own stream; the next one past it polls", async () => {
    const calls = { watch: 0, list: 0 };
    const c = new Connection(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession: () => session("s"),
          getTask: (req) => task(req.taskId, TaskState.Running, 1),
          async *watchTask(req) {
            calls.watch++;
            yield task(req.taskId, TaskState.Succeed, 2);
          },
          async *listTask() {
            calls.list++;
            yield task("1", TaskState.Succeed, 2);
            yield task("2", TaskState.Succeed, 2);
          },
        }),
      ),
      { watch: { maxStreams: 1, pollIntervalMs: 1 } },
    );
    const s = await c.getSession("s");
    const [one, two] = await Promise.all([
      lastValueFrom(s.watchTask("1").pipe(toArray())),
      lastValueFrom(s.watchTask("2").pipe(toArray())),
    ]);
    expect(one.map((t) => TaskState[t.state])).toEqual(["Running", "Succeed"]);
    expect(two.map((t) => TaskState[t.state])).toEqual(["Succeed"]);
    expect(calls).toEqual({ watch: 1, list: 1 });
    // The stream is free again: the next watch takes it.
    await lastValueFrom(s.watchTask("2"));
    expect(calls).toEqual({ watch: 2, list: 1 });
    await c.close();
  });

  describe("row budget (fake clock)", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** ListTask calls in 2 s of fake time for a session of `rows` tasks, watches joining all along. */
    async function pollsOver2s(rows: number): Promise<number> {
      vi.useFakeTimers();
      let lists = 0;
      const all = Array.from({ length: rows }, (_, i) => task(String(i + 1), TaskState.Pending));
      const c = new Connection(
        createRouterTransport(({ service }) =>
          service(Frontend, {
            getSession: () => session("s"),
            async *listTask() {
              lists++;
              yield* all;
            },
          }),
        ),
        { watch: { maxStreams: 0, pollIntervalMs: 1, maxPollIntervalMs: 1 } },
      );
      const s = await c.getSession("s");
      const subscriptions = [s.watchTask("1").subscribe()];
      for (let ms = 0; ms < 2_000; ms += 50) {
        // A newcomer every 50 ms wants its current state.
        subscriptions.push(s.watchTask(String(2 + ms / 50)).subscribe());
        await vi.advanceTimersByTimeAsync(50);
      }
      for (const subscription of subscriptions) subscription.unsubscribe();
      await c.close();
      return lists;
    }

    it("a 5,000-task session is polled at most every 0.5 s, newcomers or not", async () => {
      const lists = await pollsOver2s(5_000);
      expect(lists).toBeGreaterThanOrEqual(2);
      expect(lists).toBeLessThanOrEqual(5);
    });

    it("a small session keeps the configured interval", async () => {
      expect(await pollsOver2s(50)).toBeGreaterThan(100);
    });
  });
});
