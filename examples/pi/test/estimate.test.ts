import type { Emulator } from "@flame-ts/emulator";
import { type Connection, connect, SessionState } from "@flame-ts/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { estimatePi, PiTaskError } from "../src/estimate.js";
import { startPiEmulator } from "../src/local-emulator.js";
import { piHandler } from "../src/pi-service.js";

// The whole job against an in-process emulator, over a real socket on 127.0.0.1.
describe("estimatePi against the emulator", () => {
  let emulator: Emulator;
  let connection: Connection;

  beforeAll(async () => {
    emulator = await startPiEmulator("pi");
    connection = await connect(emulator.url);
  });
  afterEach(() => emulator.serve("pi", piHandler));
  afterAll(async () => {
    await connection?.close();
    await emulator?.close();
  });

  it("sums inside over every task and closes the session", async () => {
    const progress: Array<[number, number]> = [];
    let sessionId: string | undefined;
    const taskNum = 40;
    const samples = 2_500;
    const estimate = await estimatePi(connection, {
      app: "pi",
      taskNum,
      samples,
      concurrency: 8,
      onProgress: (done, total) => progress.push([done, total]),
      onSession: (id) => {
        sessionId = id;
      },
    });

    expect(estimate.sessionId).toBe(sessionId);
    expect(estimate.total).toBe(taskNum * samples);
    expect(estimate.pi).toBe((4 * estimate.inside) / estimate.total);
    const p = Math.PI / 4;
    const sigma = Math.sqrt(estimate.total * p * (1 - p));
    expect(Math.abs(estimate.inside - estimate.total * p)).toBeLessThan(5 * sigma);

    // One progress report per task, ending at done = total.
    expect(progress).toHaveLength(taskNum);
    expect(progress.at(-1)).toEqual([taskNum, taskNum]);
    expect(progress.map(([done]) => done)).toEqual(progress.map((_, i) => i + 1));

    const session = await connection.getSession(estimate.sessionId);
    expect(session.state).toBe(SessionState.Closed);
    expect(session.succeed).toBe(taskNum);
    expect(session.failed).toBe(0);
  });

  it("stops at a failed task with that task's error message, and closes the session", async () => {
    // The third task fails; the others count points as usual.
    emulator.serve("pi", (task) => {
      if (task.taskId === "3") throw new Error("instance exploded while counting (task 3)");
      return piHandler(task);
    });
    let sessionId: string | undefined;
    const error = await estimatePi(connection, {
      taskNum: 30,
      samples: 100,
      concurrency: 4,
      onSession: (id) => {
        sessionId = id;
      },
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(PiTaskError);
    expect((error as PiTaskError).message).toContain("instance exploded while counting (task 3)");
    expect((error as PiTaskError).taskId).toBe("3");
    expect(sessionId).toBeDefined();

    const session = await connection.getSession(sessionId!);
    expect(session.state).toBe(SessionState.Closed);
    expect(session.failed).toBe(1);
    // It stopped early: not every task ran.
    expect(session.succeed).toBeLessThan(29);
  });

  it("after a failure, lets running tasks finish and then closes the session", async () => {
    // Task 1 fails at once; the others stay Running until the job has tried to
    // close the session once, which Flame refuses while tasks run.
    const closeCalls = () => emulator.stats().calls.CloseSession ?? 0;
    const before = closeCalls();
    emulator.serve("pi", async (task) => {
      if (task.taskId === "1") throw new Error("task 1 broke");
      while (closeCalls() === before) await new Promise((r) => setTimeout(r, 5));
      return piHandler(task);
    });
    let sessionId: string | undefined;
    const error = await estimatePi(connection, {
      taskNum: 10,
      samples: 10,
      concurrency: 4,
      onSession: (id) => {
        sessionId = id;
      },
    }).catch((e: unknown) => e);

    expect((error as Error).message).toBe("task 1 broke");
    expect(closeCalls() - before).toBeGreaterThanOrEqual(2);
    const session = await connection.getSession(sessionId!);
    expect(session.state).toBe(SessionState.Closed);
    expect(session.running).toBe(0);
    expect(session.failed).toBe(1);
  });

  it("fails when a task's output is not {inside: K}", async () => {
    emulator.serve("pi", () => JSON.stringify({ count: 5 }));
    await expect(estimatePi(connection, { taskNum: 2, samples: 10 })).rejects.toThrow(
      /returned \{"count":5\}; expected \{"inside": K\}/,
    );
  });

  it("reports an unknown application as an error", async () => {
    await expect(
      estimatePi(connection, { app: "no-such-app", taskNum: 1, samples: 1 }),
    ).rejects.toThrow();
  });

  it("stops and closes the session when aborted", async () => {
    const abort = new AbortController();
    let sessionId: string | undefined;
    const error = await estimatePi(connection, {
      taskNum: 200,
      samples: 10,
      concurrency: 2,
      signal: abort.signal,
      onProgress: (done) => {
        if (done === 5) abort.abort(new Error("stop now"));
      },
      onSession: (id) => {
        sessionId = id;
      },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe("stop now");
    const session = await connection.getSession(sessionId!);
    expect(session.state).toBe(SessionState.Closed);
    expect(session.succeed).toBeLessThan(200);
  });

  it("rejects a non-positive task count before creating a session", async () => {
    await expect(estimatePi(connection, { taskNum: 0, samples: 10 })).rejects.toThrow(RangeError);
  });
});
