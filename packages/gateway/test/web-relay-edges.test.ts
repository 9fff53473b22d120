// Edges of the gRPC-Web relay over real sockets, against an HTTP/2 upstream
// of raw frames that each test scripts: answers that come before the
// request's end, flow-control windows that change mid-stream, GOAWAY and
// resets, and what the relay holds (upstream streams, counters) after
// every kind of ending.
import * as net from "node:net";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { FrameFlag, FrameType, goawayFrame, H2Error, headersFrames } from "../src/h2-frame.js";
import { encodeHeaderBlock } from "../src/header-block.js";
import { type Gateway, startGateway } from "../src/index.js";
import { eventually, startFakeFlame } from "./fake-flame.js";
import {
  answerEnded,
  type Script,
  type ScriptedUpstream,
  startScriptedUpstream,
  type UpstreamConnection,
} from "./scripted-upstream.js";
import {
  createTask,
  destroyClients,
  framesOf,
  getTask,
  grpcStatusOf,
  preflight,
  RawClient,
  taskIdsOf,
  webCall,
  webHead,
} from "./web-relay-client.js";

type Upstream = ScriptedUpstream;

const opened: { gateway: Gateway; upstream: Upstream }[] = [];

async function setUp(script: Script = {}) {
  const upstream = await startScriptedUpstream(script);
  const gateway = await startGateway({ upstream: upstream.url });
  opened.push({ gateway, upstream });
  return { upstream, gateway };
}

afterEach(async () => {
  destroyClients();
  for (const { gateway, upstream } of opened.splice(0)) {
    await gateway.close();
    await upstream.close();
  }
});

const maxConcurrentStreams = 0x3;

describe("an upstream answer that comes before the whole request", () => {
  it("with an HTTP error status ends the upstream stream too, leaving room for the next call", async () => {
    // One stream at a time: a stream the gateway left open would take the connection's only slot.
    let refused = false;
    const answered = new Set<number>();
    const { upstream, gateway } = await setUp({
      settings: [[maxConcurrentStreams, 1]],
      onFrame(connection, frame) {
        if (frame.type === FrameType.headers && !refused) {
          refused = true;
          // Refused at once, before any of the body.
          connection.write(headersFrames(1, encodeHeaderBlock([[":status", "503"]]), true));
        } else if (
          (frame.type === FrameType.headers || frame.type === FrameType.data) &&
          (frame.flags & FrameFlag.endStream) !== 0 &&
          !answered.has(frame.streamId)
        ) {
          answered.add(frame.streamId);
          connection.answer(frame.streamId);
        }
      },
    });
    const client = await RawClient.open(gateway);
    const body = createTask(new Uint8Array(64 * 1024).fill(7));
    client.write(webHead("CreateTask", body.length));
    client.write(body.subarray(0, 100));
    const first = await client.next();
    expect(grpcStatusOf(first)).toEqual({ code: Code.Unavailable, message: "HTTP 503" });
    // The rest of the refused call's body, then the next call.
    client.write(body.subarray(100));
    client.write(webCall("GetTask", getTask("next")));
    const next = await client.next();
    expect(upstream.connections.length).toBe(1);
    expect(taskIdsOf(next)).toEqual(["raw"]);
    expect(upstream.connections[0]?.over(1)).toBe(true);
  });
});

describe("a call the upstream left unprocessed", () => {
  it("is sent again whole and in order while its body is still arriving", async () => {
    const { upstream, gateway } = await setUp({
      onFrame(connection, frame) {
        if (connection === upstream.connections[0]) {
          // The first connection goes away at the first request, processing nothing.
          if (frame.type === FrameType.headers) connection.write(goawayFrame(0, H2Error.noError));
          return;
        }
        answerEnded(connection, frame);
      },
    });
    const client = await RawClient.open(gateway);
    // More than HTTP/2's initial window: some of it waits in the gateway when GOAWAY comes.
    const input = new Uint8Array(200 * 1024).map((_, i) => (i * 13) % 251);
    const body = createTask(input);
    const half = 100 * 1024;
    client.write(webHead("CreateTask", body.length));
    client.write(body.subarray(0, half));
    await eventually(() => upstream.connections.length === 2, "the call to be sent again");
    client.write(body.subarray(half));
    const response = await client.next();
    expect(grpcStatusOf(response).code).toBe(0);
    const again = upstream.connections[1] as UpstreamConnection;
    await eventually(() => again.over(1), "the request to end");
    expect(again.body(1).equals(body)).toBe(true);
    expect(gateway.stats().openStreams).toBe(0);
  });
});

