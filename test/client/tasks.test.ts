import { Code } from "@connectrpc/connect";
import { codecs, FlameError, type Session, type Task, TaskState } from "@flame-ts/core";
import { lastValueFrom, toArray } from "rxjs";
import { beforeAll, describe, expect, it } from "vitest";
import { engines, gate, rejection, unique, useHarness, waitFor } from "./helpers.js";

describe.each(engines)("on %s", (storage) => {
  const h = useHarness({ storage });

  const names = (tasks: Task[]) => tasks.map((t) => TaskState[t.state]);

  /** States strictly move forward: no repeats, nothing after the terminal one. */
  function expectForward(seen: Task[]) {
    const order = seen.map((t) => Math.min(t.state, TaskState.Succeed));
    for (let i = 1; i < order.length; i++) expect(order[i]).toBeGreaterThan(order[i - 1] as number);
  }

  /** A registered application whose tasks wait for `hold.open(output)`. */
  async function heldApp() {
    const app = unique("held");
    await h.connection.registerApplication(app, {});
    let hold = gate<string>();
    h.emulator.serve(app, () => hold.promise);
    return {
      app,
      release(output = "done") {
        hold.open(output);
        hold = gate<string>();
      },
    };
  }

  describe("tasks over HTTP/2", () => {
    let s: Session;
    beforeAll(async () => {
      s = await h.connection.createSession({ application: "flmexec" });
    });

    it("createTask, getTask and listTasks return plain tasks with Dates", async () => {
      const input = new Uint8Array([1, 2, 3]);
      const created = await s.createTask(input);
      expect(created.id).toMatch(/^\d+$/);
      expect(created.sessionId).toBe(s.id);
      expect(created.creationTime).toBeInstanceOf(Date);
      const done = await lastValueFrom(s.watchTask(created.id));
      expect(done.state).toBe(TaskState.Succeed);
      expect(done.completionTime).toBeInstanceOf(Date);
      const got = await s.getTask(created.id);
      expect(Array.from(got.input ?? [])).toEqual([1, 2, 3]);
      expect(Array.from(got.output ?? [])).toEqual([1, 2, 3]);
      const listed = await s.listTasks();
      expect(listed.map((t) => t.id)).toContain(created.id);
    });

    it("getTask: unknown id is not-found, a non-numeric id is INVALID_ARGUMENT", async () => {
      const missing = (await rejection(s.getTask("9999"))) as FlameError;
      expect(missing.kind).toBe("not-found");
      expect(missing.method).toBe("GetTask");
      const bad = (await rejection(s.getTask("abc"))) as FlameError;
      expect(bad.code).toBe(3);
      expect(bad.kind).toBe("invalid-config");
    });

    it("CreateTask on an unknown session fails with kind not-found", async () => {
      const other = await h.connection.createSession({ application: "flmexec" });
      // Flame deletes only closed sessions.
      await h.connection.closeSession(other.id);
      await h.connection.deleteSession(other.id);
      const err = (await rejection(other.createTask())) as FlameError;
      expect(err.kind).toBe("not-found");
      expect(err.method).toBe("CreateTask");
      // sqlite's constraint error says nothing of which: a GetSession told.
      expect(err.code).toBe(storage === "sqlite" ? Code.Internal : Code.NotFound);
    });

    it("listTasks comes back by id, numerically, the same on every call", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      h.emulator.pause();
      try {
        for (let i = 0; i < 12; i++) await s.createTask();
        const expected = Array.from({ length: 12 }, (_, i) => String(i + 1));
        for (let i = 0; i < 3; i++)
          expect((await s.listTasks()).map((t) => t.id)).toEqual(expected);
      } finally {
        h.emulator.resume();
      }
    });

    it("a request over Flame's 4 MiB is refused before it is sent, naming the limit; one at it goes through", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      // CreateTaskRequest { task { session_id, input } }: tag and length bytes
      // around the input and the id. The largest input that fits:
      const limit = 4 * 1024 * 1024;
      const idField = 2 + s.id.length;
      const fits = limit - idField - (1 + 4) - (1 + 4);
      const before = h.emulator.stats().calls.CreateTask ?? 0;
      const err = (await rejection(s.createTask(new Uint8Array(fits + 1)))) as FlameError;
      expect(FlameError.is(err, "invalid-input")).toBe(true);
      expect(err.method).toBe("CreateTask");
      expect(err.message).toContain(`${limit + 1} bytes`);
      expect(err.message).toContain(`limit of ${limit} bytes`);
      expect(h.emulator.stats().calls.CreateTask ?? 0).toBe(before);
      // At the limit exactly, the emulator (tonic's rule) takes it.
      const task = await s.createTask(new Uint8Array(fits));
      expect(task.id).toMatch(/^\d+$/);
      // A connection told the server takes more sends it, and the server refuses it.
      const wide = h.connect({ maxRequestBytes: 2 * limit });
      const other = await wide.openSession(s.id);
      const refused = (await rejection(other.createTask(new Uint8Array(fits + 1)))) as FlameError;
      expect(refused.code).toBe(Code.OutOfRange);
      expect(refused.serverMessage).toContain("the limit is: 4194304 bytes");
    });
  });

  describe("watchTask", () => {
    it("emits the current state first, then each change, then completes", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      h.emulator.pause();
      const t = await s.createTask();
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) =>
        s
          .watchTask(t.id)
          .subscribe({ next: (x) => seen.push(x), error: reject, complete: resolve }),
      );
      await waitFor(() => seen.length === 1, "the current state");
      expect(names(seen)).toEqual(["Pending"]);
      h.emulator.resume();
      await waitFor(() => seen.length === 2, "Running");
      held.release("out");
      await done;
      expect(names(seen)).toEqual(["Pending", "Running", "Succeed"]);
      expect(new TextDecoder().decode(seen[2]?.output)).toBe("out");
    });

    it("a task already terminal emits once and completes", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      const r = await s.run(new Uint8Array([9]));
      const all = await lastValueFrom(s.watchTask(r.taskId).pipe(toArray()));
      expect(names(all)).toEqual(["Succeed"]);
    });

    it("an unknown task errors with not-found (GetTask), not a silent completion", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      const err = (await rejection(lastValueFrom(s.watchTask("4242")))) as FlameError;
      expect(FlameError.is(err, "not-found")).toBe(true);
      expect(err.method).toBe("GetTask");
    });

    it("is cold: nothing is called before subscribe", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      const before = h.emulator.stats().calls.WatchTask ?? 0;
      const watch = s.watchTask("1");
      await new Promise((r) => setTimeout(r, 50));
      expect(h.emulator.stats().calls.WatchTask ?? 0).toBe(before);
      void watch;
    });

    it("unsubscribing cancels the server stream at once", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const t = await s.createTask();
      const cancelledBefore = h.emulator.stats().streamsCancelled;
      const seen: Task[] = [];
      const sub = s.watchTask(t.id).subscribe((x) => seen.push(x));
      await waitFor(() => h.emulator.stats().openStreams > 0 && seen.length > 0, "an open watch");
      sub.unsubscribe();
      await waitFor(
        () => h.emulator.stats().streamsCancelled > cancelledBefore,
        "the server to see the cancel",
      );
      await waitFor(() => h.emulator.stats().openStreams === 0, "no open streams");
      held.release();
    });

    it("resumes after the emulator drops every stream, with one terminal emission", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const t = await s.createTask();
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) =>
        s
          .watchTask(t.id)
          .subscribe({ next: (x) => seen.push(x), error: reject, complete: resolve }),
      );
      await waitFor(() => seen.some((x) => x.state === TaskState.Running), "Running");
      const watchesBefore = h.emulator.stats().calls.WatchTask ?? 0;
      await waitFor(() => h.emulator.stats().openStreams > 0, "an open watch");
      h.emulator.dropStreams();
      await waitFor(
        () => (h.emulator.stats().calls.WatchTask ?? 0) > watchesBefore,
        "the client to watch again",
      );
      held.release();
      await done;
      expectForward(seen);
      expect(seen.filter((x) => x.state === TaskState.Succeed)).toHaveLength(1);
      expect(seen.at(-1)?.state).toBe(TaskState.Succeed);
    });

    it("resumes after the emulator restarts, with one terminal emission", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const t = await s.createTask();
      const seen: Task[] = [];
      const done = new Promise<void>((resolve, reject) =>
        s
          .watchTask(t.id, { maxResumes: 50 })
          .subscribe({ next: (x) => seen.push(x), error: reject, complete: resolve }),
      );
      await waitFor(() => seen.some((x) => x.state === TaskState.Running), "Running");
      await waitFor(() => h.emulator.stats().openStreams > 0, "an open watch");
      const watchesBefore = h.emulator.stats().calls.WatchTask ?? 0;
      await h.emulator.restart();
      await waitFor(
        () => (h.emulator.stats().calls.WatchTask ?? 0) > watchesBefore,
        "the client to watch again after the restart",
      );
      held.release();
      await done;
      expectForward(seen);
      expect(seen.filter((x) => x.state === TaskState.Succeed)).toHaveLength(1);
      expect(seen.at(-1)?.state).toBe(TaskState.Succeed);
    });

    it("a node loss: sqlite and fs run the task again unseen and the watch ends once; none leaves it Running", async () => {
      const app = unique("lost");
      await h.connection.registerApplication(app, {});
      let runs = 0;
      h.emulator.serve(app, ({ signal }) => {
        runs++;
        if (runs > 1) return "second";
        return new Promise<string>((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error("executor lost"))),
        );
      });
      const s = await h.connection.createSession({ application: app });
      const t = await s.createTask();
      const seen: Task[] = [];
      let completed = false;
      const sub = s.watchTask(t.id).subscribe({
        next: (x) => seen.push(x),
        complete: () => {
          completed = true;
        },
      });
      try {
        await waitFor(() => seen.some((x) => x.state === TaskState.Running), "Running");
        h.emulator.loseExecutors();
        if (storage === "none") {
          await waitFor(() => runs === 1 && h.emulator.stats().openStreams > 0, "the lost run");
          expect((await s.getTask(t.id)).state).toBe(TaskState.Running);
          expect(completed).toBe(false);
          return;
        }
        await waitFor(() => completed, "the watch to complete");
        expect(runs).toBe(2);
        expectForward(seen);
        expect(seen.filter((x) => x.state === TaskState.Succeed)).toHaveLength(1);
        expect(new TextDecoder().decode(seen.at(-1)?.output)).toBe("second");
      } finally {
        sub.unsubscribe();
      }
    });

    it("a caller's AbortSignal errors the watch with kind cancelled", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const t = await s.createTask();
      const ac = new AbortController();
      const result = rejection(lastValueFrom(s.watchTask(t.id, { signal: ac.signal })));
      await waitFor(() => h.emulator.stats().openStreams > 0, "an open watch");
      ac.abort();
      const err = (await result) as FlameError;
      expect(err.kind).toBe("cancelled");
      held.release();
    });

    it("timeoutMs errors the watch with kind deadline-exceeded", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const t = await s.createTask();
      const err = (await rejection(
        lastValueFrom(s.watchTask(t.id, { timeoutMs: 100 })),
      )) as FlameError;
      expect(err.kind).toBe("deadline-exceeded");
      held.release();
    });
  });

  describe("runTask, run and invoke", () => {
    it("runTask creates and watches: CreateTask's state first, terminal last", async () => {
      const s = await h.connection.createSession({ application: "flmexec", codec: codecs.string });
      const all = await lastValueFrom(s.runTask("abc").pipe(toArray()));
      expect(all[0]?.id).toMatch(/^\d+$/);
      expect(all.at(-1)?.state).toBe(TaskState.Succeed);
      expect(new TextDecoder().decode(all.at(-1)?.output)).toBe("abc");
    });

    it("run and invoke with the bytes codec (default)", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      const r = await s.run(new Uint8Array([4, 5]));
      expect(r.state).toBe(TaskState.Succeed);
      expect(r.sessionId).toBe(s.id);
      expect(Array.from(r.output ?? [])).toEqual([4, 5]);
      expect(r.errorCode).toBeUndefined();
      expect(Array.from(await s.invoke(new Uint8Array([6])))).toEqual([6]);
    });

    it("run and invoke with the string codec", async () => {
      const s = await h.connection.createSession({ application: "flmexec", codec: codecs.string });
      expect((await s.run("héllo")).output).toBe("héllo");
      expect(await s.invoke("wörld")).toBe("wörld");
    });

    it("invoke with the json codec against flmping", async () => {
      const s = await h.connection.createSession({
        application: "flmping",
        codec: codecs.json<{ duration: number }, { message: string }>(),
      });
      const out = await s.invoke({ duration: 1 });
      expect(out.message).toMatch(/^Completed on <.+> in <\d+> milliseconds with <0> memory$/);
    });

    it("withCodec switches codecs on the same session", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      const json = s.withCodec(codecs.json<number[], number[]>());
      expect(json.id).toBe(s.id);
      expect(await json.invoke([1, 2])).toEqual([1, 2]);
    });

    it("a failed task: run resolves Failed with code 3 and the message; invoke rejects", async () => {
      const app = unique("fails");
      await h.connection.registerApplication(app, {});
      h.emulator.serve(app, () => {
        throw new Error("division by zero");
      });
      const s = await h.connection.createSession({ application: app, codec: codecs.string });
      // What the watch brings at the end carries no events on Flame (sqlite,
      // fs) or a stale copy (none): no code-3 event.
      const watched = await lastValueFrom(s.runTask("w"));
      expect(watched.state).toBe(TaskState.Failed);
      expect(watched.events.some((e) => e.code === 3)).toBe(false);
      const reads = h.sent.GetTask ?? 0;
      const r = await s.run("x");
      expect(r.state).toBe(TaskState.Failed);
      expect(r.errorCode).toBe(3);
      expect(r.errorMessage).toBe("division by zero");
      expect(r.output).toBeUndefined();
      // ... so run() read GetTask for it.
      expect(h.sent.GetTask ?? 0).toBeGreaterThan(reads);
      expect(r.task.events.map((e) => e.code)).toEqual([0, 1, 3]);
      const err = (await rejection(s.invoke("y"))) as FlameError;
      expect(FlameError.is(err)).toBe(true);
      expect(err.kind).toBe("internal");
      expect(err.serverMessage).toContain("division by zero");
      expect(err.message).toContain("Failed");
    });

    it("a cancelled task: run has no error code (Flame records no event), invoke rejects with kind cancelled", async () => {
      const s = await h.connection.createSession({ application: "flmexec" });
      h.emulator.pause();
      try {
        const pending = rejection(s.invoke(new Uint8Array([1])));
        const ran = s.run(new Uint8Array([2]));
        await waitFor(async () => (await s.listTasks()).length === 2, "the tasks");
        await s.close();
        const err = (await pending) as FlameError;
        expect(err.kind).toBe("cancelled");
        const result = await ran;
        expect(result.state).toBe(TaskState.Cancelled);
        expect(result.errorCode).toBeUndefined();
        expect(result.errorMessage).toBeUndefined();
      } finally {
        h.emulator.resume();
      }
    });

    it("run with an AbortSignal: cancelled, and the server sees the watch cancelled", async () => {
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const ac = new AbortController();
      const before = h.emulator.stats().streamsCancelled;
      const result = rejection(s.run(undefined, { signal: ac.signal }));
      await waitFor(() => h.emulator.stats().openStreams > 0, "an open watch");
      ac.abort();
      const err = (await result) as FlameError;
      expect(err.kind).toBe("cancelled");
      await waitFor(() => h.emulator.stats().streamsCancelled > before, "the server to see it");
      held.release();
    });

    it("a unary call with an already aborted signal is cancelled; a tiny timeout is deadline-exceeded", async () => {
      const ac = new AbortController();
      ac.abort();
      const c = (await rejection(h.connection.listSessions({ signal: ac.signal }))) as FlameError;
      expect(c.kind).toBe("cancelled");
      const held = await heldApp();
      const s = await h.connection.createSession({ application: held.app });
      const d = (await rejection(s.run(undefined, { timeoutMs: 100 }))) as FlameError;
      expect(d.kind).toBe("deadline-exceeded");
      held.release();
    });
  });
});
