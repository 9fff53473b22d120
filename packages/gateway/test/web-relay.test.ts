// The gRPC-Web relay over real sockets: HTTP/1.1 connections whose
// binary gRPC-Web calls the gateway carries to the upstream on HTTP/2
// frames of its own. What the client sees byte for byte (keep-alive,
// pipelining, Content-Length or chunked, CORS), when the connection goes
// to Node's HTTP/1.1 server instead, the gateway's checks, flow control
// both ways, and how calls end when something goes away. The byte-path
// behaviours every path shares are in byte-path.test.ts.
import * as net from "node:net";
import type * as tls from "node:tls";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { TaskSchema } from "@flame-ts/core/gen";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ByteProxy } from "../src/byte-proxy.js";
import { FrameType } from "../src/h2-frame.js";
import type { HeaderField } from "../src/header-block.js";
import { type Gateway, startGateway } from "../src/index.js";
import { makeCertificates, type TestCertificates } from "./certificates.js";
import { clientFor } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { startScriptedUpstream, taskFrame } from "./scripted-upstream.js";
import {
  accessControlOf,
  createTask,
  destroyClients,
  framesOf,
  getRoot,
  getTask,
  grpcFrame,
  grpcStatusOf,
  type HttpResponse,
  listTask,
  preflight,
  RawClient,
  taskIdsOf,
  type WebFrame,
  watchTask,
  webCall,
  webHead,
} from "./web-relay-client.js";

const origin = "https://dash.example.com";
const otherOrigin = "https://evil.example.com";
const token = "tok-web-relay-8c2f41";

let flame: FakeFlame;
/** The relay on (the default), one allowed origin, the default 4 MiB message limit. */
let gateway: Gateway;
/** The same without the relay: every HTTP/1.1 request goes to Node's server. */
let nodeGateway: Gateway;
/** Messages of at most 1 KiB. */
let small: Gateway;
/** A bearer token. */
let guarded: Gateway;

beforeAll(async () => {
  flame = await startFakeFlame();
  const options = { upstream: flame.url, allowedOrigins: [origin] };
  [gateway, nodeGateway, small, guarded] = await Promise.all([
    startGateway(options),
    startGateway({ ...options, grpcWebRelay: false }),
    startGateway({ ...options, maxMessageBytes: 1024 }),
    startGateway({ ...options, bearerToken: token }),
  ]);
});

afterEach(async () => {
  vi.restoreAllMocks();
  destroyClients();
  // Tests count relayed connections from 0: the last test's are gone first.
  await eventually(
    () =>
      [gateway, small, guarded].every((gw) => gw.stats().webRelayedConnections === 0) &&
      gateway.stats().openStreams === 0,
    "the relay to drop the last test's connections",
  );
});

afterAll(async () => {
  await Promise.all([gateway, nodeGateway, small, guarded].map((gw) => gw?.close()));
  await flame?.close();
});

function spyOnBytePath() {
  return vi.spyOn(ByteProxy.prototype, "handle");
}

/** What Node's HTTP/1.1 server (the gateway without the relay) answers to `bytes`. */
async function nodeAnswer(bytes: Buffer): Promise<HttpResponse> {
  const client = await RawClient.open(nodeGateway);
  client.write(bytes);
  return client.next();
}

// --- the tests -------------------------------------------------------------------

