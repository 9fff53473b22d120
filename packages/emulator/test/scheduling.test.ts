import * as os from "node:os";
import { Code } from "@connectrpc/connect";
import { ExecutorState, NodeState, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { TaskHandler } from "../src/index.js";
import {
  expectCode,
  gate,
  type Harness,
  startHarness,
  stateOf,
  waitFor,
  waitForTask,
} from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ hostname: "emu-node" });
});
afterAll(() => h.emulator.close());
beforeEach(async () => {
  h.emulator.reset();
  h.emulator.unserve("app");
  await h.client.registerApplication({ name: "app", application: {} });
});

/** A handler that counts how many of its calls overlap; each call waits for release. */
const concurrencyProbe = () => {
  let current = 0;
  let peak = 0;
  const order: string[] = [];
  const release = gate();
  const handler: TaskHandler = async ({ sessionId, taskId }) => {
    order.push(`${sessionId}/${taskId}`);
    current++;
    peak = Math.max(peak, current);
    await release.opened;
    // Let the others pile up before leaving, so overlaps are visible.
    await new Promise((resolve) => setTimeout(resolve, 2));
    current--;
    return undefined;
  };
  return {
    handler,
    release,
    order,
    get current() {
      return current;
    },
    get peak() {
      return peak;
    },
  };
};

const runningOf = async (sessionId: string) =>
  (await h.client.getSession({ sessionId })).status?.running ?? 0;

describe("concurrency limits", () => {
  it("a session's max_instances caps its running tasks", async () => {
    const probe = concurrencyProbe();
    h.emulator.serve("app", probe.handler);
    await h.client.createSession({
      sessionId: "m",
      session: { application: "app", maxInstances: 2 },
    });
    for (let i = 0; i < 6; i++) await h.client.createTask({ task: { sessionId: "m" } });
    await waitFor(() => probe.current === 2, "two running");
    const session = await h.client.getSession({ sessionId: "m" });
    expect(session.status).toMatchObject({ running: 2, pending: 4 });
    probe.release.open();
    await waitForTask(h.client, "m", "6");
    await waitFor(
      async () => (await h.client.getSession({ sessionId: "m" })).status?.succeed === 6,
    );
    expect(probe.peak).toBe(2);
  });

  it("without max_instances tasks run side by side", async () => {
    const probe = concurrencyProbe();
    h.emulator.serve("app", probe.handler);
    await h.client.createSession({ sessionId: "u", session: { application: "app" } });
    for (let i = 0; i < 5; i++) await h.client.createTask({ task: { sessionId: "u" } });
    await waitFor(() => probe.current === 5, "five running");
    probe.release.open();
    await waitForTask(h.client, "u", "5");
  });

  it("an application's max_instances caps running tasks across its sessions", async () => {
    const probe = concurrencyProbe();
    h.emulator.serve("app", probe.handler);
    await h.client.updateApplication({ name: "app", application: { maxInstances: 3 } });
    for (const id of ["a", "b"]) {
      await h.client.createSession({ sessionId: id, session: { application: "app" } });
      for (let i = 0; i < 3; i++) await h.client.createTask({ task: { sessionId: id } });
    }
    await waitFor(() => probe.current === 3, "three running");
    expect((await runningOf("a")) + (await runningOf("b"))).toBe(3);
    probe.release.open();
    await waitForTask(h.client, "a", "3");
    await waitForTask(h.client, "b", "3");
    expect(probe.peak).toBe(3);
  });

  it("maxExecutors caps the node", async () => {
    const small = await startHarness({ maxExecutors: 2 });
    try {
      const probe = concurrencyProbe();
      small.emulator.serve("flmexec", probe.handler);
      for (const id of ["x", "y"]) {
        await small.client.createSession({ sessionId: id, session: { application: "flmexec" } });
        for (let i = 0; i < 3; i++) await small.client.createTask({ task: { sessionId: id } });
      }
      await waitFor(() => probe.current === 2, "two running");
      expect((await small.client.listExecutor({})).executors).toHaveLength(2);
      probe.release.open();
      await waitForTask(small.client, "x", "3");
      await waitForTask(small.client, "y", "3");
      expect(probe.peak).toBe(2);
    } finally {
      await small.emulator.close();
    }
  });
});

