// watchSession in Chromium over HTTP/1.1, where the browser holds at most six
// connections per origin and each open gRPC-Web stream takes one. Fifty
// tasks are watched at once; every terminal state must arrive, and unary
// calls must still get through while the watch is open. A control shows
// that one watchTask per task really does starve them.
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientPage, Gate, openClientPage, until } from "./harness.js";

const TASKS = 50;
/** Chromium's HTTP/1.1 connections per origin. */
const BROWSER_CONNECTIONS = 6;

let client: ClientPage;
let emulator: Emulator;
const gate = new Gate(); // holds the watchSession test's tasks
const controlGate = new Gate(); // holds the control's tasks
const budgetGate = new Gate(); // holds the default-budget test's tasks

const call: ClientPage["call"] = (name, ...args) => client.call(name, ...args);

beforeAll(async () => {
  client = await openClientPage();
  emulator = await startEmulator({
    port: 0,
    corsOrigins: [client.origin],
    applications: {
      gated: { description: "runs until the test opens the gate" },
      control: { description: "runs until the control test ends" },
      budget: { description: "runs until the default-budget test opens its gate" },
    },
  });
  emulator.serve("gated", async ({ taskId }) => {
    await gate.wait();
    return `done ${taskId}`;
  });
  emulator.serve("control", () => controlGate.wait().then(() => "done"));
  emulator.serve("budget", () => budgetGate.wait().then(() => "done"));
});

afterAll(async () => {
  gate.open();
  controlGate.open();
  budgetGate.open();
  await client?.close();
  await emulator?.close();
});

describe(`${TASKS} tasks watched from a browser over HTTP/1.1`, () => {
  it("control: one watchTask per task takes every connection and starves a unary call", async () => {
    expect(new URL(emulator.url).protocol).toBe("http:"); // no HTTP/2 for the browser
    // A budget above the browser's connections: one stream per watched task.
    await call("startNaiveWatches", emulator.url, "control", TASKS, TASKS);
    await until(
      () => emulator.stats().openStreams >= BROWSER_CONNECTIONS,
      "the browser to fill its connections",
    );
    // The tasks are held, so no stream ends and no connection frees up: the
    // call can only end by its deadline.
    const starved = await call("tryListApplications", emulator.url, 1500);
    expect(starved).toMatchObject({ error: { kind: "deadline-exceeded" } });
    expect(emulator.stats().openStreams).toBe(BROWSER_CONNECTIONS);
    await call("stopNaiveWatches");
    controlGate.open();
    await until(() => emulator.stats().openStreams === 0, "the naive watches to close");
  });

  it("watchTask per task within the web default budget keeps unary calls working", async () => {
    // connect() from @flame-ts/web gives at most three watches a stream of
    // their own; the other 47 share one ListTask poll.
    await call("startNaiveWatches", emulator.url, "budget", TASKS);
    await until(
      async () => Object.keys(await call("naiveWatchStates")).length === TASKS,
      "every watch to emit the current state",
    );
    // Every task is held, so every watch is live; a unary call still gets through.
    const listed = await call("tryListApplications", emulator.url);
    expect(listed).toEqual({ names: expect.arrayContaining(["budget"]) });
    expect(emulator.stats().openStreams).toBeLessThan(BROWSER_CONNECTIONS);

    budgetGate.open();
    const finished = async () => {
      const states = await call("naiveWatchStates");
      return (
        Object.keys(states).length === TASKS &&
        Object.values(states).every((seen) => seen.at(-1) === "Succeed")
      );
    };
    await until(finished, "every watched task to reach Succeed");
    const states = await call("naiveWatchStates");
    for (const seen of Object.values(states)) {
      // Current state first, one terminal state, last.
      expect(seen.filter((s) => s === "Succeed")).toHaveLength(1);
    }
    await call("stopNaiveWatches");
    await until(() => emulator.stats().openStreams === 0, "every watch stream to close");
  });

  it("watchSession keeps unary calls working, then delivers every terminal state", async () => {
    const { sessionId } = await call("startSessionWatch", emulator.url, "gated", TASKS);
    expect(sessionId).toBeTruthy();
    await until(() => emulator.stats().openStreams > 0, "the watch to open its streams");

    // Every task is held, so the watch is live and busy; a unary call must
    // still find a connection.
    const listed = await call("tryListApplications", emulator.url);
    expect(listed).toEqual({ names: expect.arrayContaining(["gated"]) });
    const progress = await call("sessionWatchProgress");
    expect(progress.terminal).toBe(0);
    expect(progress.total).toBe(TASKS);
    expect(emulator.stats().openStreams).toBeLessThan(BROWSER_CONNECTIONS);

    gate.open();
    const { states } = await call("finishSessionWatch");
    expect(Object.keys(states)).toHaveLength(TASKS);
    expect(new Set(Object.values(states))).toEqual(new Set(["Succeed"]));
    await until(() => emulator.stats().openStreams === 0, "every watch stream to close");
  });
});
