// Faults below HTTP: a proxy that cuts connections mid-call, and an
// upstream that accepts connections but never answers. Every call ends
// with a typed FlameError; writes are never repeated; reads are retried.
import { FlameError, type Logger, type Task, TaskState } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Connection, connect } from "@flame-ts/node";
import { lastValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countingInterceptor, emissionProblem, gate, rejection, waitFor } from "./helpers.js";
import { SilentServer, TcpProxy } from "./tcp-proxy.js";

let emulator: Emulator;
let proxy: TcpProxy;
let silent: SilentServer;
const connections: Connection[] = [];
const sent: Record<string, number> = {};
const hold = gate();

async function open(url: string, options: Parameters<typeof connect>[1] = {}) {
  const c = await connect(url, { interceptors: [countingInterceptor(sent)], ...options });
  connections.push(c);
  return c;
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  proxy = new TcpProxy(emulator.port);
  await proxy.start();
  silent = new SilentServer();
  await silent.start();
});
afterAll(async () => {
  hold.open();
  for (const c of connections) await c.close();
  await proxy?.stop();
  await silent?.close();
  await emulator?.close();
});

const retry = { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 40 };

describe("a connection reset by the proxy mid-call", () => {
  it("fails an in-flight CreateTask with a typed error and does not send it again", async () => {
    const c = await open(proxy.url, { retry });
    const s = await c.createSession({ application: "flmexec" });
    const serverBefore = emulator.stats().calls.CreateTask ?? 0;
    const clientBefore = sent.CreateTask ?? 0;
    proxy.hold(true);
    const pending = rejection(s.createTask(new Uint8Array([42])));
    // The request reached the server (the task exists); its answer never comes back.
    await waitFor(() => (emulator.stats().calls.CreateTask ?? 0) > serverBefore, "the CreateTask");
    proxy.reset();
    proxy.hold(false);
    const err = (await pending) as FlameError;
    expect(FlameError.is(err), String(err)).toBe(true);
    expect(err.kind).toBe("unavailable");
    expect(err.method).toBe("CreateTask");
    // Not repeated by the client, so the server holds exactly one task.
    expect((sent.CreateTask ?? 0) - clientBefore).toBe(1);
    expect((emulator.stats().calls.CreateTask ?? 0) - serverBefore).toBe(1);
    const tasks = await s.listTasks();
    expect(tasks.map((t) => t.id)).toEqual(["1"]);
  });

  it("fails an in-flight CreateSession once, without a second attempt", async () => {
    const c = await open(proxy.url, { retry });
    await c.listApplications(); // the connection is up
    const before = sent.CreateSession ?? 0;
    const serverBefore = emulator.stats().calls.CreateSession ?? 0;
    proxy.hold(true);
    const pending = rejection(c.createSession({ application: "flmexec" }));
    await waitFor(
      () => (emulator.stats().calls.CreateSession ?? 0) > serverBefore,
      "the CreateSession",
    );
    proxy.reset();
    proxy.hold(false);
    const err = (await pending) as FlameError;
    expect(err.kind).toBe("unavailable");
    expect(err.method).toBe("CreateSession");
    expect((sent.CreateSession ?? 0) - before).toBe(1);
    expect((emulator.stats().calls.CreateSession ?? 0) - serverBefore).toBe(1);
  });

  it("retries an in-flight GetTask and ListTask on a new connection and succeeds", async () => {
    const c = await open(proxy.url, { retry });
    const s = await c.createSession({ application: "flmexec" });
    const t = await s.run(new Uint8Array([1]));
    for (const [method, call] of [
      ["GetTask", () => s.getTask(t.taskId)],
      ["ListTask", () => s.listTasks()],
    ] as const) {
      const before = sent[method] ?? 0;
      const serverBefore = emulator.stats().calls[method] ?? 0;
      proxy.hold(true);
      const pending = (call as () => Promise<Task | Task[]>)();
      await waitFor(() => (emulator.stats().calls[method] ?? 0) > serverBefore, method);
      proxy.reset();
      proxy.hold(false);
      const result = await pending;
      const task = Array.isArray(result) ? result[0] : result;
      expect(task?.state).toBe(TaskState.Succeed);
      expect((sent[method] ?? 0) - before).toBe(2);
    }
  });

  it("a watch cut mid-stream resumes and ends with one terminal state", async () => {
    const c = await open(proxy.url, { retry });
    const app = "held-proxy";
    await c.registerApplication(app, {});
    emulator.serve(app, () => hold.promise.then(() => "done"));
    const s = await c.createSession({ application: app });
    const t = await s.createTask();
    const seen: Task[] = [];
    const done = new Promise<void>((resolve, reject) =>
      s.watchTask(t.id).subscribe({ next: (x) => seen.push(x), error: reject, complete: resolve }),
    );
    await waitFor(() => emulator.stats().openStreams > 0 && seen.length > 0, "an open watch");
    const accepted = proxy.accepted;
    proxy.reset();
    await waitFor(() => proxy.accepted > accepted, "a new connection");
    await waitFor(() => emulator.stats().openStreams > 0, "the watch to resume");
    hold.open();
    await done;
    expect(emissionProblem(seen)).toBeUndefined();
    expect(seen.at(-1)?.state).toBe(TaskState.Succeed);
  });
});

