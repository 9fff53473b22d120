// The web client in Chromium against the emulator directly, over gRPC-Web on
// HTTP/1.1 from a page on another origin (so CORS is exercised too).
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientPage, Gate, openClientPage, until } from "./harness.js";

let client: ClientPage;
let emulator: Emulator;
const held = new Gate(); // opened only at the end
const step = new Gate(); // opened by the watch test
const dropped = new Gate(); // opened by the dropped-stream test

const call: ClientPage["call"] = (name, ...args) => client.call(name, ...args);

beforeAll(async () => {
  client = await openClientPage();
  emulator = await startEmulator({
    port: 0,
    corsOrigins: [client.origin],
    applications: {
      echo: { description: "echoes its input" },
      hold: { description: "runs until the end of the file" },
      step: { description: "runs until the watch test lets it finish" },
      drop: { description: "runs until the dropped-stream test lets it finish" },
    },
  });
  emulator.serve("echo", async ({ input }) => `echo:${new TextDecoder().decode(input)}`);
  emulator.serve("hold", () => held.wait().then(() => "released"));
  emulator.serve("step", () => step.wait().then(() => "stepped"));
  emulator.serve("drop", () => dropped.wait().then(() => "survived"));
});

afterAll(async () => {
  held.open();
  step.open();
  dropped.open();
  await client?.close();
  await emulator?.close();
});

describe("web client against the emulator", () => {
  it("runs over HTTP from a different origin than the page", () => {
    expect(new URL(emulator.url).protocol).toBe("http:");
    expect(new URL(emulator.url).origin).not.toBe(client.origin);
  });

  it("lists the built-in applications", async () => {
    expect(await call("listApplications", emulator.url)).toEqual(
      expect.arrayContaining(["echo", "flmexec", "flmping", "flmrun"]),
    );
  });

  it("speaks the Connect protocol in JSON when given createConnectTransport", async () => {
    const over = await call("listApplicationsOverConnect", emulator.url);
    expect(over.names).toEqual(expect.arrayContaining(["echo", "flmping"]));
    expect(over.sent).toEqual(["application/json"]);
  });

  it("creates a session and runs tasks to Succeed with their outputs", async () => {
    const run = await call("runTasks", emulator.url, "echo", ["a", "b", "c"]);
    expect(run.sessionListed).toBe(true);
    expect(run.results.map((r) => r.state)).toEqual(["Succeed", "Succeed", "Succeed"]);
    expect(run.results.map((r) => r.output).sort()).toEqual(["echo:a", "echo:b", "echo:c"]);
  });

  it("openChannel and the standalone functions list, open and watch (the bench's page)", async () => {
    const run = await call("standaloneListAndWatch", emulator.url, "echo", 5);
    expect(run.listed).toBe(true);
    expect(run.application).toBe("echo");
    expect(run.states).toHaveLength(5);
    for (const seen of run.states) {
      // The current state first, the terminal state once and last.
      expect(["Pending", "Running", "Succeed"]).toContain(seen[0]);
      expect(seen.at(-1)).toBe("Succeed");
      expect(seen.filter((s) => s === "Succeed")).toHaveLength(1);
    }
  });

  it("watchTask emits the current state first, then the terminal state once, then completes", async () => {
    const { handle } = await call("startWatch", emulator.url, "step");
    await until(async () => (await call("watchStates", handle)).length > 0, "the current state");
    const [first] = await call("watchStates", handle);
    expect(["Pending", "Running"]).toContain(first);

    step.open();
    const states = await call("finishWatch", handle);
    expect(states[0]).toBe(first);
    expect(states.slice(-2)).toEqual(["Succeed", "complete"]);
    expect(states.filter((s) => s === "Succeed")).toHaveLength(1);
  });

  it("a watch whose stream the server drops resumes and ends with the terminal state once", async () => {
    await until(() => emulator.stats().openStreams === 0, "earlier streams to end");
    const { handle } = await call("startWatch", emulator.url, "drop");
    await until(() => emulator.stats().openStreams === 1, "the watch stream to open");
    await until(async () => (await call("watchStates", handle)).length > 0, "the first state");
    const started = emulator.stats().streamsStarted;
    emulator.dropStreams();
    await until(() => emulator.stats().streamsStarted > started, "the watch to open a new stream");
    dropped.open();
    const states = await call("finishWatch", handle);
    expect(states.slice(-2)).toEqual(["Succeed", "complete"]);
    expect(states.filter((s) => s === "Succeed")).toHaveLength(1);
    expect(states.some((s) => s.startsWith("error"))).toBe(false);
  });

  it("rejects a URL a browser cannot use with an invalid-config FlameError", async () => {
    const ftp = await call("connectError", "ftp://127.0.0.1:21");
    expect(ftp).toMatchObject({ isFlameError: true, kind: "invalid-config" });
    expect(ftp?.message).toContain("ftp:");
    expect(await call("connectError", "not a url")).toMatchObject({
      isFlameError: true,
      kind: "invalid-config",
    });
    expect(await call("connectError", emulator.url)).toBeUndefined();
  });

  it("a watch unsubscribed in the page is cancelled on the server", async () => {
    await until(() => emulator.stats().openStreams === 0, "earlier streams to end");
    const before = emulator.stats().streamsCancelled;
    const { handle } = await call("startWatch", emulator.url, "hold");
    await until(() => emulator.stats().openStreams === 1, "the watch stream to open");
    await until(async () => (await call("watchStates", handle)).length > 0, "the first state");
    await call("stopWatch", handle);
    await until(() => emulator.stats().streamsCancelled > before, "the server to see the cancel");
    await until(() => emulator.stats().openStreams === 0, "no stream left open");
    expect(emulator.stats().streamsCancelled).toBe(before + 1);
  });
});