describe("priority", () => {
  it("a higher-priority session's tasks start first after resume", async () => {
    const probe = concurrencyProbe();
    probe.release.open();
    h.emulator.serve("app", probe.handler);
    // One instance for the whole application, so tasks run one at a time.
    await h.client.updateApplication({ name: "app", application: { maxInstances: 1 } });
    h.emulator.pause();
    await h.client.createSession({
      sessionId: "low",
      session: { application: "app", priority: 1 },
    });
    await h.client.createSession({
      sessionId: "high",
      session: { application: "app", priority: 9 },
    });
    await h.client.createSession({ sessionId: "zero", session: { application: "app" } });
    for (const id of ["low", "zero", "high"]) {
      for (let i = 0; i < 2; i++) await h.client.createTask({ task: { sessionId: id } });
    }
    h.emulator.resume();
    await waitForTask(h.client, "low", "2");
    await waitForTask(h.client, "zero", "2");
    await waitForTask(h.client, "high", "2");
    expect(probe.order).toEqual(["high/1", "high/2", "low/1", "low/2", "zero/1", "zero/2"]);
  });
});

describe("pause, resume and delays", () => {
  it("paused: no task starts; resume runs them", async () => {
    h.emulator.pause();
    await h.client.createSession({ sessionId: "p", session: { application: "app" } });
    await h.client.createTask({ task: { sessionId: "p" } });
    // A round trip later the task is still Pending.
    await h.client.listSession({});
    expect(stateOf(await h.client.getTask({ sessionId: "p", taskId: "1" }))).toBe(
      TaskState.Pending,
    );
    h.emulator.resume();
    expect(stateOf(await waitForTask(h.client, "p", "1"))).toBe(TaskState.Succeed);
  });

  it("pendingDelayMs and runningDelayMs hold tasks in each state", async () => {
    // none keeps milliseconds, so the times below can be compared.
    const slow = await startHarness({ pendingDelayMs: 200, runningDelayMs: 150, storage: "none" });
    try {
      const calledAt: number[] = [];
      slow.emulator.serve("flmexec", () => {
        calledAt.push(Date.now());
        return "done";
      });
      await slow.client.createSession({ sessionId: "d", session: { application: "flmexec" } });
      const created = await slow.client.createTask({ task: { sessionId: "d" } });
      expect(stateOf(created)).toBe(TaskState.Pending);
      const seen: TaskState[] = [];
      for await (const t of slow.client.watchTask({ sessionId: "d", taskId: "1" })) {
        seen.push(stateOf(t) as TaskState);
      }
      expect(seen.at(-1)).toBe(TaskState.Succeed);
      // Lower bounds only (timers never fire early by more than a tick): the
      // handler ran after both delays, so the task sat Pending, then Running.
      const createdAt = Number(created.status?.creationTime);
      expect(calledAt[0]).toBeGreaterThanOrEqual(createdAt + 350 - 2);
      const done = await slow.client.getTask({ sessionId: "d", taskId: "1" });
      expect(Number(done.status?.completionTime) - createdAt).toBeGreaterThanOrEqual(350 - 2);
    } finally {
      await slow.emulator.close();
    }
  });
});

describe("long delays", () => {
  it("a task sits Pending through pendingDelayMs and Running through runningDelayMs", async () => {
    const pending = await startHarness({ pendingDelayMs: 60_000 });
    const running = await startHarness({ runningDelayMs: 60_000 });
    try {
      let called = false;
      running.emulator.serve("flmexec", () => {
        called = true;
        return undefined;
      });
      for (const { client } of [pending, running]) {
        await client.createSession({ sessionId: "d", session: { application: "flmexec" } });
        await client.createTask({ task: { sessionId: "d" } });
      }
      await waitFor(
        async () =>
          stateOf(await running.client.getTask({ sessionId: "d", taskId: "1" })) ===
          TaskState.Running,
        "Running",
      );
      expect(called).toBe(false);
      expect(stateOf(await pending.client.getTask({ sessionId: "d", taskId: "1" }))).toBe(
        TaskState.Pending,
      );
    } finally {
      // close() cancels the timers, so neither emulator holds vitest open.
      await pending.emulator.close();
      await running.emulator.close();
    }
  });
});