describe("an upstream that accepts connections and never answers", () => {
  it("unary calls end with deadline-exceeded, writes and reads alike", async () => {
    const c = await open(silent.url, { timeoutMs: 200, retry });
    for (const call of [
      () => c.listApplications(),
      () => c.getSession("s"),
      () => c.createSession({ id: "s", application: "flmexec" }),
      () => c.registerApplication("a", {}),
    ]) {
      const err = (await rejection(call())) as FlameError;
      expect(FlameError.is(err), String(err)).toBe(true);
      expect(err.kind, err.message).toBe("deadline-exceeded");
      expect(err.method).toBeTruthy();
    }
    expect(silent.accepted).toBeGreaterThan(0);
  });

  it("a per-call timeoutMs ends a call even without a connection default", async () => {
    const c = await open(silent.url, { retry: false });
    const err = (await rejection(c.getApplication("flmping", { timeoutMs: 150 }))) as FlameError;
    expect(err.kind).toBe("deadline-exceeded");
    expect(err.method).toBe("GetApplication");
  });

  it("a watch on a server that stops answering ends with a typed error, not a hang", async () => {
    // Through the proxy: the session is real, then the server's answers stop.
    const c = await open(proxy.url, { timeoutMs: 300, retry });
    const s = await c.createSession({ application: "flmexec" });
    const t = await s.run();
    proxy.hold(true);
    try {
      const err = (await rejection(lastValueFrom(s.watchTask(t.taskId)))) as FlameError;
      expect(FlameError.is(err), String(err)).toBe(true);
      expect(err.kind).toBe("deadline-exceeded");
      expect(err.method).toBe("GetTask");
      // And a stream with its own deadline ends too.
      const list = (await rejection(s.listTasks({ timeoutMs: 200 }))) as FlameError;
      expect(list.kind).toBe("deadline-exceeded");
      expect(list.method).toBe("ListTask");
    } finally {
      proxy.hold(false);
      proxy.reset();
    }
  });
});

describe("a server that goes silent under an open watch", () => {
  it("is found out by HTTP/2 keep-alive PINGs, and the watch resumes on a new connection", async () => {
    // A watch of a long task legitimately hears nothing for a long time, so
    // it has no deadline; keep-alive is what tells a dead peer from a quiet one.
    const c = await open(proxy.url, {
      retry,
      timeoutMs: 300,
      http2: { pingIntervalMs: 100, pingTimeoutMs: 200 },
    });
    const app = "held-silent";
    await c.registerApplication(app, {});
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    emulator.serve(app, () => held.then(() => "done"));
    const s = await c.createSession({ application: app });
    const t = await s.createTask();
    const seen: Task[] = [];
    let error: unknown;
    const done = new Promise<void>((resolve) =>
      s.watchTask(t.id, { maxResumes: 100 }).subscribe({
        next: (x) => seen.push(x),
        error: (e) => {
          error = e;
          resolve();
        },
        complete: resolve,
      }),
    );
    await waitFor(() => emulator.stats().openStreams > 0 && seen.length > 0, "an open watch");
    const accepted = proxy.accepted;
    proxy.hold(true);
    // The unanswered PING closes the connection; the client dials again.
    await waitFor(() => proxy.accepted > accepted, "a new connection after the PING timeout");
    proxy.hold(false);
    proxy.reset();
    release();
    await done;
    expect(error).toBeUndefined();
    expect(emissionProblem(seen)).toBeUndefined();
    expect(seen.at(-1)?.state).toBe(TaskState.Succeed);
  });
});

describe("retry schedule", () => {
  it("reads back off exponentially with jitter, capped; writes are not retried", async () => {
    const lines: { msg: string; fields: Record<string, unknown> | undefined }[] = [];
    const record = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      lines.push({ msg: `${level}:${msg}`, fields });
    const logger: Logger = {
      debug: record("debug"),
      info: record("info"),
      warn: record("warn"),
      error: record("error"),
    };
    // Nothing listens on a stopped proxy's port: every attempt is refused.
    const dead = new TcpProxy(emulator.port);
    await dead.start();
    const url = dead.url;
    await dead.stop();
    const policy = { maxAttempts: 6, initialDelayMs: 20, maxDelayMs: 100 };
    const delays: number[][] = [];
    for (let run = 0; run < 3; run++) {
      lines.length = 0;
      const c = await open(url, { retry: policy, logger });
      const err = (await rejection(c.listSessions())) as FlameError;
      expect(err.kind).toBe("unavailable");
      expect(err.method).toBe("ListSession");
      const retries = lines.filter((l) => l.msg === "warn:retrying");
      expect(retries.map((l) => l.fields?.attempt)).toEqual([1, 2, 3, 4, 5]);
      delays.push(retries.map((l) => Number(l.fields?.delayMs)));
      const before = sent.CreateTask ?? 0;
      lines.length = 0;
      const s = (await rejection(c.createSession({ application: "flmexec" }))) as FlameError;
      expect(s.kind).toBe("unavailable");
      expect(lines.filter((l) => l.msg === "warn:retrying")).toHaveLength(0);
      expect(sent.CreateTask ?? 0).toBe(before);
    }
    for (const run of delays) {
      run.forEach((d, n) => {
        const capped = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** n);
        // Equal jitter: half fixed, half random (rounded to whole ms in the log).
        expect(d).toBeGreaterThanOrEqual(Math.floor(capped / 2));
        expect(d).toBeLessThanOrEqual(Math.ceil(capped));
      });
    }
    // Jitter: three runs do not all wait the same.
    const flat = delays.map((r) => r.join(","));
    expect(new Set(flat).size).toBeGreaterThan(1);
  });
});