describe("a keep-alive connection through the relay", () => {
  it("serves several calls on one socket, each with a Content-Length and the trailer frame last", async () => {
    const spy = spyOnBytePath();
    const before = {
      forwarded: gateway.stats().forwarded.GetTask ?? 0,
      calls: flame.calls.GetTask ?? 0,
    };
    const client = await RawClient.open(gateway);
    for (const id of ["a", "b", "c"]) {
      client.write(webCall("GetTask", getTask(id)));
      const response = await client.next();
      expect(response.status).toBe(200);
      expect(response.headers["content-type"]).toBe("application/grpc-web+proto");
      expect(response.headers["transfer-encoding"]).toBeUndefined();
      expect(response.headers["content-length"]).toBe(String(response.body.length));
      expect(response.headers.connection).toBeUndefined();
      expect(framesOf(response.body).map((f) => f.flag)).toEqual([0x00, 0x80]);
      expect(taskIdsOf(response)).toEqual([id]);
      expect(grpcStatusOf(response).code).toBe(0);
      expect(gateway.stats().webRelayedConnections).toBe(1);
    }
    expect(client.unread).toBe(0);
    expect(spy).not.toHaveBeenCalled();
    expect(gateway.stats().forwarded.GetTask).toBe(before.forwarded + 3);
    expect(flame.calls.GetTask).toBe(before.calls + 3);
    // The same socket still serves: it was never closed or handed over.
    expect(client.socket.destroyed).toBe(false);
  });

  it("answers pipelined requests written in one write in order", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(
      Buffer.concat([
        webCall("GetTask", getTask("p1")),
        webCall("ListTask", listTask("s1")),
        webCall("GetTask", getTask("p2")),
      ]),
    );
    const first = await client.next();
    const second = await client.next();
    const third = await client.next();
    expect(taskIdsOf(first)).toEqual(["p1"]);
    expect(taskIdsOf(second)).toEqual(["1", "2", "3"]);
    expect(second.headers["transfer-encoding"]).toBe("chunked");
    expect(taskIdsOf(third)).toEqual(["p2"]);
    for (const response of [first, second, third]) expect(grpcStatusOf(response).code).toBe(0);
    expect(spy).not.toHaveBeenCalled();
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });

  it("sends a server stream chunked, its first message before the stream ends", async () => {
    const client = await RawClient.open(gateway);
    client.write(webCall("WatchTask", watchTask("w1")));
    // The fake holds this stream open until its caller goes away.
    const partial = await client.peek((r) => r.chunks.length > 0);
    expect(partial.status).toBe(200);
    expect(partial.headers["transfer-encoding"]).toBe("chunked");
    expect(partial.headers["content-length"]).toBeUndefined();
    expect(partial.complete).toBe(false);
    const frames = framesOf(partial.body);
    expect(frames.map((f) => f.flag)).toEqual([0x00]);
    expect(fromBinary(TaskSchema, (frames[0] as WebFrame).payload).metadata?.id).toBe("w1");
    expect(gateway.stats().openStreams).toBe(1);
  });

  it("ends a finished server stream with the trailer frame and the last chunk, then serves the next call", async () => {
    const client = await RawClient.open(gateway);
    client.write(webCall("ListTask", listTask("s1")));
    const stream = await client.next();
    expect(stream.headers["transfer-encoding"]).toBe("chunked");
    expect(taskIdsOf(stream)).toEqual(["1", "2", "3"]);
    expect(grpcStatusOf(stream).code).toBe(0);
    client.write(webCall("GetTask", getTask("after-stream")));
    expect(taskIdsOf(await client.next())).toEqual(["after-stream"]);
  });
});

describe("request bodies in other shapes", () => {
  it("relays a call whose head and body come in many small writes", async () => {
    const client = await RawClient.open(gateway);
    const bytes = webCall("GetTask", getTask("trickled"));
    // Cuts inside the head, at its end, inside the frame header and inside the message.
    const head = webHead("GetTask", 0).length;
    const cuts = [10, head - 3, head - 1, head + 1, head + 3, head + 6, bytes.length - 2];
    let at = 0;
    for (const cut of [...cuts, bytes.length]) {
      client.write(bytes.subarray(at, cut));
      at = cut;
      await new Promise((r) => setTimeout(r, 5));
    }
    const response = await client.next();
    expect(taskIdsOf(response)).toEqual(["trickled"]);
    expect(grpcStatusOf(response).code).toBe(0);
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });

  it.each([
    ["an empty body", Buffer.alloc(0)],
    ["two messages to a unary method", Buffer.concat([getTask("one"), getTask("two")])],
    ["a message cut short", getTask("cut").subarray(0, 8)],
  ])("answers %s as Node's server does", async (_, body) => {
    const request = webCall("GetTask", body);
    const node = await nodeAnswer(request);
    const client = await RawClient.open(gateway);
    client.write(request);
    const relayed = await client.next();
    expect(relayed.status).toBe(node.status);
    expect(grpcStatusOf(relayed).code).toBe(grpcStatusOf(node).code);
    expect(grpcStatusOf(relayed).code).not.toBe(0);
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });
});

