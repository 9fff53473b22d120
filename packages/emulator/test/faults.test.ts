import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { collect, type Harness, startHarness, stateOf, waitFor, waitForTask } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());
beforeEach(() => {
  h.emulator.reset();
  h.emulator.resume();
});

const pendingTask = async (sessionId: string) => {
  h.emulator.pause();
  await h.client.createSession({ sessionId, session: { application: "flmexec" } });
  await h.client.createTask({ task: { sessionId } });
};

describe("dropStreams", () => {
  it("breaks an open WatchTask stream with an error on the client", async () => {
    await pendingTask("d");
    const watching = collect(h.client.watchTask({ sessionId: "d", taskId: "1" })).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    h.emulator.dropStreams();
    const error = await watching;
    expect(error).toBeInstanceOf(ConnectError);
    expect(Code[(error as ConnectError).code]).not.toBe(Code[Code.NotFound]);
    await waitFor(() => h.emulator.stats().openStreams === 0, "streams closed");
    // Dropped by the server, not cancelled by the client.
    expect(h.emulator.stats().streamsCancelled).toBe(0);
    // The connection is still usable and the state intact.
    expect(stateOf(await h.client.getTask({ sessionId: "d", taskId: "1" }))).toBe(
      TaskState.Pending,
    );
  });
});

describe("restart", () => {
  it("listens again on the same port with all state kept", async () => {
    await h.client.registerApplication({ name: "kept", application: {} });
    await pendingTask("r");
    const watching = collect(h.client.watchTask({ sessionId: "r", taskId: "1" })).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    const port = h.emulator.port;
    await h.emulator.restart();
    expect(h.emulator.port).toBe(port);
    // The open stream broke with the connection.
    expect(await watching).toBeInstanceOf(ConnectError);

    // A new client reaches the same state on the same URL.
    const client = createClient(Frontend, createGrpcTransport({ baseUrl: h.emulator.url }));
    expect((await client.getApplication({ name: "kept" })).metadata?.name).toBe("kept");
    expect(stateOf(await client.getTask({ sessionId: "r", taskId: "1" }))).toBe(TaskState.Pending);
    h.emulator.resume();
    expect(stateOf(await waitForTask(client, "r", "1"))).toBe(TaskState.Succeed);
    // The old client reconnects by itself on its next call.
    expect((await h.client.getSession({ sessionId: "r" })).status?.succeed).toBe(1);
  });
});

describe("restart with a task running", () => {
  it("lets the running task finish after the restart", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    h.emulator.serve("held", () => released.then(() => "finished"));
    try {
      await h.client.registerApplication({ name: "held", application: {} });
      await h.client.createSession({ sessionId: "run", session: { application: "held" } });
      await h.client.createTask({ task: { sessionId: "run" } });
      await waitFor(
        async () => (await h.client.getSession({ sessionId: "run" })).status?.running === 1,
        "Running",
      );
      await h.emulator.restart();
      release();
      // A fresh connection: the old one was cut (its next call may fail once, as after a real restart).
      const client = createClient(Frontend, createGrpcTransport({ baseUrl: h.emulator.url }));
      const done = await waitForTask(client, "run", "1");
      expect(stateOf(done)).toBe(TaskState.Succeed);
      expect(new TextDecoder().decode(done.spec?.output)).toBe("finished");
    } finally {
      h.emulator.unserve("held");
    }
  });
});

describe("stats", () => {
  it("counts calls per method and a client-cancelled stream", async () => {
    await pendingTask("s");
    const before = h.emulator.stats();
    expect(before.calls).toMatchObject({ CreateSession: 1, CreateTask: 1 });
    const controller = new AbortController();
    const watching = collect(
      h.client.watchTask({ sessionId: "s", taskId: "1" }, { signal: controller.signal }),
    ).catch((e: unknown) => e);
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    expect(h.emulator.stats().streamsStarted).toBe(1);
    controller.abort();
    expect(ConnectError.from(await watching).code).toBe(Code.Canceled);
    const after = await waitFor(() => {
      const stats = h.emulator.stats();
      return stats.streamsCancelled === 1 ? stats : undefined;
    }, "server to see the cancel");
    expect(after.openStreams).toBe(0);
    expect(after.calls.WatchTask).toBe(1);
  });

  it("a stream that completes is not counted as cancelled", async () => {
    await h.client.createSession({ sessionId: "c", session: { application: "flmexec" } });
    await h.client.createTask({ task: { sessionId: "c" } });
    await waitForTask(h.client, "c", "1");
    await collect(h.client.watchTask({ sessionId: "c", taskId: "1" }));
    await collect(h.client.listTask({ sessionId: "c" }));
    const stats = h.emulator.stats();
    expect(stats.streamsStarted).toBe(2);
    expect(stats.streamsCancelled).toBe(0);
    expect(stats.calls).toMatchObject({ WatchTask: 1, ListTask: 1 });
  });
});

describe("reset", () => {
  it("clears sessions, ends watches and counters, keeps the defaults", async () => {
    await pendingTask("x");
    await h.client.registerApplication({ name: "tmp", application: {} });
    const watching = collect(h.client.watchTask({ sessionId: "x", taskId: "1" }));
    await waitFor(() => h.emulator.stats().openStreams === 1, "watch to open");
    h.emulator.reset();
    expect(await watching).toEqual([]);
    expect((await h.client.listSession({})).sessions).toEqual([]);
    expect((await h.client.listApplication({})).applications).toHaveLength(3);
    expect(h.emulator.stats().calls).toEqual({ ListSession: 1, ListApplication: 1 });
  });
});
