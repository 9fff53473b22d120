// Retries against a server that goes away: a TCP proxy in front of the
// emulator is switched off (connections refused) and on again on the same port.
import * as net from "node:net";
import type { Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Connection, type FlameError, TaskState } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { lastValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejection, waitFor } from "./helpers.js";

class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every connection: new calls are refused. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

let emulator: Emulator;
let proxy: TcpProxy;
let connection: Connection;
const sent: Record<string, number> = {};

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  proxy = new TcpProxy(emulator.port);
  await proxy.start();
  const count: Interceptor = (next) => (req) => {
    sent[req.method.name] = (sent[req.method.name] ?? 0) + 1;
    return next(req);
  };
  connection = new Connection(
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, interceptors: [count] }),
    { retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 } },
  );
});
afterAll(async () => {
  await connection.close();
  await proxy.stop();
  await emulator.close();
});

describe("retries when the server is unreachable", () => {
  it("CreateTask is tried once and not repeated; reads are retried", async () => {
    const s = await connection.createSession({ application: "flmexec" });
    await s.run(new Uint8Array([1]));
    const serverCreates = emulator.stats().calls.CreateTask ?? 0;
    const clientCreates = sent.CreateTask ?? 0;
    await proxy.stop();

    const create = (await rejection(s.createTask(new Uint8Array([2])))) as FlameError;
    expect(create.kind, create.message).toBe("unavailable");
    expect(create.method).toBe("CreateTask");
    expect((sent.CreateTask ?? 0) - clientCreates).toBe(1);

    const createSessions = sent.CreateSession ?? 0;
    const cs = (await rejection(
      connection.createSession({ application: "flmexec" }),
    )) as FlameError;
    expect(cs.kind).toBe("unavailable");
    expect((sent.CreateSession ?? 0) - createSessions).toBe(1);

    const gets = sent.GetTask ?? 0;
    const get = (await rejection(s.getTask("1"))) as FlameError;
    expect(get.kind).toBe("unavailable");
    expect((sent.GetTask ?? 0) - gets).toBe(3);

    await proxy.start();
    // Back up: the failed CreateTask never reached the server and is not replayed.
    expect((await s.getTask("1")).state).toBe(TaskState.Succeed);
    expect(await s.listTasks()).toHaveLength(1);
    expect(emulator.stats().calls.CreateTask ?? 0).toBe(serverCreates);
  });

  it("a watch rides out a short outage and ends with the terminal state once", async () => {
    const app = "flmexec";
    emulator.pause();
    const s = await connection.createSession({ application: app });
    const t = await s.createTask(new Uint8Array([3]));
    const seen: TaskState[] = [];
    const done = lastValueFrom(s.watchTask(t.id, { maxResumes: 100 }));
    const sub = s.watchTask(t.id, { maxResumes: 100 }).subscribe((x) => seen.push(x.state));
    await waitFor(() => seen.length === 1, "the current state");
    await proxy.stop();
    await new Promise((r) => setTimeout(r, 50));
    emulator.resume();
    await proxy.start();
    const last = await done;
    expect(last.state).toBe(TaskState.Succeed);
    await waitFor(() => seen.at(-1) === TaskState.Succeed, "the terminal state");
    expect(seen.filter((x) => x === TaskState.Succeed)).toHaveLength(1);
    sub.unsubscribe();
  });
});

describe("deadlines and cancellation of unary calls against a server that never answers", () => {
  let blackHole: net.Server;
  let url: string;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    blackHole = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => blackHole.close(() => resolve()));
  });

  it("a per-call timeoutMs ends with kind deadline-exceeded", async () => {
    const c = new Connection(createGrpcTransport({ baseUrl: url }), { retry: false });
    try {
      const err = (await rejection(c.listSessions({ timeoutMs: 100 }))) as FlameError;
      expect(err.kind).toBe("deadline-exceeded");
      expect(err.method).toBe("ListSession");
    } finally {
      await c.close();
    }
  });

  it("the connection's default timeoutMs applies to unary calls", async () => {
    const c = new Connection(createGrpcTransport({ baseUrl: url }), { timeoutMs: 100 });
    try {
      const err = (await rejection(c.getApplication("flmexec"))) as FlameError;
      expect(err.kind).toBe("deadline-exceeded");
    } finally {
      await c.close();
    }
  });

  it("aborting the caller's signal mid-call ends with kind cancelled", async () => {
    const c = new Connection(createGrpcTransport({ baseUrl: url }));
    try {
      const ac = new AbortController();
      const pending = rejection(c.listNodes({ signal: ac.signal }));
      setTimeout(() => ac.abort(), 50);
      const err = (await pending) as FlameError;
      expect(err.kind).toBe("cancelled");
    } finally {
      await c.close();
    }
  });

  it("closing the connection aborts a call in flight with a clear error", async () => {
    const c = new Connection(createGrpcTransport({ baseUrl: url }));
    const pending = rejection(c.listExecutors());
    setTimeout(() => void c.close(), 50);
    const err = (await pending) as FlameError;
    expect(err.kind).toBe("cancelled");
    expect(err.message).toContain("connection is closed");
  });
});
