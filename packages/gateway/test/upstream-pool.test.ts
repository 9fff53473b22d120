import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameType, goawayFrame, H2Error, rstStreamFrame } from "../src/h2-frame.js";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor, type Protocol } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import {
  answerFrames,
  startScriptedUpstream,
  taskFrame,
  type UpstreamConnection,
} from "./scripted-upstream.js";

describe.each<[string, Protocol]>([
  ["the byte proxy's pool (chunked gRPC-Web, through Node's HTTP/1.1 server)", "grpc-web"],
  ["the gRPC-Web relay's pool (fetch)", "grpc-web-fetch"],
])("%s", (_, protocol) => {
  let flame: FakeFlame;
  let gateway: Gateway;

  beforeAll(async () => {
    // An upstream that allows only 4 streams per connection, as real servers
    // cap them (hyper: 200): more open watches than that must not stall.
    flame = await startFakeFlame({ maxConcurrentStreams: 4 });
    gateway = await startGateway({ upstream: flame.url });
  });

  afterAll(async () => {
    await gateway?.close();
    await flame?.close();
  });

  it("opens more upstream connections when one is full of held streams", async () => {
    const client = clientFor(protocol, gateway.url);
    const ac = new AbortController();
    const started = flame.streamsStarted;
    const cancelled = flame.streamsCancelled;
    try {
      for (let i = 0; i < 10; i++) {
        const iterator = client
          .watchTask({ sessionId: "s", taskId: String(i) }, { signal: ac.signal })
          [Symbol.asyncIterator]();
        // Each watch gets its first message, so none is queued behind the others.
        expect((await iterator.next()).done).toBe(false);
      }
      expect(flame.streamsStarted).toBe(started + 10);
      expect(gateway.stats().openStreams).toBe(10);
      expect(gateway.stats().upstreamConnections).toBe(3);
      // Unary calls still get through while the watches are held.
      const app = await client.getApplication({ name: "flmping" });
      expect(app.metadata?.name).toBe("flmping");
    } finally {
      ac.abort();
    }
    // Closing the gateway ends every watch it holds and cancels it upstream.
    // (Not the client's abort: undici's fetch now and then keeps an aborted
    // watch's connection open, with Node's server as with the relay.)
    await gateway.close();
    await eventually(() => flame.streamsCancelled === cancelled + 10, "all watches cancelled");
  });
});

describe("the gRPC-Web relay's pool", () => {
  it("puts 32 streams on a connection before it opens the next", async () => {
    const flame = await startFakeFlame();
    const gateway = await startGateway({ upstream: flame.url });
    const ac = new AbortController();
    try {
      const client = clientFor("grpc-web-fetch", gateway.url);
      const firsts: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        const iterator = client
          .watchTask({ sessionId: "s", taskId: `w${i}` }, { signal: ac.signal })
          [Symbol.asyncIterator]();
        firsts.push(iterator.next());
      }
      await Promise.all(firsts);
      expect(gateway.stats().openStreams).toBe(40);
      expect(gateway.stats().webRelayedConnections).toBe(40);
      expect(gateway.stats().upstreamConnections).toBe(2);
    } finally {
      ac.abort();
      await gateway.close();
      await flame.close();
    }
  });
});

