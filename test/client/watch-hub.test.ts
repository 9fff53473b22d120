// watchTask past the connection's stream budget (ConnectionOptions.watch):
// the first maxStreams watches get a WatchTask stream each, the rest share
// one ListTask poll per session. Over real HTTP/2 sockets to the emulator.
import { type Connection, FlameError, type Task, TaskState } from "@flame-ts/core";
import type { Subscription } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { emissionProblem } from "../reliability/helpers.js";
import { watchAll } from "../support/watched.js";
import {
  engines,
  type Harness,
  rejection,
  serveHeld,
  startHarness,
  unique,
  waitFor,
} from "./helpers.js";

describe.each(engines)("on %s", (storage) => {
  let h: Harness;
  const subscriptions: Subscription[] = [];
  const release: (() => void)[] = [];

  beforeAll(async () => {
    h = await startHarness({ maxExecutors: 200, storage });
  });
  afterEach(() => {
    for (const s of subscriptions.splice(0)) s.unsubscribe();
    for (const r of release.splice(0)) r();
  });
  afterAll(() => h.close());

  /** A session of an application whose tasks run until released one by one. */
  async function heldSession(connection: Connection, count: number) {
    const app = unique("held");
    await h.connection.registerApplication(app, {});
    const gates = serveHeld(h.emulator, app, release);
    const created = await h.connection.createSession({ application: app });
    const session = await connection.openSession(created.id);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await session.createTask()).id);
    return { session, ids, gates };
  }

  /** The highest `openStreams` the emulator reports while `run` runs (sampled). */
  async function maxOpenDuring<T>(run: () => Promise<T>): Promise<{ value: T; maxOpen: number }> {
    let maxOpen = 0;
    const sampler = setInterval(() => {
      maxOpen = Math.max(maxOpen, h.emulator.stats().openStreams);
    }, 1);
    try {
      const value = await run();
      return { value, maxOpen };
    } finally {
      clearInterval(sampler);
    }
  }

  describe("watchTask past the stream budget", () => {
    it("budget 4, 50 tasks: current state first, one terminal each, at most 4 WatchTask streams", async () => {
      const BUDGET = 4;
      const TASKS = 50;
      const c = h.connect({
        watch: { maxStreams: BUDGET, pollIntervalMs: 20, maxPollIntervalMs: 80 },
      });
      const { session, ids, gates } = await heldSession(c, TASKS);
      await waitFor(() => gates.size === TASKS, "every task running");
      const before = { ...h.sent };
      const base = h.emulator.stats().openStreams;
      expect(base).toBe(0);
      const { value: watched, maxOpen } = await maxOpenDuring(async () => {
        const watched = watchAll(session, ids, subscriptions);
        await waitFor(() => watched.seen.every((s) => s.length > 0), "every current state");
        // The current state comes first: the task is Running, as the server says.
        expect(watched.seen.map((s) => s[0]?.state)).toEqual(ids.map(() => TaskState.Running));
        expect(watched.seen.map((s) => s[0]?.id)).toEqual(ids);
        await waitFor(() => h.emulator.stats().openStreams >= BUDGET, "the dedicated streams");
        // Release the tasks a few at a time: polls and streams both see changes.
        for (let i = 0; i < TASKS; i++) {
          gates.get(ids[i] as string)?.();
          if (i % 10 === 9) {
            await waitFor(() => watched.completed >= i + 1 - BUDGET, `${i + 1 - BUDGET} ends`);
          }
        }
        await waitFor(() => watched.completed + watched.errors.length === TASKS, "every end");
        return watched;
      });
      expect(watched.errors).toEqual([]);
      const problems = watched.seen.map(emissionProblem).filter((p) => p !== undefined);
      expect(problems).toEqual([]);
      expect(watched.seen.every((s) => s.at(-1)?.state === TaskState.Succeed)).toBe(true);
      // The server never held more than the budget of WatchTask streams (plus
      // the session's one ListTask), and only the first BUDGET watches opened
      // one: nothing dropped, so no resume.
      expect(maxOpen).toBeLessThanOrEqual(BUDGET + 1);
      expect((h.sent.WatchTask ?? 0) - (before.WatchTask ?? 0)).toBe(BUDGET);
      expect((h.sent.ListTask ?? 0) - (before.ListTask ?? 0)).toBeGreaterThan(0);
      await waitFor(() => h.emulator.stats().openStreams === 0, "no open streams");
    });

    it("unsubscribing every polled watch stops the poll; the dedicated one stays", async () => {
      const c = h.connect({ watch: { maxStreams: 1, pollIntervalMs: 5, maxPollIntervalMs: 10 } });
      const { session, ids, gates } = await heldSession(c, 6);
      await waitFor(() => gates.size === 6, "every task running");
      const dedicated = session.watchTask(ids[0] as string).subscribe();
      subscriptions.push(dedicated);
      await waitFor(() => h.emulator.stats().openStreams === 1, "the dedicated stream");
      const polled = ids.slice(1).map((id) => session.watchTask(id).subscribe());
      const listed = h.emulator.stats().calls.ListTask ?? 0;
      // The poll keeps listing while its watches are there.
      await waitFor(() => (h.emulator.stats().calls.ListTask ?? 0) > listed + 5, "polling");
      for (const p of polled) p.unsubscribe();
      // Bounded: the count settles once the poll has stopped (a ListTask in
      // flight is aborted, none follows).
      let last = -1;
      let still = 0;
      await waitFor(async () => {
        await new Promise((r) => setTimeout(r, 20));
        const now = h.emulator.stats().calls.ListTask ?? 0;
        still = now === last ? still + 1 : 0;
        last = now;
        return still >= 10;
      }, "ListTask calls to stop growing");
      // Ten quiet samples of 20 ms, with a poll due every 10 ms at the most.
      expect(h.emulator.stats().calls.ListTask ?? 0).toBe(last);
      await waitFor(() => h.emulator.stats().openStreams === 1, "only the dedicated stream");
      // A new watch past the budget starts a new poll.
      const again: Task[] = [];
      subscriptions.push(session.watchTask(ids[1] as string).subscribe((t) => again.push(t)));
      await waitFor(() => again.length > 0, "the current state from a new poll");
      expect(h.emulator.stats().calls.ListTask ?? 0).toBeGreaterThan(last);
      expect(again[0]?.state).toBe(TaskState.Running);
    });

    it("the same task watched many times on both paths: each gets current state and one terminal", async () => {
      const c = h.connect({ watch: { maxStreams: 2, pollIntervalMs: 10, maxPollIntervalMs: 40 } });
      const { session, ids, gates } = await heldSession(c, 1);
      const id = ids[0] as string;
      await waitFor(() => gates.has(id), "the task running");
      const watched = watchAll(session, [id, id, id, id, id], subscriptions);
      await waitFor(() => watched.seen.every((s) => s.length > 0), "every current state");
      gates.get(id)?.();
      await waitFor(() => watched.completed === 5, "every watch to complete");
      expect(watched.seen.map(emissionProblem)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      // A late subscriber of a finished task gets its terminal state, once.
      const late = await new Promise<Task[]>((resolve, reject) => {
        const seen: Task[] = [];
        session.watchTask(id).subscribe({
          next: (t) => seen.push(t),
          error: reject,
          complete: () => resolve(seen),
        });
      });
      expect(late.map((t) => t.state)).toEqual([TaskState.Succeed]);
    });

    it("polled watches: unknown task is not-found; a caller's signal, a deadline and close end them", async () => {
      const c = h.connect({ watch: { maxStreams: 0, pollIntervalMs: 10, maxPollIntervalMs: 40 } });
      const { session, ids, gates } = await heldSession(c, 1);
      await waitFor(() => gates.size === 1, "the task running");
      const before = h.sent.WatchTask ?? 0;
      const unknown = (await rejection(
        new Promise<void>((resolve, reject) =>
          session.watchTask("4242").subscribe({ complete: () => resolve(), error: reject }),
        ),
      )) as FlameError;
      expect(FlameError.is(unknown)).toBe(true);
      expect(unknown.kind).toBe("not-found");

      const ac = new AbortController();
      const aborted = rejection(
        new Promise<void>((resolve, reject) =>
          session
            .watchTask(ids[0] as string, { signal: ac.signal })
            .subscribe({ next: () => ac.abort(), complete: () => resolve(), error: reject }),
        ),
      );
      expect(await aborted).toMatchObject({ kind: "cancelled" });

      const deadline = await rejection(
        new Promise<void>((resolve, reject) =>
          session
            .watchTask(ids[0] as string, { timeoutMs: 50 })
            .subscribe({ complete: () => resolve(), error: reject }),
        ),
      );
      expect(deadline).toMatchObject({ kind: "deadline-exceeded" });

      const seen: Task[] = [];
      const closed = new Promise<void>((resolve, reject) =>
        session
          .watchTask(ids[0] as string)
          .subscribe({ next: (t) => seen.push(t), complete: () => resolve(), error: reject }),
      );
      await waitFor(() => seen.length > 0, "the current state");
      await c.close();
      expect(await rejection(closed)).toMatchObject({ kind: "cancelled" });
      // Budget 0: nothing watched with a stream of its own.
      expect(h.sent.WatchTask ?? 0).toBe(before);
    });

    it("mixed paths survive dropped streams and a restart: one terminal each", async () => {
      const BUDGET = 8;
      const TASKS = 40;
      const c = h.connect({
        watch: { maxStreams: BUDGET, pollIntervalMs: 10, maxPollIntervalMs: 40 },
        retry: { initialDelayMs: 10, maxDelayMs: 100 },
      });
      const { session, ids, gates } = await heldSession(c, TASKS);
      await waitFor(() => gates.size === TASKS, "every task running");
      const watched = watchAll(session, ids, subscriptions);
      await waitFor(
        () => watched.seen.every((s) => s.length > 0) && h.emulator.stats().openStreams >= BUDGET,
        "every current state and the dedicated streams",
      );
      const started = h.emulator.stats().streamsStarted;
      const listed = h.emulator.stats().calls.ListTask ?? 0;
      h.emulator.dropStreams();
      await waitFor(
        () =>
          h.emulator.stats().streamsStarted >= started + BUDGET &&
          h.emulator.stats().openStreams >= BUDGET &&
          (h.emulator.stats().calls.ListTask ?? 0) > listed + 2,
        "the watches to resume and the poll to go on",
      );
      // Half the tasks end, then the streams break again while the rest end.
      for (const id of ids.slice(0, TASKS / 2)) gates.get(id)?.();
      h.emulator.dropStreams();
      await waitFor(() => watched.completed >= TASKS / 2 - BUDGET, "the first half to end");
      await h.emulator.restart();
      for (const id of ids.slice(TASKS / 2)) gates.get(id)?.();
      await waitFor(() => watched.completed + watched.errors.length === TASKS, "every end", 30_000);
      expect(watched.errors).toEqual([]);
      const problems = watched.seen.map(emissionProblem).filter((p) => p !== undefined);
      expect(problems).toEqual([]);
      await waitFor(() => h.emulator.stats().openStreams === 0, "no open streams");
    });

    it("watchSession's watches share the connection's budget: spent, it polls", async () => {
      const c = h.connect({ watch: { maxStreams: 1 } });
      const { session, ids, gates } = await heldSession(c, 3);
      await waitFor(() => gates.size === 3, "every task running");
      const before = h.sent.WatchTask ?? 0;
      subscriptions.push(session.watchTask(ids[0] as string).subscribe());
      await waitFor(() => h.emulator.stats().openStreams === 1, "the dedicated stream");
      const seen: Task[] = [];
      subscriptions.push(
        session
          .watchSession({
            maxStreams: 4,
            pollIntervalMs: 10,
            maxPollIntervalMs: 20,
            untilClosed: false,
          })
          .subscribe((t) => seen.push(t)),
      );
      await waitFor(() => new Set(seen.map((t) => t.id)).size === 3, "every task's state");
      // The tasks watchSession alone follows end first (by polling), then the
      // one with the stream (so its freed slot finds nothing left to watch).
      for (const id of ids.slice(1)) gates.get(id)?.();
      await waitFor(
        () => seen.filter((t) => t.state === TaskState.Succeed).length === 2,
        "two terminal states, by polling",
      );
      gates.get(ids[0] as string)?.();
      await waitFor(
        () => seen.filter((t) => t.state === TaskState.Succeed).length === 3,
        "every terminal state",
      );
      // Only watchTask's stream: watchSession found no budget left.
      expect((h.sent.WatchTask ?? 0) - before).toBe(1);
    });
  });
});
