// connect() from @flame-ts/web, exercised in Node (whose fetch speaks
// HTTP/1.1 like a browser's): URL checks, connect-web's binary gRPC-Web by
// default, the Connect protocol (its factory, re-exported) and JSON as
// options, any transport factory, interceptors, the fetch option, and
// openChannel() for the standalone functions.
import { createConnectTransport as connectWebFactory } from "@connectrpc/connect-web";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate, waitFor } from "../../../test/support/async.js";
import {
  Channel,
  Connection,
  connect,
  createConnectTransport,
  createGrpcWebTransport,
  createSession,
  createTask,
  FlameError,
  listApplications,
  openChannel,
  registerApplication,
  TaskState,
  type TransportFactoryOptions,
  watchTask,
} from "../src/index.js";

let emulator: Emulator;
let grpcOnly: Emulator;
const open: Connection[] = [];

function client(...args: Parameters<typeof connect>): Connection {
  const connection = connect(...args);
  open.push(connection);
  return connection;
}

/** A fetch that records each request's content-type. */
function recordingFetch(seen: string[]): typeof fetch {
  return (input, init) => {
    seen.push(new Headers(init?.headers).get("content-type") ?? "");
    return fetch(input, init);
  };
}

beforeAll(async () => {
  [emulator, grpcOnly] = await Promise.all([
    startEmulator({ port: 0 }),
    startEmulator({ port: 0, protocols: { grpc: true, grpcWeb: false, connect: false } }),
  ]);
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await Promise.all([emulator?.close(), grpcOnly?.close()]);
});

describe("connect (web)", () => {
  it.each([
    ["not a url", /absolute http:\/\/ or https:\/\/ URL/],
    ["127.0.0.1:8080", /e\.g\. "http:\/\/127\.0\.0\.1:8080"/],
    ["http://", /Invalid URL/],
    ["ftp://flame.example.com", /over http: or https:, not ftp:/],
    ["ws://flame.example.com", /not ws:/],
  ])("rejects %s with an invalid-config FlameError", (url, words) => {
    let thrown: unknown;
    try {
      connect(url);
    } catch (err) {
      thrown = err;
    }
    expect(FlameError.is(thrown, "invalid-config")).toBe(true);
    expect((thrown as Error).message).toContain(`"${url}"`);
    expect((thrown as Error).message).toMatch(words);
  });

  it("re-exports connect-web's transport factories", () => {
    expect(createConnectTransport).toBe(connectWebFactory);
  });

  it("returns core's Connection", () => {
    expect(client(emulator.url)).toBeInstanceOf(Connection);
  });

  it("speaks gRPC-Web by default, binary", async () => {
    const seen: string[] = [];
    const flame = client(`${emulator.url}/`, {
      fetch: (input, init) => {
        seen.push(new Headers(init?.headers).get("content-type") ?? "");
        return fetch(input, init);
      },
    });
    const names = (await flame.listApplications()).map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(["flmexec", "flmping", "flmrun"]));
    expect(seen).toEqual(["application/grpc-web+proto"]);
  });

  it("speaks the Connect protocol, and JSON, when asked", async () => {
    const seen: string[] = [];
    const flame = client(emulator.url, {
      transport: createConnectTransport,
      useBinaryFormat: false,
      fetch: recordingFetch(seen),
    });
    const session = await flame.createSession({ application: "flmping" });
    const result = await session.run();
    expect(result.state).toBe(TaskState.Succeed);
    expect(seen).toContain("application/json");
    expect(seen.every((t) => t.startsWith("application/json") || t.includes("connect+json"))).toBe(
      true,
    );
  });

  it("speaks the Connect protocol in binary, and gRPC-Web in JSON", async () => {
    const seen: string[] = [];
    const connectBinary = client(emulator.url, {
      transport: createConnectTransport,
      fetch: recordingFetch(seen),
    });
    expect((await connectBinary.listApplications()).length).toBeGreaterThan(0);
    expect(seen).toEqual(["application/proto"]);
    seen.length = 0;
    const flame = client(emulator.url, { useBinaryFormat: false, fetch: recordingFetch(seen) });
    const names = (await flame.listApplications()).map((a) => a.name);
    expect(names).toContain("flmping");
    expect(seen).toEqual(["application/grpc-web+json"]);
  });

  it("hands its options to any transport factory", async () => {
    const given: TransportFactoryOptions[] = [];
    const flame = client(`${emulator.url}/`, {
      useBinaryFormat: false,
      transport: (options) => {
        given.push(options);
        return createGrpcWebTransport(options);
      },
    });
    const session = await flame.createSession({ application: "flmping" });
    expect((await session.run()).state).toBe(TaskState.Succeed);
    // Made once, with the URL's trailing slash gone and the format asked for.
    expect(given).toEqual([{ baseUrl: emulator.url, useBinaryFormat: false }]);
  });

  it("runs interceptors on every call, for each protocol", async () => {
    for (const transport of [createGrpcWebTransport, createConnectTransport]) {
      const seen: string[] = [];
      const flame = client(emulator.url, {
        transport,
        interceptors: [
          (next) => async (req) => {
            seen.push(req.method.name);
            req.header.set("x-flame-test", "1");
            return next(req);
          },
        ],
      });
      const session = await flame.createSession({ application: "flmping" });
      expect((await session.run()).state).toBe(TaskState.Succeed);
      expect(seen.slice(0, 2)).toEqual(["CreateSession", "CreateTask"]);
      expect(seen).toContain("WatchTask");
    }
  });

  it("cannot talk to a server that speaks only plain gRPC (a gateway is needed)", async () => {
    const flame = client(grpcOnly.url, { retry: false });
    await expect(flame.listApplications()).rejects.toSatisfy((err: unknown) => FlameError.is(err));
    expect(grpcOnly.stats().calls.ListApplication ?? 0).toBe(0);
  });
});

describe("openChannel (web)", () => {
  it("returns a Channel without the call methods, checking the URL as connect() does", async () => {
    const channel = openChannel(emulator.url);
    try {
      expect(channel).toBeInstanceOf(Channel);
      expect(channel).not.toBeInstanceOf(Connection);
      const names = (await listApplications(channel)).map((a) => a.name);
      expect(names).toContain("flmping");
    } finally {
      await channel.close();
    }
    expect(() => openChannel("127.0.0.1:8080")).toThrow(/absolute http:\/\/ or https:\/\/ URL/);
  });

  it("has the browser's watch budget: three WatchTask streams, the rest polled", async () => {
    const application = `held-${process.pid}`;
    const release = gate();
    emulator.serve(application, () => release.promise.then(() => "done"));
    const channel = openChannel(emulator.url, { retry: false });
    try {
      await registerApplication(channel, application);
      const session = await createSession(channel, { application });
      const tasks = await Promise.all(
        Array.from({ length: 6 }, () => createTask(channel, session)),
      );
      const last = new Map<string, TaskState>();
      const ends = tasks.map(
        (t) =>
          new Promise<void>((resolve, reject) =>
            watchTask(channel, session, t.id).subscribe({
              next: (task) => last.set(task.id, task.state),
              error: reject,
              complete: resolve,
            }),
          ),
      );
      await waitFor(() => last.size === tasks.length, "every watch to emit its current state");
      expect(emulator.stats().openStreams).toBe(3);
      release.open();
      await Promise.all(ends);
      expect([...last.values()].every((s) => s === TaskState.Succeed)).toBe(true);
    } finally {
      await channel.close();
    }
  });
});