describe("CORS on a relayed connection", () => {
  it("answers preflights itself, as Node's server would, and relays the calls after them", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(preflight(origin));
    const granted = await client.next();
    expect(granted.status).toBe(204);
    expect(granted.headers["access-control-allow-origin"]).toBe(origin);
    expect(granted.headers["access-control-allow-methods"]).toContain("POST");
    expect(granted.headers["access-control-allow-headers"]).toMatch(/x-grpc-web/i);
    expect(granted.headers["access-control-allow-headers"]).toMatch(/authorization/i);
    expect(granted.headers["access-control-max-age"]).toBe("7200");
    expect(accessControlOf(granted)).toEqual(accessControlOf(await nodeAnswer(preflight(origin))));
    expect(gateway.stats().webRelayedConnections).toBe(1);

    client.write(preflight(otherOrigin));
    const refused = await client.next();
    expect(refused.status).toBe(403);
    expect(Object.keys(refused.headers).filter((n) => n.startsWith("access-control-"))).toEqual([]);
    expect((await nodeAnswer(preflight(otherOrigin))).status).toBe(403);
    expect(gateway.stats().webRelayedConnections).toBe(1);

    // The connection is still the relay's: a call after the preflights is relayed.
    const before = flame.calls.GetTask ?? 0;
    client.write(webCall("GetTask", getTask("after-preflight"), { Origin: origin }));
    const call = await client.next();
    expect(taskIdsOf(call)).toEqual(["after-preflight"]);
    expect(flame.calls.GetTask).toBe(before + 1);
    expect(spy).not.toHaveBeenCalled();
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });

  it("answers a preflight and the call pipelined behind it, in order", async () => {
    const client = await RawClient.open(gateway);
    client.write(
      Buffer.concat([preflight(origin), webCall("GetTask", getTask("behind"), { Origin: origin })]),
    );
    expect((await client.next()).status).toBe(204);
    const call = await client.next();
    expect(taskIdsOf(call)).toEqual(["behind"]);
    expect(call.headers["access-control-allow-origin"]).toBe(origin);
  });

  it("grants an allowed origin's call the same CORS headers as Node's server", async () => {
    const client = await RawClient.open(gateway);
    const request = webCall("GetTask", getTask("cors"), { Origin: origin });
    client.write(request);
    const response = await client.next();
    expect(grpcStatusOf(response).code).toBe(0);
    expect(response.headers["access-control-allow-origin"]).toBe(origin);
    expect(response.headers["access-control-expose-headers"]).toMatch(/grpc-status/i);
    expect(response.headers["access-control-expose-headers"]).toMatch(/grpc-message/i);
    expect(accessControlOf(response)).toEqual(accessControlOf(await nodeAnswer(request)));
  });

  it("refuses a call from another origin with PermissionDenied, sending nothing upstream", async () => {
    const client = await RawClient.open(gateway);
    const before = { calls: flame.totalCalls(), rejected: gateway.stats().rejected.origin };
    client.write(webCall("GetTask", getTask("evil"), { Origin: otherOrigin }));
    const response = await client.next();
    expect(response.status).toBe(200);
    expect(response.headers["access-control-allow-origin"]).toBeUndefined();
    expect(grpcStatusOf(response)).toEqual({
      code: Code.PermissionDenied,
      message: "origin not allowed by the gateway",
    });
    expect(taskIdsOf(response)).toEqual([]);
    expect(flame.totalCalls()).toBe(before.calls);
    expect(gateway.stats().rejected.origin).toBe(before.rejected + 1);
    // The refusal kept the connection: the next call is relayed.
    client.write(webCall("GetTask", getTask("next")));
    expect(taskIdsOf(await client.next())).toEqual(["next"]);
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });
});

