// 1,000 tasks watched at once while the emulator breaks every stream, or
// stops and starts again on the same port: every watch still ends with
// exactly one terminal emission, none twice, none missing, none hanging.
// The connection's watch budget is 200 streams: 200 watches have a
// WatchTask stream each, the other 800 share the session's ListTask poll,
// so both paths ride out the same faults.
import { type Session, TaskState } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Connection, connect } from "@flame-ts/node";
import type { Subscription } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Watched, watchAll } from "../support/watched.js";
import { emissionProblem, gate, waitFor } from "./helpers.js";

const TASKS = 1_000;
const BUDGET = 200;

let emulator: Emulator;
let connection: Connection;
let hold = gate();
const subscriptions: Subscription[] = [];
/** The most streams the emulator held open at once since watchMany. */
let maxOpen = 0;
let sampler: ReturnType<typeof setInterval> | undefined;

beforeAll(async () => {
  // The watch budget (200 streams) is past the 100 streams a client
  // connection gets by default; this file is about faults, not that limit.
  emulator = await startEmulator({ port: 0, maxExecutors: 100, maxStreamsPerConnection: 1000 });
  await emulator.serve("flmexec", async ({ input }) => {
    await hold.promise;
    return input;
  });
  connection = await connect(emulator.url, {
    watch: { maxStreams: BUDGET, pollIntervalMs: 50, maxPollIntervalMs: 200 },
  });
});
afterEach(() => {
  clearInterval(sampler);
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  hold.open();
  hold = gate();
});
afterAll(async () => {
  await connection?.close();
  await emulator?.close();
});

/** Creates `TASKS` tasks (held Pending/Running) and watches each one. */
async function watchMany(session: Session): Promise<Watched> {
  const ids: string[] = [];
  for (let i = 0; i < TASKS; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, TASKS - i) }, (_, k) =>
        session.createTask(new TextEncoder().encode(String(i + k))),
      ),
    );
    ids.push(...batch.map((t) => t.id));
  }
  expect(new Set(ids).size).toBe(TASKS);
  maxOpen = 0;
  sampler = setInterval(() => {
    maxOpen = Math.max(maxOpen, emulator.stats().openStreams);
  }, 2);
  const watched = watchAll(session, ids, subscriptions);
  await waitFor(
    () => emulator.stats().openStreams >= BUDGET && watched.seen.every((s) => s.length > 0),
    `${BUDGET} open streams and ${TASKS} watches with their current state`,
  );
  return watched;
}

async function finish(watched: Watched, session: Session) {
  await waitFor(
    () => watched.completed + watched.errors.length === TASKS,
    "every watch to end",
    60_000,
  );
  expect(watched.errors).toEqual([]);
  expect(watched.completed).toBe(TASKS);
  const problems = watched.seen
    .map((s, i) => [i, emissionProblem(s)] as const)
    .filter(([, p]) => p !== undefined);
  expect(problems).toEqual([]);
  expect(watched.seen.every((s) => s.at(-1)?.state === TaskState.Succeed)).toBe(true);
  clearInterval(sampler);
  // Never more WatchTask streams than the budget (plus the one ListTask).
  expect(maxOpen).toBeLessThanOrEqual(BUDGET + 1);
  // Nothing lost on the server either, and no watch left open.
  const tasks = await session.listTasks();
  expect(tasks.filter((t) => t.state === TaskState.Succeed)).toHaveLength(TASKS);
  await waitFor(() => emulator.stats().openStreams === 0, "no open streams");
}

describe(`${TASKS} watched tasks`, () => {
  it("survive the emulator dropping every stream, twice, mid-watch", async () => {
    const session = await connection.createSession({ application: "flmexec" });
    const watched = await watchMany(session);
    const started = emulator.stats().streamsStarted;
    emulator.dropStreams();
    // Every watch comes back on its own (GetTask, then WatchTask again).
    const listed = emulator.stats().calls.ListTask ?? 0;
    await waitFor(
      () =>
        emulator.stats().streamsStarted >= started + BUDGET &&
        emulator.stats().openStreams >= BUDGET &&
        (emulator.stats().calls.ListTask ?? 0) > listed + 1,
      "every watch stream to resume and the poll to go on",
    );
    // Release the tasks and break the streams again while they finish.
    hold.open();
    emulator.dropStreams();
    await finish(watched, session);
    expect(emulator.stats().calls.CreateTask).toBe(TASKS);
  });

  it("survive the emulator stopping and starting again on the same port", async () => {
    const session = await connection.createSession({ application: "flmexec" });
    const watched = await watchMany(session);
    const started = emulator.stats().streamsStarted;
    await emulator.restart();
    const listed = emulator.stats().calls.ListTask ?? 0;
    await waitFor(
      () =>
        emulator.stats().streamsStarted >= started + BUDGET &&
        emulator.stats().openStreams >= BUDGET &&
        (emulator.stats().calls.ListTask ?? 0) > listed + 1,
      "every watch stream to resume and the poll to go on after the restart",
    );
    hold.open();
    await finish(watched, session);
  });
});