describe("Connection: close", () => {
  it("lets a client that reads slowly have all of a large response before the socket closes", async () => {
    const flame = await startFakeFlame();
    const gateway = await startGateway({ upstream: flame.url, maxMessageBytes: 32 * 1024 * 1024 });
    try {
      const client = await RawClient.open(gateway);
      // An echo of 24 MiB, written in one write: more than the sockets' buffers take.
      const input = new Uint8Array(24 * 1024 * 1024).map((_, i) => i % 249);
      client.socket.pause();
      client.write(webCall("CreateTask", createTask(input), { Connection: "close" }));
      await eventually(
        () => gateway.stats().webRelayedConnections === 0,
        "the call to end and the gateway to end the connection",
        500,
      );
      // Longer than the gateway gives a client to close its side, while nothing is read.
      await new Promise((r) => setTimeout(r, 1_500));
      client.socket.resume();
      const response = await client.next(10_000);
      expect(response.headers.connection).toBe("close");
      expect(grpcStatusOf(response).code).toBe(0);
      const [message] = framesOf(response.body);
      expect(message?.payload.length).toBeGreaterThan(input.length);
      await client.ended;
    } finally {
      await gateway.close();
      await flame.close();
    }
  });
});

describe("a deadline that passes while the request body arrives", () => {
  it("fails the call, cancels it upstream, and skips the rest of its body", async () => {
    const { upstream, gateway } = await setUp({ onFrame: answerEnded });
    const client = await RawClient.open(gateway);
    const body = createTask(new Uint8Array(4096).fill(1));
    client.write(webHead("CreateTask", body.length, { "grpc-timeout": "50m" }));
    client.write(body.subarray(0, 100));
    const late = await client.next();
    expect(grpcStatusOf(late).code).toBe(Code.DeadlineExceeded);
    const [connection] = upstream.connections;
    await eventually(() => connection?.over(1) === true, "the upstream stream to be cancelled");
    expect(connection?.received(FrameType.rstStream, 1).length).toBe(1);
    // The rest of the body is not read as a request head.
    client.write(Buffer.concat([body.subarray(100), webCall("GetTask", getTask("next"))]));
    expect(taskIdsOf(await client.next())).toEqual(["raw"]);
    expect(gateway.stats().openStreams).toBe(0);
    expect(gateway.stats().webRelayedConnections).toBe(1);
  });
});

describe("a call that ends while its upstream connection is still opening", () => {
  it("leaves its client connection free for the next request", async () => {
    // A TLS upstream that accepts TCP and never answers the handshake: the
    // relay's connection to it stays "opening" for the 10 s connect timeout.
    const accepted = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      accepted.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const gw = await startGateway({
      upstream: `https://127.0.0.1:${port}`,
      allowedOrigins: ["https://dash.example.com"],
    });
    try {
      const client = await RawClient.open(gw);
      client.write(webCall("GetTask", getTask("t"), { "Grpc-Timeout": "100m" }));
      const failed = await client.next();
      expect(grpcStatusOf(failed)).toEqual({
        code: Code.DeadlineExceeded,
        message: "the operation timed out",
      });
      // The next request on the same socket is read at once, not after the
      // connect gives up (the relay had paused the socket for the call).
      client.write(preflight("https://dash.example.com"));
      const answered = await client.next();
      expect(answered.status).toBe(204);
      expect(gw.stats().openStreams).toBe(0);
    } finally {
      await gw.close();
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