describe("executors and nodes", () => {
  it("reports one Ready node as Flame does", async () => {
    const { nodes } = await h.client.listNodes({});
    expect(nodes).toHaveLength(1);
    const node = nodes[0];
    expect(node?.metadata).toMatchObject({ id: "emu-node", name: "emu-node" });
    expect(node?.spec?.hostname).toBe("emu-node");
    expect(node?.status?.state).toBe(NodeState.Ready);
    expect(node?.status?.capacity?.cpu).toBe(BigInt(os.cpus().length));
    expect(node?.status?.capacity?.memory).toBe(BigInt(os.totalmem()));
    // The executor manager reports allocatable = capacity; nothing subtracts.
    expect(node?.status?.allocatable).toEqual(node?.status?.capacity);
    // Rust's names for the platform.
    const arch = { x64: "x86_64", arm64: "aarch64" }[os.arch() as string] ?? os.arch();
    const platform = { darwin: "macos" }[os.platform() as string] ?? os.platform();
    expect(node?.status?.info).toMatchObject({ arch, os: platform });
    expect(node?.status?.addresses).toEqual([]);
    expect(node?.status?.lastHeartbeatTime).toBe(0n);
    const got = await h.client.getNode({ name: "emu-node" });
    expect(got.node?.metadata?.name).toBe("emu-node");
    const error = await expectCode(h.client.getNode({ name: "other" }), Code.NotFound);
    expect(error.rawMessage).toBe("node <other> not found");
  });

  it("maxExecutors 0 is an empty cluster: no node, no executors, tasks stay Pending", async () => {
    const empty = await startHarness({ maxExecutors: 0 });
    try {
      expect((await empty.client.listNodes({})).nodes).toEqual([]);
      await expectCode(empty.client.getNode({ name: os.hostname() }), Code.NotFound);
      await empty.client.createSession({ sessionId: "e", session: { application: "flmexec" } });
      await empty.client.createTask({ task: { sessionId: "e" } });
      await empty.client.listSession({});
      expect(stateOf(await empty.client.getTask({ sessionId: "e", taskId: "1" }))).toBe(
        TaskState.Pending,
      );
      expect((await empty.client.listExecutor({})).executors).toEqual([]);
      expect((await empty.client.getSession({ sessionId: "e" })).status?.events).toEqual([]);
    } finally {
      await empty.emulator.close();
    }
  });

  it("binds executors to a session while its tasks run, then releases them (delay_release 0)", async () => {
    const probe = concurrencyProbe();
    h.emulator.serve("app", probe.handler);
    await h.client.updateApplication({ name: "app", application: { delayRelease: 0n } });
    expect((await h.client.listExecutor({})).executors).toEqual([]);
    await h.client.createSession({
      sessionId: "e",
      session: {
        application: "app",
        maxInstances: 2,
        resreq: { cpu: 1n, memory: 1024n, gpu: 0 },
      },
    });
    for (let i = 0; i < 3; i++) await h.client.createTask({ task: { sessionId: "e" } });
    await waitFor(() => probe.current === 2, "two running");
    const { executors } = await h.client.listExecutor({});
    expect(executors).toHaveLength(2);
    for (const executor of executors) {
      expect(executor.metadata?.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(executor.metadata?.name).toBe(executor.metadata?.id);
      expect(executor.status?.state).toBe(ExecutorState.ExecutorBound);
      expect(executor.status?.sessionId).toBe("e");
      expect(executor.spec?.node).toBe("emu-node");
      expect(executor.spec?.resreq).toMatchObject({ cpu: 1n, memory: 1024n });
    }

    probe.release.open();
    await waitForTask(h.client, "e", "3");
    const after = await waitFor(async () => {
      const list = (await h.client.listExecutor({})).executors;
      return list.every((e) => e.status?.state === ExecutorState.ExecutorIdle) ? list : undefined;
    }, "executors idle");
    expect(after.every((e) => e.status?.sessionId === undefined)).toBe(true);
  });
});

describe("delay_release", () => {
  it("keeps an executor bound to its session after the last task, until the session closes", async () => {
    // Default delay_release: 60 s, far longer than this test.
    await h.client.createSession({ sessionId: "k", session: { application: "app" } });
    await h.client.createTask({ task: { sessionId: "k" } });
    await waitForTask(h.client, "k", "1");
    const bound = (await h.client.listExecutor({})).executors;
    expect(bound).toHaveLength(1);
    expect(bound[0]?.status).toMatchObject({
      state: ExecutorState.ExecutorBound,
      sessionId: "k",
    });
    // The session's next task reuses it.
    await h.client.createTask({ task: { sessionId: "k" } });
    await waitForTask(h.client, "k", "2");
    const again = (await h.client.listExecutor({})).executors;
    expect(again.map((e) => e.metadata?.id)).toEqual(bound.map((e) => e.metadata?.id));
    await h.client.closeSession({ sessionId: "k" });
    const idle = (await h.client.listExecutor({})).executors;
    expect(idle[0]?.status?.state).toBe(ExecutorState.ExecutorIdle);
    expect(idle[0]?.status?.sessionId).toBeUndefined();
  });

  it("unbinds after the application's delay_release seconds", async () => {
    await h.client.updateApplication({ name: "app", application: { delayRelease: 1n } });
    await h.client.createSession({ sessionId: "t", session: { application: "app" } });
    await h.client.createTask({ task: { sessionId: "t" } });
    await waitForTask(h.client, "t", "1");
    expect((await h.client.listExecutor({})).executors[0]?.status?.sessionId).toBe("t");
    await waitFor(async () => {
      const [executor] = (await h.client.listExecutor({})).executors;
      return executor?.status?.state === ExecutorState.ExecutorIdle;
    }, "the executor to unbind");
  });
});