describe("connections handed to Node's HTTP/1.1 server", () => {
  it("serves a first request of another kind exactly as without the relay", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(getRoot);
    const relayed = await client.next();
    const node = await nodeAnswer(getRoot);
    expect(relayed.status).toBe(node.status);
    expect(relayed.headers["content-type"]).toBe(node.headers["content-type"]);
    expect(relayed.body).toEqual(node.body);
    expect(gateway.stats().webRelayedConnections).toBe(0);
    // Node's server keeps the connection: a gRPC-Web call on it takes the byte proxy.
    client.write(webCall("GetTask", getTask("on-node")));
    expect(taskIdsOf(await client.next())).toEqual(["on-node"]);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("hands a connection over after relayed calls, at the first request of another kind", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(webCall("GetTask", getTask("relayed")));
    expect(taskIdsOf(await client.next())).toEqual(["relayed"]);
    expect(gateway.stats().webRelayedConnections).toBe(1);
    client.write(getRoot);
    const handed = await client.next();
    expect(handed.status).toBe((await nodeAnswer(getRoot)).status);
    expect(gateway.stats().webRelayedConnections).toBe(0);
    // For good: the next gRPC-Web call on the socket is Node's too.
    client.write(webCall("GetTask", getTask("after")));
    expect(taskIdsOf(await client.next())).toEqual(["after"]);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("answers a relayed call and a request pipelined behind it for Node, in order", async () => {
    const client = await RawClient.open(gateway);
    const node = await nodeAnswer(getRoot);
    client.write(Buffer.concat([webCall("GetTask", getTask("first")), getRoot]));
    expect(taskIdsOf(await client.next())).toEqual(["first"]);
    const second = await client.next();
    expect(second.status).toBe(node.status);
    expect(second.body).toEqual(node.body);
  });

  it("gives Connect calls and connect-node's chunked gRPC-Web calls to Node's server", async () => {
    const spy = spyOnBytePath();
    const before = flame.calls.GetTask ?? 0;
    const connect = clientFor("connect", gateway.url);
    expect((await connect.getTask({ sessionId: "s", taskId: "c1" })).metadata?.id).toBe("c1");
    // Connect is decoded by connect-node, not forwarded as bytes.
    expect(spy).not.toHaveBeenCalled();
    const chunked = clientFor("grpc-web", gateway.url);
    expect((await chunked.getTask({ sessionId: "s", taskId: "c2" })).metadata?.id).toBe("c2");
    expect(spy).toHaveBeenCalledTimes(1);
    expect(flame.calls.GetTask).toBe(before + 2);
    expect(gateway.stats().webRelayedConnections).toBe(0);
  });
});

describe("gRPC-Web calls in forms the relay leaves to Node", () => {
  const body = getTask("left");
  const head = webHead("GetTask", body.length);

  it("serves an HTTP/1.0 call through Node's server", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(Buffer.concat([Buffer.from(head.replace("HTTP/1.1", "HTTP/1.0")), body]));
    const response = await client.next();
    expect(taskIdsOf(response)).toEqual(["left"]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(gateway.stats().webRelayedConnections).toBe(0);
  });

  it("serves a call with Expect: 100-continue through Node's server, 100 Continue first", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.open(gateway);
    client.write(head.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n"));
    expect((await client.next()).status).toBe(100);
    client.write(body);
    expect(taskIdsOf(await client.next())).toEqual(["left"]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(gateway.stats().webRelayedConnections).toBe(0);
  });

  it("leaves a head larger than Node takes to Node's 431, after a relayed call", async () => {
    const client = await RawClient.open(gateway);
    client.write(webCall("GetTask", getTask("before")));
    expect(taskIdsOf(await client.next())).toEqual(["before"]);
    const before = flame.totalCalls();
    const large = webCall("GetTask", body, { "X-Large": "l".repeat(20_000) });
    expect((await nodeAnswer(large)).status).toBe(431);
    client.write(large);
    expect((await client.next()).status).toBe(431);
    expect(flame.totalCalls()).toBe(before);
  });
});

describe("malformed or ambiguous request heads", () => {
  const body = getTask("bad");
  const head = webHead("GetTask", body.length);
  const cases: [string, string][] = [
    ["bare LF line ends", head.replaceAll("\r\n", "\n")],
    ["one bare LF", head.replace("X-Grpc-Web: 1\r\n", "X-Grpc-Web: 1\n")],
    ["a control character in a value", head.replace("X-Grpc-Web: 1", "X-Grpc-Web: 1\x01")],
    [
      "two different Content-Lengths",
      head.replace("\r\n\r\n", `\r\nContent-Length: ${body.length + 1}\r\n\r\n`),
    ],
    [
      "Transfer-Encoding and Content-Length",
      head.replace("\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ],
  ];

  it.each(cases)("get Node's 400, and nothing reaches the upstream: %s", async (_, text) => {
    const bytes = Buffer.concat([Buffer.from(text, "latin1"), body]);
    const before = flame.totalCalls();
    const node = await nodeAnswer(bytes);
    expect(node.status).toBe(400);
    const client = await RawClient.open(gateway);
    client.write(bytes);
    // Sooner than the relay's 5 s idle timeout: a head it waited on would fail here.
    const response = await client.next(3_000);
    expect(response.status).toBe(400);
    await client.ended;
    expect(flame.totalCalls()).toBe(before);
    expect(gateway.stats().webRelayedConnections).toBe(0);
  });
});

describe("an oversized request message", () => {
  it("is refused with ResourceExhausted, the rest of its body skipped, and the connection serves on", async () => {
    const client = await RawClient.open(small);
    const before = flame.totalCalls();
    // 4 KiB announced (the limit is 1 KiB), of bytes that look like requests:
    // if they were read as requests rather than skipped, the upstream would see them.
    const decoy = webCall("GetTask", getTask("decoy")).toString("latin1");
    const payload = Buffer.from(
      decoy.repeat(Math.ceil(4096 / decoy.length)).slice(0, 4096),
      "latin1",
    );
    const oversized = grpcFrame(payload);
    const head = Buffer.from(webHead("GetTask", oversized.length), "latin1");
    client.write(Buffer.concat([head, oversized.subarray(0, 105)]));
    const refused = await client.next();
    expect(refused.status).toBe(200);
    expect(grpcStatusOf(refused).code).toBe(Code.ResourceExhausted);
    expect(refused.headers["content-length"]).toBe(String(refused.body.length));
    expect(small.stats().webRelayedConnections).toBe(1);
    client.write(Buffer.concat([oversized.subarray(105), webCall("GetTask", getTask("after"))]));
    const after = await client.next();
    expect(taskIdsOf(after)).toEqual(["after"]);
    expect(flame.totalCalls()).toBe(before + 1);
    expect(client.unread).toBe(0);
    expect(small.stats().webRelayedConnections).toBe(1);
  });
});

describe("a bearer token on relayed calls", () => {
  it("refuses a missing or wrong token with Unauthenticated, and does not forward a right one", async () => {
    const client = await RawClient.open(guarded);
    const before = flame.totalCalls();
    client.write(webCall("GetTask", getTask("none")));
    expect(grpcStatusOf(await client.next()).code).toBe(Code.Unauthenticated);
    client.write(webCall("GetTask", getTask("wrong"), { Authorization: "Bearer not-it" }));
    const wrong = await client.next();
    expect(grpcStatusOf(wrong)).toEqual({
      code: Code.Unauthenticated,
      message: "missing or invalid bearer token",
    });
    expect(flame.totalCalls()).toBe(before);

    client.write(
      webCall("GetTask", getTask("right"), {
        Authorization: `Bearer ${token}`,
        "X-Request-Id": "with-token",
      }),
    );
    expect(taskIdsOf(await client.next())).toEqual(["right"]);
    expect(flame.totalCalls()).toBe(before + 1);
    expect(flame.headers.GetTask?.get("x-request-id")).toBe("with-token");
    expect(flame.headers.GetTask?.get("authorization")).toBeNull();
    expect(guarded.stats().webRelayedConnections).toBe(1);
  });
});

describe("Connection: close from the client", () => {
  it("gets connection: close on the response and the socket ends after it", async () => {
    const client = await RawClient.open(gateway);
    const before = flame.calls.GetTask ?? 0;
    // A request pipelined after the last one is not served, as Node's server would not.
    client.write(
      Buffer.concat([
        webCall("GetTask", getTask("last"), { Connection: "close" }),
        webCall("GetTask", getTask("too-late")),
      ]),
    );
    const response = await client.next();
    expect(response.headers.connection).toBe("close");
    expect(taskIdsOf(response)).toEqual(["last"]);
    await client.ended;
    expect(client.unread).toBe(0);
    expect(flame.calls.GetTask).toBe(before + 1);
    await eventually(
      () => gateway.stats().webRelayedConnections === 0,
      "the relay to drop the connection",
    );
  });

  it("on a preflight, too", async () => {
    const client = await RawClient.open(gateway);
    const request = preflight(origin)
      .toString("latin1")
      .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    client.write(request);
    const response = await client.next();
    expect(response.status).toBe(204);
    expect(response.headers.connection).toBe("close");
    await client.ended;
  });
});

describe("flow control", () => {
  it("sends a request body larger than HTTP/2's initial window upstream whole", async () => {
    const client = await RawClient.open(gateway);
    const input = new Uint8Array(300 * 1024).map((_, i) => (i * 7) % 251);
    client.write(webCall("CreateTask", createTask(input)));
    const response = await client.next();
    expect(grpcStatusOf(response).code).toBe(0);
    // The fake answers with the task it got: the input came through whole.
    const [message] = framesOf(response.body);
    const task = fromBinary(TaskSchema, (message as WebFrame).payload);
    expect(Buffer.from(task.spec?.input ?? new Uint8Array()).equals(Buffer.from(input))).toBe(true);
  });

  it("relays a unary response larger than the relay's 1 MiB receive window", async () => {
    const client = await RawClient.open(gateway);
    const input = new Uint8Array(1536 * 1024).map((_, i) => i % 253);
    client.write(webCall("CreateTask", createTask(input)));
    const response = await client.next(10_000);
    expect(response.headers["content-length"]).toBe(String(response.body.length));
    expect(response.body.length).toBeGreaterThan(1536 * 1024);
    const [message] = framesOf(response.body);
    const task = fromBinary(TaskSchema, (message as WebFrame).payload);
    expect(Buffer.from(task.spec?.input ?? new Uint8Array()).equals(Buffer.from(input))).toBe(true);
    // And the connection's windows are not left spent: the next call goes through.
    client.write(webCall("GetTask", getTask("after-big")));
    expect(taskIdsOf(await client.next())).toEqual(["after-big"]);
  });

  it("relays a server stream of several MiB to a client that stops reading for a while", async () => {
    const client = await RawClient.open(gateway);
    // 12 messages of 256 KiB: three times the receive window.
    client.write(webCall("ListTask", listTask(`big:12:${256 * 1024}`)));
    client.socket.pause();
    // Long enough for the gateway's socket to fill; nothing is asserted on time.
    await new Promise((r) => setTimeout(r, 200));
    client.socket.resume();
    const response = await client.next(10_000);
    expect(grpcStatusOf(response).code).toBe(0);
    const messages = framesOf(response.body).filter((f) => f.flag === 0);
    expect(messages.length).toBe(12);
    for (const [i, frame] of messages.entries()) {
      const input = fromBinary(TaskSchema, frame.payload).spec?.input;
      expect(input?.length).toBe(256 * 1024);
      expect(input?.[0]).toBe(i);
    }
    client.write(webCall("GetTask", getTask("after-stream")));
    expect(taskIdsOf(await client.next())).toEqual(["after-stream"]);
  });

  it("reads a large body pipelined behind a call in flight", async () => {
    const client = await RawClient.open(gateway);
    // The upstream connection is open first: the pipelined call waits on nothing but its turn.
    client.write(webCall("GetTask", getTask("warm")));
    expect(taskIdsOf(await client.next())).toEqual(["warm"]);
    for (let round = 0; round < 3; round++) {
      const input = new Uint8Array(300 * 1024).fill(round + 1);
      client.write(
        Buffer.concat([
          webCall("GetTask", getTask(`ahead-${round}`)),
          webCall("CreateTask", createTask(input)),
        ]),
      );
      expect(taskIdsOf(await client.next())).toEqual([`ahead-${round}`]);
      const created = await client.next();
      expect(grpcStatusOf(created).code).toBe(0);
      const [message] = framesOf(created.body);
      const echoed = fromBinary(TaskSchema, (message as WebFrame).payload).spec?.input;
      expect(echoed?.length).toBe(300 * 1024);
      expect(echoed?.[0]).toBe(round + 1);
    }
  });
});

/** A port nothing listens on (just now). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("relayed calls when something goes away", () => {
  it("answers Unavailable, upstream unreachable, and tries again on the next call", async () => {
    const port = await freePort();
    const gw = await startGateway({ upstream: `http://127.0.0.1:${port}` });
    let late: FakeFlame | undefined;
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("GetTask", getTask("early")));
      const early = await client.next();
      expect(grpcStatusOf(early).code).toBe(Code.Unavailable);
      expect(grpcStatusOf(early).message).toMatch(/^upstream unreachable: .*ECONNREFUSED/);
      expect(gw.stats().webRelayedConnections).toBe(1);
      // The upstream comes up where the gateway points: the same connection now gets through.
      late = await startFakeFlame({ port });
      client.write(webCall("GetTask", getTask("late")));
      const answer = await client.next();
      expect(taskIdsOf(answer)).toEqual(["late"]);
      expect(late.calls.GetTask).toBe(1);
      expect(gw.stats().webRelayedConnections).toBe(1);
    } finally {
      await gw.close();
      await late?.close();
    }
  });

  it("ends a stream with Unavailable, upstream connection failed, when the upstream dies", async () => {
    const doomed = await startFakeFlame();
    const gw = await startGateway({ upstream: doomed.url });
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("WatchTask", watchTask("doomed")));
      await client.peek((r) => r.chunks.length > 0);
      expect(gw.stats().openStreams).toBe(1);
      await doomed.close();
      const response = await client.next();
      expect(taskIdsOf(response)).toEqual(["doomed"]);
      const status = grpcStatusOf(response);
      expect(status.code).toBe(Code.Unavailable);
      expect(status.message).toMatch(/^upstream connection failed: /);
      expect(gw.stats().openStreams).toBe(0);
      // The client's connection outlives its upstream connection.
      expect(gw.stats().webRelayedConnections).toBe(1);
    } finally {
      await gw.close();
      await doomed.close();
    }
  });

  it("ends a stream with Unavailable, the gateway is closing, and cancels it upstream", async () => {
    const gw = await startGateway({ upstream: flame.url });
    let closed = false;
    try {
      const client = await RawClient.open(gw);
      const cancelled = flame.streamsCancelled;
      client.write(webCall("WatchTask", watchTask("closing")));
      await client.peek((r) => r.chunks.length > 0);
      const closing = gw.close();
      const response = await client.next();
      await closing;
      closed = true;
      expect(grpcStatusOf(response)).toEqual({
        code: Code.Unavailable,
        message: "the gateway is closing",
      });
      await client.ended;
      await eventually(
        () => flame.streamsCancelled === cancelled + 1,
        "the upstream stream to end",
      );
    } finally {
      if (!closed) await gw.close();
    }
  });

  it("cancels the upstream stream when the client's socket is destroyed mid-stream", async () => {
    const client = await RawClient.open(gateway);
    const cancelled = flame.streamsCancelled;
    client.write(webCall("WatchTask", watchTask("gone")));
    await client.peek((r) => r.chunks.length > 0);
    expect(gateway.stats().openStreams).toBe(1);
    expect(gateway.stats().webRelayedConnections).toBe(1);
    client.destroy();
    await eventually(
      () => flame.streamsCancelled === cancelled + 1,
      "the upstream to see the cancel",
    );
    await eventually(() => gateway.stats().openStreams === 0, "the gateway to drop the stream");
    await eventually(
      () => gateway.stats().webRelayedConnections === 0,
      "the relay to drop the connection",
    );
  });
});

describe("a gateway served over TLS", () => {
  let certificates: TestCertificates;
  let secure: Gateway;

  beforeAll(async () => {
    certificates = makeCertificates();
    secure = await startGateway({
      upstream: flame.url,
      tls: { cert: certificates.cert, key: certificates.key },
    });
  });

  afterAll(async () => {
    await secure?.close();
    certificates?.remove();
  });

  it("relays an HTTP/1.1 client's gRPC-Web calls (ALPN http/1.1), and hands other requests to Node", async () => {
    const spy = spyOnBytePath();
    const client = await RawClient.openTls(secure, certificates.caPem);
    expect((client.socket as tls.TLSSocket).alpnProtocol).toBe("http/1.1");
    for (const id of ["tls-1", "tls-2"]) {
      client.write(webCall("GetTask", getTask(id)));
      const response = await client.next();
      expect(response.headers["content-length"]).toBe(String(response.body.length));
      expect(taskIdsOf(response)).toEqual([id]);
    }
    expect(secure.stats().webRelayedConnections).toBe(1);
    expect(spy).not.toHaveBeenCalled();
    // Handed to Node's server over TLS too, which then serves the socket.
    client.write(getRoot);
    expect((await client.next()).status).toBe((await nodeAnswer(getRoot)).status);
    expect(secure.stats().webRelayedConnections).toBe(0);
    client.write(webCall("GetTask", getTask("tls-node")));
    expect(taskIdsOf(await client.next())).toEqual(["tls-node"]);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe("grpcWebRelay: false", () => {
  it("sends a fetch client's gRPC-Web call through Node's server and the byte proxy", async () => {
    const spy = spyOnBytePath();
    const client = clientFor("grpc-web-fetch", nodeGateway.url);
    expect((await client.getTask({ sessionId: "s", taskId: "no-relay" })).metadata?.id).toBe(
      "no-relay",
    );
    expect(spy).toHaveBeenCalledTimes(1);
    expect(nodeGateway.stats().webRelayedConnections).toBe(0);
    // The same call to a gateway with the relay does not touch the byte proxy. (A
    // gateway of its own: fetch keeps its connection open after the test.)
    const withRelay = await startGateway({ upstream: flame.url });
    try {
      const relayed = clientFor("grpc-web-fetch", withRelay.url);
      expect((await relayed.getTask({ sessionId: "s", taskId: "relay" })).metadata?.id).toBe(
        "relay",
      );
      expect(spy).toHaveBeenCalledTimes(1);
      expect(withRelay.stats().webRelayedConnections).toBe(1);
    } finally {
      await withRelay.close();
    }
  });
});

/**
 * An HTTP/2 upstream of raw frames that answers every request with the
 * header fields given (HPACK allows any bytes in a value), the messages and
 * the trailers given. `resets()` lists the streams the gateway reset.
 */
async function startRawUpstream(
  headers: HeaderField[],
  trailers: HeaderField[],
  messages: Buffer[] = [taskFrame("raw")],
) {
  const upstream = await startScriptedUpstream({
    onFrame(connection, frame) {
      if (frame.type === FrameType.headers) {
        connection.answer(frame.streamId, messages, headers, trailers);
      }
    },
  });
  const resets = () =>
    upstream.connections.flatMap((c) =>
      c.frames.filter((f) => f.type === FrameType.rstStream).map((f) => f.streamId),
    );
  return { ...upstream, resets };
}

describe("answers of a raw HTTP/2 upstream", () => {
  const okHeaders: HeaderField[] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
  ];
  const okTrailers: HeaderField[] = [["grpc-status", "0"]];

  it.each<[string, HeaderField[], HeaderField[]]>([
    [
      "a CRLF in a response header",
      [...okHeaders, ["x-split", "a\r\nset-cookie: session=stolen"]],
      okTrailers,
    ],
    ["a bare LF in a response header", [...okHeaders, ["x-split", "a\nx-injected: 1"]], okTrailers],
    ["a NUL in a response header", [...okHeaders, ["x-nul", "a\0b"]], okTrailers],
    ["a space in a header name", [...okHeaders, ["x bad", "v"]], okTrailers],
    [
      "a CRLF in a trailer",
      okHeaders,
      [
        ["grpc-status", "0"],
        ["x-split", "a\r\ngrpc-status: 7"],
      ],
    ],
  ])(
    "gets no injected line through to the client, and the call fails: %s",
    async (_, headers, trailers) => {
      const upstream = await startRawUpstream(headers, trailers);
      const gw = await startGateway({ upstream: upstream.url });
      try {
        const client = await RawClient.open(gw);
        client.write(webCall("GetTask", getTask("raw")));
        const response = await client.next();
        expect(response.headers["set-cookie"]).toBeUndefined();
        expect(response.headers["x-injected"]).toBeUndefined();
        expect(Object.keys(response.headers).some((n) => n.startsWith("x-"))).toBe(false);
        const status = grpcStatusOf(response);
        expect(status.code).toBe(Code.Internal);
        expect(status.message).toBe("protocol error: malformed response header field");
        // One trailer frame, with one status and nothing of the upstream's.
        const trailerText = framesOf(response.body).at(-1)?.payload.toString("latin1") ?? "";
        expect(trailerText.match(/grpc-status:/g)).toHaveLength(1);
        expect(trailerText).not.toContain("x-split");
        // The connection is still good for the next call.
        client.write(webCall("GetTask", getTask("raw")));
        expect(grpcStatusOf(await client.next()).code).toBe(Code.Internal);
        // A stream refused at its headers is cancelled upstream; one refused at its trailers is over.
        if (trailers === okTrailers) expect(upstream.resets().length).toBe(2);
        else expect(upstream.resets()).toEqual([]);
      } finally {
        await gw.close();
        await upstream.close();
      }
    },
  );

  it("answers an upstream HTTP error status with its gRPC code, dropping the body", async () => {
    const upstream = await startRawUpstream(
      [
        [":status", "503"],
        ["content-type", "text/plain"],
      ],
      okTrailers,
    );
    const gw = await startGateway({ upstream: upstream.url });
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("GetTask", getTask("raw")));
      const response = await client.next();
      expect(response.status).toBe(200);
      expect(grpcStatusOf(response)).toEqual({ code: Code.Unavailable, message: "HTTP 503" });
      expect(taskIdsOf(response)).toEqual([]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it("sends a unary answer of more than one message's worth chunked instead of holding it", async () => {
    const big = (id: string) =>
      grpcFrame(
        toBinary(
          TaskSchema,
          create(TaskSchema, { metadata: { id }, spec: { input: new Uint8Array(900) } }),
        ),
      );
    const upstream = await startRawUpstream(okHeaders, okTrailers, [big("m1"), big("m2")]);
    const gw = await startGateway({ upstream: upstream.url, maxMessageBytes: 1024 });
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("GetTask", getTask("raw")));
      const response = await client.next();
      expect(response.headers["transfer-encoding"]).toBe("chunked");
      expect(response.headers["content-length"]).toBeUndefined();
      expect(taskIdsOf(response)).toEqual(["m1", "m2"]);
      expect(grpcStatusOf(response).code).toBe(0);
      client.write(webCall("GetTask", getTask("raw")));
      expect(taskIdsOf(await client.next())).toEqual(["m1", "m2"]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it("relays the same upstream's clean answer (the raw upstream itself works)", async () => {
    const upstream = await startRawUpstream([...okHeaders, ["x-clean", "yes"]], okTrailers);
    const gw = await startGateway({ upstream: upstream.url });
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("GetTask", getTask("raw")));
      const response = await client.next();
      expect(response.headers["x-clean"]).toBe("yes");
      expect(taskIdsOf(response)).toEqual(["raw"]);
      expect(grpcStatusOf(response).code).toBe(0);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
