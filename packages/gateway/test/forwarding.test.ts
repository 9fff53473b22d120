import { Code, ConnectError } from "@connectrpc/connect";
import { TaskState } from "@flame-ts/core";
import { describe, expect, it } from "vitest";
import { startGateway } from "../src/index.js";
import { clientFor, type Protocol } from "./clients.js";
import { eventually, startFakeFlame } from "./fake-flame.js";
import { gatewayToFakeFlame } from "./gateway-fixture.js";

const env = gatewayToFakeFlame();

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function expectConnectError(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

const protocols: Protocol[] = ["grpc-web", "connect", "connect-json", "grpc"];

describe.each(protocols)("over %s", (protocol) => {
  it("forwards unary calls and their answers", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const before = env.flame.calls.GetApplication ?? 0;

    const app = await client.getApplication({ name: "flmping" });
    expect(app.metadata?.name).toBe("flmping");
    expect(app.spec?.description).toBe("the flmping application");
    expect(env.flame.calls.GetApplication).toBe(before + 1);

    const list = await client.listApplication({});
    expect(list.applications.map((a) => a.metadata?.name)).toEqual([
      "flmexec",
      "flmping",
      "flmrun",
    ]);

    const session = await client.createSession({
      sessionId: `s-${protocol}`,
      session: { application: "flmping", minInstances: 2, priority: 3 },
    });
    expect(session.metadata?.id).toBe(`s-${protocol}`);
    expect(session.spec?.minInstances).toBe(2);
    expect(session.spec?.priority).toBe(3);

    const input = new Uint8Array([0, 1, 2, 255]);
    const created = await client.createTask({ task: { sessionId: `s-${protocol}`, input } });
    expect(created.spec?.sessionId).toBe(`s-${protocol}`);
    expect(created.spec?.input).toEqual(input);
    expect(created.status?.creationTime).toBe(1_700_000_000_000n);

    const task = await client.getTask({ sessionId: `s-${protocol}`, taskId: "7" });
    expect(task.metadata?.id).toBe("7");
    expect(task.status?.state).toBe(TaskState.Succeed);
  });

  it("forwards server streams to their end", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const tasks = await collect(client.listTask({ sessionId: "s1" }));
    expect(tasks.map((t) => t.metadata?.id)).toEqual(["1", "2", "3"]);
  });

  it("keeps the upstream's error code and message", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const err = await expectConnectError(client.getApplication({ name: "nope" }));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("application nope not found");
    expect(err.metadata.get("x-error-hint")).toBe("check the name");
  });

  it("passes upstream response headers and trailers on", async () => {
    const client = clientFor(protocol, env.gateway.url);
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    await client.getApplication(
      { name: "flmping" },
      {
        onHeader: (h) => {
          header = h;
        },
        onTrailer: (t) => {
          trailer = t;
        },
      },
    );
    expect(header?.get("x-upstream-header")).toBe("from-flame");
    expect(trailer?.get("x-upstream-trailer")).toBe("done");
  });

  it("ends the client stream with the upstream's error when the upstream stream fails", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const received: (TaskState | undefined)[] = [];
    const err = await expectConnectError(
      (async () => {
        for await (const t of client.watchTask({ sessionId: "s1", taskId: "fail" })) {
          received.push(t.status?.state);
        }
      })(),
    );
    expect(received).toEqual([TaskState.Running]);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("executor lost");
  });

  it("cancels the upstream stream when the client cancels", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const cancelledBefore = env.flame.streamsCancelled;
    const startedBefore = env.flame.streamsStarted;
    const ac = new AbortController();
    const stream = client.watchTask({ sessionId: "s1", taskId: "2" }, { signal: ac.signal });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    expect(env.flame.streamsStarted).toBe(startedBefore + 1);
    expect(env.gateway.stats().openStreams).toBe(1);

    ac.abort();
    await expect(iterator.next()).rejects.toMatchObject({ code: Code.Canceled });
    await eventually(
      () => env.flame.streamsCancelled === cancelledBefore + 1,
      "the upstream to see the stream cancelled",
    );
    await eventually(() => env.gateway.stats().openStreams === 0, "the gateway to drop the stream");
  });

  it("cancels an upstream unary call when the client cancels it", async () => {
    const client = clientFor(protocol, env.gateway.url);
    const before = env.flame.unaryCancelled;
    const calls = env.flame.calls.GetTask ?? 0;
    const ac = new AbortController();
    const pending = client.getTask({ sessionId: "s1", taskId: "hold" }, { signal: ac.signal });
    await eventually(
      () => (env.flame.calls.GetTask ?? 0) === calls + 1,
      "the call to reach upstream",
    );
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    await eventually(
      () => env.flame.unaryCancelled === before + 1,
      "the upstream to see the cancel",
    );
  });

  it("forwards the deadline and custom headers, not the protocol's own", async () => {
    const client = clientFor(protocol, env.gateway.url);
    await client.getTask(
      { sessionId: "s1", taskId: "1" },
      { timeoutMs: 20_000, headers: { "x-request-id": `req-${protocol}`, cookie: "a=b" } },
    );
    const timeout = env.flame.timeoutMs.GetTask;
    expect(timeout).toBeDefined();
    expect(timeout).toBeGreaterThan(0);
    expect(timeout).toBeLessThanOrEqual(20_000);
    const seen = env.flame.headers.GetTask;
    expect(seen?.get("x-request-id")).toBe(`req-${protocol}`);
    expect(seen?.get("cookie")).toBeNull();
    expect(seen?.get("content-type")).toBe("application/grpc+proto");
    expect(seen?.get("connect-protocol-version")).toBeNull();
    expect(seen?.get("x-grpc-web")).toBeNull();

    await client.getTask({ sessionId: "s1", taskId: "1" });
    expect(env.flame.timeoutMs.GetTask).toBeUndefined();
  });
});

describe("a client deadline that passes", () => {
  it("ends a held stream with DeadlineExceeded and cancels it upstream", async () => {
    const client = clientFor("grpc-web", env.gateway.url);
    const cancelledBefore = env.flame.streamsCancelled;
    const err = await expectConnectError(
      collect(client.watchTask({ sessionId: "s1", taskId: "3" }, { timeoutMs: 300 })),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(env.flame.timeoutMs.WatchTask).toBeLessThanOrEqual(300);
    await eventually(
      () => env.flame.streamsCancelled === cancelledBefore + 1,
      "the upstream stream to end",
    );
  });
});

describe("an unreachable upstream", () => {
  it("answers Unavailable", async () => {
    const down = await startFakeFlame();
    const url = down.url;
    await down.close();
    const lonely = await startGateway({ upstream: url });
    try {
      const err = await expectConnectError(
        clientFor("connect", lonely.url).getApplication({ name: "flmping" }),
      );
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(/^upstream unreachable: .*ECONNREFUSED/);
    } finally {
      await lonely.close();
    }
  });
});
