// 10,000 subscribe/unsubscribe cycles of watchTask in a child process run
// with --expose-gc: the emulator sees every stream it was sent cancelled and
// holds none open afterwards, and the client's heap after GC is back near
// its baseline, not grown with the number of cycles. Then the same cycles
// with a watch budget of 0 (every watch served by the session's ListTask
// poll): no WatchTask at all, no stream left open, no heap growth.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Connection, connect } from "@flame-ts/node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { gate, waitFor } from "./helpers.js";

const CYCLES = 10_000;
const MB = 1024 * 1024;
// On a busy shared machine the 10,000 cycles can take about a minute; the
// child gets up to three minutes before its safety net kills it.
const CHILD_BUDGET_MS = 180_000;

let emulator: Emulator;
let connection: Connection;
const hold = gate();

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  connection = await connect(emulator.url);
  await connection.registerApplication("held", {});
  emulator.serve("held", () => hold.promise.then(() => "done"));
});
afterAll(async () => {
  hold.open();
  await connection?.close();
  await emulator?.close();
});

function runChild(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL("./fixtures/watch-cycles.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--conditions=@flame-ts/source", "--import", "tsx", script, ...args],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c) => {
    stdout += c;
  });
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  // A safety net so a hang fails the test instead of leaving a process behind.
  const killer = setTimeout(() => child.kill("SIGKILL"), CHILD_BUDGET_MS - 10_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    }),
  );
}

interface CycleFigures {
  warmup: number;
  cycles: number;
  baseline: number;
  mid: number;
  end: number;
  ms: number;
}

/**
 * Runs the cycles child against a fresh session whose one task is running
 * (held), with `extra` arguments after the cycle count; returns its
 * figures and the emulator's stats before and after, once no stream is open.
 */
async function cyclesOnRunningTask(extra: string[] = []) {
  const session = await connection.createSession({ application: "held" });
  const task = await session.createTask();
  await waitFor(async () => (await session.getTask(task.id)).state === 1, "the task to run");
  const before = emulator.stats();
  const { code, stdout, stderr } = await runChild([
    emulator.url,
    session.id,
    task.id,
    String(CYCLES),
    ...extra,
  ]);
  expect(code, stderr).toBe(0);
  const figures = JSON.parse(stdout.trim().split("\n").at(-1) as string) as CycleFigures;
  await waitFor(() => emulator.stats().openStreams === 0, "no open streams");
  return { session, task, figures, before, after: emulator.stats() };
}

it(
  `${CYCLES} watchTask subscribe/unsubscribe cycles leave no stream open and no heap growth`,
  async () => {
    const { session, task, figures, before, after } = await cyclesOnRunningTask();
    const started = after.streamsStarted - before.streamsStarted;
    const cancelled = after.streamsCancelled - before.streamsCancelled;
    const total = figures.warmup + figures.cycles;
    console.info(
      `watch cycles: ${total} in child, server saw ${started} streams, ${cancelled} cancelled; ` +
        `heap baseline ${(figures.baseline / MB).toFixed(1)} MB, after ${CYCLES / 2} ` +
        `${(figures.mid / MB).toFixed(1)} MB, after ${CYCLES} ${(figures.end / MB).toFixed(1)} MB; ` +
        `${figures.ms} ms`,
    );
    // Every WatchTask the server opened was cancelled there. Node's HTTP/2
    // server closes a connection after ~1,000 client cancels (its rapid-reset
    // guard, GOAWAY): the watches in flight then resume on a new connection,
    // so a few more streams than cycles are opened.
    // A WatchTask cancelled before the server began its body counts as a call
    // but never as a started stream (connect-node's client can cancel that
    // early): calls may exceed streams, never the other way round.
    expect(started).toBeGreaterThanOrEqual(total);
    expect((after.calls.WatchTask ?? 0) - (before.calls.WatchTask ?? 0)).toBeGreaterThanOrEqual(
      started,
    );
    expect(cancelled).toBe(started);
    expect(after.openStreams).toBe(0);
    // The task is still running: no cycle ended it.
    expect((await session.getTask(task.id)).state).toBe(1);
    // Heap back near the baseline, and flat between the half and the end.
    expect(figures.end).toBeLessThan(figures.baseline + 5 * MB);
    expect(figures.end - figures.mid).toBeLessThan(2.5 * MB);
  },
  CHILD_BUDGET_MS,
);

it(
  `${CYCLES} polled watchTask cycles (budget 0) open no WatchTask, leave no stream open, no heap growth`,
  async () => {
    const { session, task, figures, before, after } = await cyclesOnRunningTask(["20", "0"]);
    const lists = (after.calls.ListTask ?? 0) - (before.calls.ListTask ?? 0);
    console.info(
      `polled watch cycles: ${lists} ListTask polls; heap baseline ${(figures.baseline / MB).toFixed(1)} MB, ` +
        `after ${CYCLES / 2} ${(figures.mid / MB).toFixed(1)} MB, after ${CYCLES} ` +
        `${(figures.end / MB).toFixed(1)} MB; ${figures.ms} ms`,
    );
    expect((after.calls.WatchTask ?? 0) - (before.calls.WatchTask ?? 0)).toBe(0);
    // Polls are shared: fewer than one per cycle, and every stream was a poll.
    expect(lists).toBeGreaterThan(0);
    expect(lists).toBeLessThan(CYCLES);
    expect(after.streamsStarted - before.streamsStarted).toBe(lists);
    expect(after.openStreams).toBe(0);
    expect((await session.getTask(task.id)).state).toBe(1);
    expect(figures.end).toBeLessThan(figures.baseline + 5 * MB);
    expect(figures.end - figures.mid).toBeLessThan(2.5 * MB);
  },
  CHILD_BUDGET_MS,
);
