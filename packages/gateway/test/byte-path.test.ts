// The byte-forwarding paths: binary gRPC (HTTP/2, through the gRPC relay or
// Node's HTTP/2 server) and gRPC-Web (HTTP/1.1 through the gRPC-Web relay or
// Node's HTTP/1.1 server, and HTTP/2) calls pass
// through the gateway without being decoded. Clients must see exactly what a
// gRPC client sees talking to the upstream directly; the gateway's checks
// still run before anything goes upstream.
import * as http from "node:http";
import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ByteProxy } from "../src/byte-proxy.js";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor, type Protocol } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";

let flame: FakeFlame;
let gateway: Gateway;
/** The same gateway without the relays: gRPC and gRPC-Web go through Node's servers. */
let nodeGateway: Gateway;
const origin = "https://dash.example.com";

beforeAll(async () => {
  flame = await startFakeFlame();
  const options = { upstream: flame.url, maxMessageBytes: 1024, allowedOrigins: [origin] };
  gateway = await startGateway(options);
  nodeGateway = await startGateway({ ...options, grpcRelay: false, grpcWebRelay: false });
});

afterAll(async () => {
  await nodeGateway?.close();
  await gateway?.close();
  await flame?.close();
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Counts calls that took the byte path. */
function spyOnBytePath() {
  return vi.spyOn(ByteProxy.prototype, "handle");
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** What a call showed its client: message or error, headers and trailers. */
async function observe(path: BytePath | "direct", name: string) {
  const client =
    path === "direct" ? clientFor("grpc", flame.url) : clientFor(path.protocol, urlOf(path));
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  try {
    const app = await client.getApplication(
      { name },
      {
        onHeader: (h) => {
          header = h;
        },
        onTrailer: (t) => {
          trailer = t;
        },
      },
    );
    return {
      app,
      header: header?.get("x-upstream-header"),
      trailer: trailer?.get("x-upstream-trailer"),
    };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, message: err.rawMessage, hint: err.metadata.get("x-error-hint") };
  }
}

const byteProtocols: Protocol[] = ["grpc", "grpc-web", "grpc-web-fetch", "grpc-web-h2"];

interface BytePath {
  name: string;
  protocol: Protocol;
  /**
   * The call goes through a relay of the gateway's own (gRPC over cleartext
   * HTTP/2, and gRPC-Web with a sized body over HTTP/1.1, by default), not
   * through Node's server and the byte proxy.
   */
  relay: "grpc" | "grpc-web" | undefined;
}

const bytePaths: BytePath[] = [
  { name: "grpc through the relay", protocol: "grpc", relay: "grpc" },
  { name: "grpc through Node's HTTP/2 server", protocol: "grpc", relay: undefined },
  { name: "grpc-web with a chunked body", protocol: "grpc-web", relay: undefined },
  { name: "grpc-web through the relay (fetch)", protocol: "grpc-web-fetch", relay: "grpc-web" },
  {
    name: "grpc-web through Node's HTTP/1.1 server (fetch)",
    protocol: "grpc-web-fetch",
    relay: undefined,
  },
  { name: "grpc-web-h2", protocol: "grpc-web-h2", relay: undefined },
];

/** Paths the relays would take, taken by the gateway without relays instead. */
function urlOf(path: BytePath): string {
  const relayable = path.protocol === "grpc" || path.protocol === "grpc-web-fetch";
  return relayable && path.relay === undefined ? nodeGateway.url : gateway.url;
}

describe.each(bytePaths)("over $name, the byte path", (path) => {
  const { protocol } = path;
  const gatewayUrl = () => urlOf(path);
  const stats = () => (urlOf(path) === gateway.url ? gateway : nodeGateway).stats();

  it("is the path taken, and a unary answer is what a direct gRPC client gets", async () => {
    const spy = spyOnBytePath();
    const forwarded = stats().forwarded.GetApplication ?? 0;
    const via = await observe(path, "flmping");
    // The relays forward calls themselves; the other paths hand them to the byte proxy.
    expect(spy).toHaveBeenCalledTimes(path.relay === undefined ? 1 : 0);
    expect(stats().forwarded.GetApplication).toBe(forwarded + 1);
    if (path.relay === "grpc") expect(stats().relayedConnections).toBeGreaterThan(0);
    else if (protocol === "grpc") expect(stats().relayedConnections).toBe(0);
    if (path.relay === "grpc-web") expect(stats().webRelayedConnections).toBeGreaterThan(0);
    else if (protocol === "grpc-web-fetch") expect(stats().webRelayedConnections).toBe(0);
    const direct = await observe("direct", "flmping");
    expect(via).toEqual(direct);
    expect(via.header).toBe("from-flame");
    expect(via.trailer).toBe("done");
  });

  it("keeps error codes, messages and error metadata as a direct client sees them", async () => {
    const via = await observe(path, "nope");
    const direct = await observe("direct", "nope");
    expect(via).toEqual(direct);
    expect(via).toEqual({
      code: Code.NotFound,
      message: "application nope not found",
      hint: "check the name",
    });
  });

  it("relays a server stream to its end, and a stream's error after its first message", async () => {
    const client = clientFor(protocol, gatewayUrl());
    const direct = clientFor("grpc", flame.url);
    const tasks = await collect(client.listTask({ sessionId: "s1" }));
    expect(tasks).toEqual(await collect(direct.listTask({ sessionId: "s1" })));
    expect(tasks.map((t) => t.metadata?.id)).toEqual(["1", "2", "3"]);

    const seen: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const t of client.watchTask({ sessionId: "s1", taskId: "fail" })) {
          seen.push(t.metadata?.id ?? "");
        }
      })(),
    );
    expect(seen).toEqual(["fail"]);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("executor lost");
  });

  it("cancels the upstream stream when the client cancels", async () => {
    const client = clientFor(protocol, gatewayUrl());
    const cancelled = flame.streamsCancelled;
    const ac = new AbortController();
    const iterator = client
      .watchTask({ sessionId: "s1", taskId: "9" }, { signal: ac.signal })
      [Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    expect(stats().openStreams).toBe(1);
    ac.abort();
    await expect(iterator.next()).rejects.toMatchObject({ code: Code.Canceled });
    await eventually(
      () => flame.streamsCancelled === cancelled + 1,
      "the upstream to see the cancel",
    );
    await eventually(() => stats().openStreams === 0, "the gateway to drop the stream");
  });

  it("refuses an oversized request before the upstream sees it", async () => {
    const client = clientFor(protocol, gatewayUrl());
    const before = flame.totalCalls();
    const err = await rejection(client.getApplication({ name: "x".repeat(2000) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(flame.totalCalls()).toBe(before);
    // Just under the limit goes through (the upstream does not know the name).
    const under = await rejection(client.getApplication({ name: "y".repeat(1000) }));
    expect(under.code).toBe(Code.NotFound);
    expect(flame.totalCalls()).toBe(before + 1);
  });

  it("refuses an oversized response instead of relaying it", async () => {
    const client = clientFor(protocol, gatewayUrl());
    const before = flame.calls.CreateTask ?? 0;
    const err = await rejection(
      client.createTask({ task: { sessionId: "s", input: new Uint8Array(1000).fill(7) } }),
    );
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(flame.calls.CreateTask).toBe(before + 1);
  });

  it("forwards the deadline, and ends a held stream at it, cancelling upstream", async () => {
    const client = clientFor(protocol, gatewayUrl());
    await client.getTask({ sessionId: "s1", taskId: "1" }, { timeoutMs: 20_000 });
    expect(flame.timeoutMs.GetTask).toBeGreaterThan(0);
    expect(flame.timeoutMs.GetTask).toBeLessThanOrEqual(20_000);
    await client.getTask({ sessionId: "s1", taskId: "1" });
    expect(flame.timeoutMs.GetTask).toBeUndefined();

    const cancelled = flame.streamsCancelled;
    const err = await rejection(
      collect(client.watchTask({ sessionId: "s1", taskId: "3" }, { timeoutMs: 300 })),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(flame.timeoutMs.WatchTask).toBeLessThanOrEqual(300);
    await eventually(() => flame.streamsCancelled === cancelled + 1, "the upstream stream to end");
  });

  it("forwards application headers, never the browser's or the protocol's own", async () => {
    const client = clientFor(protocol, gatewayUrl());
    await client.getTask(
      { sessionId: "s1", taskId: "1" },
      { headers: { "x-request-id": `req-${protocol}`, cookie: "a=b", origin } },
    );
    const seen = flame.headers.GetTask;
    expect(seen?.get("x-request-id")).toBe(`req-${protocol}`);
    expect(seen?.get("cookie")).toBeNull();
    expect(seen?.get("origin")).toBeNull();
    expect(seen?.get("x-grpc-web")).toBeNull();
    expect(seen?.get("content-type")).toMatch(/^application\/grpc(\+proto)?$/);
  });
});

/** A GetApplication request (field 1, a short name) as one gRPC frame. */
function frame(name: string): Buffer {
  const message = Buffer.concat([Buffer.from([0x0a, name.length]), Buffer.from(name)]);
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

describe("gRPC-Web framing on the wire", () => {
  it("ends the body with a trailer frame and grants CORS to an allowed origin (HTTP/1.1)", async () => {
    const url = new URL(gateway.url);
    const res = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            method: "POST",
            path: "/flame.v1.Frontend/GetApplication",
            headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", origin },
          },
          (r) => {
            const chunks: Buffer[] = [];
            r.on("data", (c: Buffer) => chunks.push(c));
            r.on("end", () => resolve({ headers: r.headers, body: Buffer.concat(chunks) }));
          },
        );
        req.on("error", reject);
        req.end(frame("flmping"));
      },
    );
    expect(res.headers["content-type"]).toBe("application/grpc-web+proto");
    expect(res.headers["access-control-allow-origin"]).toBe(origin);
    expect(res.headers["x-upstream-header"]).toBe("from-flame");
    // One message frame, then the trailer frame.
    expect(res.body[0]).toBe(0);
    const end = 5 + res.body.readUInt32BE(1);
    expect(res.body[end]).toBe(0x80);
    const trailer = res.body.subarray(end + 5).toString("latin1");
    expect(res.body.readUInt32BE(end + 1)).toBe(trailer.length);
    expect(trailer).toContain("grpc-status: 0\r\n");
    expect(trailer).toContain("x-upstream-trailer: done\r\n");
  });

  it.each([
    ["the relay", () => gateway],
    ["Node's HTTP/2 server", () => nodeGateway],
  ])(
    "refuses a frame header split across DATA frames once it is whole, forwarding nothing (%s)",
    async (_, gw) => {
      const session = http2.connect(gw().url);
      try {
        const before = flame.totalCalls();
        const stream = session.request({
          ":method": "POST",
          ":path": "/flame.v1.Frontend/GetApplication",
          "content-type": "application/grpc",
          te: "trailers",
        });
        const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
          stream.on("response", (h) => {
            if (h["grpc-status"] !== undefined) resolve(h);
          });
          stream.on("trailers", resolve);
        });
        stream.resume();
        const header = Buffer.from([0, 0, 0, 0x10, 0]); // 4096 bytes announced
        stream.write(header.subarray(0, 2));
        await new Promise((r) => setTimeout(r, 20));
        stream.end(header.subarray(2));
        const status = await trailers;
        expect(status["grpc-status"]).toBe(String(Code.ResourceExhausted));
        expect(flame.totalCalls()).toBe(before);
      } finally {
        session.close();
      }
    },
  );
});

describe("an unreachable upstream over gRPC", () => {
  it("answers Unavailable, upstream unreachable", async () => {
    const down = await startFakeFlame();
    const url = down.url;
    await down.close();
    const lonely = await startGateway({ upstream: url });
    try {
      for (const protocol of byteProtocols) {
        const err = await rejection(clientFor(protocol, lonely.url).getApplication({ name: "a" }));
        expect(err.code).toBe(Code.Unavailable);
        expect(err.rawMessage).toMatch(/^upstream unreachable: .*ECONNREFUSED/);
      }
    } finally {
      await lonely.close();
    }
  });
});