describe.each<[string, Protocol]>([
  ["the gRPC-Web relay (fetch over HTTP/1.1)", "grpc-web-fetch"],
  ["the byte proxy (gRPC-Web over HTTP/2)", "grpc-web-h2"],
])("%s, when the upstream leaves calls unprocessed", (_, protocol) => {
  it("takes new calls to a new connection after GOAWAY, and sends again a call it left unprocessed", async () => {
    // Connection 4 answers only once two calls are on it, then names the first as its last.
    const upstream = await startGoawayUpstream((n) => (n === 4 ? "answer-first-of-two" : "answer"));
    const gateway = await startGateway({ upstream: upstream.url });
    try {
      const client = clientFor(protocol, gateway.url);
      // Each connection answers one call, then says GOAWAY: three calls, three connections.
      for (const id of ["a", "b", "c"]) {
        const task = await client.getTask({ sessionId: "s", taskId: id });
        expect(task.metadata?.id).toBe("answered");
      }
      expect(upstream.connections()).toBe(3);
      // Two calls at once share connection 4; the second, above GOAWAY's last
      // stream, was never processed and is sent again on connection 5.
      const both = await Promise.all([
        client.getTask({ sessionId: "s", taskId: "d" }),
        client.getTask({ sessionId: "s", taskId: "e" }),
      ]);
      expect(both.map((t) => t.metadata?.id)).toEqual(["answered", "answered"]);
      expect(upstream.connections()).toBe(5);
      expect(upstream.requests()).toBe(6);
      // Connections that said GOAWAY are closed once their calls are over.
      await eventually(
        () => gateway.stats().upstreamConnections === 0,
        "the connections that said GOAWAY to be closed",
      );
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  it("sends again a call refused with REFUSED_STREAM", async () => {
    const upstream = await startGoawayUpstream(() => "refuse-first");
    const gateway = await startGateway({ upstream: upstream.url });
    try {
      const task = await clientFor(protocol, gateway.url).getTask({
        sessionId: "s",
        taskId: "r",
      });
      expect(task.metadata?.id).toBe("answered");
      // Sent again on the same connection, which still takes streams.
      expect(upstream.requests()).toBe(2);
      expect(upstream.connections()).toBe(1);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  it("gives up with Unavailable after sending an unprocessed call three times", async () => {
    const upstream = await startGoawayUpstream(() => "goaway-before");
    const gateway = await startGateway({ upstream: upstream.url });
    try {
      const err = await clientFor(protocol, gateway.url)
        .getTask({ sessionId: "s", taskId: "never" })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(err?.code).toBe(Code.Unavailable);
      expect(err?.rawMessage).toBe(
        "upstream connection failed: the upstream sent GOAWAY (code 0x0)",
      );
      expect(upstream.requests()).toBe(3);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

type ConnectionBehaviour =
  /** Answer the first request, then GOAWAY naming it as the last stream. */
  | "answer"
  /** The same, but only once a second request is there (left unprocessed). */
  | "answer-first-of-two"
  /** RST_STREAM REFUSED_STREAM for the first request, then as "answer". */
  | "refuse-first"
  /** GOAWAY naming stream 0 as the last: nothing processed. */
  | "goaway-before";

/**
 * An HTTP/2 upstream of raw frames whose n-th connection (from 1) behaves
 * as `behaviour(n)` says; later requests on a connection that said GOAWAY
 * get no answer.
 */
async function startGoawayUpstream(behaviour: (connection: number) => ConnectionBehaviour) {
  const answered = new Set<UpstreamConnection>();
  const upstream = await startScriptedUpstream({
    onFrame(connection, frame) {
      if (frame.type !== FrameType.headers) return;
      const mode = behaviour(upstream.connections.indexOf(connection) + 1);
      const requests = connection.frames.filter((f) => f.type === FrameType.headers);
      if (mode === "refuse-first" && requests.length === 1) {
        connection.write(rstStreamFrame(frame.streamId, H2Error.refusedStream));
        return;
      }
      if (answered.has(connection)) return;
      if (requests.length < (mode === "answer-first-of-two" ? 2 : 1)) return;
      answered.add(connection);
      if (mode === "goaway-before") {
        connection.write(goawayFrame(0, H2Error.noError));
        return;
      }
      const id = (requests[mode === "refuse-first" ? 1 : 0] as (typeof requests)[number]).streamId;
      // In one write, so the relay reads the GOAWAY with the answer.
      connection.write(
        Buffer.concat([
          answerFrames(id, [taskFrame("answered")]),
          goawayFrame(id, H2Error.noError),
        ]),
      );
    },
  });
  return {
    ...upstream,
    connections: () => upstream.connections.length,
    requests: () =>
      upstream.connections.reduce(
        (n, c) => n + c.frames.filter((f) => f.type === FrameType.headers).length,
        0,
      ),
  };
}
